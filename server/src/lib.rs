//! backstopd: ZFS snapshots and one-click recovery for Time Machine shares.
//!
//! The main types: [`config::Config`] (validated at start), [`share::Share`],
//! [`snapshot::Snapshot`] (names, marks, validation), the [`zfs`] layer (argv builders, parsers,
//! one runner), [`events::EventLog`] (durable, cursor-addressed, fanned out),
//! [`snapshotter::Snapshotter`] (the snapshot service's core) and [`api`] (tonic translation).

pub mod access;
pub mod api;
pub mod bundle;
pub mod bundle_watcher;
pub mod config;
pub mod events;
pub mod file_service;
pub mod health;
pub mod pruning;
pub mod recovery;
pub mod retention;
pub mod security;
pub mod share;
pub mod snapshot;
pub mod snapshotter;
pub mod verification;
pub mod zfs;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::FutureExt;

use crate::config::Config;
use crate::events::{EventKind, EventLog, NewEvent, Severity};
use crate::snapshotter::Snapshotter;
use crate::zfs::{ProcessRunner, Runner};

/// The file in the state dir where the daemon writes the address it listens on (useful with
/// port 0, and for scripts waiting for the daemon to be ready).
pub const LISTEN_ADDR_FILE: &str = "listen-addr";

/// Where the daemon writes the address of its plaintext loopback listener (`local_listen`).
pub const LOCAL_LISTEN_ADDR_FILE: &str = "local-listen-addr";

/// Creates the state dir (owner-only) and takes its lock, so two daemons never share one.
fn prepare_state_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create state_dir {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set permissions of {}", dir.display()))?;
    }
    let lock_path = dir.join("backstopd.lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("cannot create {}", lock_path.display()))?;
    lock.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another backstopd is already using state_dir {} (stop it, or give this one its own state_dir)",
            dir.display()
        )
    })?;
    Ok(lock)
}

/// Prunes a share every `every`, logging (not stopping on) failures.
async fn prune_timer(core: Arc<Snapshotter>, share: String, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let req = pruning::PruneRequest {
            share: share.clone(),
            dry_run: false,
            as_of: None,
            trigger: pruning::Trigger::Timer,
        };
        if let Err(e) = core.prune(req).await {
            tracing::warn!(%share, "scheduled prune failed: {e}");
        }
    }
}

