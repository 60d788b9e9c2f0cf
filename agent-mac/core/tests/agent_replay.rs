//! The agent's shell over replayed sources: recorded logs and `tmutil` outputs in, the durable
//! queue, reports and notifications out. The server is an address nothing listens on, so every
//! snapshot request stays queued (the end-to-end tests with a real server are in tests/).
//!
//! No sleeps: each test waits for the reports it expects, with a timeout.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backstop_agent_core::agent::{self, AgentOptions, AgentReport, ConfirmedBy};
use backstop_agent_core::config::{AgentConfig, DestinationConfig};
use backstop_agent_core::detector::Outcome;
use backstop_agent_core::notify::RecordingNotifier;
use backstop_agent_core::queue::PendingSnapshot;
use backstop_agent_core::sources::{MacSources, ReplaySources, SourceError, TmutilRecording};
use tokio::sync::{mpsc, oneshot, watch};

/// Replayed sources that count the `tmutil status` calls.
struct Counting {
    inner: ReplaySources,
    polls: watch::Sender<usize>,
}

impl MacSources for Counting {
    fn log_lines(&mut self) -> mpsc::Receiver<String> {
        self.inner.log_lines()
    }
    fn has_tmutil(&self) -> bool {
        self.inner.has_tmutil()
    }
    async fn tmutil_status(&mut self) -> Result<Vec<u8>, SourceError> {
        self.polls.send_modify(|n| *n += 1);
        self.inner.tmutil_status().await
    }
    async fn tmutil_latestbackup(&mut self) -> Result<String, SourceError> {
        self.inner.tmutil_latestbackup().await
    }
    async fn tmutil_destinationinfo(&mut self) -> Result<Vec<u8>, SourceError> {
        self.inner.tmutil_destinationinfo().await
    }
}

const DEST: &str = "D46413A8-7046-460C-AF3D-01B7203D6ACB";
/// Nothing listens there: connections are refused at once.
const DOWN: &str = "127.0.0.1:1";

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

fn text(path: &str) -> String {
    std::fs::read_to_string(fixture(path)).unwrap()
}

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(fixture(path)).unwrap()
}

fn config(state: &Path, ids: &[&str]) -> AgentConfig {
    AgentConfig {
        state_dir: Some(state.to_path_buf()),
        show_notifications: true,
        notify: Default::default(),
        destinations: ids
            .iter()
            .map(|id| DestinationConfig {
                id: id.to_string(),
                name: None,
                server: DOWN.into(),
                share: "MattBookPro".into(),
            })
            .collect(),
    }
}

fn options() -> AgentOptions {
    AgentOptions {
        confirm_every: Duration::from_millis(20),
        poll_every: Duration::from_millis(50),
        retry_max: Duration::from_secs(1),
        tz: jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_hours(10).unwrap()),
        ..AgentOptions::default()
    }
}

/// A running agent: its reports, its notifier, and the way to stop it.
struct Running {
    reports: mpsc::UnboundedReceiver<AgentReport>,
    seen: Vec<AgentReport>,
    notifier: Arc<RecordingNotifier>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

fn start<S: MacSources + 'static>(sources: S, config: AgentConfig) -> Running {
    let (tx, reports) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let notifier = Arc::new(RecordingNotifier::new());
    let n = notifier.clone();
    let task = tokio::spawn(async move {
        agent::run(sources, config, n, options(), tx, async {
            let _ = stopped.await;
        })
        .await
        .expect("the agent starts");
    });
    Running {
        reports,
        seen: Vec::new(),
        notifier,
        stop: Some(stop),
        task,
    }
}

impl Running {
    /// Waits (at most 10 s) for a report that `want` accepts, or finds it among those already
    /// received; returns it.
    async fn until(&mut self, what: &str, want: impl Fn(&AgentReport) -> bool) -> AgentReport {
        if let Some(r) = self.seen.iter().find(|r| want(r)) {
            return r.clone();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::time::timeout_at(deadline, self.reports.recv()).await {
                Ok(Some(r)) => {
                    self.seen.push(r.clone());
                    if want(&r) {
                        return r;
                    }
                }
                Ok(None) => panic!("the agent stopped before {what}: {:#?}", self.seen),
                Err(_) => panic!("no {what} within 10 s: {:#?}", self.seen),
            }
        }
    }

    /// Stops the agent; returns every report.
    async fn stop(mut self) -> Vec<AgentReport> {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
        while let Some(r) = self.reports.recv().await {
            self.seen.push(r);
        }
        assert_eq!(self.seen.last(), Some(&AgentReport::Stopped));
        self.seen
    }
}

