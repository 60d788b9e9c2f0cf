//! The durable event log: every event gets a strictly increasing cursor, is appended to a file
//! in the state dir before anyone sees it, and is fanned out to every subscriber. A subscriber
//! that names its last cursor gets everything after it, also across daemon restarts; the log is
//! bounded (oldest dropped first) and a subscriber that fell behind the oldest kept event is told
//! so, never silently skipped.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::snapshot::Snapshot;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// What happened. New kinds are added as variants; a log written by a newer backstopd and read
/// by an older one keeps its summary and shows as `Other`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    ServerStarted {
        version: String,
    },
    SnapshotCreated {
        snapshot: Snapshot,
    },
    SnapshotsAdopted {
        names: Vec<String>,
    },
    SnapshotsPruned {
        destroyed: Vec<String>,
        /// (snapshot, why it could not be destroyed)
        failed: Vec<(String, String)>,
        freed: u64,
        trigger: crate::pruning::Trigger,
    },
    VerificationFailed {
        bundle: String,
        state: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        newest_good: Option<Snapshot>,
    },
    BackupEnded {
        outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        reason: String,
        backup: String,
    },
    PoolHealthChanged {
        pool: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        change: String,
        state: String,
        read: u64,
        write: u64,
        cksum: u64,
        repaired: u64,
    },
    /// A restore, undo or finalize: started, each step, finished, reversed or failed.
    Recovery {
        operation: String,
        phase: String,
        target: String,
        mode: String,
        /// 1-based; 0 when not about one step.
        step: u32,
        total: u32,
        kept: String,
    },
    /// Netatalk's `dbd` after a restore.
    CnidChecked {
        clean: bool,
        rebuilt: bool,
        problems: Vec<String>,
        millis: u64,
    },
    #[serde(other)]
    Other,
}

/// An event as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub cursor: u64,
    pub at: Timestamp,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    pub summary: String,
    pub kind: EventKind,
}

/// An event before it is recorded.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub severity: Severity,
    pub share: Option<String>,
    pub summary: String,
    pub kind: EventKind,
}