/// Runs the daemon until `shutdown` completes.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let _lock = prepare_state_dir(&config.state_dir)?;
    let events = Arc::new(
        EventLog::open(&config.state_dir, config.events.keep)
            .context("cannot open the event log")?,
    );
    let runner: Arc<dyn Runner> = Arc::new(ProcessRunner {
        timeout: Duration::from_secs(config.zfs.timeout_seconds),
        ..ProcessRunner::default()
    });
    let cmds = config.zfs.commands.clone();
    let info = zfs::detect::detect(runner.as_ref(), &cmds).await;
    tracing::info!(
        implementation = info.implementation.name(),
        version = %info.version,
        capabilities = ?info.capabilities.names(),
        "zfs detected"
    );
    for share in &config.shares {
        let argv = cmds.get(&["name"], &share.dataset, None);
        if let Err(e) = runner.run(&argv).await {
            tracing::warn!(share = %share.name, dataset = %share.dataset, "dataset is not usable yet: {e}");
        }
    }

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let main_transport = if addr.ip().is_loopback() {
        access::Transport::Local
    } else if config.insecure {
        tracing::warn!(
            %addr,
            "insecure = true: serving PLAINTEXT on a non-loopback address; anyone who can reach it can destroy snapshots and restore shares"
        );
        access::Transport::Local
    } else {
        let tls = security::ca::load(&config.state_dir).map_err(|e| {
            anyhow::anyhow!(
                "{addr} is not a loopback address, so backstopd serves TLS, but: {e} (run `backstopd init` first, or set insecure = true)"
            )
        })?;
        access::Transport::Tls(Arc::new(access::Security::open(&config.state_dir, tls)?))
    };
    let local_listener = match config.local_listen {
        Some(l) => Some(
            tokio::net::TcpListener::bind(l)
                .await
                .with_context(|| format!("cannot listen on {l} (local_listen)"))?,
        ),
        None => None,
    };
    let local_addr = match &local_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };

    let tz = jiff::tz::TimeZone::system();
    let shares = config
        .shares
        .iter()
        .zip(&config.share_retention)
        .map(|(s, r)| (s.clone(), pruning::policy(r)))
        .collect();
    let core_runner = runner.clone();
    let core = Arc::new(Snapshotter::new(
        runner,
        cmds,
        info,
        events.clone(),
        tz,
        addr.to_string(),
        shares,
    ));
    for (share, retention) in config.shares.iter().zip(&config.share_retention) {
        if retention.interval_minutes > 0 {
            tokio::spawn(prune_timer(
                core.clone(),
                share.name.clone(),
                Duration::from_secs(u64::from(retention.interval_minutes) * 60),
            ));
        }
    }
    events.append(NewEvent {
        severity: Severity::Info,
        share: None,
        summary: format!(
            "backstopd {} started on {addr} serving {} share{}",
            env!("CARGO_PKG_VERSION"),
            config.shares.len(),
            if config.shares.len() == 1 { "" } else { "s" }
        ),
        kind: EventKind::ServerStarted {
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
    })?;
    tracing::info!(%addr, shares = config.shares.len(), "listening");

    let pools = if config.scrub.pools.is_empty() {
        let mut pools: Vec<String> = config
            .shares
            .iter()
            .filter_map(|s| s.dataset.split('/').next().map(str::to_string))
            .collect();
        pools.sort();
        pools.dedup();
        pools
    } else {
        config.scrub.pools.clone()
    };
    let health = Arc::new(health::watcher::Watcher::new(
        core_runner.clone(),
        config.zfs.commands.clone(),
        core.zfs_info().capabilities.status_parsable,
        pools,
        config.scrub.clone(),
        events.clone(),
        jiff::tz::TimeZone::system(),
        &config.state_dir,
    ));
    tokio::spawn(health.clone().run());
    tokio::spawn(bundle_watcher::BundleWatcher::new(core.clone(), config.bundle.clone()).run());

    let mut services = std::collections::HashMap::new();
    for (share, svc) in config.shares.iter().zip(&config.services) {
        let service = file_service::FileService::new(svc.clone(), core_runner.clone());
        if let Err(e) = service.prepare() {
            tracing::warn!(share = %share.name, "file service: {e}");
        }
        services.insert(share.name.clone(), Arc::new(service));
    }
    let journal = recovery::journal::Journal::open(&config.state_dir)
        .context("cannot open the recovery journal")?;
    let recovery = Arc::new(recovery::Recovery::new(
        core.clone(),
        services,
        journal,
        config.recovery.admin_lock.clone(),
    ));
    // A restore a previous backstopd left half-done is finished or reversed before serving.
    recovery
        .resume_unfinished()
        .await
        .context("cannot end the unfinished recovery")?;
    if config.recovery.finalize_after_days > 0 {
        let recovery = recovery.clone();
        let days = config.recovery.finalize_after_days;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tick.tick().await;
                recovery.finalize_expired(days).await;
            }
        });
    }
    // Ready: scripts and tests wait for this file.
    let addr_file = config.state_dir.join(LISTEN_ADDR_FILE);
    std::fs::write(&addr_file, format!("{addr}\n"))
        .with_context(|| format!("cannot write {}", addr_file.display()))?;
    if let Some(l) = local_addr {
        let f = config.state_dir.join(LOCAL_LISTEN_ADDR_FILE);
        std::fs::write(&f, format!("{l}\n"))
            .with_context(|| format!("cannot write {}", f.display()))?;
    }

    let audit = Arc::new(
        security::audit::AuditLog::open(&config.state_dir, 10_000)
            .context("cannot open the audit log")?,
    );
    let api = |transport: access::Transport| {
        api::Api::new(
            core.clone(),
            health.clone(),
            recovery.clone(),
            access::Access {
                transport,
                audit: audit.clone(),
            },
        )
        .routes()
    };
    // Bounded: streams per connection and their concurrency; messages by tonic's 4 MiB default.
    let builder = || {
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(64))
            .concurrency_limit_per_connection(64)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
    };
    let shutdown = shutdown.shared();
    let local = async {
        match local_listener {
            Some(l) => {
                builder()
                    .add_routes(api(access::Transport::Local))
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::TcpListenerStream::new(l),
                        shutdown.clone(),
                    )
                    .await
            }
            None => Ok(()),
        }
    };
    let main = async {
        match &main_transport {
            access::Transport::Tls(sec) => {
                let tls = tonic::transport::ServerTlsConfig::new()
                    .identity(tonic::transport::Identity::from_pem(
                        &sec.tls.server_cert_pem,
                        &sec.tls.server_key_pem,
                    ))
                    .client_ca_root(tonic::transport::Certificate::from_pem(
                        &sec.tls.ca_cert_pem,
                    ))
                    // A Mac that is pairing has no certificate yet; every handler checks identity.
                    .client_auth_optional(true);
                tracing::info!(%addr, ca = %sec.tls.ca_fingerprint(), "serving TLS");
                builder()
                    .tls_config(tls)?
                    .add_routes(api(main_transport.clone()))
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::TcpListenerStream::new(listener),
                        shutdown.clone(),
                    )
                    .await
            }
            access::Transport::Local => {
                builder()
                    .add_routes(api(main_transport.clone()))
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::TcpListenerStream::new(listener),
                        shutdown.clone(),
                    )
                    .await
            }
        }
    };
    let (main, local) = tokio::join!(main, local);
    main.context("gRPC server failed")?;
    local.context("gRPC server (local_listen) failed")?;
    let _ = std::fs::remove_file(&addr_file);
    tracing::info!("stopped");
    Ok(())
}