fn queued(state: &Path, dest: &str) -> Vec<PendingSnapshot> {
    let path = agent::queue_dir(state, dest).join("snapshot-queue.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ended(reports: &[AgentReport]) -> Vec<(Outcome, Option<String>, ConfirmedBy)> {
    reports
        .iter()
        .filter_map(|r| match r {
            AgentReport::Ended {
                outcome,
                confirmed_by,
                ..
            } => Some((outcome.outcome, outcome.backup.clone(), *confirmed_by)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_replayed_log_is_trusted_and_each_backup_is_queued_once() {
    let state = tempfile::tempdir().unwrap();
    let sources = ReplaySources::new(
        &text("unified-log/synthetic-monterey-two-backups.ndjson"),
        None,
    );
    let mut agent = start(sources, config(state.path(), &[DEST]));
    agent
        .until("the replay's end", |r| {
            matches!(r, AgentReport::LogEnded { .. })
        })
        .await;
    agent
        .until("a retry of the queue", |r| {
            matches!(r, AgentReport::Retrying { queued: 2, .. })
        })
        .await;
    let reports = agent.stop().await;
    assert_eq!(
        ended(&reports),
        [
            (
                Outcome::Completed,
                Some("2022-05-21-192820".into()),
                ConfirmedBy::Log
            ),
            (
                Outcome::Completed,
                Some("2022-05-21-202409".into()),
                ConfirmedBy::Log
            ),
        ]
    );
    let q = queued(state.path(), DEST);
    let ids: Vec<&str> = q.iter().map(|p| p.backup_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            format!("{DEST}/2022-05-21-192820"),
            format!("{DEST}/2022-05-21-202409")
        ]
    );
    assert!(q[0].attempts >= 1, "{q:?}");
    assert!(
        q[0].last_error
            .as_deref()
            .unwrap()
            .contains("connection refused"),
        "{q:?}"
    );
    assert_eq!(q[0].share, "MattBookPro");
    // The event stream was tried too, and said it is down.
    assert!(
        reports
            .iter()
            .any(|r| matches!(r, AgentReport::Disconnected { server, .. } if server == DOWN)),
        "{reports:#?}"
    );
}

#[tokio::test]
async fn a_success_is_confirmed_when_tmutil_is_idle_and_latestbackup_moved_on() {
    let state = tempfile::tempdir().unwrap();
    let tmutil = TmutilRecording::new(
        vec![
            bytes("plist/tmutil-status-copying.plist"),
            bytes("plist/tmutil-status-idle.plist"),
        ],
        vec![
            Ok("/Volumes/.timemachine/vault/MattBookPro/2026-06-13-101010.backup\n".into()),
            Ok("/Volumes/.timemachine/vault/MattBookPro/2026-06-14-145122.backup\n".into()),
        ],
        Some(bytes("plist/tmutil-destinationinfo-network.plist")),
    );
    let sources = ReplaySources::new(&text("unified-log/tahoe-smb-success.ndjson"), Some(tmutil));
    let mut agent = start(sources, config(state.path(), &[DEST]));
    agent
        .until("the success, waiting", |r| {
            matches!(r, AgentReport::Awaiting { .. })
        })
        .await;
    agent
        .until("the confirmed success", |r| {
            matches!(r, AgentReport::Ended { .. })
        })
        .await;
    agent
        .until("the request queued", |r| {
            matches!(r, AgentReport::Queued { .. })
        })
        .await;
    let reports = agent.stop().await;
    assert_eq!(
        ended(&reports),
        [(
            Outcome::Completed,
            Some("2026-06-14-145122".into()),
            ConfirmedBy::Tmutil
        )]
    );
    let q = queued(state.path(), DEST);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].backup_id, format!("{DEST}/2026-06-14-145122"));
    // The latest backup is remembered for the next run.
    let st = agent::AgentState::load(state.path());
    assert_eq!(st.latest_backup.as_deref(), Some("2026-06-14-145122"));
}

#[tokio::test]
async fn without_full_disk_access_a_success_waits_for_the_server() {
    let state = tempfile::tempdir().unwrap();
    let tmutil = TmutilRecording::new(
        vec![bytes("plist/tmutil-status-idle.plist")],
        vec![Err(
            "tmutil: latestbackup requires Full Disk Access privileges.\n".into(),
        )],
        None,
    );
    let (polls, mut polled) = watch::channel(0);
    let sources = Counting {
        inner: ReplaySources::new(&text("unified-log/tahoe-smb-success.ndjson"), Some(tmutil)),
        polls,
    };
    let mut agent = start(sources, config(state.path(), &[DEST]));
    agent
        .until("the success, waiting", |r| {
            matches!(r, AgentReport::Awaiting { .. })
        })
        .await;
    let warning = agent
        .until(
            "the latestbackup warning",
            |r| matches!(r, AgentReport::Warning { message } if message.contains("latestbackup")),
        )
        .await;
    let AgentReport::Warning { message } = warning else {
        unreachable!()
    };
    assert!(message.contains("Full Disk Access"), "{message}");
    // Five more polls, and still nothing ended: only the server can confirm it now.
    let after = *polled.borrow();
    tokio::time::timeout(
        Duration::from_secs(10),
        polled.wait_for(|n| *n >= after + 5),
    )
    .await
    .expect("five more tmutil polls within 10 s")
    .unwrap();
    let reports = agent.stop().await;
    assert_eq!(ended(&reports), []);
    assert!(
        !agent::queue_dir(state.path(), DEST)
            .join("snapshot-queue.json")
            .exists()
    );
    // Said once, not at every poll.
    let warnings = reports
        .iter()
        .filter(
            |r| matches!(r, AgentReport::Warning { message } if message.contains("latestbackup")),
        )
        .count();
    assert_eq!(warnings, 1, "{reports:#?}");
}

#[tokio::test]
async fn the_slow_poll_finds_a_backup_that_left_no_log_line() {
    let state = tempfile::tempdir().unwrap();
    let tmutil = TmutilRecording::new(
        vec![bytes("plist/tmutil-status-idle.plist")],
        vec![
            Ok("/Volumes/TM/2026-06-13-101010.backup\n".into()),
            Ok("/Volumes/TM/2026-06-13-101010.backup\n".into()),
            Ok("/Volumes/TM/2026-06-14-145122.backup\n".into()),
        ],
        None,
    );
    // The log has only its banner.
    let sources = ReplaySources::new(
        "Filtering the log data using \"subsystem == \\\"com.apple.TimeMachine\\\"\"\n",
        Some(tmutil),
    );
    let mut agent = start(sources, config(state.path(), &[DEST]));
    agent
        .until("the found backup", |r| {
            matches!(r, AgentReport::Ended { .. })
        })
        .await;
    agent
        .until("the request queued", |r| {
            matches!(r, AgentReport::Queued { .. })
        })
        .await;
    let reports = agent.stop().await;
    assert_eq!(
        ended(&reports),
        [(
            Outcome::Completed,
            Some("2026-06-14-145122".into()),
            ConfirmedBy::TmutilPoll
        )]
    );
    let q = queued(state.path(), DEST);
    assert_eq!(q.len(), 1);
    // Its time is the stamp read in the Mac's zone (UTC+10 here).
    assert_eq!(q[0].backup_time, "2026-06-14T04:51:22Z".parse().unwrap());
}

#[tokio::test]
async fn with_several_destinations_the_last_one_gets_the_backup() {
    let state = tempfile::tempdir().unwrap();
    let tmutil = TmutilRecording::new(
        vec![bytes("plist/tmutil-status-idle.plist")],
        vec![Ok("/Volumes/TM/2026-06-14-145122.backup\n".into())],
        Some(bytes("plist/tmutil-destinationinfo-network.plist")),
    );
    let sources = ReplaySources::new(&text("unified-log/tahoe-smb-success.ndjson"), Some(tmutil));
    let mut agent = start(sources, config(state.path(), &["0-OTHER", DEST]));
    let r = agent
        .until("the queued request", |r| {
            matches!(r, AgentReport::Queued { .. })
        })
        .await;
    let AgentReport::Queued { backup_id, .. } = r else {
        unreachable!()
    };
    assert_eq!(backup_id, format!("{DEST}/2026-06-14-145122"));
    agent.stop().await;
    assert_eq!(queued(state.path(), DEST).len(), 1);
    assert!(
        !agent::queue_dir(state.path(), "0-OTHER")
            .join("snapshot-queue.json")
            .exists()
    );
}

#[tokio::test]
async fn a_failure_the_server_cannot_hear_is_notified_here_in_plain_words() {
    let state = tempfile::tempdir().unwrap();
    let sources = ReplaySources::new(&text("unified-log/tahoe-smb-failed-network.ndjson"), None);
    let mut agent = start(sources, config(state.path(), &[DEST]));
    agent
        .until("the notification", |r| {
            matches!(r, AgentReport::Notified { .. })
        })
        .await;
    let notifier = agent.notifier.clone();
    let reports = agent.stop().await;
    assert_eq!(
        ended(&reports),
        [(Outcome::Failed, None, ConfirmedBy::NotNeeded)]
    );
    assert!(
        reports.iter().any(
            |r| matches!(r, AgentReport::Warning { message } if message.starts_with("cannot report the failed backup to 127.0.0.1:1"))
        ),
        "{reports:#?}"
    );
    let shown = notifier.shown();
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0].title, "Time Machine backup failed");
    assert_eq!(
        shown[0].body,
        "MattBookPro's Time Machine backup did not finish: the network connection to the backup server was lost."
    );
    // Nothing to snapshot.
    assert!(
        !agent::queue_dir(state.path(), DEST)
            .join("snapshot-queue.json")
            .exists()
    );
}

#[tokio::test]
async fn the_json_reports_have_a_stable_shape() {
    let outcome: backstop_agent_core::detector::BackupOutcome = serde_json::from_str(
        r#"{"outcome":"completed","backup":"2026-06-14-145122","code":null,"reason":null,"at":"2026-06-14T04:51:22.894Z","confirmed":true}"#,
    )
    .unwrap();
    let r = AgentReport::Ended {
        destination: Some(DEST.into()),
        outcome,
        confirmed_by: ConfirmedBy::Tmutil,
    };
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        format!(
            r#"{{"report":"ended","destination":"{DEST}","outcome":{{"outcome":"completed","backup":"2026-06-14-145122","code":null,"reason":null,"at":"2026-06-14T04:51:22.894Z","confirmed":true}},"confirmed_by":"tmutil"}}"#
        )
    );
    assert_eq!(
        serde_json::to_string(&AgentReport::Stopped).unwrap(),
        r#"{"report":"stopped"}"#
    );
}
