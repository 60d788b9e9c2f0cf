//! The paired clients, in `STATE_DIR/clients.json` (0600): who each is (by certificate
//! fingerprint), which shares it may touch, whether it is an admin, and whether it was revoked.
//!
//! ```json
//! {"version":1,"clients":[{"name":"MattBookPro","fingerprint":"3F:A0:…","serial":"5A1C…",
//!   "shares":["MattBookPro"],"admin":false,"paired_at":"2026-03-01T12:00:00Z"}]}
//! ```
//!
//! A revoked client keeps its entry (with `revoked_at`) so `clients list` shows it; pairing a new
//! client under its name replaces that entry. Every change re-reads the file under
//! `clients.lock`, so the CLI may change it while the daemon runs; the daemon calls
//! [`ClientRegistry::refresh`] (a `stat`) to pick such changes up.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::store::{self, StoreError};
use crate::share::validate_share_name;

pub const CLIENTS_FILE: &str = "clients.json";
const LOCK_FILE: &str = "clients.lock";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// Like a share name: `[A-Za-z0-9._-]{1,64}`, not starting with `-`.
    pub name: String,
    /// Of its certificate; see [`super::ca::fingerprint`].
    pub fingerprint: String,
    /// Of its certificate, upper-case hex.
    pub serial: String,
    pub shares: Vec<String>,
    pub admin: bool,
    pub paired_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
}

impl Client {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    /// Whether it was paired for `share` (revocation aside).
    pub fn has_share(&self, share: &str) -> bool {
        self.shares.iter().any(|s| s == share)
    }
}

/// Client names follow the share name rules (they show up in the same places: logs, audit).
pub fn validate_client_name(name: &str) -> Result<(), String> {
    validate_share_name(name)
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("client name {0}")]
    InvalidName(String),
    #[error("share {0}")]
    InvalidShare(String),
    #[error(
        "a client named '{0}' is already paired; pick another name, or revoke it first (`backstopd clients revoke {0}`)"
    )]
    Duplicate(String),
    #[error("this certificate is already registered, as client '{0}'")]
    DuplicateFingerprint(String),
    #[error("no client is named '{0}'; `backstopd clients list` shows them")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    clients: Vec<Client>,
}

