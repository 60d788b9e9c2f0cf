//! `backstop restore` and `backstop doctor`: show the plan, ask, then follow the server's steps
//! with a progress bar. The server decides and does everything; this only translates.

use std::io::{BufRead, IsTerminal, Write};

use backstop_agent_core::Client;
use backstop_proto::size::nicenum;
use backstop_proto::v1 as pb;
use clap::Args;
use serde::Serialize;

use crate::{Failure, print_json};

#[derive(Args)]
pub struct RestoreArgs {
    /// The share to restore.
    share: String,
    /// The snapshot to go back to (default: the newest).
    #[arg(long, conflicts_with_all = ["last_good", "undo", "finalize"])]
    to: Option<String>,
    /// The newest snapshot Time Machine considered sound (verified=good).
    #[arg(long, conflicts_with_all = ["undo", "finalize"])]
    last_good: bool,
    /// clone-swap (default: undoable, keeps everything) or rollback (destroys newer snapshots).
    #[arg(long, default_value = "clone-swap", value_parser = ["clone-swap", "rollback"])]
    mode: String,
    /// Swap back to the state before the last restore.
    #[arg(long, conflicts_with = "finalize")]
    undo: bool,
    /// Destroy what the last restore (or undo) kept aside, freeing its space.
    #[arg(long)]
    finalize: bool,
    /// Show the plan only.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    yes: bool,
    /// Restore even while a Mac is connected to the share.
    #[arg(long)]
    force: bool,
}

#[derive(Serialize)]
struct PlanJson<'a> {
    operation: &'a str,
    share: &'a str,
    dataset: &'a str,
    mode: &'a str,
    target: &'a str,
    keeps: Option<&'a str>,
    destroys: &'a [String],
    frees: Option<u64>,
    cnid: &'a str,
    cnid_stable: bool,
    warnings: &'a [String],
    steps: &'a [String],
}

impl<'a> From<&'a pb::RecoveryPlan> for PlanJson<'a> {
    fn from(p: &'a pb::RecoveryPlan) -> Self {
        PlanJson {
            operation: &p.operation,
            share: &p.share,
            dataset: &p.dataset,
            mode: &p.mode,
            target: &p.target,
            keeps: (!p.keeps.is_empty()).then_some(p.keeps.as_str()),
            destroys: &p.destroys,
            frees: (p.operation == "finalize").then_some(p.frees),
            cnid: &p.cnid,
            cnid_stable: p.cnid_stable,
            warnings: &p.warnings,
            steps: &p.steps,
        }
    }
}

#[derive(Serialize)]
struct ResultJson<'a> {
    plan: PlanJson<'a>,
    done: bool,
    summary: &'a str,
    kept: Option<&'a str>,
    millis: u64,
}

fn print_plan(out: &mut impl Write, p: &pb::RecoveryPlan) -> std::io::Result<()> {
    match p.operation.as_str() {
        "undo" => writeln!(
            out,
            "Undo the restore of share {} to {}:",
            p.share, p.target
        )?,
        "finalize" => writeln!(
            out,
            "Finalize the restore of share {} to {}: frees {}",
            p.share,
            p.target,
            nicenum(p.frees)
        )?,
        _ => writeln!(
            out,
            "Restore share {} ({}) to {} by {}:",
            p.share, p.dataset, p.target, p.mode
        )?,
    }
    for (i, s) in p.steps.iter().enumerate() {
        writeln!(out, "  {:>2}. {s}", i + 1)?;
    }
    if !p.keeps.is_empty() {
        writeln!(out, "Kept afterwards: {} (undo puts it back)", p.keeps)?;
    }
    if !p.destroys.is_empty() {
        writeln!(out, "Destroyed for good:")?;
        for d in &p.destroys {
            writeln!(out, "  {d}")?;
        }
    }
    match (p.cnid.as_str(), p.cnid_stable) {
        ("scan", true) => writeln!(
            out,
            "Netatalk: the CNID database moves with the dataset; CNIDs stay the same (checked with dbd -s afterwards)"
        )?,
        ("scan", false) | ("rebuild", _) => writeln!(
            out,
            "Netatalk: CNIDs may change (see `backstop doctor {}`)",
            p.share
        )?,
        _ => {}
    }
    for w in &p.warnings {
        writeln!(out, "Warning: {w}")?;
    }
    Ok(())
}

