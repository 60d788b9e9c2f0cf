//! The tonic services: requests to the cores, results and errors back to the contract. No logic
//! of its own beyond translation.

use std::pin::Pin;
use std::sync::Arc;

use backstop_proto::v1 as pb;
use jiff::Timestamp;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use crate::events::{Delivery, Event, EventKind, Severity};
use crate::pruning::{PruneReport, PruneRequest, Trigger};
use crate::retention::Decision;
use crate::share::{Share, ShareSpace};
use crate::snapshot::{Origin, Snapshot, Verification};
use crate::snapshotter::{CreateRequest, Error, Snapshotter};

pub struct Api {
    core: Arc<Snapshotter>,
}

impl Api {
    pub fn new(core: Arc<Snapshotter>) -> Api {
        Api { core }
    }

    pub fn routes(self) -> tonic::service::Routes {
        let api = Arc::new(self);
        tonic::service::Routes::new(pb::server_service_server::ServerServiceServer::from_arc(
            api.clone(),
        ))
        .add_service(pb::snapshot_service_server::SnapshotServiceServer::from_arc(api.clone()))
        .add_service(pb::retention_service_server::RetentionServiceServer::from_arc(api.clone()))
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
        EventKind::Other => None,
    };
    pb::Event {
        cursor: e.cursor,
        at: Some(ts(e.at)),
        severity: match e.severity {
            Severity::Info => pb::Severity::Info,
            Severity::Warning => pb::Severity::Warning,
            Severity::Critical => pb::Severity::Critical,
        }
        .into(),
        share: e.share.clone().unwrap_or_default(),
        summary: e.summary.clone(),
        kind,
    }
}

#[tonic::async_trait]
impl pb::server_service_server::ServerService for Api {
    async fn get_server_info(
        &self,
        _req: Request<pb::GetServerInfoRequest>,
    ) -> Result<Response<pb::ServerInfo>, Status> {
        let info = self.core.zfs_info();
        let (oldest, latest) = self.core.events().bounds();
        Ok(Response::new(pb::ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            zfs: Some(pb::ZfsInfo {
                implementation: info.implementation.name().to_string(),
                version: info.version.clone(),
                capabilities: info.capabilities.names(),
            }),
            shares: self.core.shares().map(share_to_pb).collect(),
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
        let r = req.into_inner();
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

    async fn list_snapshots(
        &self,
        req: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        let listing = self
            .core
            .list(&req.into_inner().share)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListSnapshotsResponse {
            share: Some(share_to_pb(&listing.share)),
            space: Some(space_to_pb(&listing.space)),
            snapshots: listing.snapshots.iter().map(snapshot_to_pb).collect(),
        }))
    }

    async fn adopt_snapshots(
        &self,
        req: Request<pb::AdoptSnapshotsRequest>,
    ) -> Result<Response<pb::AdoptSnapshotsResponse>, Status> {
        let adoption = self
            .core
            .adopt(&req.into_inner().share)
            .await
            .map_err(status)?;
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
        let r = req.into_inner();
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

    async fn set_keep(
        &self,
        req: Request<pb::SetKeepRequest>,
    ) -> Result<Response<pb::SetKeepResponse>, Status> {
        let r = req.into_inner();
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

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::event_service_server::EventService for Api {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<EventStream>, Status> {
        use pb::subscribe_response::Item;
        let r = req.into_inner();
        let rx = self
            .core
            .events()
            .subscribe(r.after_cursor, r.follow, r.live_only);
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
