//! The recovery journal: per share, the plan being carried out and the state of each step,
//! written (atomically, fsync'd) before a step starts and after it ends; and the record of what
//! the last restore or undo kept aside. Lives in `<state_dir>/recovery/`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::{Kept, RecoveryPlan};
use super::resume::StepState;

/// Test-only hook: `BACKSTOP_TEST_CRASH_AT=<step index>:<started|done>` aborts the daemon right
/// after the journal records that state, to prove a restart finishes or reverses the plan.
pub const CRASH_ENV: &str = "BACKSTOP_TEST_CRASH_AT";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub plan: RecoveryPlan,
    pub states: Vec<StepState>,
    /// RFC 3339.
    pub started_at: String,
}

#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    crash_at: Option<(usize, StepState)>,
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn remove_durably(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn parse_crash(v: &str) -> Option<(usize, StepState)> {
    let (i, s) = v.split_once(':')?;
    let state = match s {
        "started" => StepState::Started,
        "done" => StepState::Done,
        _ => return None,
    };
    Some((i.parse().ok()?, state))
}

impl Journal {
    pub fn open(state_dir: &Path) -> std::io::Result<Journal> {
        let dir = state_dir.join("recovery");
        std::fs::create_dir_all(&dir)?;
        let crash_at = std::env::var(CRASH_ENV).ok().and_then(|v| parse_crash(&v));
        Ok(Journal { dir, crash_at })
    }

    fn entry_path(&self, share: &str) -> PathBuf {
        self.dir.join(format!("{share}.journal.json"))
    }

    fn kept_path(&self, share: &str) -> PathBuf {
        self.dir.join(format!("{share}.kept.json"))
    }

    /// The unfinished plan of a share, if any.
    pub fn entry(&self, share: &str) -> anyhow::Result<Option<Entry>> {
        read_json(&self.entry_path(share))
    }

    /// Every share with an unfinished plan.
    pub fn unfinished(&self) -> anyhow::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let path = e?.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".journal.json"))
                && let Some(entry) = read_json::<Entry>(&path)?
            {
                out.push(entry);
            }
        }
        Ok(out)
    }

    pub fn begin(&self, entry: &Entry) -> std::io::Result<()> {
        write_atomically(
            &self.entry_path(&entry.plan.share),
            &serde_json::to_vec_pretty(entry).expect("entry serializes"),
        )
    }

    /// Records a step's new state; aborts the process here when the test hook asks for it.
    pub fn record(&self, entry: &mut Entry, step: usize, state: StepState) -> std::io::Result<()> {
        entry.states[step] = state;
        self.begin(entry)?;
        if self.crash_at == Some((step, state)) {
            eprintln!("{CRASH_ENV}: aborting after step {step} {state:?} as asked");
            std::process::abort();
        }
        Ok(())
    }

    /// Ends a plan: the kept record first, then the journal entry goes.
    pub fn finish(&self, share: &str, kept: Option<&Kept>) -> std::io::Result<()> {
        match kept {
            Some(k) => write_atomically(
                &self.kept_path(share),
                &serde_json::to_vec_pretty(k).expect("kept serializes"),
            )?,
            None => remove_durably(&self.kept_path(share))?,
        }
        remove_durably(&self.entry_path(share))
    }

    /// Drops a journal entry without touching the kept record (a reversed plan).
    pub fn abandon(&self, share: &str) -> std::io::Result<()> {
        remove_durably(&self.entry_path(share))
    }

    pub fn kept(&self, share: &str) -> anyhow::Result<Option<Kept>> {
        read_json(&self.kept_path(share))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{} is damaged ({e}); move it away to let backstopd start",
                path.display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crash_hook_is_parsed_strictly() {
        assert_eq!(parse_crash("3:started"), Some((3, StepState::Started)));
        assert_eq!(parse_crash("0:done"), Some((0, StepState::Done)));
        assert_eq!(parse_crash("x:done"), None);
        assert_eq!(parse_crash("3:pending"), None);
        assert_eq!(parse_crash("3"), None);
    }
}
