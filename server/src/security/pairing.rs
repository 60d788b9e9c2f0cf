//! One-time pairing codes: `backstopd pair --share NAME` makes one, `backstop pair HOST CODE`
//! redeems it.
//!
//! A code is 10 characters of Crockford base32 (50 random bits), shown as `ABCDE-FGHJK`; typing
//! is forgiving (any case, with or without the dash or spaces, `O` for `0`, `I`/`L` for `1`).
//! It expires after [`CODE_TTL`] and can be redeemed once. `STATE_DIR/pairing.json` (0600) keeps
//! only a salted SHA-256 of each code, with what it grants:
//!
//! ```json
//! {"version":1,"salt":"<32 hex>","codes":[{"hash":"<64 hex>","shares":["MattBookPro"],
//!   "admin":false,"created":"…","expires":"…","used_at":null}]}
//! ```
//!
//! Spent and expired codes are kept a day (so the server can tell the audit log why a code was
//! refused), then dropped; the person typing it only ever hears "wrong, expired or already used".
//!
//! Failed attempts are rate-limited in memory ([`Limits`]: per source address, IPv6 by /64, and
//! for all sources together); while limited, even the right code is refused, so guessing
//! 2^50 codes at 20 tries a minute is hopeless within 10 minutes.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::store::{self, StoreError};
use crate::share::validate_share_name;

pub const PAIRING_FILE: &str = "pairing.json";
const LOCK_FILE: &str = "pairing.lock";
/// How long a code can be redeemed.
pub const CODE_TTL: SignedDuration = SignedDuration::from_mins(10);
/// How long a spent or expired code's hash stays (for the refusal reason), after it expired.
const KEEP_SPENT: SignedDuration = SignedDuration::from_hours(24);
/// At most this many codes may be redeemable at once (each one is another target to guess).
pub const MAX_OUTSTANDING: usize = 20;
const CODE_LEN: usize = 10;
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// How many failed attempts are allowed within `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub per_source: usize,
    pub global: usize,
    pub window: SignedDuration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_source: 5,
            global: 20,
            window: SignedDuration::from_mins(1),
        }
    }
}

/// A new code, to show once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCode {
    /// `ABCDE-FGHJK`.
    pub code: String,
    pub expires: Timestamp,
}

/// What a redeemed code grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub shares: Vec<String>,
    pub admin: bool,
}

/// Why a code was refused: for the server's audit log, never shown to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a code at all (wrong length or characters).
    Malformed,
    Unknown,
    Expired,
    AlreadyUsed,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed code",
            Refusal::Unknown => "unknown code",
            Refusal::Expired => "expired code",
            Refusal::AlreadyUsed => "code already used",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The same words whatever the reason, so a guesser learns nothing.
    #[error(
        "the pairing code is wrong, expired or already used; make a new one with `backstopd pair` on the server"
    )]
    Refused { reason: Refusal },
    #[error("too many wrong pairing codes; try again in {} s", retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    hash: String,
    shares: Vec<String>,
    admin: bool,
    created: Timestamp,
    expires: Timestamp,
    #[serde(default)]
    used_at: Option<Timestamp>,
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    salt: String,
    codes: Vec<Entry>,
}

/// Failed attempts within the window, oldest first (never more than `global`).
#[derive(Debug)]
struct Limiter {
    limits: Limits,
    failures: VecDeque<(Timestamp, IpAddr)>,
}

impl Limiter {
    /// Whether `source` may try now; otherwise how long until it may.
    fn check(&mut self, source: IpAddr, now: Timestamp) -> Result<(), Duration> {
        let window = self.limits.window;
        while self
            .failures
            .front()
            .is_some_and(|(t, _)| *t + window <= now)
        {
            self.failures.pop_front();
        }
        let wait = |since: Timestamp| {
            Duration::try_from(since + window - now).unwrap_or(Duration::from_secs(1))
        };
        if self.failures.len() >= self.limits.global {
            return Err(wait(self.failures[0].0));
        }
        let mine: Vec<Timestamp> = self
            .failures
            .iter()
            .filter(|(_, s)| *s == source)
            .map(|(t, _)| *t)
            .collect();
        if mine.len() >= self.limits.per_source {
            return Err(wait(mine[0]));
        }
        Ok(())
    }

    fn record(&mut self, source: IpAddr, now: Timestamp) {
        self.failures.push_back((now, source));
    }
}

/// Addresses one party is likely to hold many of count as one: IPv6 by /64, IPv4-mapped IPv6 as
/// IPv4.
fn source_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
    }
}

