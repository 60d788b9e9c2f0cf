//! The audit log: every mutating action (and every pairing attempt), who did it, when and how it
//! ended, one JSON record a line in `STATE_DIR/audit.jsonl` (0600), each written and synced
//! before the call returns:
//!
//! ```json
//! {"at":"2026-03-01T12:00:00Z","who":"client MattBookPro","source":"192.0.2.7:50122","action":"restore","target":"MattBookPro","result":"ok"}
//! {"at":"2026-03-01T12:01:00Z","who":"client MattBookPro","action":"prune","target":"iMac","result":{"error":"client 'MattBookPro' is not paired for share 'iMac'"}}
//! ```
//!
//! Bounded like the event log: once the file has `2 × keep` lines it is rewritten (atomically)
//! with the newest `keep`. Appends and rewrites take `audit.lock`, so the CLI may append too.
//! Lines that cannot be read (a write cut short by a crash) are skipped.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::authz::{Action, Identity};
use super::store::{self, StoreError};

pub const AUDIT_FILE: &str = "audit.jsonl";
const LOCK_FILE: &str = "audit.lock";
/// The default number of records kept.
pub const DEFAULT_KEEP: usize = 10_000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at: Timestamp,
    /// [`Identity::who`]: `local`, `client NAME` or `unpaired`.
    pub who: String,
    /// The peer's address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// [`Action::name`].
    pub action: String,
    /// [`Action::target`]: the share or pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub result: Outcome,
}

impl Record {
    /// A record of `identity` doing `action`, ending with `result` (the error's one-line message).
    pub fn new(
        at: Timestamp,
        identity: &Identity,
        source: Option<std::net::SocketAddr>,
        action: &Action,
        result: Result<(), String>,
    ) -> Record {
        Record {
            at,
            who: identity.who(),
            source: source.map(|s| s.to_string()),
            action: action.name().to_string(),
            target: action.target().map(str::to_string),
            result: match result {
                Ok(()) => Outcome::Ok,
                Err(e) => Outcome::Error(e),
            },
        }
    }
}

/// One line for `backstopd audit`: time, who, action, target, result.
impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}  {}", self.at, self.who)?;
        if let Some(s) = &self.source {
            write!(f, " ({s})")?;
        }
        write!(f, "  {}", self.action)?;
        if let Some(t) = &self.target {
            write!(f, " {t}")?;
        }
        match &self.result {
            Outcome::Ok => write!(f, "  ok"),
            Outcome::Error(e) => write!(f, "  error: {e}"),
        }
    }
}

#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    lock_path: PathBuf,
    keep: usize,
    /// Lines in the file as this process last knew (others' appends aside).
    lines: Mutex<usize>,
}

impl AuditLog {
    /// Opens (or creates) `STATE_DIR/audit.jsonl`, keeping at least `keep` records.
    pub fn open(state_dir: &Path, keep: usize) -> Result<AuditLog, StoreError> {
        let log = AuditLog {
            path: state_dir.join(AUDIT_FILE),
            lock_path: state_dir.join(LOCK_FILE),
            keep: keep.max(1),
            lines: Mutex::new(0),
        };
        let _lock = store::lock(&log.lock_path)?;
        let lines = read_lines(&log.path)?.len();
        store::open_with_mode(
            &log.path,
            0o600,
            OpenOptions::new().create(true).append(true),
        )?;
        *log.lines.lock().expect("audit lock") = lines;
        if lines >= 2 * log.keep {
            log.compact(&mut log.lines.lock().expect("audit lock"))?;
        }
        Ok(log)
    }

    /// Appends a record, durably. Blocking (an fsync): from async code, call it in
    /// `spawn_blocking` or accept the short stall.
    pub fn append(&self, record: &Record) -> Result<(), StoreError> {
        let mut line = serde_json::to_string(record).expect("records serialize");
        line.push('\n');
        let mut lines = self.lines.lock().expect("audit lock");
        let _lock = store::lock(&self.lock_path)?;
        let io = store::io_err(&self.path);
        let mut f = store::open_with_mode(
            &self.path,
            0o600,
            OpenOptions::new().read(true).create(true).append(true),
        )?;
        // A line cut short by a crash is ended first, so it does not swallow this one.
        let len = f.metadata().map_err(&io)?.len();
        if len > 0 {
            let mut last = [0u8];
            f.seek(SeekFrom::Start(len - 1)).map_err(&io)?;
            f.read_exact(&mut last).map_err(&io)?;
            if last[0] != b'\n' {
                line.insert(0, '\n');
            }
        }
        f.write_all(line.as_bytes()).map_err(&io)?;
        f.sync_data().map_err(&io)?;
        *lines += 1;
        if *lines >= 2 * self.keep {
            self.compact(&mut lines)?;
        }
        Ok(())
    }

