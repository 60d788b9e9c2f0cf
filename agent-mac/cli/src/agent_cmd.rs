//! `backstop init` and `backstop agent`: thin shells over the agent core's [`config`] and
//! [`agent`] modules.
//!
//! [`config`]: backstop_agent_core::config
//! [`agent`]: backstop_agent_core::agent

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backstop_agent_core::Client;
use backstop_agent_core::agent::{self, AgentOptions, AgentReport};
use backstop_agent_core::config::{self, AgentConfig};
use backstop_agent_core::detector::parse_destinations;
use backstop_agent_core::notify::DesktopNotifier;
use backstop_agent_core::sources::{MacSources, ReplaySources, SystemSources, TmutilRecording};
use jiff::tz::TimeZone;

use crate::Failure;

#[derive(clap::Args)]
pub struct AgentArgs {
    /// agent.toml (default: ~/Library/Application Support/Backstop/agent.toml on macOS,
    /// $XDG_CONFIG_HOME/backstop/agent.toml elsewhere).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replay a recorded `log stream --style ndjson` file instead of the live log (any OS).
    #[arg(long)]
    replay: Option<PathBuf>,
    /// With --replay: a directory of recorded tmutil outputs (status-*.plist,
    /// latestbackup-*.txt or .err, destinationinfo.plist), given back in name order. Without it
    /// a replayed log is trusted as it is.
    #[arg(long, requires = "replay")]
    tmutil_from: Option<PathBuf>,
    /// How often tmutil is polled for backups that ended with no log line.
    #[arg(long, default_value_t = 300)]
    poll_seconds: u64,
    /// How often tmutil is asked while a backup waits for confirmation.
    #[arg(long, default_value_t = 10)]
    confirm_seconds: u64,
    /// The longest wait between retries of the queue and of the server's event stream.
    #[arg(long, default_value_t = 300)]
    retry_max_seconds: u64,
}

#[derive(clap::Args)]
pub struct InitArgs {
    /// Where to write agent.toml (default: the platform's config dir, as for `agent`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Read the destinations from a recorded `tmutil destinationinfo -X` plist instead of
    /// running tmutil (any OS).
    #[arg(long)]
    destinations_from: Option<PathBuf>,
    /// Write the proposed mapping without asking.
    #[arg(long)]
    yes: bool,
    /// Replace an existing agent.toml.
    #[arg(long)]
    force: bool,
}

fn config_path(given: &Option<PathBuf>) -> Result<PathBuf, Failure> {
    given
        .clone()
        .or_else(config::default_config_path)
        .ok_or_else(|| {
            eprintln!("backstop: no home directory to find agent.toml in; pass --config PATH");
            Failure::Usage
        })
}

/// `backstop agent`.
pub async fn agent(args: &AgentArgs, json: bool) -> Result<(), Failure> {
    let path = config_path(&args.config)?;
    let config = AgentConfig::load(&path).map_err(|e| {
        eprintln!("backstop: {e}");
        Failure::Usage
    })?;
    let options = AgentOptions {
        poll_every: Duration::from_secs(args.poll_seconds.max(1)),
        confirm_every: Duration::from_secs(args.confirm_seconds.max(1)),
        retry_max: Duration::from_secs(args.retry_max_seconds.max(1)),
        ..AgentOptions::default()
    };
    match &args.replay {
        Some(log) => {
            let tmutil = match &args.tmutil_from {
                Some(dir) => Some(TmutilRecording::from_dir(dir).map_err(|e| {
                    eprintln!("backstop: --tmutil-from: {e}");
                    Failure::Usage
                })?),
                None => None,
            };
            let sources = ReplaySources::from_file(log, tmutil).map_err(|e| {
                eprintln!("backstop: --replay: {e}");
                Failure::Usage
            })?;
            run_agent(sources, config, options, json).await
        }
        None if cfg!(target_os = "macos") => {
            run_agent(SystemSources::new(), config, options, json).await
        }
        None => {
            eprintln!(
                "backstop: the agent follows macOS's unified log and tmutil; on this system pass --replay FILE (and --tmutil-from DIR)"
            );
            Err(Failure::Usage)
        }
    }
}