/// Identifies one version of the file: atomic writes replace the inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Result<Option<Stamp>, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) => {
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let inode = 0;
            Ok(Some(Stamp {
                len: m.len(),
                modified: m.modified().ok(),
                inode,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(store::io_err(path)(e)),
    }
}

/// The registry as last read. Wrap it in a lock to share it (reads are `&self`).
#[derive(Debug)]
pub struct ClientRegistry {
    path: PathBuf,
    lock_path: PathBuf,
    clients: Vec<Client>,
    stamp: Option<Stamp>,
}

impl ClientRegistry {
    /// Reads `STATE_DIR/clients.json` (none yet = no clients).
    pub fn open(state_dir: &Path) -> Result<ClientRegistry, StoreError> {
        let mut r = ClientRegistry {
            path: state_dir.join(CLIENTS_FILE),
            lock_path: state_dir.join(LOCK_FILE),
            clients: Vec::new(),
            stamp: None,
        };
        r.reload()?;
        Ok(r)
    }

    fn reload(&mut self) -> Result<(), StoreError> {
        let before = stamp(&self.path)?;
        self.clients = match store::read_optional(&self.path)? {
            None => Vec::new(),
            Some(bytes) => {
                serde_json::from_slice::<File>(&bytes)
                    .map_err(|source| StoreError::Corrupt {
                        path: self.path.clone(),
                        source,
                    })?
                    .clients
            }
        };
        self.stamp = before;
        Ok(())
    }

    /// Re-reads the file when another process changed it; true when it did.
    pub fn refresh(&mut self) -> Result<bool, StoreError> {
        if stamp(&self.path)? == self.stamp {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
    }

    /// Locks, re-reads, applies `change` and writes the result.
    fn update<T>(
        &mut self,
        change: impl FnOnce(&mut Vec<Client>) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let _lock = store::lock(&self.lock_path)?;
        self.reload()?;
        let mut clients = self.clients.clone();
        let out = change(&mut clients)?;
        let file = File {
            version: 1,
            clients,
        };
        let mut text = serde_json::to_string_pretty(&file).expect("clients serialize");
        text.push('\n');
        store::write_atomic(&self.path, text.as_bytes(), 0o600)?;
        self.clients = file.clients;
        self.stamp = stamp(&self.path)?;
        Ok(out)
    }

    /// Whether `name` could be used for a new client now (valid and not taken by an active
    /// client). Checked again by [`add`](Self::add).
    pub fn check_new_name(&self, name: &str) -> Result<(), ClientError> {
        validate_client_name(name).map_err(ClientError::InvalidName)?;
        if self
            .clients
            .iter()
            .any(|c| c.name == name && !c.is_revoked())
        {
            return Err(ClientError::Duplicate(name.to_string()));
        }
        Ok(())
    }

    /// Records a new client. Its name must be new among active clients (a revoked client of
    /// that name is replaced), its fingerprint new altogether; its shares valid names.
    pub fn add(&mut self, client: Client) -> Result<(), ClientError> {
        validate_client_name(&client.name).map_err(ClientError::InvalidName)?;
        for s in &client.shares {
            validate_share_name(s).map_err(ClientError::InvalidShare)?;
        }
        self.update(|clients| {
            if let Some(c) = clients.iter().find(|c| c.fingerprint == client.fingerprint) {
                return Err(ClientError::DuplicateFingerprint(c.name.clone()));
            }
            if clients
                .iter()
                .any(|c| c.name == client.name && !c.is_revoked())
            {
                return Err(ClientError::Duplicate(client.name.clone()));
            }
            clients.retain(|c| c.name != client.name);
            clients.push(client);
            Ok(())
        })
    }

    /// Revokes a client (from now on every request it makes is refused). Revoking a revoked
    /// client changes nothing. Returns the entry.
    pub fn revoke(&mut self, name: &str, now: Timestamp) -> Result<Client, ClientError> {
        self.update(|clients| {
            let c = clients
                .iter_mut()
                .find(|c| c.name == name)
                .ok_or_else(|| ClientError::NotFound(name.to_string()))?;
            c.revoked_at.get_or_insert(now);
            Ok(c.clone())
        })
    }

    /// Every client, revoked ones included, in pairing order.
    pub fn list(&self) -> &[Client] {
        &self.clients
    }

    pub fn get(&self, name: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// The client holding the certificate with this fingerprint (exactly as
    /// [`super::ca::fingerprint`] writes it), revoked or not.
    pub fn by_fingerprint(&self, fingerprint: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.fingerprint == fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn client(name: &str, fp: &str, shares: &[&str]) -> Client {
        Client {
            name: name.into(),
            fingerprint: fp.into(),
            serial: "4A".into(),
            shares: shares.iter().map(|s| s.to_string()).collect(),
            admin: false,
            paired_at: at("2026-03-01T12:00:00Z"),
            revoked_at: None,
        }
    }

    #[test]
    fn survives_a_reload_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ClientRegistry::open(dir.path()).unwrap();
        assert!(r.list().is_empty());
        r.add(client("MattBookPro", "AA", &["MattBookPro"]))
            .unwrap();
        r.add(client("iMac", "BB", &["iMac", "Shared"])).unwrap();
        let path = dir.path().join(CLIENTS_FILE);
        assert_eq!(store::mode(&path).unwrap(), 0o600);

        let r2 = ClientRegistry::open(dir.path()).unwrap();
        assert_eq!(r2.list(), r.list());
        assert_eq!(r2.by_fingerprint("BB").unwrap().name, "iMac");
        assert!(r2.by_fingerprint("CC").is_none());
        assert!(r2.get("iMac").unwrap().has_share("Shared"));
        assert!(!r2.get("iMac").unwrap().has_share("MattBookPro"));
    }

    #[test]
    fn names_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ClientRegistry::open(dir.path()).unwrap();
        r.add(client("iMac", "AA", &["iMac"])).unwrap();
        let e = r.add(client("iMac", "BB", &["iMac"])).unwrap_err();
        assert!(matches!(e, ClientError::Duplicate(_)), "{e}");
        assert!(e.to_string().contains("revoke"), "{e}");
        let e = r.add(client("other", "AA", &["iMac"])).unwrap_err();
        assert!(matches!(e, ClientError::DuplicateFingerprint(_)), "{e}");
        for bad in ["", "-rf", "a b", "../x", "Matt's"] {
            let e = r.add(client(bad, "CC", &["iMac"])).unwrap_err();
            assert!(matches!(e, ClientError::InvalidName(_)), "{bad:?}: {e}");
            assert!(r.check_new_name(bad).is_err());
        }
        let e = r.add(client("x", "CC", &["a/b"])).unwrap_err();
        assert!(matches!(e, ClientError::InvalidShare(_)), "{e}");
        assert!(r.check_new_name("iMac").is_err());
        assert!(r.check_new_name("iMac2").is_ok());
        assert_eq!(r.list().len(), 1);
    }

    #[test]
    fn revoke_then_pair_again_under_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = ClientRegistry::open(dir.path()).unwrap();
        r.add(client("iMac", "AA", &["iMac"])).unwrap();
        let e = r.revoke("nope", at("2026-03-02T00:00:00Z")).unwrap_err();
        assert!(matches!(e, ClientError::NotFound(_)), "{e}");
        let c = r.revoke("iMac", at("2026-03-02T00:00:00Z")).unwrap();
        assert_eq!(c.revoked_at, Some(at("2026-03-02T00:00:00Z")));
        // Idempotent: the first revocation time stays.
        let c = r.revoke("iMac", at("2026-03-03T00:00:00Z")).unwrap();
        assert_eq!(c.revoked_at, Some(at("2026-03-02T00:00:00Z")));
        assert!(r.by_fingerprint("AA").unwrap().is_revoked());
        assert!(
            ClientRegistry::open(dir.path())
                .unwrap()
                .by_fingerprint("AA")
                .unwrap()
                .is_revoked()
        );

        assert!(r.check_new_name("iMac").is_ok());
        r.add(client("iMac", "BB", &["iMac"])).unwrap();
        assert_eq!(r.list().len(), 1);
        assert!(r.by_fingerprint("AA").is_none());
        assert!(!r.by_fingerprint("BB").unwrap().is_revoked());
    }

    #[test]
    fn another_process_revoking_is_seen_on_refresh() {
        let dir = tempfile::tempdir().unwrap();
        let mut daemon = ClientRegistry::open(dir.path()).unwrap();
        daemon.add(client("iMac", "AA", &["iMac"])).unwrap();
        assert!(!daemon.refresh().unwrap());

        let mut cli = ClientRegistry::open(dir.path()).unwrap();
        cli.revoke("iMac", at("2026-03-02T00:00:00Z")).unwrap();

        assert!(!daemon.by_fingerprint("AA").unwrap().is_revoked());
        assert!(daemon.refresh().unwrap());
        assert!(daemon.by_fingerprint("AA").unwrap().is_revoked());
        // A change made from a stale view is made on the file's latest state.
        cli.add(client("Mini", "CC", &["Mini"])).unwrap();
        daemon.add(client("Air", "DD", &["Air"])).unwrap();
        let names: Vec<_> = daemon.list().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["iMac", "Mini", "Air"]);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_registry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CLIENTS_FILE), "{\"version\":1,\"clie").unwrap();
        let e = ClientRegistry::open(dir.path()).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    }
}
