//! The tonic services: requests to the cores, results and errors back to the contract. No logic
//! of its own beyond translation.

use std::pin::Pin;
use std::sync::Arc;

use backstop_proto::v1 as pb;
use jiff::Timestamp;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::access::{Access, Transport};
use crate::events::{Delivery, Event, EventKind, Severity};
use crate::health::status::{DataErrors, Role, Scan, ScanKind};
use crate::health::watcher::{HealthError, PoolReport, Watcher};
use crate::pruning::{PruneReport, PruneRequest, Trigger};
use crate::recovery::executor::Error as RecoveryError;
use crate::recovery::plan::CnidHandling;
use crate::recovery::{Mode, Operation, Progress, Recovery, RecoveryPlan, Target};
use crate::retention::Decision;
use crate::security::authz::{Action, Identity, event_visible, share_visible};
use crate::share::{Share, ShareSpace};
use crate::snapshot::{Origin, Snapshot, Verification};
use crate::snapshotter::{CreateRequest, Error, Snapshotter};

#[derive(Clone)]
pub struct Api {
    core: Arc<Snapshotter>,
    health: Arc<Watcher>,
    recovery: Arc<Recovery>,
    access: Access,
}

impl Api {
    pub fn new(
        core: Arc<Snapshotter>,
        health: Arc<Watcher>,
        recovery: Arc<Recovery>,
        access: Access,
    ) -> Api {
        Api {
            core,
            health,
            recovery,
            access,
        }
    }

    pub fn routes(self) -> tonic::service::Routes {
        let api = Arc::new(self);
        tonic::service::Routes::new(pb::server_service_server::ServerServiceServer::from_arc(
            api.clone(),
        ))
        .add_service(pb::snapshot_service_server::SnapshotServiceServer::from_arc(api.clone()))
        .add_service(pb::retention_service_server::RetentionServiceServer::from_arc(api.clone()))
        .add_service(pb::health_service_server::HealthServiceServer::from_arc(
            api.clone(),
        ))
        .add_service(pb::agent_service_server::AgentServiceServer::from_arc(
            api.clone(),
        ))
        .add_service(pb::recovery_service_server::RecoveryServiceServer::from_arc(api.clone()))
        .add_service(pb::pairing_service_server::PairingServiceServer::from_arc(
            api.clone(),
        ))
        .add_service(pb::event_service_server::EventServiceServer::from_arc(api))
    }
}

fn status(e: Error) -> Status {
    let msg = e.to_string();
    match e {
        Error::UnknownShare { .. } => Status::not_found(msg),
        Error::InvalidInput(_) => Status::invalid_argument(msg),
        Error::MissingDataset { .. } => Status::failed_precondition(msg),
        Error::NoFreeName(_) => Status::already_exists(msg),
        Error::SnapshotNotFound { .. } => Status::not_found(msg),
        Error::NotManaged { .. } => Status::failed_precondition(msg),
        Error::Zfs(_) | Error::Vanished(_) | Error::Events(_) => {
            tracing::error!("{msg}");
            Status::internal(msg)
        }
    }
}

