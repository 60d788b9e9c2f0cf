//! Who may do what. Pure: the caller works out the [`Identity`] of a connection (see
//! [`Identity::from_peer_cert`]) and names the [`Action`] a request is about.
//!
//! | action | local admin | paired client | admin client | unpaired |
//! | --- | --- | --- | --- | --- |
//! | server info, list shares, health, subscribe | yes | yes (filtered to its shares) | yes | no |
//! | snapshot, list, adopt, prune, keep, report backup, plan restore, restore, doctor | yes | its shares only | its shares only | no |
//! | scrub, configure | yes | no | yes | no |
//! | pair (the code decides) | yes | yes | yes | yes |
//!
//! Admin rights are about the pool and the server, not other Macs' backups: an admin client
//! touches only the shares it was paired for. A revoked client is refused everything but pairing
//! again.

use super::ca;
use super::clients::{Client, ClientRegistry};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// Plaintext on loopback (or with `insecure = true`): someone on the server itself.
    LocalAdmin,
    /// A TLS client whose certificate is in the registry (revoked or not: [`authorize`] refuses
    /// revoked ones).
    Client(Client),
    /// A TLS connection without a client certificate, or with one the registry does not know
    /// (another CA's certificates never get this far: rustls refuses them in the handshake).
    Unpaired,
}

impl Identity {
    /// The identity of a TLS peer, from the DER of its leaf certificate (in tonic:
    /// `request.peer_certs()` and its first element).
    pub fn from_peer_cert(registry: &ClientRegistry, leaf_der: Option<&[u8]>) -> Identity {
        leaf_der
            .and_then(|der| registry.by_fingerprint(&ca::fingerprint(der)))
            .map_or(Identity::Unpaired, |c| Identity::Client(c.clone()))
    }

    /// For logs and the audit log: `local`, `client NAME` or `unpaired`.
    pub fn who(&self) -> String {
        match self {
            Identity::LocalAdmin => "local".to_string(),
            Identity::Client(c) => format!("client {}", c.name),
            Identity::Unpaired => "unpaired".to_string(),
        }
    }

    /// The client, when it is one that is paired and not revoked.
    fn active_client(&self) -> Option<&Client> {
        match self {
            Identity::Client(c) if !c.is_revoked() => Some(c),
            _ => None,
        }
    }
}

/// What a request does; one per kind of RPC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// GetServerInfo (which lists the shares: filter them with [`share_visible`]).
    ServerInfo,
    ListShares,
    Health,
    /// Subscribe (filter the events with [`event_visible`]).
    Subscribe,
    Snapshot {
        share: String,
    },
    List {
        share: String,
    },
    Adopt {
        share: String,
    },
    Prune {
        share: String,
    },
    Keep {
        share: String,
    },
    ReportBackup {
        share: String,
    },
    /// PlanRecovery: changes nothing.
    PlanRestore {
        share: String,
    },
    /// Recover: restore, undo and finalize.
    Restore {
        share: String,
    },
    Doctor {
        share: String,
    },
    Scrub {
        pool: String,
    },
    /// Changing the server's configuration.
    Configure,
    /// Redeeming a pairing code: authorized by the code, not the connection.
    Pair,
}

enum Needs<'a> {
    Paired,
    Share(&'a str),
    Admin,
    Nothing,
}

impl Action {
    /// A short name for logs and the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Action::ServerInfo => "server-info",
            Action::ListShares => "list-shares",
            Action::Health => "health",
            Action::Subscribe => "subscribe",
            Action::Snapshot { .. } => "snapshot",
            Action::List { .. } => "list",
            Action::Adopt { .. } => "adopt",
            Action::Prune { .. } => "prune",
            Action::Keep { .. } => "keep",
            Action::ReportBackup { .. } => "report-backup",
            Action::PlanRestore { .. } => "plan-restore",
            Action::Restore { .. } => "restore",
            Action::Doctor { .. } => "doctor",
            Action::Scrub { .. } => "scrub",
            Action::Configure => "configure",
            Action::Pair => "pair",
        }
    }

    /// The share it is about, if any.
    pub fn share(&self) -> Option<&str> {
        match self {
            Action::Snapshot { share }
            | Action::List { share }
            | Action::Adopt { share }
            | Action::Prune { share }
            | Action::Keep { share }
            | Action::ReportBackup { share }
            | Action::PlanRestore { share }
            | Action::Restore { share }
            | Action::Doctor { share } => Some(share),
            _ => None,
        }
    }

    /// What it acts on (a share or a pool), for the audit log.
    pub fn target(&self) -> Option<&str> {
        match self {
            Action::Scrub { pool } => Some(pool),
            _ => self.share(),
        }
    }

    /// Whether it changes anything (and so belongs in the audit log).
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Action::Snapshot { .. }
                | Action::Adopt { .. }
                | Action::Prune { .. }
                | Action::Keep { .. }
                | Action::ReportBackup { .. }
                | Action::Restore { .. }
                | Action::Scrub { .. }
                | Action::Configure
                | Action::Pair
        )
    }

    fn needs(&self) -> Needs<'_> {
        match self {
            Action::ServerInfo | Action::ListShares | Action::Health | Action::Subscribe => {
                Needs::Paired
            }
            Action::Scrub { .. } | Action::Configure => Needs::Admin,
            Action::Pair => Needs::Nothing,
            _ => Needs::Share(self.share().expect("share actions have a share")),
        }
    }

    fn described(&self) -> &'static str {
        match self {
            Action::Scrub { .. } => "starting or stopping a scrub",
            Action::Configure => "changing the configuration",
            _ => self.name(),
        }
    }
}

