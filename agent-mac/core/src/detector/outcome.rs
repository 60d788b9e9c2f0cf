//! What the detector reports: how one backup ended.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::recognizers::reason_text;

/// How a backup ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The backup completed successfully.
    Completed,
    /// The backup failed.
    Failed,
    /// The backup was canceled (also a failure with code 22).
    Cancelled,
}

/// One backup that ended.
///
/// Serialises, fields in this order, as
/// `{"outcome":"completed","backup":"2026-06-14-145122","code":null,"reason":null,"at":"2026-06-14T04:51:22.894Z","confirmed":false}`;
/// `at` is RFC 3339 in UTC (`Z`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupOutcome {
    /// Completed, failed or cancelled.
    pub outcome: Outcome,
    /// The backup's stamp `YYYY-MM-DD-HHMMSS`, when known.
    pub backup: Option<String>,
    /// Time Machine's numeric error code, when the log line had one.
    pub code: Option<i32>,
    /// Time Machine's `BACKUP_FAILED_*` name, when the log line had one.
    pub reason: Option<String>,
    /// When the log line that ended the backup was written.
    pub at: Timestamp,
    /// False for a success seen only in the log; true once a second signal (`tmutil`) agrees, and
    /// always true for failures and cancellations, which need no confirmation.
    pub confirmed: bool,
}

impl BackupOutcome {
    /// A plain-English sentence for the error code, when there is one.
    pub fn explanation(&self) -> Option<&'static str> {
        self.code.map(reason_text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let outcome = BackupOutcome {
            outcome: Outcome::Failed,
            backup: None,
            code: Some(29),
            reason: Some("BACKUP_FAILED_AUTHENTICATION_ERROR".into()),
            at: "2026-06-14T04:51:22.894Z".parse().unwrap(),
            confirmed: true,
        };
        assert_eq!(
            serde_json::to_string(&outcome).unwrap(),
            r#"{"outcome":"failed","backup":null,"code":29,"reason":"BACKUP_FAILED_AUTHENTICATION_ERROR","at":"2026-06-14T04:51:22.894Z","confirmed":true}"#
        );
        let back: BackupOutcome =
            serde_json::from_str(&serde_json::to_string(&outcome).unwrap()).unwrap();
        assert_eq!(back, outcome);
        assert_eq!(
            outcome.explanation(),
            Some("the server refused the user name or password")
        );
        assert_eq!(
            serde_json::to_string(&Outcome::Cancelled).unwrap(),
            r#""cancelled""#
        );
    }
}