/// Asks on the terminal; without one, `--yes` is required.
fn confirm(question: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        eprintln!("backstop: {question}: not confirmed (no terminal); pass --yes to go ahead");
        return Err(Failure::Usage);
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

pub async fn restore(client: &Client, a: &RestoreArgs, json: bool) -> Result<(), Failure> {
    let req = pb::RecoveryRequest {
        share: a.share.clone(),
        operation: if a.undo {
            "undo"
        } else if a.finalize {
            "finalize"
        } else {
            "restore"
        }
        .into(),
        to: a.to.clone().unwrap_or_default(),
        last_good: a.last_good,
        mode: a.mode.clone(),
        force: a.force,
    };
    let plan = client.plan_recovery(req.clone()).await?;
    let mut out = std::io::stdout().lock();
    if a.dry_run {
        if json {
            print_json(&PlanJson::from(&plan))?;
        } else {
            print_plan(&mut out, &plan)?;
        }
        return Ok(());
    }
    if !json {
        print_plan(&mut out, &plan)?;
        out.flush()?;
    }
    if !a.yes {
        let question = match plan.operation.as_str() {
            "finalize" => format!("Destroy {} for good?", plan.destroys.join(", ")),
            _ if !plan.destroys.is_empty() => format!(
                "Go ahead and destroy {} snapshot{}?",
                plan.destroys.len(),
                if plan.destroys.len() == 1 { "" } else { "s" }
            ),
            _ => "Go ahead?".to_string(),
        };
        if !confirm(&question)? {
            eprintln!("backstop: nothing was changed");
            return Err(Failure::Partial);
        }
    }
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(plan.steps.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                .expect("template"),
        );
        b
    });
    let mut updates = client.recover(req).await?;
    let mut executed = plan.clone();
    let mut result = None;
    while let Some(u) = updates.next().await? {
        use pb::recovery_update::Update;
        match u {
            Update::Plan(p) => {
                if let Some(b) = &bar {
                    b.set_length(p.steps.len() as u64);
                }
                executed = p;
            }
            Update::Step(s) => match &bar {
                Some(b) => {
                    b.set_position(u64::from(s.index.saturating_sub(1)));
                    b.set_message(s.description);
                }
                None if !json => writeln!(out, "[{}/{}] {}", s.index, s.total, s.description)?,
                None => {}
            },
            Update::Result(r) => result = Some(r),
        }
    }
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let r = result.unwrap_or_default();
    if json {
        print_json(&ResultJson {
            plan: PlanJson::from(&executed),
            done: true,
            summary: &r.summary,
            kept: (!r.kept.is_empty()).then_some(r.kept.as_str()),
            millis: r.millis,
        })?;
    } else {
        writeln!(out, "{}", r.summary)?;
        if !r.kept.is_empty() {
            writeln!(
                out,
                "Undo: backstop restore --undo {0}    Free the space: backstop restore --finalize {0}",
                a.share
            )?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct DoctorJson<'a> {
    share: &'a str,
    service: &'a str,
    version: Option<&'a str>,
    findings: &'a [String],
    advice: Vec<AdviceJson<'a>>,
    ok: bool,
}

#[derive(Serialize)]
struct AdviceJson<'a> {
    summary: &'a str,
    lines: &'a [String],
}

pub async fn doctor(client: &Client, share: &str, json: bool) -> Result<(), Failure> {
    let d = client.doctor(share).await?;
    if json {
        print_json(&DoctorJson {
            share: &d.share,
            service: &d.service,
            version: (!d.version.is_empty()).then_some(d.version.as_str()),
            findings: &d.findings,
            advice: d
                .advice
                .iter()
                .map(|a| AdviceJson {
                    summary: &a.summary,
                    lines: &a.lines,
                })
                .collect(),
            ok: d.advice.is_empty(),
        })?;
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "share {}: {}{}",
        d.share,
        d.service,
        if d.version.is_empty() {
            String::new()
        } else {
            format!(" {}", d.version)
        }
    )?;
    for f in &d.findings {
        writeln!(out, "  ok: {f}")?;
    }
    for a in &d.advice {
        writeln!(out, "  change: {}", a.summary)?;
        for l in &a.lines {
            writeln!(out, "      {l}")?;
        }
    }
    Ok(())
}
