//! The Mac side of Backstop, shared by the `backstop` CLI and (later) the menu-bar app.
//!
//! - [`client`]: talks to backstopd, turning transport and server errors into one readable line.
//! - [`view`]: the stable JSON shapes of what the CLI prints with `--json`, and the table text.

pub mod client;
pub mod detector;
pub mod notify;
pub mod post_backup;
pub mod queue;
pub mod view;

pub use client::{Client, ClientError};
