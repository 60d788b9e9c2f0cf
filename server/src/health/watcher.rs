//! The pool watcher: reads `zpool status` every `poll_seconds`, announces what changed (once:
//! what was reported is remembered in the state dir across restarts), and starts a scrub when
//! one is due. `backstop health` and `backstop scrub` go through it too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::Mutex;

use super::monitor::{self, HealthChange, Reported};
use super::status::{self, PoolStatus};
use crate::config::ScrubConfig;
use crate::events::{EventKind, EventLog, EventLogError, NewEvent, Severity};
use crate::zfs::{RunError, Runner, ZfsCommands};

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("pool '{pool}' is not watched by this server (watched: {watched})")]
    UnknownPool { pool: String, watched: String },
    #[error("zpool failed: {0}")]
    Zpool(#[from] RunError),
    #[error("cannot read zpool status: {0}")]
    Parse(#[from] status::StatusParseError),
    #[error(transparent)]
    Events(#[from] EventLogError),
}

/// A pool's health as shown to people.
#[derive(Clone, Debug)]
pub struct PoolReport {
    pub status: PoolStatus,
    pub severity: Severity,
    pub verdict: String,
    pub next_scrub: Option<Timestamp>,
    pub repaired: u64,
}

pub struct Watcher {
    runner: Arc<dyn Runner>,
    cmds: ZfsCommands,
    parsable: bool,
    pools: Vec<String>,
    config: ScrubConfig,
    events: Arc<EventLog>,
    tz: TimeZone,
    memory_file: PathBuf,
    memory: Mutex<Reported>,
}

impl Watcher {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        runner: Arc<dyn Runner>,
        cmds: ZfsCommands,
        parsable: bool,
        pools: Vec<String>,
        config: ScrubConfig,
        events: Arc<EventLog>,
        tz: TimeZone,
        state_dir: &std::path::Path,
    ) -> Watcher {
        let memory_file = state_dir.join("health.json");
        let memory = match std::fs::read_to_string(&memory_file) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(
                    "{}: unreadable, starting afresh: {e}",
                    memory_file.display()
                );
                Reported::default()
            }),
            Err(_) => Reported::default(),
        };
        Watcher {
            runner,
            cmds,
            parsable,
            pools,
            config,
            events,
            tz,
            memory_file,
            memory: Mutex::new(memory),
        }
    }

    pub fn pools(&self) -> &[String] {
        &self.pools
    }

    async fn read(&self) -> Result<Vec<PoolStatus>, HealthError> {
        if self.pools.is_empty() {
            return Ok(Vec::new());
        }
        let out = self
            .runner
            .run(&self.cmds.pool_status(&self.pools, self.parsable))
            .await?;
        Ok(status::parse(&out.stdout)?)
    }

    fn save(&self, memory: &Reported) {
        let tmp = self.memory_file.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(memory).expect("memory serializes");
        let result =
            std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.memory_file));
        if let Err(e) = result {
            tracing::warn!("cannot save {}: {e}", self.memory_file.display());
        }
    }

    fn announce(&self, c: &HealthChange) -> Result<(), EventLogError> {
        self.events
            .append(NewEvent {
                severity: c.severity,
                share: None,
                summary: c.summary.clone(),
                kind: EventKind::PoolHealthChanged {
                    pool: c.pool.clone(),
                    device: c.device.clone(),
                    change: c.kind.as_str().to_string(),
                    state: c.state.clone(),
                    read: c.read,
                    write: c.write,
                    cksum: c.cksum,
                    repaired: c.repaired,
                },
            })
            .map(|_| ())
    }

    /// Reads the pools, announces what changed, and (with `may_scrub`) starts due scrubs.
    pub async fn poll(&self, may_scrub: bool) -> Result<Vec<HealthChange>, HealthError> {
        let now_status = self.read().await?;
        let changes = {
            let mut memory = self.memory.lock().await;
            let (changes, next) = monitor::diff(&memory, &now_status);
            for c in &changes {
                self.announce(c)?;
            }
            if next != *memory {
                self.save(&next);
                *memory = next;
            }
            changes
        };
        if may_scrub {
            let now = Timestamp::now();
            for pool in &now_status {
                if monitor::scrub_due(pool, now, self.config.interval_days, &self.tz) {
                    tracing::info!(pool = %pool.name, "starting the scheduled scrub");
                    if let Err(e) = self.runner.run(&self.cmds.scrub(&pool.name, false)).await {
                        tracing::warn!(pool = %pool.name, "cannot start the scheduled scrub: {e}");
                    }
                }
            }
        }
        Ok(changes)
    }

    /// Polls forever: the first read sets the baseline (no scrub right at start-up), then every
    /// `poll_seconds`.
    pub async fn run(self: Arc<Self>) {
        let every = Duration::from_secs(self.config.poll_seconds);
        let mut first = true;
        loop {
            if let Err(e) = self.poll(!first).await {
                tracing::warn!("pool health poll failed: {e}");
            }
            first = false;
            tokio::time::sleep(every).await;
        }
    }

    /// The current health of every watched pool.
    pub async fn report(&self) -> Result<Vec<PoolReport>, HealthError> {
        let now = Timestamp::now();
        Ok(self
            .read()
            .await?
            .into_iter()
            .map(|status| {
                let (severity, verdict) = monitor::verdict(&status, now, &self.tz);
                PoolReport {
                    next_scrub: monitor::next_scrub(
                        &status,
                        now,
                        self.config.interval_days,
                        &self.tz,
                    ),
                    repaired: monitor::repaired_bytes(&status),
                    severity,
                    verdict,
                    status,
                }
            })
            .collect())
    }

    /// Starts (or stops) a scrub now, then reads the pool so the change is announced at once.
    pub async fn scrub(&self, pool: &str, stop: bool) -> Result<String, HealthError> {
        if !self.pools.iter().any(|p| p == pool) {
            return Err(HealthError::UnknownPool {
                pool: pool.escape_debug().to_string(),
                watched: if self.pools.is_empty() {
                    "none".into()
                } else {
                    self.pools.join(", ")
                },
            });
        }
        self.runner.run(&self.cmds.scrub(pool, stop)).await?;
        self.poll(false).await?;
        Ok(if stop {
            format!("scrub of {pool} stopped")
        } else {
            format!("scrub of {pool} started; `backstop events --follow` tells when it finishes")
        })
    }
}
