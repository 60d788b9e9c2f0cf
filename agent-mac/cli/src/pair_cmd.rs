//! `backstop pair HOST CODE`: pairs this machine with a server (see `backstopd pair`).

use std::io::{BufRead, IsTerminal, Write};

use backstop_agent_core::pairing;
use clap::Args;
use serde::Serialize;

use crate::{Failure, print_json};

#[derive(Args)]
pub struct PairArgs {
    /// The server, HOST:PORT (its TLS address).
    server: String,
    /// The one-time code `backstopd pair` printed.
    code: String,
    /// The CA fingerprint `backstopd pair` printed; without it, the fingerprint is shown and
    /// must be confirmed at the terminal before the code is sent.
    #[arg(long)]
    fingerprint: Option<String>,
    /// This machine's name on the server (default: its host name).
    #[arg(long)]
    name: Option<String>,
}

#[derive(Serialize)]
struct PairedJson<'a> {
    server: &'a str,
    client_name: &'a str,
    shares: &'a [String],
    admin: bool,
    ca_fingerprint: &'a str,
    stored_in: String,
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "mac".to_string())
}

pub async fn pair(a: &PairArgs, json: bool) -> Result<(), Failure> {
    let fingerprint = match &a.fingerprint {
        Some(f) => f.clone(),
        None => {
            let seen = pairing::probe_fingerprint(&a.server).await?;
            if !std::io::stdin().is_terminal() {
                eprintln!(
                    "backstop: the server's CA fingerprint is {seen}; compare it with what `backstopd pair` printed and pass it as --fingerprint"
                );
                return Err(Failure::Usage);
            }
            eprintln!("The server's CA fingerprint is\n  {seen}");
            eprint!("Is it the one `backstopd pair` printed? [y/N] ");
            std::io::stderr().flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                eprintln!("backstop: not paired");
                return Err(Failure::Partial);
            }
            seen
        }
    };
    let name = a.name.clone().unwrap_or_else(host_name);
    let creds = pairing::pair(&a.server, &a.code, &name, &fingerprint).await?;
    let dir = pairing::save(&pairing::config_dir(), &creds)?;
    let p = &creds.paired;
    if json {
        print_json(&PairedJson {
            server: &p.server,
            client_name: &p.client_name,
            shares: &p.shares,
            admin: p.admin,
            ca_fingerprint: &p.ca_fingerprint,
            stored_in: dir.display().to_string(),
        })?;
    } else {
        println!(
            "paired with {} as '{}' for {}{}; credentials in {}",
            p.server,
            p.client_name,
            p.shares.join(", "),
            if p.admin { " (admin)" } else { "" },
            dir.display()
        );
    }
    Ok(())
}
