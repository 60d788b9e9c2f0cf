//! `backstopd`: the Backstop daemon on the ZFS host.

use std::path::PathBuf;
use std::process::ExitCode;

use backstop_server::config::{Config, DEFAULT_CONFIG_PATH};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "backstopd",
    version,
    about = "ZFS snapshots and recovery for Time Machine shares"
)]
struct Args {
    /// The configuration file (TOML).
    #[arg(long, short, global = true, default_value = DEFAULT_CONFIG_PATH, env = "BACKSTOPD_CONFIG")]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon (the default).
    Serve,
    /// Check the configuration and exit.
    CheckConfig,
    /// Make the private CA and the server's TLS certificate in the state dir.
    Init {
        /// Names and addresses Macs use to reach this server (DNS names or IPs); localhost and
        /// loopback are always included.
        #[arg(long = "name")]
        names: Vec<String>,
        /// Replace an existing CA: every paired Mac must pair again.
        #[arg(long)]
        force: bool,
    },
    /// Print a one-time pairing code (10 minutes, single use) for a Mac and its shares.
    Pair {
        /// A share the Mac may use (repeat for several).
        #[arg(long = "share", required = true)]
        shares: Vec<String>,
        /// The Mac may also scrub pools and change the configuration.
        #[arg(long)]
        admin: bool,
    },
    /// The paired Macs.
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
    /// What was done, by whom, with what result (newest last).
    Audit {
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// List the paired clients.
    List,
    /// Refuse a client from now on (also on the streams it holds open).
    Revoke { name: String },
}

fn admin_command(config: &Config, command: Command) -> Result<(), String> {
    use backstop_server::security::{audit, ca, clients, pairing};
    let dir = &config.state_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let now = jiff::Timestamp::now();
    match command {
        Command::Init { names, force } => {
            let files = if force {
                ca::init_replacing(dir, &names, now)
            } else {
                ca::init(dir, &names, now)
            }
            .map_err(|e| e.to_string())?;
            println!(
                "CA and server certificate written to {}",
                files.dir.display()
            );
            println!("server names: {}", files.server_names.join(", "));
            println!("CA fingerprint (SHA-256): {}", files.ca_fingerprint);
        }
        Command::Pair { shares, admin } => {
            for s in &shares {
                if !config.shares.iter().any(|c| &c.name == s) {
                    return Err(format!(
                        "share '{s}' is not configured (configured: {})",
                        config
                            .shares
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
            let tls = ca::load(dir).map_err(|e| format!("{e} (run `backstopd init` first)"))?;
            let mut codes = pairing::PairingStore::open(dir).map_err(|e| e.to_string())?;
            let code = codes
                .create(shares.clone(), admin, now)
                .map_err(|e| e.to_string())?;
            println!("code:        {}", code.code);
            println!("expires:     {} (single use)", code.expires);
            println!(
                "shares:      {}{}",
                shares.join(", "),
                if admin { " (admin)" } else { "" }
            );
            println!("fingerprint: {}", tls.ca_fingerprint());
            println!(
                "On the Mac:  backstop pair HOST:PORT {} --fingerprint {}",
                code.code,
                tls.ca_fingerprint()
            );
        }
        Command::Clients { command } => {
            let mut reg = clients::ClientRegistry::open(dir).map_err(|e| e.to_string())?;
            match command {
                ClientsCommand::List => {
                    for c in reg.list() {
                        println!(
                            "{}\t{}{}\tpaired {}{}",
                            c.name,
                            c.shares.join(","),
                            if c.admin { " (admin)" } else { "" },
                            c.paired_at,
                            c.revoked_at
                                .map(|t| format!("\trevoked {t}"))
                                .unwrap_or_default()
                        );
                    }
                }
                ClientsCommand::Revoke { name } => {
                    let c = reg.revoke(&name, now).map_err(|e| e.to_string())?;
                    println!("revoked client '{}' (refused from now on)", c.name);
                    let log = audit::AuditLog::open(dir, 10_000).map_err(|e| e.to_string())?;
                    let _ = log.append(&audit::Record::new(
                        now,
                        &backstop_server::security::authz::Identity::LocalAdmin,
                        None,
                        &backstop_server::security::authz::Action::Configure,
                        Ok(()),
                    ));
                }
            }
        }
        Command::Audit { limit, json } => {
            for r in audit::read(dir, limit).map_err(|e| e.to_string())? {
                if json {
                    println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
                } else {
                    println!("{r}");
                }
            }
        }
        Command::Serve | Command::CheckConfig => unreachable!("not an admin command"),
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BACKSTOP_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("backstopd: {e}");
            return ExitCode::from(1);
        }
    };
    match args.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!(
                "{}: ok ({} share{})",
                args.config.display(),
                config.shares.len(),
                if config.shares.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        c @ (Command::Init { .. }
        | Command::Pair { .. }
        | Command::Clients { .. }
        | Command::Audit { .. }) => match admin_command(&config, c) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("backstopd: {e}");
                ExitCode::from(1)
            }
        },
        Command::Serve => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(backstop_server::serve(config, shutdown_signal())) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("backstopd: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
