//! The zfs layer: pure argv builders ([`ZfsCommands`]), pure parsers of zfs's `-H` output
//! ([`parse`]), capability detection ([`detect`]) and the one place that executes argv
//! ([`runner`]). Nothing here ever builds a shell string.

pub mod command;
pub mod detect;
pub mod parse;
pub mod runner;

pub use command::{Argv, ZfsCommands};
pub use detect::{Capabilities, Implementation, ZfsInfo};
pub use parse::{PropRow, PropSet, parse_get, parse_reclaim};
pub use runner::{ProcessRunner, RunError, Runner};

/// Backstop's ZFS user properties.
pub mod props {
    pub const MANAGED: &str = "org.backstop:managed";
    pub const BACKUP_TIME: &str = "org.backstop:backup-time";
    pub const ORIGIN: &str = "org.backstop:origin";
    pub const BACKUP_ID: &str = "org.backstop:backup-id";
    /// `good`, `bad` or `unknown`: whether Time Machine considered the backup sound.
    pub const VERIFIED: &str = "org.backstop:verified";
    /// `on`: never pruned.
    pub const KEEP: &str = "org.backstop:keep";
}
