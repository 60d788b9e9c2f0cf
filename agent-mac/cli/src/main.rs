//! `backstop`: the command line of Backstop. Translates arguments into calls of the agent core
//! and results into text or JSON; exit 0 on success, 1 when the operation failed, 2 on a usage
//! error (including a name or time the server refused as invalid).

use std::io::Write;
use std::process::ExitCode;

mod agent_cmd;
mod pair_cmd;
mod restore_cmd;

use backstop_agent_core::client::{default_server, pb_time};
use backstop_agent_core::view::{
    self, AdoptJson, CreatedJson, EventJson, EventsJson, HealthJson, ListJson, MissedJson,
    PruneJson, ServerInfoJson, ShareJson, SharesJson, SnapshotJson,
};
use backstop_agent_core::{Client, ClientError};
use backstop_proto::v1 as pb;
use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use jiff::tz::TimeZone;

#[derive(Parser)]
#[command(
    name = "backstop",
    version,
    about = "ZFS snapshots and recovery for Time Machine backups",
    after_help = "Exit status: 0 success, 1 the operation failed, 2 usage error.\n\
                  JSON shapes of --json: docs/cli-json.md."
)]
struct Cli {
    /// backstopd's address (HOST:PORT or http://HOST:PORT).
    #[arg(long, global = true, env = "BACKSTOP_SERVER", default_value_t = default_server())]
    server: String,
    /// Print JSON instead of tables (one document; one object a line for `events --follow`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum OriginArg {
    Manual,
    Backup,
}

