//! Who is calling and what they may do, for the tonic layer: the transport a request came over
//! (plaintext on loopback = someone on the server; TLS = a paired client or nobody), the
//! registry of paired clients (re-read when `backstopd clients revoke` changed it), pairing, and
//! the audit log of every mutating request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use tonic::{Request, Status};

use crate::security::audit::{AuditLog, Record};
use crate::security::authz::{self, Action, Denied, Identity};
use crate::security::clients::ClientRegistry;
use crate::security::pairing::PairingStore;
use crate::security::{Paired, ca, pair_client};

/// The paired-client side of the server: only present when it serves TLS.
pub struct Security {
    pub tls: ca::Tls,
    registry: Mutex<ClientRegistry>,
    codes: Mutex<PairingStore>,
}

impl Security {
    pub fn open(state_dir: &std::path::Path, tls: ca::Tls) -> anyhow::Result<Security> {
        Ok(Security {
            tls,
            registry: Mutex::new(ClientRegistry::open(state_dir)?),
            codes: Mutex::new(PairingStore::open(state_dir)?),
        })
    }

    /// The identity behind a TLS peer certificate, from the registry as it is on disk now.
    pub fn identify(&self, leaf_der: Option<&[u8]>) -> Identity {
        let mut reg = self.registry.lock().expect("registry");
        if let Err(e) = reg.refresh() {
            tracing::warn!("cannot re-read clients.json: {e}");
        }
        Identity::from_peer_cert(&reg, leaf_der)
    }

    pub fn pair(
        &self,
        name: &str,
        csr_pem: &str,
        code: &str,
        source: std::net::IpAddr,
    ) -> Result<Paired, String> {
        let mut codes = self.codes.lock().expect("codes");
        let mut reg = self.registry.lock().expect("registry");
        pair_client(
            &mut codes,
            &mut reg,
            &self.tls,
            name,
            csr_pem,
            code,
            source,
            Timestamp::now(),
        )
        .map_err(|e| e.to_string())
    }
}

/// How requests reach one listener.
#[derive(Clone)]
pub enum Transport {
    /// Plaintext on a loopback address (or `insecure = true`): every caller is the local admin.
    Local,
    /// TLS: callers are who their client certificate says.
    Tls(Arc<Security>),
}

/// The access checks of one listener, shared by every service on it.
#[derive(Clone)]
pub struct Access {
    pub transport: Transport,
    pub audit: Arc<AuditLog>,
}

fn denied(d: Denied) -> Status {
    if d.is_unauthenticated() {
        Status::unauthenticated(d.to_string())
    } else {
        Status::permission_denied(d.to_string())
    }
}

/// The DER of the peer's leaf certificate, when it presented one.
pub fn peer_leaf<T>(req: &Request<T>) -> Option<Vec<u8>> {
    req.peer_certs()
        .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()))
}

impl Access {
    pub fn identify<T>(&self, req: &Request<T>) -> Identity {
        match &self.transport {
            Transport::Local => Identity::LocalAdmin,
            Transport::Tls(sec) => sec.identify(peer_leaf(req).as_deref()),
        }
    }

    /// Who is asking, if they may do `action`; refusals of mutating actions are audited.
    pub fn check<T>(&self, req: &Request<T>, action: &Action) -> Result<Identity, Status> {
        let who = self.identify(req);
        match authz::authorize(&who, action) {
            Ok(()) => Ok(who),
            Err(d) => {
                if action.is_mutating() {
                    self.record(&who, req.remote_addr(), action, Err(d.to_string()));
                }
                Err(denied(d))
            }
        }
    }

    /// Whether the identity still holds (a client revoked while its stream is open loses it).
    pub fn still_allowed(&self, who: &Identity, action: &Action) -> Result<(), Status> {
        let now = match (&self.transport, who) {
            (Transport::Tls(sec), Identity::Client(c)) => {
                let reg_view = sec.identify_by_fingerprint(&c.fingerprint);
                reg_view.unwrap_or(Identity::Unpaired)
            }
            _ => who.clone(),
        };
        authz::authorize(&now, action).map_err(denied)
    }

    pub fn record(
        &self,
        who: &Identity,
        source: Option<SocketAddr>,
        action: &Action,
        result: Result<(), String>,
    ) {
        let rec = Record::new(Timestamp::now(), who, source, action, result);
        if let Err(e) = self.audit.append(&rec) {
            tracing::warn!("cannot write the audit log: {e}");
        }
    }

    /// Audits a finished mutating request.
    pub fn audited<R>(
        &self,
        who: &Identity,
        source: Option<SocketAddr>,
        action: &Action,
        result: Result<R, Status>,
    ) -> Result<R, Status> {
        let outcome = match &result {
            Ok(_) => Ok(()),
            Err(s) => Err(s.message().to_string()),
        };
        self.record(who, source, action, outcome);
        result
    }
}

impl Security {
    fn identify_by_fingerprint(&self, fingerprint: &str) -> Option<Identity> {
        let mut reg = self.registry.lock().expect("registry");
        if let Err(e) = reg.refresh() {
            tracing::warn!("cannot re-read clients.json: {e}");
        }
        reg.by_fingerprint(fingerprint)
            .map(|c| Identity::Client(c.clone()))
    }
}
