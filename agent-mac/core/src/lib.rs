//! The Mac side of Backstop, shared by the `backstop` CLI and (later) the menu-bar app.
//!
//! - [`client`]: talks to backstopd, turning transport and server errors into one readable line.
//! - [`view`]: the stable JSON shapes of what the CLI prints with `--json`, and the table text.
//! - [`sources`]: the Mac-only inputs (`log stream`, `tmutil`) behind one trait, real or replayed.
//! - [`config`]: `agent.toml`, destination → server and share, and what `backstop init` proposes.
//! - [`agent`]: `backstop agent`, the long-running mode.

pub mod agent;
pub mod client;
pub mod config;
pub mod detector;
pub mod notify;
pub mod pairing;
pub mod post_backup;
pub mod queue;
pub mod sources;
pub mod view;

pub use client::{Client, ClientError};