#[derive(Subcommand)]
enum Command {
    /// List the shares the server manages.
    Shares,
    /// Pair this machine with a server (a code from `backstopd pair`); then every command talks
    /// to it over TLS with this machine's certificate.
    Pair(pair_cmd::PairArgs),
    /// Restore a share to a snapshot (undoable), or undo / finalize the last restore.
    Restore(restore_cmd::RestoreArgs),
    /// Say how a share's file service is set up for restores, and what to change.
    Doctor { share: String },
    /// Take a snapshot of a share now.
    Snapshot {
        share: String,
        /// Appended to the name: 20131124_1344_SUFFIX.
        #[arg(long)]
        suffix: Option<String>,
        /// The time of the backup the snapshot captures (RFC 3339); default now.
        #[arg(long, value_parser = parse_time)]
        backup_time: Option<Timestamp>,
        /// The Time Machine backup it captures; a second call with the same id returns the
        /// existing snapshot.
        #[arg(long)]
        backup_id: Option<String>,
        #[arg(long, value_enum, default_value = "manual")]
        origin: OriginArg,
    },
    /// List a share's snapshots and its space.
    List { share: String },
    /// Mark snapshots made by the hand-written script (YYYYMMDD_HHMM[_suffix]) as managed.
    Adopt { share: String },
    /// Show (with --dry-run) or apply the share's retention policy: what is kept and why, what
    /// is destroyed, what it frees.
    Prune {
        share: String,
        /// Only show the plan; destroy nothing.
        #[arg(long)]
        dry_run: bool,
        /// Plan as if it were this time (RFC 3339); only with --dry-run.
        #[arg(long, value_parser = parse_time, requires = "dry_run")]
        as_of: Option<Timestamp>,
    },
    /// Mark a snapshot to be kept whatever the retention policy says.
    Keep { share: String, snapshot: String },
    /// Clear the keep mark.
    Unkeep { share: String, snapshot: String },
    /// The health of the pools: a verdict, the last scrub, the next one, and every device.
    Health,
    /// Start a scrub of a pool now (or stop the running one).
    Scrub {
        pool: String,
        #[arg(long)]
        stop: bool,
    },
    /// Report each Time Machine backup that ended, from the live log (macOS) or a recorded one;
    /// with --snapshot, snapshot each completed backup on the server (through a durable queue:
    /// requests the server cannot take now are kept and sent on the next run).
    Watch {
        /// Replay a recorded `log stream --style ndjson` file instead of the live log.
        #[arg(long)]
        replay: Option<std::path::PathBuf>,
        /// Snapshot completed backups and report failed ones to the server.
        #[arg(long, requires = "share")]
        snapshot: bool,
        /// The server's share that holds this Mac's backups.
        #[arg(long)]
        share: Option<String>,
        /// The Time Machine destination id (part of each backup's id).
        #[arg(long, default_value = "default")]
        destination: String,
        /// Where the durable queue lives (default: BACKSTOP_STATE_DIR or the platform's dir).
        #[arg(long)]
        state_dir: Option<std::path::PathBuf>,
        /// Also say how many lines were skipped as unreadable or unknown.
        #[arg(long)]
        verbose: bool,
    },
    /// Print the server's events.
    Events {
        /// Keep printing new events as they happen.
        #[arg(long)]
        follow: bool,
        /// Only events after this cursor (default: every kept event).
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// Show the server's version, zfs and shares.
    ServerInfo,
    /// Write agent.toml: map each Time Machine destination to a share of --server.
    Init(agent_cmd::InitArgs),
    /// Run the Mac agent: snapshot after every Time Machine backup, notify about the server's
    /// events (macOS; elsewhere with --replay).
    Agent(agent_cmd::AgentArgs),
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    s.parse::<Timestamp>().map_err(|e| {
        format!(
            "'{s}' is not an RFC 3339 time with an offset (e.g. 2026-11-24T13:44:00+01:00): {e}"
        )
    })
}

pub(crate) enum Failure {
    Client(ClientError),
    Io(std::io::Error),
    /// Part of the operation failed; the output already says what.
    Partial,
    /// A usage error, already explained.
    Usage,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure::Client(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Watch {
        replay,
        snapshot,
        share,
        destination,
        state_dir,
        verbose,
    } = &cli.command
    {
        return watch(
            &cli.server,
            cli.json,
            replay.as_deref(),
            snapshot.then_some(share.as_deref()).flatten(),
            destination,
            state_dir.clone(),
            *verbose,
        )
        .await;
    }
    match &cli.command {
        Command::Agent(args) => return agent_cmd::agent(args, cli.json).await,
        Command::Init(args) => return agent_cmd::init(args, &cli.server, cli.json).await,
        Command::Pair(args) => return pair_cmd::pair(args, cli.json).await,
        _ => {}
    }
    let client = Client::connect(&cli.server).await?;
    let tz = TimeZone::system();
    let mut out = std::io::stdout().lock();
    let keep_command = matches!(cli.command, Command::Keep { .. });
    match cli.command {
        Command::Restore(a) => return restore_cmd::restore(&client, &a, cli.json).await,
        Command::Doctor { share } => return restore_cmd::doctor(&client, &share, cli.json).await,
        Command::Shares => {
            let info = client.server_info().await?;
            if cli.json {
                print_json(&SharesJson {
                    shares: info.shares.iter().map(ShareJson::from).collect(),
                })?;
            } else {
                let rows: Vec<Vec<String>> = info
                    .shares
                    .iter()
                    .map(|s| vec![s.name.clone(), s.dataset.clone()])
                    .collect();
                write!(out, "{}", view::table(&["NAME", "DATASET"], &rows))?;
            }
        }
        Command::Snapshot {
            share,
            suffix,
            backup_time,
            backup_id,
            origin,
        } => {
            let req = pb::CreateSnapshotRequest {
                share,
                suffix,
                backup_time: backup_time.map(pb_time),
                backup_id,
                origin: match origin {
                    OriginArg::Manual => pb::SnapshotOrigin::Manual,
                    OriginArg::Backup => pb::SnapshotOrigin::Backup,
                }
                .into(),
            };
            let r = client.create_snapshot(req).await?;
            let s = r.snapshot.unwrap_or_default();
            if cli.json {
                print_json(&CreatedJson {
                    created: r.created,
                    snapshot: SnapshotJson::from(&s),
                })?;
            } else if r.created {
                writeln!(
                    out,
                    "created {} (REFER {})",
                    s.full_name,
                    backstop_proto::size::nicenum(s.referenced)
                )?;
            } else {
                writeln!(
                    out,
                    "already taken for backup {}: {} (nothing new created)",
                    s.backup_id, s.full_name
                )?;
            }
        }
        Command::List { share } => {
            let r = client.list_snapshots(&share).await?;
            if cli.json {
                print_json(&ListJson::from(&r))?;
            } else {
                write!(out, "{}", view::list_table(&r, &tz))?;
            }
        }
        Command::Adopt { share } => {
            let r = client.adopt(&share).await?;
            if cli.json {
                print_json(&AdoptJson {
                    adopted: r.adopted.iter().map(SnapshotJson::from).collect(),
                    skipped: r.skipped,
                })?;
            } else {
                if r.adopted.is_empty() {
                    writeln!(out, "nothing to adopt")?;
                }
                for s in &r.adopted {
                    writeln!(
                        out,
                        "adopted {} (backup time {})",
                        s.name,
                        view::local_minute(s.backup_time.as_ref(), &tz)
                    )?;
                }
                for name in &r.skipped {
                    writeln!(
                        out,
                        "left alone {name}: not named YYYYMMDD_HHMM[_suffix], so not Backstop's to manage"
                    )?;
                }
            }
        }
        Command::Events { follow, since } => {
            let mut sub = client.subscribe(since, follow).await?;
            let mut doc = EventsJson {
                events: Vec::new(),
                missed: None,
                latest_cursor: 0,
            };
            use pb::subscribe_response::Item;
            while let Some(item) = sub.next().await? {
                match item {
                    Item::Event(e) if cli.json && follow => {
                        serde_json::to_writer(&mut out, &EventJson::from(&e))
                            .map_err(std::io::Error::from)?;
                        writeln!(out)?;
                        out.flush()?;
                    }
                    Item::Event(e) if cli.json => {
                        doc.latest_cursor = e.cursor;
                        doc.events.push(EventJson::from(&e));
                    }
                    Item::Event(e) => {
                        writeln!(out, "{}", view::event_line(&e, &tz))?;
                        out.flush()?;
                    }
                    Item::Missed(m) if cli.json && follow => {
                        serde_json::to_writer(&mut out, &MissedJson::from(&m))
                            .map_err(std::io::Error::from)?;
                        writeln!(out)?;
                    }
                    Item::Missed(m) if cli.json => doc.missed = Some(MissedJson::from(&m)),
                    Item::Missed(m) => writeln!(
                        out,
                        "(events {}..{} were dropped before you read them: the server keeps a bounded log)",
                        m.after_cursor + 1,
                        m.oldest_kept_cursor.saturating_sub(1)
                    )?,
                    Item::CaughtUp(c) => doc.latest_cursor = doc.latest_cursor.max(c.latest_cursor),
                }
            }
            if cli.json && !follow {
                drop(out);
                print_json(&doc)?;
            }
        }
        Command::Prune {
            share,
            dry_run,
            as_of,
        } => {
            let r = client
                .prune(pb::PruneRequest {
                    share,
                    dry_run,
                    as_of: as_of.map(pb_time),
                })
                .await?;
            if cli.json {
                print_json(&PruneJson::from(&r))?;
            } else {
                write!(out, "{}", view::prune_text(&r, &tz))?;
            }
            if !r.failed.is_empty() {
                return Err(Failure::Partial);
            }
        }
        Command::Keep { share, snapshot } | Command::Unkeep { share, snapshot } => {
            let keep = keep_command;
            let s = client.set_keep(&share, &snapshot, keep).await?;
            if cli.json {
                print_json(&SnapshotJson::from(&s))?;
            } else if keep {
                writeln!(
                    out,
                    "{}: kept (never pruned until `backstop unkeep`)",
                    s.full_name
                )?;
            } else {
                writeln!(out, "{}: keep mark cleared", s.full_name)?;
            }
        }
        Command::Health => {
            let r = client.health().await?;
            if cli.json {
                print_json(&HealthJson::from(&r))?;
            } else {
                write!(out, "{}", view::health_text(&r, &tz))?;
            }
        }
        Command::Scrub { pool, stop } => {
            let r = client.scrub(&pool, stop).await?;
            if cli.json {
                print_json(&serde_json::json!({ "pool": r.pool, "message": r.message }))?;
            } else {
                writeln!(out, "{}", r.message)?;
            }
        }
        Command::Watch { .. } | Command::Agent(_) | Command::Init(_) | Command::Pair(_) => {
            unreachable!("handled above")
        }
        Command::ServerInfo => {
            let info = client.server_info().await?;
            let j = ServerInfoJson::new(client.server(), &info);
            if cli.json {
                print_json(&j)?;
            } else {
                writeln!(out, "server:   {} (backstopd {})", j.server, j.version)?;
                writeln!(
                    out,
                    "zfs:      {} {}{}",
                    j.zfs.implementation,
                    j.zfs.version,
                    if j.zfs.capabilities.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", j.zfs.capabilities.join(", "))
                    }
                )?;
                let names: Vec<&str> = j.shares.iter().map(|s| s.name.as_str()).collect();
                writeln!(
                    out,
                    "shares:   {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                )?;
                writeln!(
                    out,
                    "events:   cursors {}..{}",
                    j.oldest_event_cursor, j.latest_event_cursor
                )?;
            }
        }
    }
    Ok(())
}

/// `backstop watch`: ended backups, one line each; with a share, the post-backup action.
async fn watch(
    server: &str,
    json: bool,
    replay: Option<&std::path::Path>,
    share: Option<&str>,
    destination: &str,
    state_dir: Option<std::path::PathBuf>,
    verbose: bool,
) -> Result<(), Failure> {
    use backstop_agent_core::detector::{BackupDetector, LineParser, Outcome};
    use backstop_agent_core::post_backup::{PostBackup, default_state_dir};
    let Some(path) = replay else {
        eprintln!(
            "backstop: watching the live log needs macOS's `log stream`; on this system use --replay FILE"
        );
        return Err(Failure::Usage);
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        eprintln!("backstop: cannot read {}: {e}", path.display());
        Failure::Partial
    })?;
    let mut post = match share {
        Some(share) => {
            let dir = state_dir.unwrap_or_else(default_state_dir);
            Some(
                PostBackup::open(server, share, destination, &dir).map_err(|e| {
                    eprintln!("backstop: {e}");
                    Failure::Partial
                })?,
            )
        }
        None => None,
    };
    let tz = TimeZone::system();
    let mut out = std::io::stdout().lock();
    let mut parser = LineParser::new();
    let mut detector = BackupDetector::new();
    let mut failed = false;
    for line in text.lines() {
        let Some(event) = parser.parse(line) else {
            continue;
        };
        let Some(outcome) = detector.feed(&event) else {
            continue;
        };
        if json {
            serde_json::to_writer(&mut out, &outcome).map_err(std::io::Error::from)?;
            writeln!(out)?;
        } else {
            let when = outcome
                .at
                .to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S");
            let what = match outcome.outcome {
                Outcome::Completed => format!(
                    "completed backup {}{}",
                    outcome.backup.as_deref().unwrap_or("(unnamed)"),
                    if outcome.confirmed {
                        ""
                    } else {
                        " (from the log; not confirmed by tmutil)"
                    }
                ),
                Outcome::Failed | Outcome::Cancelled => format!(
                    "{} {}{}",
                    if outcome.outcome == Outcome::Failed {
                        "failed"
                    } else {
                        "cancelled"
                    },
                    outcome.reason.as_deref().unwrap_or(""),
                    outcome
                        .explanation()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
            };
            writeln!(out, "{when}  {what}")?;
        }
        out.flush()?;
        if let Some(post) = post.as_mut() {
            // A replay has no tmutil to ask: the log is trusted, as the recorded run was.
            if let Err(e) = post.handle(&outcome).await {
                eprintln!("backstop: {e}");
                failed = true;
            }
        }
    }
    if verbose {
        eprintln!(
            "backstop: {} log events read, {} lines skipped (banner, trailer, unreadable)",
            parser.parsed(),
            parser.skipped()
        );
    }
    if let Some(post) = post.as_mut() {
        let drained = post.drain().await.map_err(|e| {
            eprintln!("backstop: {e}");
            Failure::Partial
        })?;
        for (id, name, created) in &drained.sent {
            eprintln!(
                "backstop: {} {name} for backup {id}",
                if *created {
                    "snapshot"
                } else {
                    "already had snapshot"
                }
            );
        }
        if drained.left > 0 {
            eprintln!(
                "backstop: {} snapshot request{} queued ({}); sent on the next `backstop watch`",
                drained.left,
                if drained.left == 1 { "" } else { "s" },
                drained.error.unwrap_or_default()
            );
        } else if let Some(e) = drained.error {
            eprintln!("backstop: {e}");
            failed = true;
        }
    }
    if failed {
        Err(Failure::Partial)
    } else {
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Client(e)) => {
            eprintln!("backstop: {e}");
            ExitCode::from(if e.is_invalid_request() { 2 } else { 1 })
        }
        // A closed pipe (`backstop events | head`) is not a failure.
        Err(Failure::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(Failure::Io(e)) => {
            eprintln!("backstop: cannot write output: {e}");
            ExitCode::from(1)
        }
        Err(Failure::Partial) => ExitCode::from(1),
        Err(Failure::Usage) => ExitCode::from(2),
    }
}
