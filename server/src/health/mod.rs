//! Pool health: what `zpool status` says about each pool (state, scrubs and resilvers, the
//! device tree with its error counters, data errors) in [`status`], what changed since it was
//! last reported in [`monitor`], and the service that polls it in [`watcher`].

pub mod monitor;
pub mod status;
pub mod watcher;

pub use status::{Count, DataErrors, Device, PoolStatus, Role, Scan, ScanKind, StatusParseError};
