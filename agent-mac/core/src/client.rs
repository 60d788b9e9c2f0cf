//! A client of backstopd. Errors are one line that says what failed and what to do.

use std::time::Duration;

use backstop_proto::v1 as pb;
use tonic::transport::{Channel, Endpoint};

/// A time as the contract carries it.
pub fn pb_time(t: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

/// The server address when none is given.
pub fn default_server() -> String {
    format!("http://127.0.0.1:{}", backstop_proto::DEFAULT_PORT)
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("'{0}' is not a server address (use HOST:PORT or http://HOST:PORT)")]
    BadAddress(String),
    #[error(
        "cannot reach backstopd at {server}: {reason} (is it running? pass --server or set BACKSTOP_SERVER)"
    )]
    Unreachable { server: String, reason: String },
    /// The server answered with an error; its message is already meant for people.
    #[error("{message}")]
    Server { code: tonic::Code, message: String },
}

impl ClientError {
    /// Whether the request itself was wrong (invalid name, suffix, time), rather than failing.
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            ClientError::BadAddress(_)
                | ClientError::Server {
                    code: tonic::Code::InvalidArgument,
                    ..
                }
        )
    }
}

/// The root cause of a transport error, in a few words ("connection refused").
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    while let Some(next) = cur.source() {
        cur = next;
    }
    if let Some(io) = cur.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind::*;
        return match io.kind() {
            ConnectionRefused => "connection refused".into(),
            TimedOut => "timed out".into(),
            HostUnreachable | NetworkUnreachable => "no route to host".into(),
            ConnectionReset => "connection reset".into(),
            _ => io.to_string(),
        };
    }
    cur.to_string()
}

#[derive(Clone)]
pub struct Client {
    server: String,
    channel: Channel,
}