/// Why a request was refused, in one line for the person who made it. Map
/// [`NotPaired`](Denied::NotPaired) and [`Revoked`](Denied::Revoked) to `UNAUTHENTICATED`, the
/// others to `PERMISSION_DENIED` ([`Denied::is_unauthenticated`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error(
        "this client is not paired with this server; pair it with `backstop pair HOST CODE` (a code from `backstopd pair`)"
    )]
    NotPaired,
    #[error("client '{client}' was revoked; pair it again with a new code to get access back")]
    Revoked { client: String },
    #[error("client '{client}' is not paired for share '{share}'")]
    NotPairedForShare { client: String, share: String },
    #[error("{action} needs an admin client (pair with --admin)")]
    NeedsAdmin { action: &'static str },
}

impl Denied {
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, Denied::NotPaired | Denied::Revoked { .. })
    }
}

/// Whether `identity` may do `action`.
pub fn authorize(identity: &Identity, action: &Action) -> Result<(), Denied> {
    let needs = action.needs();
    let client = match identity {
        Identity::LocalAdmin => return Ok(()),
        _ if matches!(needs, Needs::Nothing) => return Ok(()),
        Identity::Unpaired => return Err(Denied::NotPaired),
        Identity::Client(c) if c.is_revoked() => {
            return Err(Denied::Revoked {
                client: c.name.clone(),
            });
        }
        Identity::Client(c) => c,
    };
    match needs {
        Needs::Paired | Needs::Nothing => Ok(()),
        Needs::Share(share) if client.has_share(share) => Ok(()),
        Needs::Share(share) => Err(Denied::NotPairedForShare {
            client: client.name.clone(),
            share: share.to_string(),
        }),
        Needs::Admin if client.admin => Ok(()),
        Needs::Admin => Err(Denied::NeedsAdmin {
            action: action.described(),
        }),
    }
}

/// Whether an event reaches a subscriber: a client sees the events of its shares and those about
/// no share (pool health, server start).
pub fn event_visible(identity: &Identity, event_share: Option<&str>) -> bool {
    match identity {
        Identity::LocalAdmin => true,
        _ => identity
            .active_client()
            .is_some_and(|c| event_share.is_none_or(|s| c.has_share(s))),
    }
}

