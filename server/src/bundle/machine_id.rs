//! `com.apple.TimeMachine.MachineID.plist`: which Mac the bundle belongs to and whether Time
//! Machine trusts it.
//!
//! `VerificationState` is 0 when the backup verified fine and 2 when Time Machine flagged it as
//! failed; `RecoveryBackupDeclinedDate` appears once the user chose "Back Up Later" at the
//! prompt to start a new backup. `com.apple.backupd.HostUUID` is how the Mac matches the bundle.

use jiff::Timestamp;

use super::read::{kind_of, optional_date, read_dict};
use super::{BundleError, Record};

const STATE_KEY: &str = "VerificationState";
const DECLINED_KEY: &str = "RecoveryBackupDeclinedDate";
const HOST_UUID_KEY: &str = "com.apple.backupd.HostUUID";

/// The longest HostUUID accepted, in bytes (real ones are 36).
const MAX_HOST_UUID_BYTES: usize = 128;

const RECORD: Record = Record::MachineId;

/// The parsed MachineID record. Absent keys are `None`; a key with the wrong type is a parse
/// error, not `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineId {
    /// `VerificationState`: 0 fine, non-zero (2) failed.
    pub verification_state: Option<i64>,
    /// `RecoveryBackupDeclinedDate`: when the user chose "Back Up Later".
    pub recovery_declined: Option<Timestamp>,
    /// `com.apple.backupd.HostUUID`: the Mac the bundle belongs to (to compare before and after
    /// a restore).
    pub host_uuid: Option<String>,
}

/// What `VerificationState` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerificationStatus {
    /// 0: Time Machine considers the backup sound.
    Fine,
    /// Non-zero (2 seen): Time Machine flagged the backup as failed.
    Failed(i64),
    /// The key is absent.
    Unknown,
}

impl MachineId {
    /// Parses the file's bytes (XML or binary plist).
    pub fn parse(bytes: &[u8]) -> Result<MachineId, BundleError> {
        let root = read_dict(RECORD, bytes)?;
        let wrong = |key: &str, problem: String| BundleError::Field {
            record: RECORD,
            field: key.to_string(),
            problem,
        };
        let verification_state = match root.get(STATE_KEY) {
            None => None,
            Some(v) => Some(match v {
                plist::Value::Integer(i) => i
                    .as_signed()
                    .ok_or_else(|| wrong(STATE_KEY, "is an integer out of range".to_string()))?,
                other => {
                    return Err(wrong(
                        STATE_KEY,
                        format!("is {}, not an integer", kind_of(other)),
                    ));
                }
            }),
        };
        let recovery_declined =
            optional_date(RECORD, &root, DECLINED_KEY, || DECLINED_KEY.to_string())?;
        let host_uuid = match root.get(HOST_UUID_KEY) {
            None => None,
            Some(v) => {
                let s = v.as_string().ok_or_else(|| {
                    wrong(HOST_UUID_KEY, format!("is {}, not a string", kind_of(v)))
                })?;
                if s.len() > MAX_HOST_UUID_BYTES || s.chars().any(char::is_control) {
                    return Err(wrong(
                        HOST_UUID_KEY,
                        format!(
                            "is not a plausible UUID ({} bytes, or control characters)",
                            s.len()
                        ),
                    ));
                }
                Some(s.to_string())
            }
        };
        Ok(MachineId {
            verification_state,
            recovery_declined,
            host_uuid,
        })
    }

    /// What `VerificationState` says: 0 is fine, any other value failed, absent unknown.
    pub fn verification(&self) -> VerificationStatus {
        match self.verification_state {
            Some(0) => VerificationStatus::Fine,
            Some(n) => VerificationStatus::Failed(n),
            None => VerificationStatus::Unknown,
        }
    }
}
