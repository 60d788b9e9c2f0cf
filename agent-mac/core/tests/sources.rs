//! The sources: the real-command implementation, run here with stand-in programs (a shell for
//! `log stream`, scripts for `tmutil`), and the recordings read from a directory.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backstop_agent_core::detector::{parse_destinations, parse_status};
use backstop_agent_core::sources::{
    MacSources, ReplaySources, SourceError, SystemSources, TmutilRecording,
};

const WAIT: Duration = Duration::from_secs(10);

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// An executable script in `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

async fn next_line(rx: &mut tokio::sync::mpsc::Receiver<String>) -> String {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a line within 10 s")
        .expect("the stream goes on")
}

#[tokio::test]
async fn the_log_stream_is_restarted_when_it_exits() {
    let mut sources = SystemSources::new()
        .with_log_argv(
            ["sh", "-c", "printf 'banner\\n{\"a\":1}\\r\\n'"]
                .map(String::from)
                .to_vec(),
        )
        .with_restart_base(Duration::from_millis(10));
    let mut rx = sources.log_lines();
    // Two runs of the stand-in, lines without their line ends.
    for _ in 0..2 {
        assert_eq!(next_line(&mut rx).await, "banner");
        assert_eq!(next_line(&mut rx).await, "{\"a\":1}");
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn dropping_the_sources_stops_the_log_stream() {
    let mut sources = SystemSources::new().with_log_argv(
        ["sh", "-c", "echo $$; exec sleep 1000"]
            .map(String::from)
            .to_vec(),
    );
    let mut rx = sources.log_lines();
    let pid = next_line(&mut rx).await;
    let stat = format!("/proc/{pid}/stat");
    assert!(Path::new(&stat).exists());
    drop(sources);
    // Gone, or a zombie waiting to be reaped.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let state = std::fs::read_to_string(&stat)
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim().to_string()));
        if state.as_deref().is_none_or(|s| s.starts_with('Z')) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log stream {pid} still runs: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The channel ends with it.
    assert_eq!(tokio::time::timeout(WAIT, rx.recv()).await.unwrap(), None);
}

#[tokio::test]
async fn tmutil_outputs_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let idle = fixture("plist/tmutil-status-idle.plist");
    let tmutil = script(
        dir.path(),
        "tmutil",
        &format!(
            r#"case "$1" in
  status) [ "$2" = "-X" ] && cat '{}' ;;
  destinationinfo) [ "$2" = "-X" ] && cat '{}' ;;
  latestbackup) echo "tmutil: latestbackup requires Full Disk Access privileges." >&2
                echo "To allow this operation, select Full Disk Access" >&2; exit 1 ;;
esac"#,
            idle.display(),
            fixture("plist/tmutil-destinationinfo-network.plist").display()
        ),
    );
    let mut sources = SystemSources::new().with_tmutil(tmutil);
    assert!(sources.has_tmutil());
    let status = parse_status(sources.tmutil_status().await.unwrap()).unwrap();
    assert!(!status.running);
    let destinations = parse_destinations(sources.tmutil_destinationinfo().await.unwrap()).unwrap();
    assert_eq!(destinations[0].id, "D46413A8-7046-460C-AF3D-01B7203D6ACB");
    let err = sources.tmutil_latestbackup().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "`tmutil latestbackup` failed (exit status: 1): tmutil: latestbackup requires Full Disk Access privileges. To allow this operation, select Full Disk Access"
    );

    // Not macOS: no tmutil at all.
    let mut missing = SystemSources::new().with_tmutil(dir.path().join("no-such-tmutil"));
    let err = missing.tmutil_status().await.unwrap_err();
    assert!(
        matches!(&err, SourceError::Unavailable { what, .. } if what == "tmutil status -X"),
        "{err}"
    );

    // A hung tmutil is killed.
    let mut hung = SystemSources::new()
        .with_tmutil(script(dir.path(), "hung", "exec sleep 1000"))
        .with_command_timeout(Duration::from_millis(100));
    assert_eq!(
        hung.tmutil_status().await.unwrap_err(),
        SourceError::TimedOut {
            command: "tmutil status -X".into(),
            seconds: 0
        }
    );
}

#[tokio::test]
async fn recordings_from_a_directory_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(
        fixture("plist/tmutil-status-copying.plist"),
        d.join("status-1.plist"),
    )
    .unwrap();
    std::fs::copy(
        fixture("plist/tmutil-status-idle.plist"),
        d.join("status-2.plist"),
    )
    .unwrap();
    std::fs::write(d.join("latestbackup-1.err"), "no access\n").unwrap();
    std::fs::write(
        d.join("latestbackup-2.txt"),
        "/V/2026-06-14-145122.backup\n",
    )
    .unwrap();
    std::fs::write(d.join("README.md"), "ignored").unwrap();
    let rec = TmutilRecording::from_dir(d).unwrap();
    let mut sources = ReplaySources::new("banner\n{}\n", Some(rec));
    assert!(sources.has_tmutil());
    let running = |b: Vec<u8>| parse_status(b).unwrap().running;
    assert!(running(sources.tmutil_status().await.unwrap()));
    assert!(!running(sources.tmutil_status().await.unwrap()));
    assert!(!running(sources.tmutil_status().await.unwrap()));
    assert!(sources.tmutil_latestbackup().await.is_err());
    assert_eq!(
        sources.tmutil_latestbackup().await.unwrap(),
        "/V/2026-06-14-145122.backup\n"
    );
    assert!(matches!(
        sources.tmutil_destinationinfo().await,
        Err(SourceError::Unavailable { .. })
    ));
    // The log's lines, then the end.
    let mut rx = sources.log_lines();
    assert_eq!(rx.recv().await.as_deref(), Some("banner"));
    assert_eq!(rx.recv().await.as_deref(), Some("{}"));
    assert_eq!(rx.recv().await, None);

    // An empty directory is refused, saying what it should hold.
    let empty = tempfile::tempdir().unwrap();
    let err = TmutilRecording::from_dir(empty.path()).unwrap_err();
    assert!(err.to_string().contains("status-*.plist"), "{err}");
    // A replay without tmutil has none.
    assert!(!ReplaySources::new("", None).has_tmutil());
}