async fn run_agent<S: MacSources>(
    sources: S,
    config: AgentConfig,
    options: AgentOptions,
    json: bool,
) -> Result<(), Failure> {
    let shutdown = agent::termination()?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<AgentReport>();
    let printer = tokio::spawn(async move {
        let tz = TimeZone::system();
        while let Some(report) = rx.recv().await {
            let mut out = std::io::stdout().lock();
            let line = if json {
                serde_json::to_string(&report).expect("reports serialize")
            } else {
                report.text(&tz)
            };
            // A closed stdout must not stop the agent.
            let _ = writeln!(out, "{line}").and_then(|_| out.flush());
        }
    });
    let notifier = Arc::new(DesktopNotifier::new());
    let result = agent::run(sources, config, notifier, options, tx, shutdown).await;
    let _ = printer.await;
    result.map_err(|e| {
        eprintln!("backstop: {e}");
        Failure::Partial
    })
}

/// `backstop init`.
pub async fn init(args: &InitArgs, server: &str, json: bool) -> Result<(), Failure> {
    let path = config_path(&args.config)?;
    if path.exists() && !args.force {
        eprintln!(
            "backstop: {} already exists; pass --force to replace it",
            path.display()
        );
        return Err(Failure::Usage);
    }
    let plist = match &args.destinations_from {
        Some(file) => {
            TmutilRecording::destinations_from_file(file)
                .map(|r| ReplaySources::new("", Some(r)))
                .map_err(|e| {
                    eprintln!("backstop: --destinations-from: {e}");
                    Failure::Usage
                })?
                .tmutil_destinationinfo()
                .await
        }
        None if cfg!(target_os = "macos") => SystemSources::new().tmutil_destinationinfo().await,
        None => {
            eprintln!(
                "backstop: destinations come from macOS's `tmutil destinationinfo -X`; on this system pass --destinations-from FILE"
            );
            return Err(Failure::Usage);
        }
    };
    let destinations = plist
        .map_err(|e| e.to_string())
        .and_then(|p| parse_destinations(p).map_err(|e| e.to_string()))
        .map_err(|e| {
            eprintln!("backstop: cannot read the Time Machine destinations: {e}");
            Failure::Partial
        })?;
    if destinations.is_empty() {
        eprintln!(
            "backstop: Time Machine has no destination; add the server's share in Time Machine settings first"
        );
        return Err(Failure::Partial);
    }
    let client = Client::connect(server).await?;
    let info = client.server_info().await?;
    let shares: Vec<String> = info.shares.iter().map(|s| s.name.clone()).collect();
    let proposals = config::propose(&destinations, &shares);
    let mapped = config::config_from(server, &proposals);

    if !json {
        println!("Time Machine destinations and the shares of {server}:");
        for p in &proposals {
            let what = p
                .destination
                .url
                .as_deref()
                .or(p.destination.mount_point.as_deref())
                .unwrap_or(&p.destination.kind);
            match &p.share {
                Some(share) => println!(
                    "  {} ({}, {what}) -> share {share}",
                    p.destination.id, p.destination.name
                ),
                None => println!(
                    "  {} ({}, {what}) -> no matching share (left out; shares: {})",
                    p.destination.id,
                    p.destination.name,
                    if shares.is_empty() {
                        "none".to_string()
                    } else {
                        shares.join(", ")
                    }
                ),
            }
        }
    }
    if mapped.destinations.is_empty() {
        eprintln!(
            "backstop: no destination matches a share of {server}; nothing written (write {} by hand: see README)",
            path.display()
        );
        return Err(Failure::Partial);
    }
    if !args.yes && !confirm(&path)? {
        eprintln!("backstop: nothing written");
        return Err(Failure::Partial);
    }
    write_config(&path, &mapped.render(), args.force)?;
    if json {
        crate::print_json(&serde_json::json!({
            "config": path.display().to_string(),
            "server": server,
            "written": true,
            "destinations": proposals.iter().map(|p| serde_json::json!({
                "id": p.destination.id,
                "name": p.destination.name,
                "url": p.destination.url,
                "share": p.share,
            })).collect::<Vec<_>>(),
        }))?;
    } else {
        println!(
            "wrote {}; start the agent with `backstop agent`",
            path.display()
        );
    }
    Ok(())
}

/// Asks on the terminal; refuses without one (use --yes).
fn confirm(path: &Path) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        eprintln!("backstop: not a terminal: pass --yes to write the proposed mapping");
        return Err(Failure::Usage);
    }
    print!("Write this to {}? [y/N] ", path.display());
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// Writes the file (its directory made); without `force` never over an existing one.
fn write_config(path: &Path, text: &str, force: bool) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        eprintln!("backstop: cannot write {}: {e}", path.display());
        Failure::Partial
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut f = options.open(path).map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)
}