fn ts(t: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

fn from_ts(t: &prost_types::Timestamp) -> Result<Timestamp, Status> {
    Timestamp::new(t.seconds, t.nanos)
        .map_err(|e| Status::invalid_argument(format!("invalid timestamp: {e}")))
}

fn origin_to_pb(o: Option<Origin>) -> pb::SnapshotOrigin {
    match o {
        None => pb::SnapshotOrigin::Unspecified,
        Some(Origin::Manual) => pb::SnapshotOrigin::Manual,
        Some(Origin::Backup) => pb::SnapshotOrigin::Backup,
        Some(Origin::Adopted) => pb::SnapshotOrigin::Adopted,
    }
}

pub fn snapshot_to_pb(s: &Snapshot) -> pb::Snapshot {
    pb::Snapshot {
        name: s.name.clone(),
        share: s.share.clone(),
        full_name: s.full_name.clone(),
        managed: s.managed,
        backup_time: s.backup_time.map(ts),
        created: Some(ts(s.created)),
        used: s.used,
        referenced: s.referenced,
        origin: origin_to_pb(s.origin).into(),
        backup_id: s.backup_id.clone().unwrap_or_default(),
        verification: match s.verification {
            Verification::Unknown => pb::Verification::Unknown,
            Verification::Good => pb::Verification::Good,
            Verification::Bad => pb::Verification::Bad,
        }
        .into(),
        keep: s.keep,
        holds: s.holds,
    }
}

fn share_to_pb(s: &Share) -> pb::Share {
    pb::Share {
        name: s.name.clone(),
        dataset: s.dataset.clone(),
    }
}

fn space_to_pb(s: &ShareSpace) -> pb::ShareSpace {
    pb::ShareSpace {
        used: s.used,
        used_by_snapshots: s.used_by_snapshots,
        available: s.available,
        referenced: s.referenced,
    }
}

pub fn event_to_pb(e: &Event) -> pb::Event {
    use pb::event::Kind;
    let kind = match &e.kind {
        EventKind::ServerStarted { version } => Some(Kind::ServerStarted(pb::ServerStarted {
            version: version.clone(),
        })),
        EventKind::SnapshotCreated { snapshot } => {
            Some(Kind::SnapshotCreated(pb::SnapshotCreated {
                snapshot: Some(snapshot_to_pb(snapshot)),
            }))
        }
        EventKind::SnapshotsAdopted { names } => {
            Some(Kind::SnapshotsAdopted(pb::SnapshotsAdopted {
                names: names.clone(),
            }))
        }
        EventKind::SnapshotsPruned {
            destroyed,
            failed,
            freed,
            trigger,
        } => Some(Kind::SnapshotsPruned(pb::SnapshotsPruned {
            destroyed: destroyed.clone(),
            failed: failed.iter().map(failure_to_pb).collect(),
            freed: *freed,
            trigger: trigger.as_str().to_string(),
        })),
        EventKind::PoolHealthChanged {
            pool,
            device,
            change,
            state,
            read,
            write,
            cksum,
            repaired,
        } => Some(Kind::PoolHealthChanged(pb::PoolHealthChanged {
            pool: pool.clone(),
            device: device.clone().unwrap_or_default(),
            change: change.clone(),
            state: state.clone(),
            read: *read,
            write: *write,
            cksum: *cksum,
            repaired: *repaired,
        })),
        EventKind::BackupEnded {
            outcome,
            code,
            reason,
            backup,
        } => Some(Kind::BackupEnded(pb::BackupEnded {
            outcome: outcome.clone(),
            code: *code,
            reason: reason.clone(),
            backup: backup.clone(),
        })),
        EventKind::VerificationFailed {
            bundle,
            state,
            newest_good,
        } => Some(Kind::VerificationFailed(pb::VerificationFailed {
            bundle: bundle.clone(),
            state: *state,
            newest_good: newest_good
                .as_ref()
                .map(|s| s.name.clone())
                .unwrap_or_default(),
            newest_good_time: newest_good
                .as_ref()
                .map(|s| ts(s.backup_time.unwrap_or(s.created))),
        })),
        EventKind::Recovery {
            operation,
            phase,
            target,
            mode,
            step,
            total,
            kept,
        } => Some(Kind::Recovery(pb::RecoveryEvent {
            operation: operation.clone(),
            phase: phase.clone(),
            target: target.clone(),
            mode: mode.clone(),
            step: *step,
            total: *total,
            kept: kept.clone(),
        })),
        EventKind::CnidChecked {
            clean,
            rebuilt,
            problems,
            millis,
        } => Some(Kind::CnidChecked(pb::CnidChecked {
            clean: *clean,
            rebuilt: *rebuilt,
            problems: problems.clone(),
            millis: *millis,
        })),
        EventKind::Other => None,
    };
    pb::Event {
        cursor: e.cursor,
        at: Some(ts(e.at)),
        severity: severity_to_pb(e.severity).into(),
        share: e.share.clone().unwrap_or_default(),
        summary: e.summary.clone(),
        kind,
    }
}

#[tonic::async_trait]
impl pb::server_service_server::ServerService for Api {
    async fn get_server_info(
        &self,
        req: Request<pb::GetServerInfoRequest>,
    ) -> Result<Response<pb::ServerInfo>, Status> {
        let who = self.access.check(&req, &Action::ServerInfo)?;
        let info = self.core.zfs_info();
        let (oldest, latest) = self.core.events().bounds();
        Ok(Response::new(pb::ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            zfs: Some(pb::ZfsInfo {
                implementation: info.implementation.name().to_string(),
                version: info.version.clone(),
                capabilities: info.capabilities.names(),
            }),
            shares: self
                .core
                .shares()
                .filter(|s| share_visible(&who, &s.name))
                .map(share_to_pb)
                .collect(),
            oldest_event_cursor: oldest,
            latest_event_cursor: latest,
        }))
    }
}