/// A code as typed, in canonical form (10 alphabet characters), or `None`.
fn normalize(code: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_LEN);
    for c in code.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() == CODE_LEN {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
}

pub struct PairingStore {
    path: PathBuf,
    lock_path: PathBuf,
    limiter: Limiter,
}

impl std::fmt::Debug for PairingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PairingStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl PairingStore {
    /// Opens `STATE_DIR/pairing.json`, creating it (with a new salt) when missing.
    pub fn open(state_dir: &Path) -> Result<PairingStore, StoreError> {
        let store = PairingStore {
            path: state_dir.join(PAIRING_FILE),
            lock_path: state_dir.join(LOCK_FILE),
            limiter: Limiter {
                limits: Limits::default(),
                failures: VecDeque::new(),
            },
        };
        let _lock = store::lock(&store.lock_path)?;
        let file = store.read()?;
        store.write(&file)?;
        Ok(store)
    }

    pub fn with_limits(mut self, limits: Limits) -> PairingStore {
        self.limiter.limits = limits;
        self
    }

    fn read(&self) -> Result<File, StoreError> {
        match store::read_optional(&self.path)? {
            Some(bytes) => {
                let file: File =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                        path: self.path.clone(),
                        source,
                    })?;
                if store::unhex(&file.salt).is_none_or(|s| s.len() < 16) {
                    return Err(StoreError::Corrupt {
                        path: self.path.clone(),
                        source: serde::de::Error::custom("the salt is not 16 bytes of hex"),
                    });
                }
                Ok(file)
            }
            None => Ok(File {
                version: 1,
                salt: store::hex(&store::random_bytes::<16>()),
                codes: Vec::new(),
            }),
        }
    }

    fn write(&self, file: &File) -> Result<(), StoreError> {
        let mut text = serde_json::to_string_pretty(file).expect("pairing serializes");
        text.push('\n');
        store::write_atomic(&self.path, text.as_bytes(), 0o600)
    }

    fn hash(salt: &str, code: &str) -> String {
        store::hex(&store::sha256(&[salt.as_bytes(), b"\n", code.as_bytes()]))
    }

    /// Makes a code granting `shares` (and admin rights with `admin`), valid for [`CODE_TTL`].
    /// Whether the shares exist in the configuration is for the caller to check.
    pub fn create(
        &mut self,
        shares: Vec<String>,
        admin: bool,
        now: Timestamp,
    ) -> Result<NewCode, PairError> {
        let mut shares = shares;
        for s in &shares {
            validate_share_name(s).map_err(|e| PairError::BadRequest(format!("share {e}")))?;
        }
        shares.sort();
        shares.dedup();
        if shares.is_empty() && !admin {
            return Err(PairError::BadRequest(
                "a client needs at least one share (--share NAME), or admin rights (--admin)"
                    .into(),
            ));
        }
        let _lock = store::lock(&self.lock_path)?;
        let mut file = self.read()?;
        file.codes.retain(|e| e.expires + KEEP_SPENT > now);
        let live = file
            .codes
            .iter()
            .filter(|e| e.used_at.is_none() && e.expires > now)
            .count();
        if live >= MAX_OUTSTANDING {
            return Err(PairError::BadRequest(format!(
                "{live} pairing codes are waiting to be used; use them or let them expire (at most {} minutes) first",
                CODE_TTL.as_mins()
            )));
        }
        let code: String = store::random_bytes::<CODE_LEN>()
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
            .collect();
        let expires = now + CODE_TTL;
        file.codes.push(Entry {
            hash: Self::hash(&file.salt, &code),
            shares,
            admin,
            created: now,
            expires,
            used_at: None,
        });
        self.write(&file)?;
        Ok(NewCode {
            code: format!("{}-{}", &code[..5], &code[5..]),
            expires,
        })
    }

    /// Redeems a code typed on a client at `source`: once, before it expires, unless `source`
    /// (or everyone) failed too often lately.
    pub fn redeem(
        &mut self,
        code: &str,
        source: IpAddr,
        now: Timestamp,
    ) -> Result<Grant, PairError> {
        let source = source_key(source);
        self.limiter
            .check(source, now)
            .map_err(|retry_after| PairError::RateLimited { retry_after })?;
        let refused = |this: &mut Self, reason| {
            this.limiter.record(source, now);
            Err(PairError::Refused { reason })
        };
        let Some(code) = normalize(code) else {
            return refused(self, Refusal::Malformed);
        };
        let _lock = store::lock(&self.lock_path)?;
        let mut file = self.read()?;
        let hash = Self::hash(&file.salt, &code);
        let Some(entry) = file.codes.iter_mut().find(|e| e.hash == hash) else {
            return refused(self, Refusal::Unknown);
        };
        if entry.used_at.is_some() {
            return refused(self, Refusal::AlreadyUsed);
        }
        if entry.expires <= now {
            return refused(self, Refusal::Expired);
        }
        entry.used_at = Some(now);
        let grant = Grant {
            shares: entry.shares.clone(),
            admin: entry.admin,
        };
        file.codes.retain(|e| e.expires + KEEP_SPENT > now);
        // Durably spent before anyone gets a certificate for it.
        self.write(&file)?;
        Ok(grant)
    }

    /// How many codes can still be redeemed.
    pub fn outstanding(&self, now: Timestamp) -> Result<usize, StoreError> {
        Ok(self
            .read()?
            .codes
            .iter()
            .filter(|e| e.used_at.is_none() && e.expires > now)
            .count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn t0() -> Timestamp {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }
    fn secs(n: i64) -> SignedDuration {
        SignedDuration::from_secs(n)
    }
    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))
    }
    fn shares(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn codes_are_typable_and_stored_only_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PairingStore::open(dir.path()).unwrap();
        let path = dir.path().join(PAIRING_FILE);
        assert_eq!(store::mode(&path).unwrap(), 0o600);
        let c = store.create(shares(&["MattBookPro"]), false, t0()).unwrap();
        assert_eq!(c.code.len(), 11);
        assert_eq!(&c.code[5..6], "-");
        assert!(normalize(&c.code).is_some());
        assert_eq!(c.expires, t0() + CODE_TTL);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&c.code[..5]), "{text}");
        assert!(!text.contains(&c.code.replace('-', "")), "{text}");
        assert_eq!(store::mode(&path).unwrap(), 0o600);
        // A second code differs.
        let d = store.create(shares(&["iMac"]), false, t0()).unwrap();
        assert_ne!(c.code, d.code);
        assert_eq!(store.outstanding(t0()).unwrap(), 2);
    }

    #[test]
    fn typing_is_forgiving() {
        assert_eq!(normalize("abcde-fghjk"), Some("ABCDEFGHJK".into()));
        assert_eq!(normalize(" ABCDE FGHJK "), Some("ABCDEFGHJK".into()));
        assert_eq!(normalize("O1ILo-00000"), Some("0111000000".into()));
        assert_eq!(normalize("ABCDE-FGHJ"), None);
        assert_eq!(normalize("ABCDE-FGHJKM"), None);
        assert_eq!(normalize("ABCDE-FGHJU"), None);
        assert_eq!(normalize("ABCDÉ-FGHJK"), None);
    }

    #[test]
    fn a_code_is_redeemed_once_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let code = PairingStore::open(dir.path())
            .unwrap()
            .create(shares(&["iMac", "MattBookPro", "iMac"]), true, t0())
            .unwrap();
        // Another process (the daemon) redeems it, typed loosely.
        let mut daemon = PairingStore::open(dir.path()).unwrap();
        let typed = code.code.to_ascii_lowercase().replace('-', " ");
        let grant = daemon.redeem(&typed, ip(1), t0() + secs(30)).unwrap();
        assert_eq!(
            grant,
            Grant {
                shares: shares(&["MattBookPro", "iMac"]),
                admin: true
            }
        );
        let e = daemon
            .redeem(&code.code, ip(1), t0() + secs(31))
            .unwrap_err();
        assert!(
            matches!(
                e,
                PairError::Refused {
                    reason: Refusal::AlreadyUsed
                }
            ),
            "{e}"
        );
        // Also after a restart.
        let mut again = PairingStore::open(dir.path()).unwrap();
        let e = again
            .redeem(&code.code, ip(2), t0() + secs(32))
            .unwrap_err();
        assert!(
            matches!(
                e,
                PairError::Refused {
                    reason: Refusal::AlreadyUsed
                }
            ),
            "{e}"
        );
        assert_eq!(again.outstanding(t0()).unwrap(), 0);
    }

    #[test]
    fn a_code_expires_after_ten_minutes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PairingStore::open(dir.path()).unwrap();
        let a = store.create(shares(&["iMac"]), false, t0()).unwrap();
        let b = store.create(shares(&["iMac"]), false, t0()).unwrap();
        assert!(store.redeem(&a.code, ip(1), t0() + secs(599)).is_ok());
        let e = store.redeem(&b.code, ip(1), t0() + secs(600)).unwrap_err();
        assert!(
            matches!(
                e,
                PairError::Refused {
                    reason: Refusal::Expired
                }
            ),
            "{e}"
        );
        assert_eq!(store.outstanding(t0() + secs(600)).unwrap(), 0);
        // A day later the hash is gone altogether.
        let c = store
            .create(shares(&["iMac"]), false, t0() + secs(90_000))
            .unwrap();
        let e = store
            .redeem(&b.code, ip(1), t0() + secs(90_001))
            .unwrap_err();
        assert!(
            matches!(
                e,
                PairError::Refused {
                    reason: Refusal::Unknown
                }
            ),
            "{e}"
        );
        assert!(store.redeem(&c.code, ip(1), t0() + secs(90_002)).is_ok());
    }

    #[test]
    fn refusals_all_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PairingStore::open(dir.path()).unwrap().with_limits(Limits {
            per_source: 100,
            global: 100,
            window: SignedDuration::from_mins(1),
        });
        let used = store.create(shares(&["iMac"]), false, t0()).unwrap();
        store.redeem(&used.code, ip(1), t0()).unwrap();
        let expired = store.create(shares(&["iMac"]), false, t0()).unwrap();
        let later = t0() + CODE_TTL;
        let messages: Vec<String> = [used.code.as_str(), &expired.code, "00000-00000", "nope"]
            .iter()
            .map(|c| store.redeem(c, ip(1), later).unwrap_err().to_string())
            .collect();
        assert!(messages.iter().all(|m| *m == messages[0]), "{messages:?}");
        assert!(!messages[0].contains('\n'));
    }

    #[test]
    fn wrong_codes_are_rate_limited_per_source_and_globally() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PairingStore::open(dir.path()).unwrap();
        let good = store.create(shares(&["iMac"]), false, t0()).unwrap();
        for i in 0..5 {
            let e = store
                .redeem("00000-00000", ip(1), t0() + secs(i))
                .unwrap_err();
            assert!(matches!(e, PairError::Refused { .. }), "{e}");
        }
        // Now even the right code is refused from there, until the first failure is a minute old.
        match store.redeem(&good.code, ip(1), t0() + secs(10)) {
            Err(PairError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_secs(50))
            }
            other => panic!("{other:?}"),
        }
        let e = store
            .redeem(&good.code, ip(1), t0() + secs(10))
            .unwrap_err();
        assert!(e.to_string().contains("try again in 50 s"), "{e}");
        // Another address is not affected, and the code was not spent.
        assert!(store.redeem(&good.code, ip(2), t0() + secs(11)).is_ok());

        // The global cap: 20 failures from many addresses stop everyone.
        let mut store = PairingStore::open(dir.path()).unwrap();
        let good = store.create(shares(&["iMac"]), false, t0()).unwrap();
        for i in 0..20u8 {
            let _ = store.redeem("00000-00000", ip(10 + i), t0() + secs(1));
        }
        let e = store
            .redeem(&good.code, ip(99), t0() + secs(2))
            .unwrap_err();
        assert!(matches!(e, PairError::RateLimited { .. }), "{e}");
        assert!(store.redeem(&good.code, ip(99), t0() + secs(61)).is_ok());
    }

    #[test]
    fn ipv6_neighbours_share_a_budget() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
        assert_eq!(source_key(mapped), ip(1));
        assert_eq!(
            source_key(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        );
    }

    #[test]
    fn bad_requests() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PairingStore::open(dir.path()).unwrap();
        let e = store.create(vec![], false, t0()).unwrap_err();
        assert!(e.to_string().contains("--share"), "{e}");
        assert!(store.create(vec![], true, t0()).is_ok());
        let e = store.create(shares(&["a b"]), false, t0()).unwrap_err();
        assert!(matches!(e, PairError::BadRequest(_)), "{e}");
        for _ in 1..MAX_OUTSTANDING {
            store.create(shares(&["iMac"]), false, t0()).unwrap();
        }
        let e = store.create(shares(&["iMac"]), false, t0()).unwrap_err();
        assert!(e.to_string().contains("waiting"), "{e}");
        assert!(
            store
                .create(shares(&["iMac"]), false, t0() + CODE_TTL)
                .is_ok()
        );
    }

    #[test]
    fn the_salt_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        PairingStore::open(dir.path()).unwrap();
        let read = || std::fs::read_to_string(dir.path().join(PAIRING_FILE)).unwrap();
        let first = read();
        PairingStore::open(dir.path()).unwrap();
        assert_eq!(read(), first);
        std::fs::write(dir.path().join(PAIRING_FILE), "{]").unwrap();
        assert!(matches!(
            PairingStore::open(dir.path()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