/// Whether a share shows up in what `identity` is told (server info, share lists).
pub fn share_visible(identity: &Identity, share: &str) -> bool {
    match identity {
        Identity::LocalAdmin => true,
        _ => identity.active_client().is_some_and(|c| c.has_share(share)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(name: &str, shares: &[&str], admin: bool, revoked: bool) -> Identity {
        Identity::Client(Client {
            name: name.into(),
            fingerprint: format!("FP-{name}"),
            serial: "01".into(),
            shares: shares.iter().map(|s| s.to_string()).collect(),
            admin,
            paired_at: "2026-03-01T12:00:00Z".parse().unwrap(),
            revoked_at: revoked.then(|| "2026-03-02T12:00:00Z".parse().unwrap()),
        })
    }

    fn every_action(share: &str) -> Vec<Action> {
        let s = || share.to_string();
        vec![
            Action::ServerInfo,
            Action::ListShares,
            Action::Health,
            Action::Subscribe,
            Action::Snapshot { share: s() },
            Action::List { share: s() },
            Action::Adopt { share: s() },
            Action::Prune { share: s() },
            Action::Keep { share: s() },
            Action::ReportBackup { share: s() },
            Action::PlanRestore { share: s() },
            Action::Restore { share: s() },
            Action::Doctor { share: s() },
            Action::Scrub {
                pool: "tank".into(),
            },
            Action::Configure,
            Action::Pair,
        ]
    }

    #[test]
    fn the_matrix() {
        let matt = client("MattBookPro", &["MattBookPro"], false, false);
        let admin = client("Admin", &["MattBookPro"], true, false);
        let revoked = client("Old", &["MattBookPro"], true, true);
        for action in every_action("MattBookPro") {
            let n = action.name();
            assert_eq!(authorize(&Identity::LocalAdmin, &action), Ok(()), "{n}");
            let admin_only = matches!(action, Action::Scrub { .. } | Action::Configure);
            assert_eq!(authorize(&matt, &action).is_ok(), !admin_only, "{n}");
            assert_eq!(authorize(&admin, &action), Ok(()), "{n}");
            let pair = action == Action::Pair;
            assert_eq!(authorize(&Identity::Unpaired, &action).is_ok(), pair, "{n}");
            assert_eq!(authorize(&revoked, &action).is_ok(), pair, "{n}");
        }
        // Another Mac's share: refused for every share action, admin or not.
        for action in every_action("iMac") {
            let n = action.name();
            let expected = match action.share() {
                Some(_) => Err(Denied::NotPairedForShare {
                    client: "MattBookPro".into(),
                    share: "iMac".into(),
                }),
                None if matches!(action, Action::Scrub { .. } | Action::Configure) => {
                    Err(Denied::NeedsAdmin {
                        action: action.described(),
                    })
                }
                None => Ok(()),
            };
            assert_eq!(authorize(&matt, &action), expected, "{n}");
            assert_eq!(
                authorize(&admin, &action).is_ok(),
                action.share().is_none(),
                "{n}"
            );
        }
    }

    #[test]
    fn messages() {
        let matt = client("MattBookPro", &["MattBookPro"], false, false);
        let e = authorize(
            &matt,
            &Action::Restore {
                share: "iMac".into(),
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "client 'MattBookPro' is not paired for share 'iMac'"
        );
        assert!(!e.is_unauthenticated());
        let e = authorize(
            &matt,
            &Action::Scrub {
                pool: "tank".into(),
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "starting or stopping a scrub needs an admin client (pair with --admin)"
        );
        let e = authorize(&Identity::Unpaired, &Action::Health).unwrap_err();
        assert!(e.is_unauthenticated());
        assert!(e.to_string().contains("backstop pair"), "{e}");
        let old = client("Old", &["MattBookPro"], false, true);
        let e = authorize(
            &old,
            &Action::List {
                share: "MattBookPro".into(),
            },
        )
        .unwrap_err();
        assert_eq!(
            e,
            Denied::Revoked {
                client: "Old".into()
            }
        );
        assert!(e.is_unauthenticated());
    }

    #[test]
    fn events_and_shares_shown() {
        let matt = client("MattBookPro", &["MattBookPro"], false, false);
        let old = client("Old", &["MattBookPro"], false, true);
        assert!(event_visible(&matt, Some("MattBookPro")));
        assert!(event_visible(&matt, None));
        assert!(!event_visible(&matt, Some("iMac")));
        assert!(event_visible(&Identity::LocalAdmin, Some("iMac")));
        assert!(!event_visible(&Identity::Unpaired, None));
        assert!(!event_visible(&old, Some("MattBookPro")));
        assert!(!event_visible(&old, None));
        assert!(share_visible(&matt, "MattBookPro"));
        assert!(!share_visible(&matt, "iMac"));
        assert!(share_visible(&Identity::LocalAdmin, "iMac"));
        assert!(!share_visible(&Identity::Unpaired, "iMac"));
        assert!(!share_visible(&old, "MattBookPro"));
    }

    #[test]
    fn identity_from_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = ClientRegistry::open(dir.path()).unwrap();
        let der = b"not really a certificate";
        registry
            .add(Client {
                name: "iMac".into(),
                fingerprint: ca::fingerprint(der),
                serial: "01".into(),
                shares: vec!["iMac".into()],
                admin: false,
                paired_at: "2026-03-01T12:00:00Z".parse().unwrap(),
                revoked_at: None,
            })
            .unwrap();
        let id = Identity::from_peer_cert(&registry, Some(der));
        assert_eq!(id.who(), "client iMac");
        assert_eq!(
            Identity::from_peer_cert(&registry, Some(b"other")),
            Identity::Unpaired
        );
        assert_eq!(
            Identity::from_peer_cert(&registry, None),
            Identity::Unpaired
        );
        assert_eq!(Identity::LocalAdmin.who(), "local");
    }

    #[test]
    fn what_is_audited() {
        let mutating: Vec<_> = every_action("s")
            .into_iter()
            .filter(Action::is_mutating)
            .map(|a| a.name())
            .collect();
        assert_eq!(
            mutating,
            [
                "snapshot",
                "adopt",
                "prune",
                "keep",
                "report-backup",
                "restore",
                "scrub",
                "configure",
                "pair"
            ]
        );
        assert_eq!(
            Action::Scrub {
                pool: "tank".into()
            }
            .target(),
            Some("tank")
        );
        assert_eq!(Action::Keep { share: "s".into() }.target(), Some("s"));
        assert_eq!(Action::Health.target(), None);
    }
}
