//! The one place that executes zfs/zpool argv: no shell, a timeout, stderr in the error, and
//! retries with backoff when zfs says "dataset is busy".

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::Argv;

/// What a finished command printed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot run `{argv}`: {source}")]
    Spawn {
        argv: Argv,
        #[source]
        source: std::io::Error,
    },
    #[error("`{argv}` did not finish within {}s", timeout.as_secs())]
    Timeout { argv: Argv, timeout: Duration },
    #[error("`{argv}` failed ({status}): {}", stderr.trim())]
    Failed {
        argv: Argv,
        status: String,
        /// Exit code, when the process exited (rather than being killed by a signal).
        code: Option<i32>,
        stderr: String,
    },
}

/// What a failed zfs command means, read from its stderr (the wording is the same on illumos,
/// OpenZFS and zfs-fuse for these).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    AlreadyExists,
    DoesNotExist,
    Busy,
    /// Exit code 2: the zfs does not understand the flags (usage error).
    Usage,
    Other,
}

impl RunError {
    pub fn kind(&self) -> FailureKind {
        match self {
            RunError::Failed { stderr, code, .. } => classify(stderr, *code),
            _ => FailureKind::Other,
        }
    }

    pub fn stderr(&self) -> &str {
        match self {
            RunError::Failed { stderr, .. } => stderr.trim(),
            _ => "",
        }
    }
}

/// Classifies a failed command by its stderr and exit code.
pub fn classify(stderr: &str, code: Option<i32>) -> FailureKind {
    if stderr.contains("already exists") {
        FailureKind::AlreadyExists
    } else if stderr.contains("does not exist") {
        FailureKind::DoesNotExist
    } else if stderr.contains("dataset is busy") || stderr.contains("pool or dataset is busy") {
        FailureKind::Busy
    } else if code == Some(2) {
        FailureKind::Usage
    } else {
        FailureKind::Other
    }
}

pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<Output, RunError>> + Send + 'a>>;

/// Executes argv. The daemon uses [`ProcessRunner`]; tests may substitute their own.
pub trait Runner: Send + Sync {
    fn run<'a>(&'a self, argv: &'a Argv) -> RunFuture<'a>;
}

/// Runs real processes.
#[derive(Clone, Debug)]
pub struct ProcessRunner {
    pub timeout: Duration,
    /// Attempts for a command that fails with "dataset is busy" (1 = no retry).
    pub busy_attempts: u32,
    pub busy_backoff: Duration,
}

impl Default for ProcessRunner {
    fn default() -> Self {
        ProcessRunner {
            timeout: Duration::from_secs(120),
            busy_attempts: 6,
            busy_backoff: Duration::from_millis(100),
        }
    }
}

impl ProcessRunner {
    async fn run_once(&self, argv: &Argv) -> Result<Output, RunError> {
        let args = argv.as_slice();
        let mut cmd = tokio::process::Command::new(&args[0]);
        cmd.args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|source| RunError::Spawn {
            argv: argv.clone(),
            source,
        })?;
        let out = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(r) => r.map_err(|source| RunError::Spawn {
                argv: argv.clone(),
                source,
            })?,
            Err(_) => {
                return Err(RunError::Timeout {
                    argv: argv.clone(),
                    timeout: self.timeout,
                });
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            Ok(Output { stdout, stderr })
        } else {
            Err(RunError::Failed {
                argv: argv.clone(),
                status: out.status.to_string(),
                code: out.status.code(),
                stderr,
            })
        }
    }
}

impl Runner for ProcessRunner {
    fn run<'a>(&'a self, argv: &'a Argv) -> RunFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            let mut backoff = self.busy_backoff;
            let mut attempt = 1;
            loop {
                let result = self.run_once(argv).await;
                match &result {
                    Err(e) if e.kind() == FailureKind::Busy && attempt < self.busy_attempts => {
                        tracing::warn!(%argv, attempt, "dataset is busy; retrying in {backoff:?}");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        attempt += 1;
                    }
                    _ => {
                        tracing::debug!(%argv, ok = result.is_ok(), elapsed = ?started.elapsed(), "ran");
                        return result;
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_known_failures() {
        assert_eq!(
            classify(
                "cannot create snapshot 'a/b@c': dataset already exists\n",
                Some(1)
            ),
            FailureKind::AlreadyExists
        );
        assert_eq!(
            classify("cannot open 'a/nope': dataset does not exist\n", Some(1)),
            FailureKind::DoesNotExist
        );
        assert_eq!(
            classify("cannot rename 'a/b': dataset is busy\n", Some(1)),
            FailureKind::Busy
        );
        assert_eq!(
            classify("invalid option 'p'\nusage:\n", Some(2)),
            FailureKind::Usage
        );
        assert_eq!(classify("permission denied", Some(1)), FailureKind::Other);
    }

    fn sh(script: &str) -> Argv {
        Argv::new(&["sh".to_string(), "-c".to_string(), script.to_string()])
    }

    #[tokio::test]
    async fn puts_stderr_and_status_into_the_error() {
        let err = ProcessRunner::default()
            .run(&sh(
                "echo 'cannot open x: dataset does not exist' >&2; exit 1",
            ))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), FailureKind::DoesNotExist);
        assert!(err.to_string().contains("dataset does not exist"), "{err}");
    }

    #[tokio::test]
    async fn times_out_and_kills() {
        let runner = ProcessRunner {
            timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let err = runner.run(&sh("sleep 30")).await.unwrap_err();
        assert!(matches!(err, RunError::Timeout { .. }), "{err}");
    }

    #[tokio::test]
    async fn retries_busy_until_it_clears() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("count");
        // Busy twice, then succeeds.
        let script = format!(
            "n=$(cat {m} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {m}; \
             if [ $n -lt 3 ]; then echo 'cannot rename: dataset is busy' >&2; exit 1; fi; echo ok",
            m = marker.display()
        );
        let runner = ProcessRunner {
            busy_backoff: Duration::from_millis(1),
            ..Default::default()
        };
        let out = runner.run(&sh(&script)).await.unwrap();
        assert_eq!(out.stdout.trim(), "ok");
        assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "3");
    }

    #[tokio::test]
    async fn gives_up_on_busy_after_the_last_attempt() {
        let runner = ProcessRunner {
            busy_attempts: 2,
            busy_backoff: Duration::from_millis(1),
            ..Default::default()
        };
        let err = runner
            .run(&sh("echo 'dataset is busy' >&2; exit 1"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), FailureKind::Busy);
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() {
        let argv = Argv::new(&["/nonexistent/zfs".to_string()]);
        let err = ProcessRunner::default().run(&argv).await.unwrap_err();
        assert!(matches!(err, RunError::Spawn { .. }));
        assert!(err.to_string().contains("/nonexistent/zfs"));
    }
}