#[tonic::async_trait]
impl pb::snapshot_service_server::SnapshotService for Api {
    async fn create_snapshot(
        &self,
        req: Request<pb::CreateSnapshotRequest>,
    ) -> Result<Response<pb::CreateSnapshotResponse>, Status> {
        let action = Action::Snapshot {
            share: req.get_ref().share.clone(),
        };
        let who = self.access.check(&req, &action)?;
        let source = req.remote_addr();
        let result = self.create_snapshot_as(req.into_inner()).await;
        self.access.audited(&who, source, &action, result)
    }

    async fn list_snapshots(
        &self,
        req: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        self.access.check(
            &req,
            &Action::List {
                share: req.get_ref().share.clone(),
            },
        )?;
        self.list_snapshots_as(req.into_inner()).await
    }

    async fn adopt_snapshots(
        &self,
        req: Request<pb::AdoptSnapshotsRequest>,
    ) -> Result<Response<pb::AdoptSnapshotsResponse>, Status> {
        let action = Action::Adopt {
            share: req.get_ref().share.clone(),
        };
        let who = self.access.check(&req, &action)?;
        let source = req.remote_addr();
        let result = self.adopt_as(req.into_inner()).await;
        self.access.audited(&who, source, &action, result)
    }
}

impl Api {
    async fn create_snapshot_as(
        &self,
        r: pb::CreateSnapshotRequest,
    ) -> Result<Response<pb::CreateSnapshotResponse>, Status> {
        let origin = match r.origin() {
            pb::SnapshotOrigin::Unspecified | pb::SnapshotOrigin::Manual => Origin::Manual,
            pb::SnapshotOrigin::Backup => Origin::Backup,
            pb::SnapshotOrigin::Adopted => {
                return Err(Status::invalid_argument(
                    "origin ADOPTED is only set by `backstop adopt`",
                ));
            }
        };
        let create = CreateRequest {
            share: r.share,
            suffix: r.suffix,
            backup_time: r.backup_time.as_ref().map(from_ts).transpose()?,
            backup_id: r.backup_id,
            origin: Some(origin),
        };
        let (snap, created) = self.core.create(create).await.map_err(status)?;
        if created && origin == Origin::Backup {
            // Prune after every backup snapshot, without holding up the answer.
            let core = self.core.clone();
            let share = snap.share.clone();
            tokio::spawn(async move {
                let req = PruneRequest {
                    share: share.clone(),
                    dry_run: false,
                    as_of: None,
                    trigger: Trigger::AfterSnapshot,
                };
                if let Err(e) = core.prune(req).await {
                    tracing::warn!(%share, "prune after snapshot failed: {e}");
                }
            });
        }
        Ok(Response::new(pb::CreateSnapshotResponse {
            snapshot: Some(snapshot_to_pb(&snap)),
            created,
        }))
    }