    /// Rewrites the file with its newest `keep` records (caller holds the lock).
    fn compact(&self, lines: &mut usize) -> Result<(), StoreError> {
        let all = read_lines(&self.path)?;
        let start = all.len().saturating_sub(self.keep);
        let mut text = String::new();
        for l in &all[start..] {
            text.push_str(l);
            text.push('\n');
        }
        store::write_atomic(&self.path, text.as_bytes(), 0o600)?;
        *lines = all.len() - start;
        Ok(())
    }

    /// The newest `limit` records, oldest first.
    pub fn read(&self, limit: usize) -> Result<Vec<Record>, StoreError> {
        read(self.path.parent().unwrap_or(Path::new(".")), limit)
    }
}

/// The newest `limit` records of `STATE_DIR/audit.jsonl`, oldest first (none when there is no
/// log yet); for `backstopd audit`, which needs no [`AuditLog`].
pub fn read(state_dir: &Path, limit: usize) -> Result<Vec<Record>, StoreError> {
    let path = state_dir.join(AUDIT_FILE);
    let lines = read_lines(&path)?;
    let mut out: Vec<Record> = lines
        .iter()
        .rev()
        .filter_map(|l| serde_json::from_str(l).ok())
        .take(limit)
        .collect();
    out.reverse();
    Ok(out)
}

/// The non-empty lines of a file (none when it does not exist).
fn read_lines(path: &Path) -> Result<Vec<String>, StoreError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(store::io_err(path)(e)),
    };
    let mut out = Vec::new();
    for line in BufReader::new(f).split(b'\n') {
        let line = line.map_err(store::io_err(path))?;
        if !line.is_empty() {
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn t(n: i64) -> Timestamp {
        "2026-03-01T12:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_secs(n)
    }

    fn rec(n: i64) -> Record {
        Record::new(
            t(n),
            &Identity::LocalAdmin,
            None,
            &Action::Snapshot {
                share: format!("s{n}"),
            },
            Ok(()),
        )
    }

    #[test]
    fn records_round_trip_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), 100).unwrap();
        assert_eq!(store::mode(&dir.path().join(AUDIT_FILE)).unwrap(), 0o600);
        assert!(log.read(10).unwrap().is_empty());
        let refused = Record::new(
            t(1),
            &Identity::Unpaired,
            Some("192.0.2.7:50122".parse().unwrap()),
            &Action::Prune {
                share: "iMac".into(),
            },
            Err("this client is not paired".into()),
        );
        log.append(&rec(0)).unwrap();
        log.append(&refused).unwrap();
        let got = log.read(10).unwrap();
        assert_eq!(got, vec![rec(0), refused.clone()]);
        assert_eq!(read(dir.path(), 1).unwrap(), vec![refused.clone()]);

        let text = std::fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["who"], "unpaired");
        assert_eq!(last["action"], "prune");
        assert_eq!(last["target"], "iMac");
        assert_eq!(last["source"], "192.0.2.7:50122");
        assert_eq!(last["result"]["error"], "this client is not paired");
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["result"], "ok");
        assert_eq!(
            refused.to_string(),
            "2026-03-01T12:00:01Z  unpaired (192.0.2.7:50122)  prune iMac  error: this client is not paired"
        );
    }

    #[test]
    fn bounded_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = AuditLog::open(dir.path(), 10).unwrap();
            for i in 0..35 {
                log.append(&rec(i)).unwrap();
            }
        }
        let lines = std::fs::read_to_string(dir.path().join(AUDIT_FILE))
            .unwrap()
            .lines()
            .count();
        assert!((10..20).contains(&lines), "{lines}");
        let log = AuditLog::open(dir.path(), 10).unwrap();
        let got = log.read(1000).unwrap();
        assert_eq!(got.last(), Some(&rec(34)));
        assert_eq!(got.len(), lines);
        log.append(&rec(35)).unwrap();
        assert_eq!(log.read(2).unwrap(), vec![rec(34), rec(35)]);
    }

    #[test]
    fn a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), 10).unwrap();
        log.append(&rec(0)).unwrap();
        let path = dir.path().join(AUDIT_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"at\":\"2026");
        std::fs::write(&path, text).unwrap();
        log.append(&rec(1)).unwrap();
        assert_eq!(log.read(10).unwrap(), vec![rec(0), rec(1)]);
    }
}
