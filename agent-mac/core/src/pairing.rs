//! Pairing with a server and the credentials it leaves: a key pair made here (the key never
//! leaves this machine), a client certificate bound to the Mac's shares, and the server's CA,
//! pinned by the fingerprint `backstopd pair` printed. Stored per server in
//! `<config dir>/servers/<host_port>/`; the private key in the login Keychain on macOS
//! (service `org.backstop.client-key`, account `HOST:PORT`), a 0600 file elsewhere.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use backstop_proto::v1 as pb;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};

use crate::ClientError;

/// The name every Backstop server certificate carries, whatever address reaches it.
pub const SERVER_NAME: &str = "backstopd.invalid";

/// What a paired server's directory holds besides the PEM files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paired {
    pub server: String,
    pub client_name: String,
    pub ca_fingerprint: String,
    pub shares: Vec<String>,
    pub admin: bool,
}

/// The credentials for one server.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub paired: Paired,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// Where credentials live: `$BACKSTOP_CONFIG_DIR`, else the platform's config dir + `backstop`.
pub fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BACKSTOP_CONFIG_DIR") {
        return PathBuf::from(d);
    }
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("backstop")
}

/// `HOST:PORT` from what the user typed (`http://`, `https://` dropped).
pub fn host_port(server: &str) -> String {
    server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

fn server_dir(base: &Path, server: &str) -> PathBuf {
    let key: String = host_port(server)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    base.join("servers").join(key)
}

/// The credentials for `server`, if this machine paired with it.
pub fn load(base: &Path, server: &str) -> Option<Credentials> {
    let dir = server_dir(base, server);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let paired: Paired = serde_json::from_str(&read("server.json")?).ok()?;
    let key_pem = keys::get(&dir, &paired.server)?;
    Some(Credentials {
        paired,
        ca_pem: read("ca.pem")?,
        cert_pem: read("client.pem")?,
        key_pem,
    })
}

/// Where the private key lives: the Keychain on macOS, a 0600 file elsewhere.
mod keys {
    use std::path::Path;

    #[cfg(target_os = "macos")]
    const SERVICE: &str = "org.backstop.client-key";

    #[cfg(target_os = "macos")]
    pub fn put(_dir: &Path, server: &str, key_pem: &str) -> std::io::Result<()> {
        security_framework::passwords::set_generic_password(SERVICE, server, key_pem.as_bytes())
            .map_err(|e| {
                std::io::Error::other(format!("cannot store the key in the Keychain: {e}"))
            })
    }

    #[cfg(target_os = "macos")]
    pub fn get(_dir: &Path, server: &str) -> Option<String> {
        let bytes = security_framework::passwords::get_generic_password(SERVICE, server).ok()?;
        String::from_utf8(bytes).ok()
    }

    #[cfg(not(target_os = "macos"))]
    pub fn put(dir: &Path, _server: &str, key_pem: &str) -> std::io::Result<()> {
        super::write_private(&dir.join("client.key"), key_pem)
    }

    #[cfg(not(target_os = "macos"))]
    pub fn get(dir: &Path, _server: &str) -> Option<String> {
        std::fs::read_to_string(dir.join("client.key")).ok()
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

pub fn save(base: &Path, c: &Credentials) -> std::io::Result<PathBuf> {
    let dir = server_dir(base, &c.paired.server);
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    keys::put(&dir, &c.paired.server, &c.key_pem)?;
    write_private(&dir.join("client.pem"), &c.cert_pem)?;
    write_private(&dir.join("ca.pem"), &c.ca_pem)?;
    write_private(
        &dir.join("server.json"),
        &serde_json::to_string_pretty(&c.paired).expect("serializes"),
    )?;
    Ok(dir)
}

/// SHA-256 of a certificate, upper-case hex with colons (as `openssl x509 -fingerprint -sha256`
/// and `backstopd pair` print it).
pub fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    d.as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A fingerprint as a person may type it: any case, with or without colons or spaces.
pub fn normalize_fingerprint(s: &str) -> Option<String> {
    let hex: String = s
        .trim()
        .trim_start_matches("SHA256:")
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_uppercase();
    Some(
        hex.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Accepts the server only when the CA it sends (last in its chain) has the expected
/// fingerprint and signed the server's certificate; records what it saw.
#[derive(Debug)]
struct PinnedCa {
    expected: Option<String>,
    seen: Arc<Mutex<Option<String>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates.last().ok_or_else(|| {
            rustls::Error::General("the server sent no CA certificate; is it a backstopd?".into())
        })?;
        let fp = fingerprint(ca);
        *self.seen.lock().expect("seen") = Some(fp.clone());
        if let Some(expected) = &self.expected
            && *expected != fp
        {
            return Err(rustls::Error::General(format!(
                "the server's CA fingerprint is {fp}, not the {expected} given: refusing (someone may be in between)"
            )));
        }
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone())
            .map_err(|e| rustls::Error::General(format!("bad CA certificate: {e}")))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn unreachable(server: &str, reason: impl std::fmt::Display) -> ClientError {
    ClientError::Unreachable {
        server: server.to_string(),
        reason: reason.to_string(),
    }
}

/// A channel to `server` over TLS that pins the server's CA (`expected`), before any client
/// certificate exists. Returns the channel and the CA fingerprint it saw.
async fn pinned_channel(
    server: &str,
    expected: Option<String>,
) -> Result<(tonic::transport::Channel, Option<String>), ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let seen = Arc::new(Mutex::new(None));
    let verifier = PinnedCa {
        expected,
        seen: seen.clone(),
        provider: provider.clone(),
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unreachable(server, e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let hp = host_port(server);
    let target = hp.clone();
    let svc = tower::service_fn(move |_: tonic::transport::Uri| {
        let connector = connector.clone();
        let target = target.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(&target).await?;
            let name = ServerName::try_from(SERVER_NAME).expect("valid name");
            let tls = connector.connect(name, tcp).await?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tls))
        }
    });
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{hp}"))
        .map_err(|_| ClientError::BadAddress(server.to_string()))?
        .connect_timeout(std::time::Duration::from_secs(10));
    let result = endpoint.connect_with_connector(svc).await;
    let fp = seen.lock().expect("seen").clone();
    match result {
        Ok(ch) => Ok((ch, fp)),
        Err(e) => {
            let mut cur: &dyn std::error::Error = &e;
            while let Some(next) = cur.source() {
                cur = next;
            }
            Err(unreachable(server, cur))
        }
    }
}

/// Connects once only to learn the server's CA fingerprint (for the person to compare with the
/// one `backstopd pair` printed before the code is sent).
pub async fn probe_fingerprint(server: &str) -> Result<String, ClientError> {
    let (_, fp) = pinned_channel(server, None).await?;
    fp.ok_or_else(|| unreachable(server, "no certificate seen"))
}

/// A new key pair and a certificate request for it, named `name`.
pub fn key_and_csr(name: &str) -> Result<(String, String), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
    Ok((key.serialize_pem(), csr.pem().map_err(|e| e.to_string())?))
}

/// Pairs this machine with `server` using `code`; the server's CA must have `fingerprint`.
pub async fn pair(
    server: &str,
    code: &str,
    name: &str,
    fingerprint: &str,
) -> Result<Credentials, ClientError> {
    let expected = normalize_fingerprint(fingerprint)
        .ok_or_else(|| ClientError::Server {
            code: tonic::Code::InvalidArgument,
            message: format!(
                "'{fingerprint}' is not a SHA-256 fingerprint (64 hex digits, as `backstopd pair` prints it)"
            ),
        })?;
    let (channel, _) = pinned_channel(server, Some(expected.clone())).await?;
    let (key_pem, csr_pem) = key_and_csr(name).map_err(|e| ClientError::Server {
        code: tonic::Code::Internal,
        message: format!("cannot make a key pair: {e}"),
    })?;
    let mut c = pb::pairing_service_client::PairingServiceClient::new(channel);
    let r = c
        .pair(pb::PairRequest {
            name: name.to_string(),
            code: code.trim().to_string(),
            csr_pem,
        })
        .await
        .map_err(|s| ClientError::Server {
            code: s.code(),
            message: s.message().to_string(),
        })?
        .into_inner();
    Ok(Credentials {
        paired: Paired {
            server: host_port(server),
            client_name: r.client_name,
            ca_fingerprint: expected,
            shares: r.shares,
            admin: r.admin,
        },
        ca_pem: r.ca_pem,
        cert_pem: r.cert_pem,
        key_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_read_as_people_type_them() {
        let fp = "AB:".repeat(31) + "AB";
        assert_eq!(normalize_fingerprint(&fp.to_lowercase()), Some(fp.clone()));
        assert_eq!(
            normalize_fingerprint(&fp.replace(':', "")),
            Some(fp.clone())
        );
        assert_eq!(normalize_fingerprint("AB:CD"), None);
        assert_eq!(normalize_fingerprint(&"ZZ".repeat(32)), None);
    }

    #[test]
    fn credentials_are_stored_per_server_with_the_key_private() {
        let dir = tempfile::tempdir().unwrap();
        let (key_pem, csr) = key_and_csr("MattBookPro").unwrap();
        assert!(csr.contains("CERTIFICATE REQUEST"));
        let c = Credentials {
            paired: Paired {
                server: "10.0.0.1:7461".into(),
                client_name: "MattBookPro".into(),
                ca_fingerprint: "X".into(),
                shares: vec!["MattBookPro".into()],
                admin: false,
            },
            ca_pem: "ca".into(),
            cert_pem: "cert".into(),
            key_pem,
        };
        let d = save(dir.path(), &c).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.join("client.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = load(dir.path(), "http://10.0.0.1:7461").unwrap();
        assert_eq!(back.paired, c.paired);
        assert!(load(dir.path(), "10.0.0.2:7461").is_none());
    }
}