    async fn list_snapshots_as(
        &self,
        r: pb::ListSnapshotsRequest,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        let listing = self.core.list(&r.share).await.map_err(status)?;
        Ok(Response::new(pb::ListSnapshotsResponse {
            share: Some(share_to_pb(&listing.share)),
            space: Some(space_to_pb(&listing.space)),
            snapshots: listing.snapshots.iter().map(snapshot_to_pb).collect(),
        }))
    }

    async fn adopt_as(
        &self,
        r: pb::AdoptSnapshotsRequest,
    ) -> Result<Response<pb::AdoptSnapshotsResponse>, Status> {
        let adoption = self.core.adopt(&r.share).await.map_err(status)?;
        Ok(Response::new(pb::AdoptSnapshotsResponse {
            adopted: adoption.adopted.iter().map(snapshot_to_pb).collect(),
            skipped: adoption.skipped,
        }))
    }
}

fn failure_to_pb((name, reason): &(String, String)) -> pb::DestroyFailure {
    pb::DestroyFailure {
        name: name.clone(),
        reason: reason.clone(),
    }
}

fn report_to_pb(r: &PruneReport) -> pb::PruneResponse {
    // Entries are oldest first already.
    let plan: Vec<pb::PlanEntry> = r
        .plan
        .entries
        .iter()
        .map(|e| pb::PlanEntry {
            name: e.name.clone(),
            decision: match e.decision {
                Decision::Keep => pb::Decision::Keep,
                Decision::Destroy => pb::Decision::Destroy,
                Decision::Foreign => pb::Decision::Foreign,
            }
            .into(),
            reasons: e.reasons.iter().map(|r| r.to_string()).collect(),
            used: e.used,
            backup_time: Some(ts(e.time)),
        })
        .collect();
    pb::PruneResponse {
        share: r.share.clone(),
        dry_run: r.dry_run,
        plan,
        used_by_destroyed: r.used_by_destroyed,
        reclaim_estimate: r.reclaim_estimate,
        destroyed: r.destroyed.clone(),
        failed: r.failed.iter().map(failure_to_pb).collect(),
        spared: r.spared.clone(),
        freed: r.freed,
    }
}

#[tonic::async_trait]
impl pb::retention_service_server::RetentionService for Api {
    async fn prune(
        &self,
        req: Request<pb::PruneRequest>,
    ) -> Result<Response<pb::PruneResponse>, Status> {
        let action = Action::Prune {
            share: req.get_ref().share.clone(),
        };
        let who = self.access.check(&req, &action)?;
        let source = req.remote_addr();
        let r = req.into_inner();
        let dry_run = r.dry_run;
        let result = self.prune_as(r).await;
        if dry_run {
            result
        } else {
            self.access.audited(&who, source, &action, result)
        }
    }

    async fn set_keep(
        &self,
        req: Request<pb::SetKeepRequest>,
    ) -> Result<Response<pb::SetKeepResponse>, Status> {
        let action = Action::Keep {
            share: req.get_ref().share.clone(),
        };
        let who = self.access.check(&req, &action)?;
        let source = req.remote_addr();
        let result = self.set_keep_as(req.into_inner()).await;
        self.access.audited(&who, source, &action, result)
    }
}

impl Api {
    async fn prune_as(&self, r: pb::PruneRequest) -> Result<Response<pb::PruneResponse>, Status> {
        let report = self
            .core
            .prune(PruneRequest {
                share: r.share,
                dry_run: r.dry_run,
                as_of: r.as_of.as_ref().map(from_ts).transpose()?,
                trigger: Trigger::Request,
            })
            .await
            .map_err(status)?;
        Ok(Response::new(report_to_pb(&report)))
    }

    async fn set_keep_as(
        &self,
        r: pb::SetKeepRequest,
    ) -> Result<Response<pb::SetKeepResponse>, Status> {
        let snap = self
            .core
            .set_keep(&r.share, &r.snapshot, r.keep)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SetKeepResponse {
            snapshot: Some(snapshot_to_pb(&snap)),
        }))
    }
}

