//! The durable queue of snapshot requests: a confirmed backup's snapshot request is written here
//! before it is sent, and stays until the server has taken it. The server makes one snapshot per
//! backup id, so sending a request twice (a crash between sending and removing) is harmless.
//!
//! One JSON file in the agent's state dir, rewritten atomically (temp file, fsync, rename).

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSnapshot {
    pub share: String,
    /// Destination id and backup stamp: the server's idempotency key.
    pub backup_id: String,
    pub backup_time: Timestamp,
    pub queued_at: Timestamp,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("snapshot queue {path}: {source}")]
pub struct QueueError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

pub struct SnapshotQueue {
    path: PathBuf,
    items: Vec<PendingSnapshot>,
}

impl SnapshotQueue {
    /// Opens `DIR/snapshot-queue.json` (creating DIR). An unreadable file is kept aside as
    /// `.corrupt` and the queue starts empty, so one bad write never blocks every later backup.
    pub fn open(dir: &Path) -> Result<SnapshotQueue, QueueError> {
        let path = dir.join("snapshot-queue.json");
        let io = |source| QueueError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let items = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(items) => items,
                Err(_) => {
                    let aside = path.with_extension("json.corrupt");
                    std::fs::rename(&path, aside).map_err(io)?;
                    Vec::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        Ok(SnapshotQueue { path, items })
    }

    pub fn pending(&self) -> &[PendingSnapshot] {
        &self.items
    }

    fn save(&self) -> Result<(), QueueError> {
        let io = |source| QueueError {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.items).expect("queue serializes");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)
    }

    /// Adds a request (once per backup id) and saves before returning.
    pub fn push(&mut self, item: PendingSnapshot) -> Result<(), QueueError> {
        if !self.items.iter().any(|i| i.backup_id == item.backup_id) {
            self.items.push(item);
            self.save()?;
        }
        Ok(())
    }

    /// The server took the request.
    pub fn done(&mut self, backup_id: &str) -> Result<(), QueueError> {
        self.items.retain(|i| i.backup_id != backup_id);
        self.save()
    }

    /// Sending failed; the request stays for the next attempt.
    pub fn failed(&mut self, backup_id: &str, error: &str) -> Result<(), QueueError> {
        for i in self.items.iter_mut().filter(|i| i.backup_id == backup_id) {
            i.attempts += 1;
            i.last_error = Some(error.to_string());
        }
        self.save()
    }
}

/// The delay before retry number `attempt` (0-based): 1 s doubling to at most 5 minutes.
pub fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_secs(1u64 << attempt.min(9)).min(std::time::Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir (removed by the test at its end).
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("backstop-queue-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn item(id: &str) -> PendingSnapshot {
        PendingSnapshot {
            share: "TM".into(),
            backup_id: id.into(),
            backup_time: "2026-06-14T04:51:22Z".parse().unwrap(),
            queued_at: "2026-06-14T04:51:30Z".parse().unwrap(),
            attempts: 0,
            last_error: None,
        }
    }

    #[test]
    fn survives_a_restart_and_dedupes_by_backup_id() {
        let dir = scratch("restart");
        {
            let mut q = SnapshotQueue::open(&dir).unwrap();
            q.push(item("D/2026-06-14-145122")).unwrap();
            q.push(item("D/2026-06-14-145122")).unwrap();
            q.push(item("D/2026-06-14-155122")).unwrap();
            q.failed("D/2026-06-14-145122", "connection refused")
                .unwrap();
        }
        let mut q = SnapshotQueue::open(&dir).unwrap();
        assert_eq!(q.pending().len(), 2);
        assert_eq!(q.pending()[0].attempts, 1);
        assert_eq!(
            q.pending()[0].last_error.as_deref(),
            Some("connection refused")
        );
        q.done("D/2026-06-14-145122").unwrap();
        let q = SnapshotQueue::open(&dir).unwrap();
        assert_eq!(q.pending(), [item("D/2026-06-14-155122")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_set_aside() {
        let dir = scratch("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("snapshot-queue.json"), "{not json").unwrap();
        let q = SnapshotQueue::open(&dir).unwrap();
        assert!(q.pending().is_empty());
        assert!(dir.join("snapshot-queue.json.corrupt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0).as_secs(), 1);
        assert_eq!(backoff(3).as_secs(), 8);
        assert_eq!(backoff(30).as_secs(), 300);
    }
}
