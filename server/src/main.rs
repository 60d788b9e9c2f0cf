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