fn health_status(e: HealthError) -> Status {
    let msg = e.to_string();
    match e {
        HealthError::UnknownPool { .. } => Status::not_found(msg),
        _ => {
            tracing::error!("{msg}");
            Status::internal(msg)
        }
    }
}

fn severity_to_pb(s: Severity) -> pb::Severity {
    match s {
        Severity::Info => pb::Severity::Info,
        Severity::Warning => pb::Severity::Warning,
        Severity::Critical => pb::Severity::Critical,
    }
}

fn civil_ts(t: Option<jiff::civil::DateTime>) -> Option<prost_types::Timestamp> {
    let tz = jiff::tz::TimeZone::system();
    t.and_then(|t| tz.to_ambiguous_timestamp(t).compatible().ok())
        .map(ts)
}

fn pool_report_to_pb(r: &PoolReport) -> pb::PoolHealth {
    let p = &r.status;
    let kind = |k: &ScanKind| match k {
        ScanKind::Scrub => "scrub",
        ScanKind::Resilver => "resilver",
    };
    let scan = match &p.scan {
        Scan::None | Scan::Other(_) => pb::ScanInfo {
            state: "none".into(),
            ..Default::default()
        },
        Scan::InProgress {
            kind: k,
            since,
            percent,
            time_left,
            ..
        } => pb::ScanInfo {
            kind: kind(k).into(),
            state: "in_progress".into(),
            percent: percent.unwrap_or(0.0),
            repaired: r.repaired,
            at: civil_ts(*since),
            time_left: time_left.clone().unwrap_or_default(),
            ..Default::default()
        },
        Scan::Finished {
            kind: k,
            errors,
            at,
            ..
        } => pb::ScanInfo {
            kind: kind(k).into(),
            state: "finished".into(),
            percent: 100.0,
            repaired: r.repaired,
            errors: *errors,
            at: civil_ts(*at),
            ..Default::default()
        },
        Scan::Canceled { kind: k, at } => pb::ScanInfo {
            kind: kind(k).into(),
            state: "canceled".into(),
            at: civil_ts(*at),
            ..Default::default()
        },
    };
    let (errors, error_files) = match &p.errors {
        DataErrors::None => ("No known data errors".to_string(), Vec::new()),
        DataErrors::Count(n) => (format!("{n} data errors"), Vec::new()),
        DataErrors::Files(f) => (format!("Permanent errors in {} files", f.len()), f.clone()),
        DataErrors::Other(t) => (t.clone(), Vec::new()),
    };
    pb::PoolHealth {
        name: p.name.clone(),
        state: p.state.clone(),
        verdict: r.verdict.clone(),
        severity: severity_to_pb(r.severity).into(),
        status: p.status.clone().unwrap_or_default(),
        action: p.action.clone().unwrap_or_default(),
        scan: Some(scan),
        next_scrub: r.next_scrub.map(ts),
        devices: p
            .devices
            .iter()
            .map(|d| pb::DeviceHealth {
                name: d.name.clone(),
                role: match d.role {
                    Role::Pool => "pool",
                    Role::Data => "data",
                    Role::Log => "log",
                    Role::Cache => "cache",
                    Role::Spare => "spare",
                    Role::Special => "special",
                    Role::Dedup => "dedup",
                }
                .into(),
                depth: d.depth as u32,
                state: d.state.clone(),
                read: d.read.value,
                write: d.write.value,
                cksum: d.cksum.value,
                approximate: d.read.approximate || d.write.approximate || d.cksum.approximate,
                note: d.note.clone().unwrap_or_default(),
            })
            .collect(),
        errors,
        error_files,
    }
}

#[tonic::async_trait]
impl pb::health_service_server::HealthService for Api {
    async fn get_health(
        &self,
        req: Request<pb::GetHealthRequest>,
    ) -> Result<Response<pb::HealthReport>, Status> {
        self.access.check(&req, &Action::Health)?;
        let reports = self.health.report().await.map_err(health_status)?;
        Ok(Response::new(pb::HealthReport {
            pools: reports.iter().map(pool_report_to_pb).collect(),
        }))
    }

