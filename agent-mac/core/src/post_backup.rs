//! What the agent does when a backup ends: a completed backup becomes a snapshot request in the
//! durable queue, then the queue is sent to the server (and kept, to be retried, when the server
//! cannot be reached); a failed or cancelled one is reported to the server as an event.

use std::path::{Path, PathBuf};

use backstop_proto::v1 as pb;
use jiff::Timestamp;

use crate::client::{Client, ClientError, pb_time};
use crate::detector::{BackupOutcome, Outcome};
use crate::queue::{PendingSnapshot, QueueError, SnapshotQueue};

/// The agent's state dir: `BACKSTOP_STATE_DIR`, else the platform's place for it
/// (`~/Library/Application Support/Backstop` on macOS, `$XDG_STATE_HOME/backstop` or
/// `~/.local/state/backstop` elsewhere).
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BACKSTOP_STATE_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    if cfg!(target_os = "macos") {
        home.join("Library/Application Support/Backstop")
    } else if let Some(state) = std::env::var_os("XDG_STATE_HOME") {
        PathBuf::from(state).join("backstop")
    } else {
        home.join(".local/state/backstop")
    }
}

/// The server's idempotency key for a backup: destination id and the backup's stamp (or, when
/// the log line did not name it, the time of the line).
pub fn backup_id(destination: &str, outcome: &BackupOutcome) -> String {
    let stamp = outcome.backup.clone().unwrap_or_else(|| {
        outcome
            .at
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .strftime("%Y-%m-%d-%H%M%S")
            .to_string()
    });
    format!("{destination}/{stamp}")
}

#[derive(Debug, thiserror::Error)]
pub enum PostBackupError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// What sending the queue did.
#[derive(Debug, Default)]
pub struct Drained {
    /// (backup id, snapshot name, created now)
    pub sent: Vec<(String, String, bool)>,
    /// Requests still queued, and why the last attempt failed.
    pub left: usize,
    pub error: Option<String>,
}

pub struct PostBackup {
    pub server: String,
    pub share: String,
    pub destination: String,
    queue: SnapshotQueue,
}

impl PostBackup {
    pub fn open(
        server: &str,
        share: &str,
        destination: &str,
        state_dir: &Path,
    ) -> Result<PostBackup, PostBackupError> {
        Ok(PostBackup {
            server: server.to_string(),
            share: share.to_string(),
            destination: destination.to_string(),
            queue: SnapshotQueue::open(state_dir)?,
        })
    }

    pub fn queued(&self) -> usize {
        self.queue.pending().len()
    }

    /// Records what to do about an ended backup: completed ones are queued (durably) for a
    /// snapshot; failed and cancelled ones are reported now (best effort: a report that cannot
    /// reach the server is only logged, as there is nothing to retry for).
    pub async fn handle(&mut self, outcome: &BackupOutcome) -> Result<(), PostBackupError> {
        match outcome.outcome {
            Outcome::Completed => {
                self.queue.push(PendingSnapshot {
                    share: self.share.clone(),
                    backup_id: backup_id(&self.destination, outcome),
                    backup_time: outcome.at,
                    queued_at: Timestamp::now(),
                    attempts: 0,
                    last_error: None,
                })?;
                Ok(())
            }
            Outcome::Failed | Outcome::Cancelled => {
                let client = Client::connect(&self.server).await?;
                client
                    .report_backup(pb::BackupReport {
                        share: self.share.clone(),
                        outcome: if outcome.outcome == Outcome::Failed {
                            "failed"
                        } else {
                            "cancelled"
                        }
                        .into(),
                        code: outcome.code,
                        reason: outcome.reason.clone().unwrap_or_default(),
                        at: Some(pb_time(outcome.at)),
                        backup: outcome.backup.clone().unwrap_or_default(),
                        explanation: outcome.explanation().unwrap_or_default().to_string(),
                    })
                    .await?;
                Ok(())
            }
        }
    }

    /// Sends every queued request, oldest first; stops at the first one the server cannot take
    /// and keeps it (and the rest) for the next attempt.
    pub async fn drain(&mut self) -> Result<Drained, PostBackupError> {
        let mut drained = Drained::default();
        if self.queue.pending().is_empty() {
            return Ok(drained);
        }
        let client = match Client::connect(&self.server).await {
            Ok(c) => c,
            Err(e) => {
                let msg = e.to_string();
                for p in self.queue.pending().to_vec() {
                    self.queue.failed(&p.backup_id, &msg)?;
                }
                drained.left = self.queue.pending().len();
                drained.error = Some(msg);
                return Ok(drained);
            }
        };
        for p in self.queue.pending().to_vec() {
            let req = pb::CreateSnapshotRequest {
                share: p.share.clone(),
                suffix: None,
                backup_time: Some(pb_time(p.backup_time)),
                backup_id: Some(p.backup_id.clone()),
                origin: pb::SnapshotOrigin::Backup.into(),
            };
            match client.create_snapshot(req).await {
                Ok(r) => {
                    self.queue.done(&p.backup_id)?;
                    let name = r.snapshot.map(|s| s.full_name).unwrap_or_default();
                    drained.sent.push((p.backup_id.clone(), name, r.created));
                }
                // The server refused this request for good (unknown share, invalid id): keeping
                // it would block every later backup. It is dropped, and said so.
                Err(ClientError::Server { code, message })
                    if !matches!(code, tonic::Code::Unavailable | tonic::Code::Internal) =>
                {
                    self.queue.done(&p.backup_id)?;
                    drained.error = Some(format!("dropped {}: {message}", p.backup_id));
                }
                Err(e) => {
                    let msg = e.to_string();
                    self.queue.failed(&p.backup_id, &msg)?;
                    drained.error = Some(msg);
                    break;
                }
            }
        }
        drained.left = self.queue.pending().len();
        Ok(drained)
    }
}