/// What a subscription delivers, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    Event(Box<Event>),
    /// Events after `after` up to `oldest_kept` were dropped before the subscriber read them.
    Missed {
        after: u64,
        oldest_kept: u64,
    },
    /// The backlog is delivered; what follows is live.
    CaughtUp {
        latest: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("event log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

struct Inner {
    kept: VecDeque<Event>,
    next_cursor: u64,
    file: File,
    lines_in_file: usize,
}

pub struct EventLog {
    path: PathBuf,
    keep: usize,
    inner: Mutex<Inner>,
    live: broadcast::Sender<Event>,
}

impl EventLog {
    /// Opens (or creates) `DIR/events.jsonl`. Unreadable lines (a write cut short by a crash)
    /// are skipped with a warning.
    pub fn open(dir: &Path, keep: usize) -> Result<EventLog, EventLogError> {
        let path = dir.join("events.jsonl");
        let io = |source| EventLogError::Io {
            path: path.clone(),
            source,
        };
        let mut kept: VecDeque<Event> = VecDeque::new();
        let mut lines_in_file = 0;
        let mut last_cursor = 0;
        match File::open(&path) {
            Ok(f) => {
                for (i, line) in BufReader::new(f).lines().enumerate() {
                    let line = line.map_err(io)?;
                    lines_in_file += 1;
                    match serde_json::from_str::<Event>(&line) {
                        Ok(ev) if ev.cursor > last_cursor => {
                            last_cursor = ev.cursor;
                            kept.push_back(ev);
                            if kept.len() > keep {
                                kept.pop_front();
                            }
                        }
                        Ok(ev) => tracing::warn!(
                            "{}: line {}: cursor {} is not after {last_cursor}; skipped",
                            path.display(),
                            i + 1,
                            ev.cursor
                        ),
                        Err(e) => tracing::warn!(
                            "{}: line {}: unreadable event skipped: {e}",
                            path.display(),
                            i + 1
                        ),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let (live, _) = broadcast::channel(1024);
        let log = EventLog {
            path,
            keep,
            inner: Mutex::new(Inner {
                kept,
                next_cursor: last_cursor + 1,
                file,
                lines_in_file,
            }),
            live,
        };
        {
            let mut inner = log.inner.lock().expect("event log lock");
            if inner.lines_in_file > inner.kept.len() {
                log.compact(&mut inner)?;
            }
        }
        Ok(log)
    }

    /// Records an event (durably: written and synced) and delivers it to live subscribers.
    pub fn append(&self, new: NewEvent) -> Result<Event, EventLogError> {
        let mut inner = self.inner.lock().expect("event log lock");
        let event = Event {
            cursor: inner.next_cursor,
            at: Timestamp::now(),
            severity: new.severity,
            share: new.share,
            summary: new.summary,
            kind: new.kind,
        };
        let mut line = serde_json::to_string(&event).expect("events serialize");
        line.push('\n');
        let io = |source| EventLogError::Io {
            path: self.path.clone(),
            source,
        };
        inner.file.write_all(line.as_bytes()).map_err(io)?;
        inner.file.sync_data().map_err(io)?;
        inner.next_cursor += 1;
        inner.lines_in_file += 1;
        inner.kept.push_back(event.clone());
        while inner.kept.len() > self.keep {
            inner.kept.pop_front();
        }
        if inner.lines_in_file >= 2 * self.keep {
            self.compact(&mut inner)?;
        }
        // Sent under the lock so live order equals cursor order. No receivers is fine.
        let _ = self.live.send(event.clone());
        Ok(event)
    }

    /// Rewrites the file with only the kept events (atomically: temp file, sync, rename).
    fn compact(&self, inner: &mut Inner) -> Result<(), EventLogError> {
        let io = |source| EventLogError::Io {
            path: self.path.clone(),
            source,
        };
        let tmp = self.path.with_extension("jsonl.tmp");
        {
            let mut f = File::create(&tmp).map_err(io)?;
            let mut buf = String::new();
            for ev in &inner.kept {
                buf.push_str(&serde_json::to_string(ev).expect("events serialize"));
                buf.push('\n');
            }
            f.write_all(buf.as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        inner.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        inner.lines_in_file = inner.kept.len();
        Ok(())
    }

    /// (oldest kept cursor, latest cursor); 0 when there is none.
    pub fn bounds(&self) -> (u64, u64) {
        let inner = self.inner.lock().expect("event log lock");
        (
            inner.kept.front().map_or(0, |e| e.cursor),
            inner.next_cursor - 1,
        )
    }

    /// The kept events after `after`, and whether events after `after` were dropped: `Some(oldest
    /// kept)` when the subscriber fell behind (or the log was reset below its cursor).
    fn backlog(&self, after: u64) -> (Vec<Event>, Option<u64>, u64) {
        let inner = self.inner.lock().expect("event log lock");
        let latest = inner.next_cursor - 1;
        let oldest = inner.kept.front().map_or(latest + 1, |e| e.cursor);
        let reset = after > latest;
        let missed = (reset || (after > 0 && after + 1 < oldest)).then_some(oldest);
        let from = if reset { 0 } else { after };
        let events = inner
            .kept
            .iter()
            .filter(|e| e.cursor > from)
            .cloned()
            .collect();
        (events, missed, latest)
    }

    /// Subscribes: the backlog after `after` (unless `live_only`), a `CaughtUp`, then (when
    /// `follow`) live events until the receiver is dropped.
    pub fn subscribe(
        self: &std::sync::Arc<Self>,
        after: u64,
        follow: bool,
        live_only: bool,
    ) -> mpsc::Receiver<Delivery> {
        let (tx, rx) = mpsc::channel(256);
        // Subscribe to live events before reading the backlog, so nothing falls in between;
        // duplicates are filtered by cursor.
        let mut live = self.live.subscribe();
        let log = self.clone();
        let follow = follow || live_only;
        tokio::spawn(async move {
            let mut last = if live_only { log.bounds().1 } else { after };
            if !live_only {
                let (events, missed, _) = log.backlog(after);
                if let Some(oldest_kept) = missed {
                    if tx
                        .send(Delivery::Missed { after, oldest_kept })
                        .await
                        .is_err()
                    {
                        return;
                    }
                    last = 0;
                }
                for ev in events {
                    last = ev.cursor;
                    if tx.send(Delivery::Event(Box::new(ev))).await.is_err() {
                        return;
                    }
                }
            }
            if tx
                .send(Delivery::CaughtUp {
                    latest: log.bounds().1,
                })
                .await
                .is_err()
                || !follow
            {
                return;
            }
            loop {
                let batch = match live.recv().await {
                    Ok(ev) => vec![ev],
                    // Too slow for the live channel: catch up from the kept log instead.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let (events, missed, _) = log.backlog(last);
                        if let Some(oldest_kept) = missed {
                            let m = Delivery::Missed {
                                after: last,
                                oldest_kept,
                            };
                            if tx.send(m).await.is_err() {
                                return;
                            }
                        }
                        events
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                for ev in batch {
                    if ev.cursor <= last {
                        continue;
                    }
                    last = ev.cursor;
                    if tx.send(Delivery::Event(Box::new(ev))).await.is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    fn started(n: u64) -> NewEvent {
        NewEvent {
            severity: Severity::Info,
            share: None,
            summary: format!("event {n}"),
            kind: EventKind::ServerStarted {
                version: n.to_string(),
            },
        }
    }

    async fn drain(mut rx: mpsc::Receiver<Delivery>) -> Vec<Delivery> {
        let mut v = Vec::new();
        while let Some(d) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("stream ends")
        {
            v.push(d);
        }
        v
    }

    fn cursors(ds: &[Delivery]) -> Vec<u64> {
        ds.iter()
            .filter_map(|d| match d {
                Delivery::Event(e) => Some(e.cursor),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn cursors_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = EventLog::open(dir.path(), 100).unwrap();
            for i in 0..3 {
                log.append(started(i)).unwrap();
            }
        }
        let log = Arc::new(EventLog::open(dir.path(), 100).unwrap());
        assert_eq!(log.append(started(3)).unwrap().cursor, 4);
        let got = drain(log.subscribe(2, false, false)).await;
        assert_eq!(cursors(&got), vec![3, 4]);
        assert_eq!(got.last(), Some(&Delivery::CaughtUp { latest: 4 }));
    }

    #[tokio::test]
    async fn bounded_oldest_dropped_and_laggard_told() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EventLog::open(dir.path(), 100).unwrap());
        for i in 0..250 {
            log.append(started(i)).unwrap();
        }
        assert_eq!(log.bounds(), (151, 250));
        let got = drain(log.subscribe(10, false, false)).await;
        assert_eq!(
            got[0],
            Delivery::Missed {
                after: 10,
                oldest_kept: 151
            }
        );
        assert_eq!(cursors(&got), (151..=250).collect::<Vec<_>>());
        // After compaction and reopen, the same view.
        drop(log);
        let lines = std::fs::read_to_string(dir.path().join("events.jsonl"))
            .unwrap()
            .lines()
            .count();
        assert!(lines < 200, "file is compacted: {lines} lines");
        let log = Arc::new(EventLog::open(dir.path(), 100).unwrap());
        assert_eq!(log.bounds(), (151, 250));
    }

    #[tokio::test]
    async fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = EventLog::open(dir.path(), 100).unwrap();
            log.append(started(0)).unwrap();
            log.append(started(1)).unwrap();
        }
        let path = dir.path().join("events.jsonl");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"cursor\":3,\"at\":\"20");
        std::fs::write(&path, text).unwrap();
        let log = EventLog::open(dir.path(), 100).unwrap();
        assert_eq!(log.bounds(), (1, 2));
        assert_eq!(log.append(started(2)).unwrap().cursor, 3);
        drop(log);
        let log = EventLog::open(dir.path(), 100).unwrap();
        assert_eq!(log.bounds(), (1, 3));
    }

    #[tokio::test]
    async fn follow_gets_backlog_then_live_without_gaps_or_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EventLog::open(dir.path(), 1000).unwrap());
        log.append(started(0)).unwrap();
        let mut rx = log.subscribe(0, true, false);
        let writer = {
            let log = log.clone();
            tokio::spawn(async move {
                for i in 1..500 {
                    log.append(started(i)).unwrap();
                    if i % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        let mut seen = Vec::new();
        while seen.len() < 500 {
            let d = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("events keep coming")
                .expect("stream open");
            if let Delivery::Event(e) = d {
                seen.push(e.cursor);
            }
        }
        writer.await.unwrap();
        assert_eq!(seen, (1..=500).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn live_only_skips_the_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EventLog::open(dir.path(), 100).unwrap());
        log.append(started(0)).unwrap();
        let mut rx = log.subscribe(0, false, true);
        assert_eq!(rx.recv().await, Some(Delivery::CaughtUp { latest: 1 }));
        log.append(started(1)).unwrap();
        match rx.recv().await {
            Some(Delivery::Event(e)) => assert_eq!(e.cursor, 2),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_cursor_beyond_the_log_is_told_and_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(EventLog::open(dir.path(), 100).unwrap());
        log.append(started(0)).unwrap();
        let got = drain(log.subscribe(99, false, false)).await;
        assert_eq!(
            got[0],
            Delivery::Missed {
                after: 99,
                oldest_kept: 1
            }
        );
        assert_eq!(cursors(&got), vec![1]);
    }

    #[test]
    fn unknown_kinds_from_a_newer_server_keep_their_summary() {
        let line = r#"{"cursor":7,"at":"2026-11-25T10:00:00Z","severity":"warning","summary":"pool tank degraded","kind":{"type":"pool_state_changed","pool":"tank"}}"#;
        let ev: Event = serde_json::from_str(line).unwrap();
        assert_eq!(ev.kind, EventKind::Other);
        assert_eq!(ev.summary, "pool tank degraded");
    }
}
