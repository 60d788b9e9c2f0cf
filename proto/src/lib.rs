//! The `backstop.v1` gRPC contract shared by `backstopd` and its clients.
//!
//! The `.proto` file in `proto/backstop/v1/` is the source of truth; this crate only compiles it.

/// Generated messages, clients and servers of package `backstop.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("backstop.v1");
}

pub use prost_types::Timestamp;

/// Sizes as zfs prints them, for people on both sides of the contract.
pub mod size;

/// The default TCP port of backstopd.
pub const DEFAULT_PORT: u16 = 7461;