    async fn scrub(
        &self,
        req: Request<pb::ScrubRequest>,
    ) -> Result<Response<pb::ScrubResponse>, Status> {
        let action = Action::Scrub {
            pool: req.get_ref().pool.clone(),
        };
        let who = self.access.check(&req, &action)?;
        let source = req.remote_addr();
        let r = req.into_inner();
        let result = self
            .health
            .scrub(&r.pool, r.stop)
            .await
            .map_err(health_status)
            .map(|message| {
                Response::new(pb::ScrubResponse {
                    pool: r.pool.clone(),
                    message,
                })
            });
        self.access.audited(&who, source, &action, result)
    }
}

#[tonic::async_trait]
impl pb::agent_service_server::AgentService for Api {
    async fn report_backup(
        &self,
        req: Request<pb::BackupReport>,
    ) -> Result<Response<pb::ReportBackupResponse>, Status> {
        let action = Action::ReportBackup {
            share: req.get_ref().share.clone(),
        };
        let who = self.access.check(&req, &action)?;
        let source = req.remote_addr();
        let r = req.into_inner();
        let result = self.report_backup_as(r);
        self.access.audited(&who, source, &action, result)
    }
}

impl Api {
    fn report_backup_as(
        &self,
        r: pb::BackupReport,
    ) -> Result<Response<pb::ReportBackupResponse>, Status> {
        let event = self
            .core
            .report_backup(crate::snapshotter::BackupReport {
                share: r.share,
                outcome: r.outcome,
                code: r.code,
                reason: r.reason,
                backup: r.backup,
                explanation: r.explanation,
            })
            .map_err(status)?;
        Ok(Response::new(pb::ReportBackupResponse {
            cursor: event.cursor,
        }))
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::event_service_server::EventService for Api {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<EventStream>, Status> {
        use pb::subscribe_response::Item;
        let who = self.access.check(&req, &Action::Subscribe)?;
        let r = req.into_inner();
        let rx = self
            .core
            .events()
            .subscribe(r.after_cursor, r.follow, r.live_only);
        if let Identity::Client(_) = &who {
            return Ok(Response::new(self.client_stream(who, rx)));
        }
        let stream = ReceiverStream::new(rx).map(|d| {
            let item = match d {
                Delivery::Event(e) => Item::Event(event_to_pb(&e)),
                Delivery::Missed { after, oldest_kept } => Item::Missed(pb::EventsMissed {
                    after_cursor: after,
                    oldest_kept_cursor: oldest_kept,
                }),
                Delivery::CaughtUp { latest } => Item::CaughtUp(pb::CaughtUp {
                    latest_cursor: latest,
                }),
            };
            Ok(pb::SubscribeResponse { item: Some(item) })
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

impl Api {
    /// A paired client's event stream: only the events of its shares (and those about no
    /// share), and it ends as soon as the client is revoked.
    fn client_stream(
        &self,
        who: Identity,
        mut rx: tokio::sync::mpsc::Receiver<Delivery>,
    ) -> EventStream {
        use pb::subscribe_response::Item;
        let (tx, out) = tokio::sync::mpsc::channel(64);
        let access = self.access.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                let d = tokio::select! {
                    d = rx.recv() => match d {
                        Some(d) => d,
                        None => break,
                    },
                    _ = tick.tick() => {
                        if let Err(status) = access.still_allowed(&who, &Action::Subscribe) {
                            let _ = tx.send(Err(status)).await;
                            break;
                        }
                        continue;
                    }
                };
                let item = match d {
                    Delivery::Event(e) if event_visible(&who, e.share.as_deref()) => {
                        Item::Event(event_to_pb(&e))
                    }
                    Delivery::Event(_) => continue,
                    Delivery::Missed { after, oldest_kept } => Item::Missed(pb::EventsMissed {
                        after_cursor: after,
                        oldest_kept_cursor: oldest_kept,
                    }),
                    Delivery::CaughtUp { latest } => Item::CaughtUp(pb::CaughtUp {
                        latest_cursor: latest,
                    }),
                };
                if tx
                    .send(Ok(pb::SubscribeResponse { item: Some(item) }))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Box::pin(ReceiverStream::new(out))
    }
}

fn recovery_status(e: RecoveryError) -> Status {
    let msg = e.to_string();
    match e {
        RecoveryError::Share(e) => status(e),
        RecoveryError::Plan(_) => Status::failed_precondition(msg),
        RecoveryError::Busy(..) => Status::aborted(msg),
        RecoveryError::LiveSession { .. } => Status::failed_precondition(msg),
        RecoveryError::Service { .. } => Status::failed_precondition(msg),
        RecoveryError::Failed(_) | RecoveryError::Journal(_) => Status::internal(msg),
    }
}

fn recovery_request(r: pb::RecoveryRequest) -> Result<crate::recovery::Request, Status> {
    let operation = match r.operation.as_str() {
        "" | "restore" => Operation::Restore,
        "undo" => Operation::Undo,
        "finalize" => Operation::Finalize,
        other => {
            return Err(Status::invalid_argument(format!(
                "operation '{}' is not known; use restore, undo or finalize",
                other.escape_debug()
            )));
        }
    };
    let mode = Mode::parse(&r.mode).ok_or_else(|| {
        Status::invalid_argument(format!(
            "mode '{}' is not known; use clone-swap (the default) or rollback",
            r.mode.escape_debug()
        ))
    })?;
    let target = match (r.to.as_str(), r.last_good) {
        ("", false) => Target::Newest,
        ("", true) => Target::LastGood,
        (_, true) => {
            return Err(Status::invalid_argument(
                "give either a snapshot (--to) or --last-good, not both",
            ));
        }
        (name, false) => {
            crate::snapshot::check_snapshot_name(name)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            Target::Named(name.to_string())
        }
    };
    Ok(crate::recovery::Request {
        share: r.share,
        operation,
        target,
        mode,
        force: r.force,
        dry_run: false,
    })
}

fn plan_to_pb(p: &RecoveryPlan) -> pb::RecoveryPlan {
    let (cnid, cnid_stable) = match &p.cnid {
        CnidHandling::NotApplicable => ("none", true),
        CnidHandling::Scan { stable } => ("scan", *stable),
        CnidHandling::Rebuild { .. } => ("rebuild", false),
    };
    pb::RecoveryPlan {
        operation: p.operation.as_str().into(),
        share: p.share.clone(),
        dataset: p.dataset.clone(),
        mode: p.mode.as_str().into(),
        target: p.target.clone(),
        keeps: p.keeps.clone().unwrap_or_default(),
        destroys: p.destroys.clone(),
        frees: p.frees.unwrap_or(0),
        cnid: cnid.into(),
        cnid_stable,
        warnings: p.warnings.clone(),
        steps: p.steps.iter().map(|s| s.describe()).collect(),
    }
}

type RecoveryStream = Pin<Box<dyn Stream<Item = Result<pb::RecoveryUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl pb::recovery_service_server::RecoveryService for Api {
    type RecoverStream = RecoveryStream;

    async fn plan_recovery(
        &self,
        req: Request<pb::RecoveryRequest>,
    ) -> Result<Response<pb::RecoveryPlan>, Status> {
        self.access.check(
            &req,
            &Action::PlanRestore {
                share: req.get_ref().share.clone(),
            },
        )?;
        let r = recovery_request(req.into_inner())?;
        let plan = self.recovery.plan(&r).await.map_err(recovery_status)?;
        Ok(Response::new(plan_to_pb(&plan)))
    }

    async fn recover(
        &self,
        req: Request<pb::RecoveryRequest>,
    ) -> Result<Response<RecoveryStream>, Status> {
        use pb::recovery_update::Update;
        let action = Action::Restore {
            share: req.get_ref().share.clone(),
        };
        let who = self.access.check(&req, &action)?;
        let source = req.remote_addr();
        let r = recovery_request(req.into_inner())?;
        let access = self.access.clone();
        let (ptx, mut prx) = tokio::sync::mpsc::channel::<Progress>(64);
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<pb::RecoveryUpdate, Status>>(64);
        // The plan runs to its end even when the client goes away.
        let recovery = self.recovery.clone();
        let job = tokio::spawn(async move { recovery.run(r, ptx).await });
        tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                let update = match p {
                    Progress::Plan(plan) => Update::Plan(plan_to_pb(&plan)),
                    Progress::Step {
                        index,
                        total,
                        description,
                    } => Update::Step(pb::RecoveryStep {
                        index: index as u32 + 1,
                        total: total as u32,
                        description,
                    }),
                };
                let _ = tx
                    .send(Ok(pb::RecoveryUpdate {
                        update: Some(update),
                    }))
                    .await;
            }
            let last = match job.await {
                Ok(Ok(outcome)) => {
                    access.record(&who, source, &action, Ok(()));
                    Ok(Ok(outcome))
                }
                Ok(Err(e)) => {
                    access.record(&who, source, &action, Err(e.to_string()));
                    Ok(Err(e))
                }
                Err(e) => Err(e),
            };
            let last = match last {
                Ok(Ok(outcome)) => {
                    let summary = crate::recovery::executor::summary(&outcome);
                    Ok(pb::RecoveryUpdate {
                        update: Some(Update::Result(pb::RecoveryResult {
                            summary,
                            kept: outcome.kept.map(|k| k.dataset).unwrap_or_default(),
                            millis: outcome.millis,
                        })),
                    })
                }
                Ok(Err(e)) => Err(recovery_status(e)),
                Err(e) => Err(Status::internal(format!("the recovery task failed: {e}"))),
            };
            let _ = tx.send(last).await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn doctor(
        &self,
        req: Request<pb::DoctorRequest>,
    ) -> Result<Response<pb::DoctorReport>, Status> {
        self.access.check(
            &req,
            &Action::Doctor {
                share: req.get_ref().share.clone(),
            },
        )?;
        let share = req.into_inner().share;
        let service = self.recovery.service(&share).map_err(recovery_status)?;
        let d = service
            .doctor()
            .await
            .map_err(|e| Status::failed_precondition(format!("share '{share}': {e}")))?;
        Ok(Response::new(pb::DoctorReport {
            share,
            service: d.service,
            version: d.version,
            findings: d.findings,
            advice: d
                .advice
                .into_iter()
                .map(|(summary, lines)| pb::Advice { summary, lines })
                .collect(),
        }))
    }
}

#[tonic::async_trait]
impl pb::pairing_service_server::PairingService for Api {
    async fn pair(
        &self,
        req: Request<pb::PairRequest>,
    ) -> Result<Response<pb::PairResponse>, Status> {
        let Transport::Tls(sec) = &self.access.transport else {
            return Err(Status::failed_precondition(
                "this listener is plaintext on loopback: pairing happens over TLS (the server's non-loopback address)",
            ));
        };
        let source = req.remote_addr();
        let ip = source.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
        let r = req.into_inner();
        let sec = sec.clone();
        let (name, csr, code) = (r.name.clone(), r.csr_pem, r.code);
        let result = tokio::task::spawn_blocking(move || sec.pair(&name, &csr, &code, ip))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let action = Action::Pair;
        match result {
            Ok(p) => {
                let who = Identity::Client(p.client.clone());
                self.access.record(&who, source, &action, Ok(()));
                Ok(Response::new(pb::PairResponse {
                    client_name: p.client.name.clone(),
                    cert_pem: p.cert_pem,
                    ca_pem: p.ca_cert_pem,
                    shares: p.client.shares.clone(),
                    admin: p.client.admin,
                }))
            }
            Err(e) => {
                self.access
                    .record(&Identity::Unpaired, source, &action, Err(e.clone()));
                Err(Status::permission_denied(e))
            }
        }
    }
}