impl Client {
    /// Connects to `server` (`HOST:PORT` or `http://HOST:PORT`).
    /// Over TLS with this machine's client certificate when it paired with that server
    /// (`backstop pair`), else plaintext (a server on loopback).
    pub async fn connect(server: &str) -> Result<Client, ClientError> {
        let creds = crate::pairing::load(&crate::pairing::config_dir(), server);
        let shown = crate::pairing::host_port(server);
        let url = match &creds {
            Some(_) => format!("https://{shown}"),
            None if server.contains("://") => server.to_string(),
            None => format!("http://{server}"),
        };
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|_| ClientError::BadAddress(server.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if let Some(c) = &creds {
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&c.ca_pem))
                .identity(tonic::transport::Identity::from_pem(
                    &c.cert_pem,
                    &c.key_pem,
                ))
                .domain_name(crate::pairing::SERVER_NAME);
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| ClientError::Unreachable {
                    server: shown.clone(),
                    reason: root_cause(&e),
                })?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| ClientError::Unreachable {
                server: shown.clone(),
                reason: root_cause(&e),
            })?;
        Ok(Client {
            server: shown,
            channel,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Messages may be large (a share with tens of thousands of snapshots).
    const MAX_MESSAGE: usize = 256 << 20;

    fn error(&self, status: tonic::Status) -> ClientError {
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::Unknown
                if status.message().contains("transport") || status.message().is_empty() =>
            {
                ClientError::Unreachable {
                    server: self.server.clone(),
                    reason: std::error::Error::source(&status)
                        .map(root_cause)
                        .unwrap_or_else(|| "the connection was lost".into()),
                }
            }
            code => ClientError::Server {
                code,
                message: if status.message().is_empty() {
                    format!(
                        "backstopd at {} answered {code:?} ({}); is it an older version than this backstop?",
                        self.server,
                        code.description()
                    )
                } else {
                    status.message().to_string()
                },
            },
        }
    }

    pub async fn server_info(&self) -> Result<pb::ServerInfo, ClientError> {
        let mut c = pb::server_service_client::ServerServiceClient::new(self.channel.clone())
            .max_decoding_message_size(Self::MAX_MESSAGE);
        c.get_server_info(pb::GetServerInfoRequest {})
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.error(s))
    }

    pub async fn create_snapshot(
        &self,
        req: pb::CreateSnapshotRequest,
    ) -> Result<pb::CreateSnapshotResponse, ClientError> {
        let mut c = pb::snapshot_service_client::SnapshotServiceClient::new(self.channel.clone())
            .max_decoding_message_size(Self::MAX_MESSAGE);
        c.create_snapshot(req)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.error(s))
    }

    pub async fn list_snapshots(
        &self,
        share: &str,
    ) -> Result<pb::ListSnapshotsResponse, ClientError> {
        let mut c = pb::snapshot_service_client::SnapshotServiceClient::new(self.channel.clone())
            .max_decoding_message_size(Self::MAX_MESSAGE);
        c.list_snapshots(pb::ListSnapshotsRequest {
            share: share.to_string(),
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| self.error(s))
    }

    pub async fn adopt(&self, share: &str) -> Result<pb::AdoptSnapshotsResponse, ClientError> {
        let mut c = pb::snapshot_service_client::SnapshotServiceClient::new(self.channel.clone())
            .max_decoding_message_size(Self::MAX_MESSAGE);
        c.adopt_snapshots(pb::AdoptSnapshotsRequest {
            share: share.to_string(),
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| self.error(s))
    }

    pub async fn prune(&self, req: pb::PruneRequest) -> Result<pb::PruneResponse, ClientError> {
        let mut c = pb::retention_service_client::RetentionServiceClient::new(self.channel.clone())
            .max_decoding_message_size(Self::MAX_MESSAGE);
        c.prune(req)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.error(s))
    }

    pub async fn set_keep(
        &self,
        share: &str,
        snapshot: &str,
        keep: bool,
    ) -> Result<pb::Snapshot, ClientError> {
        let mut c = pb::retention_service_client::RetentionServiceClient::new(self.channel.clone());
        c.set_keep(pb::SetKeepRequest {
            share: share.to_string(),
            snapshot: snapshot.to_string(),
            keep,
        })
        .await
        .map(|r| r.into_inner().snapshot.unwrap_or_default())
        .map_err(|s| self.error(s))
    }

    pub async fn health(&self) -> Result<pb::HealthReport, ClientError> {
        let mut c = pb::health_service_client::HealthServiceClient::new(self.channel.clone())
            .max_decoding_message_size(Self::MAX_MESSAGE);
        c.get_health(pb::GetHealthRequest {})
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.error(s))
    }

    pub async fn scrub(&self, pool: &str, stop: bool) -> Result<pb::ScrubResponse, ClientError> {
        let mut c = pb::health_service_client::HealthServiceClient::new(self.channel.clone());
        c.scrub(pb::ScrubRequest {
            pool: pool.to_string(),
            stop,
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| self.error(s))
    }

    pub async fn report_backup(&self, r: pb::BackupReport) -> Result<u64, ClientError> {
        let mut c = pb::agent_service_client::AgentServiceClient::new(self.channel.clone());
        c.report_backup(r)
            .await
            .map(|r| r.into_inner().cursor)
            .map_err(|s| self.error(s))
    }

    /// The plan a recovery request would carry out (changes nothing).
    pub async fn plan_recovery(
        &self,
        r: pb::RecoveryRequest,
    ) -> Result<pb::RecoveryPlan, ClientError> {
        let mut c = pb::recovery_service_client::RecoveryServiceClient::new(self.channel.clone());
        c.plan_recovery(r)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| self.error(s))
    }

    /// Carries out a recovery request: the plan, each step, then the result.
    pub async fn recover(&self, r: pb::RecoveryRequest) -> Result<Updates, ClientError> {
        let mut c = pb::recovery_service_client::RecoveryServiceClient::new(self.channel.clone());
        let stream = c.recover(r).await.map_err(|s| self.error(s))?.into_inner();
        Ok(Updates {
            client: self.clone(),
            stream,
        })
    }

    pub async fn doctor(&self, share: &str) -> Result<pb::DoctorReport, ClientError> {
        let mut c = pb::recovery_service_client::RecoveryServiceClient::new(self.channel.clone());
        c.doctor(pb::DoctorRequest {
            share: share.to_string(),
        })
        .await
        .map(|r| r.into_inner())
        .map_err(|s| self.error(s))
    }

    /// Subscribes to events after `after_cursor`; see `SubscribeRequest`.
    pub async fn subscribe(
        &self,
        after_cursor: u64,
        follow: bool,
    ) -> Result<Subscription, ClientError> {
        let mut c = pb::event_service_client::EventServiceClient::new(self.channel.clone())
            .max_decoding_message_size(Self::MAX_MESSAGE);
        let stream = c
            .subscribe(pb::SubscribeRequest {
                after_cursor,
                follow,
                live_only: false,
            })
            .await
            .map_err(|s| self.error(s))?
            .into_inner();
        Ok(Subscription {
            client: self.clone(),
            stream,
        })
    }
}

pub struct Subscription {
    client: Client,
    stream: tonic::Streaming<pb::SubscribeResponse>,
}

impl Subscription {
    /// The next item, or `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<pb::subscribe_response::Item>, ClientError> {
        loop {
            match self.stream.message().await {
                Ok(Some(pb::SubscribeResponse { item: Some(item) })) => return Ok(Some(item)),
                // An item of a kind this client does not know: skip it.
                Ok(Some(pb::SubscribeResponse { item: None })) => continue,
                Ok(None) => return Ok(None),
                Err(s) => return Err(self.client.error(s)),
            }
        }
    }
}

/// The updates of a running recovery.
pub struct Updates {
    client: Client,
    stream: tonic::Streaming<pb::RecoveryUpdate>,
}

impl Updates {
    /// The next update, or `None` when the recovery ended.
    pub async fn next(&mut self) -> Result<Option<pb::recovery_update::Update>, ClientError> {
        loop {
            match self.stream.message().await {
                Ok(Some(pb::RecoveryUpdate { update: Some(u) })) => return Ok(Some(u)),
                Ok(Some(pb::RecoveryUpdate { update: None })) => continue,
                Ok(None) => return Ok(None),
                Err(s) => return Err(self.client.error(s)),
            }
        }
    }
}
