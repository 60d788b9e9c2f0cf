//! The server's security core, free of tonic: the private CA and the certificates it issues
//! ([`ca`]), one-time pairing codes ([`pairing`]), the paired clients ([`clients`]), who may do
//! what ([`authz`]) and the audit log ([`audit`]).
//!
//! Everything lives in the state dir, readable only by the daemon's user:
//!
//! | path | what | mode |
//! | --- | --- | --- |
//! | `tls/` | the CA and the server's certificate | 0700 |
//! | `tls/ca.key`, `tls/server.key` | PKCS#8 PEM private keys (ECDSA P-256) | 0600 |
//! | `tls/ca.pem`, `tls/server.pem` | PEM certificates (`server.pem`: server, then CA) | 0644 |
//! | `pairing.json` | salted hashes of the pairing codes | 0600 |
//! | `clients.json` | the paired clients | 0600 |
//! | `audit.jsonl` | one JSON record a line | 0600 |
//! | `pairing.lock`, `clients.lock`, `audit.lock` | serialize writers across processes | 0600 |
//!
//! The stores re-read their file under an exclusive lock before every change and write it
//! atomically (temp file, fsync, rename, fsync of the dir), so `backstopd pair` or `backstopd
//! clients revoke` may run as separate processes next to the daemon.
//!
//! The pairing flow, [`pair_client`], puts the pieces together in the order that never burns a
//! code on a request that would fail anyway.

pub mod audit;
pub mod authz;
pub mod ca;
pub mod clients;
pub mod pairing;
mod store;

use std::net::IpAddr;

use jiff::Timestamp;

pub use store::StoreError;

/// What a successful pairing hands back to the new client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paired {
    /// The client's certificate (PEM), to present with its own key from now on.
    pub cert_pem: String,
    /// The CA certificate (PEM), the one root the client trusts for this server.
    pub ca_cert_pem: String,
    /// The registry entry now in `clients.json`.
    pub client: clients::Client,
}

/// Why a pairing failed; every message is one line meant for the person pairing.
#[derive(Debug, thiserror::Error)]
pub enum PairingFailed {
    #[error(transparent)]
    Code(#[from] pairing::PairError),
    #[error(transparent)]
    Client(#[from] clients::ClientError),
    #[error(transparent)]
    Ca(#[from] ca::CaError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pairs a client: checks the name and the CSR first (so a typo never uses up the code), redeems
/// the code (rate-limited per `source`), issues a certificate bound to the code's shares and
/// records the client. The caller audits the result (see [`audit::Record`]).
#[allow(clippy::too_many_arguments)]
pub fn pair_client(
    codes: &mut pairing::PairingStore,
    registry: &mut clients::ClientRegistry,
    tls: &ca::Tls,
    name: &str,
    csr_pem: &str,
    code: &str,
    source: IpAddr,
    now: Timestamp,
) -> Result<Paired, PairingFailed> {
    registry.refresh()?;
    registry.check_new_name(name)?;
    ca::check_csr(csr_pem)?;
    let grant = codes.redeem(code, source, now)?;
    let issued = ca::sign_client(tls, csr_pem, name, now)?;
    let client = clients::Client {
        name: name.to_string(),
        fingerprint: issued.fingerprint,
        serial: issued.serial,
        shares: grant.shares,
        admin: grant.admin,
        paired_at: now,
        revoked_at: None,
    };
    registry.add(client.clone())?;
    Ok(Paired {
        cert_pem: issued.cert_pem,
        ca_cert_pem: tls.ca_cert_pem.clone(),
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn pairing_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        let now: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
        ca::init(dir.path(), &["nas.local".to_string()], now).unwrap();
        let tls = ca::load(dir.path()).unwrap();
        let mut codes = pairing::PairingStore::open(dir.path()).unwrap();
        let mut registry = clients::ClientRegistry::open(dir.path()).unwrap();
        let code = codes
            .create(vec!["MattBookPro".into()], false, now)
            .unwrap();
        let (_key, csr) = ca::make_client_key_and_csr("MattBookPro").unwrap();
        let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

        // A bad name or CSR is refused before the code is spent.
        let e = pair_client(
            &mut codes,
            &mut registry,
            &tls,
            "Matt's",
            &csr,
            &code.code,
            src,
            now,
        )
        .unwrap_err();
        assert!(matches!(e, PairingFailed::Client(_)), "{e}");
        let e = pair_client(
            &mut codes,
            &mut registry,
            &tls,
            "MattBookPro",
            "garbage",
            &code.code,
            src,
            now,
        )
        .unwrap_err();
        assert!(matches!(e, PairingFailed::Ca(_)), "{e}");

        let paired = pair_client(
            &mut codes,
            &mut registry,
            &tls,
            "MattBookPro",
            &csr,
            &code.code,
            src,
            now,
        )
        .unwrap();
        assert_eq!(paired.client.shares, vec!["MattBookPro".to_string()]);
        assert_eq!(paired.ca_cert_pem, tls.ca_cert_pem);
        let der = ca::pem_certs(&paired.cert_pem).unwrap().remove(0);
        let found = registry.by_fingerprint(&ca::fingerprint(&der)).unwrap();
        assert_eq!(found.name, "MattBookPro");

        // Single use, even for the same Mac.
        let e = pair_client(
            &mut codes,
            &mut registry,
            &tls,
            "MattBookPro2",
            &csr,
            &code.code,
            src,
            now,
        )
        .unwrap_err();
        assert!(matches!(e, PairingFailed::Code(_)), "{e}");
    }
}
