//! What Time Machine's log messages mean, as data.
//!
//! Apple documents none of these messages and rewords them between releases, so the recognisers
//! are one table, [`RULES`]: each row is a signal, an anchored regular expression matched against
//! the whole `eventMessage` (trimmed), the releases it was seen on, and an example message that the
//! tests check the row recognises. The first matching row wins, so a specific row (one that
//! captures a stamp or an error code) goes before the looser fallback for the same wording.
//! Supporting a new wording is one new row.
//!
//! Named captures a row may have: `stamp` (the backup's `YYYY-MM-DD-HHMMSS`), `code` (the numeric
//! error code) and `name` (the `BACKUP_FAILED_*` name).

use std::sync::LazyLock;

use regex::Regex;

use super::stamp::is_stamp;

/// What a recognised message says about the backup in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A backup is starting.
    Started,
    /// A backup is finishing; the success line follows (Tahoe).
    Completing,
    /// A backup completed successfully.
    Completed,
    /// A backup failed.
    Failed,
    /// A backup was canceled.
    Canceled,
}

/// One row of the recogniser table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// What a match means.
    pub signal: Signal,
    /// Anchored regular expression, with the optional captures `stamp`, `code`, `name`.
    pub pattern: &'static str,
    /// The releases the wording was seen on, and where from.
    pub seen: &'static str,
    /// A message this row must recognise (checked by the tests).
    pub example: &'static str,
}

/// The recognisers, most specific first. See the module documentation.
pub static RULES: &[Rule] = &[
    // ── starts ─────────────────────────────────────────────────────────────────────────────
    Rule {
        signal: Signal::Started,
        pattern: r"^Starting (?:automatic|manual) backup$",
        seen: "Sierra to Monterey",
        example: "Starting automatic backup",
    },
    Rule {
        signal: Signal::Started,
        pattern: r#"^Attempting backup with mode ""#,
        seen: "Ventura on, Tahoe fixture",
        example: r#"Attempting backup with mode "automatic backup""#,
    },
    // ── finishing ──────────────────────────────────────────────────────────────────────────
    Rule {
        signal: Signal::Completing,
        pattern: r"^Completing backup$",
        seen: "Tahoe fixture (before the success line)",
        example: "Completing backup",
    },
    // ── successes ──────────────────────────────────────────────────────────────────────────
    Rule {
        signal: Signal::Completed,
        pattern: r"^Successfully completed backing up .* to '(?:[^']*/)?(?P<stamp>\d{4}-\d{2}-\d{2}-\d{6})(?:\.backup)?/?'$",
        seen: "Tahoe fixture",
        example: "Successfully completed backing up 205.7 MB to '/Volumes/.timemachine/vault/MattBookPro/2026-06-14-145122.backup'",
    },
    Rule {
        signal: Signal::Completed,
        pattern: r"^Successfully completed backing up\b",
        seen: "Tahoe, when the destination path names no stamp",
        example: "Successfully completed backing up 1.2 GB to '/Volumes/Backup'",
    },
    Rule {
        signal: Signal::Completed,
        pattern: r"^Completed backup: (?P<stamp>\d{4}-\d{2}-\d{2}-\d{6})(?:\.backup)?$",
        seen: "Catalina to Monterey (Monterey fixture); `.backup` on APFS destinations",
        example: "Completed backup: 2022-05-21-192820",
    },
    Rule {
        signal: Signal::Completed,
        pattern: r"^Backup completed successfully\.?$",
        seen: "Sierra era",
        example: "Backup completed successfully.",
    },
    Rule {
        signal: Signal::Completed,
        pattern: r"^Backup succeeded\.?$",
        seen: "Sequoia",
        example: "Backup succeeded",
    },
    // ── failures ───────────────────────────────────────────────────────────────────────────
    Rule {
        signal: Signal::Failed,
        pattern: r"^Backup failed: (?P<name>BACKUP_FAILED_[A-Z0-9_]+) \((?P<code>\d{1,9})\)",
        seen: "Tahoe fixture",
        example: "Backup failed: BACKUP_FAILED_DISCONNECTED_NETWORK (26)",
    },
    Rule {
        signal: Signal::Failed,
        pattern: r"^Backup failed: (?P<name>BACKUP_FAILED_[A-Z0-9_]+)\b",
        seen: "fallback: the name without its code",
        example: "Backup failed: BACKUP_FAILED_AUTHENTICATION_ERROR",
    },
    Rule {
        signal: Signal::Failed,
        pattern: r"^Backup failed with error:? (?P<code>\d{1,9})\b",
        seen: "fallback: the code without a name, as older releases printed it",
        example: "Backup failed with error 19: The backup disk is not available.",
    },
    Rule {
        signal: Signal::Failed,
        pattern: r"^Backup failed(?:[.:!]|$)",
        seen: "fallback: any other wording of a failure (not `Backup failed to …`)",
        example: "Backup failed.",
    },
    // ── cancellations ──────────────────────────────────────────────────────────────────────
    Rule {
        signal: Signal::Canceled,
        pattern: r"^Backup cancell?ed\b",
        seen: "in the wild, all releases",
        example: "Backup canceled.",
    },
];

static COMPILED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    RULES
        .iter()
        .map(|rule| Regex::new(rule.pattern).expect("recogniser patterns are tested"))
        .collect()
});

/// What a recognised message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognized {
    /// A backup is starting.
    Started,
    /// A backup is finishing (Tahoe); the success line follows.
    Completing,
    /// A backup completed; `backup` is its stamp when the line names it.
    Completed { backup: Option<String> },
    /// A backup failed, with the numeric code and `BACKUP_FAILED_*` name when the line has them.
    Failed {
        code: Option<i32>,
        reason: Option<String>,
    },
    /// A backup was canceled.
    Canceled,
}

/// Recognises one `eventMessage`, or `None` for any other message (noise included).
pub fn recognize(message: &str) -> Option<Recognized> {
    recognize_with_rule(message).map(|(_, recognized)| recognized)
}

/// Like [`recognize`], also telling which row of [`RULES`] matched.
pub fn recognize_with_rule(message: &str) -> Option<(usize, Recognized)> {
    let message = message.trim();
    COMPILED.iter().enumerate().find_map(|(index, regex)| {
        let captures = regex.captures(message)?;
        let text = |name: &str| captures.name(name).map(|m| m.as_str().to_owned());
        let recognized = match RULES[index].signal {
            Signal::Started => Recognized::Started,
            Signal::Completing => Recognized::Completing,
            Signal::Completed => Recognized::Completed {
                backup: text("stamp").filter(|s| is_stamp(s)),
            },
            Signal::Failed => Recognized::Failed {
                code: text("code").and_then(|c| c.parse().ok()),
                reason: text("name"),
            },
            Signal::Canceled => Recognized::Canceled,
        };
        Some((index, recognized))
    })
}

/// The known Time Machine error codes, with a plain-English sentence each.
pub static REASONS: &[(i32, &str)] = &[
    (18, "the backup disk could not be found"),
    (19, "the backup disk is not available"),
    (21, "the backup disk image could not be accessed"),
    (22, "the backup was canceled"),
    (26, "the network connection to the backup server was lost"),
    (27, "the backup disk was ejected"),
    (28, "there is not enough space on the backup disk"),
    (29, "the server refused the user name or password"),
    (31, "the backup disk image is already in use"),
    (42, "the verification of the backups was interrupted"),
    (45, "the network share lacks features Time Machine requires"),
    (56, "the backup volume is full"),
    (70, "the backup disk image was ejected"),
    (
        501,
        "Time Machine says the backups cannot be reliably restored and must start a new backup",
    ),
];

/// The sentence for an unknown code.
pub const UNKNOWN_REASON: &str = "Time Machine reported an error that Backstop does not know";

/// A plain-English sentence for a Time Machine error code ([`UNKNOWN_REASON`] for unknown codes).
pub fn reason_text(code: i32) -> &'static str {
    REASONS
        .iter()
        .find(|(known, _)| *known == code)
        .map_or(UNKNOWN_REASON, |(_, text)| text)
}

/// The error code Time Machine uses for a canceled backup.
pub const CANCELED_CODE: i32 = 22;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_recognises_its_example() {
        for (index, rule) in RULES.iter().enumerate() {
            let (matched, _) = recognize_with_rule(rule.example)
                .unwrap_or_else(|| panic!("row {index} does not recognise {:?}", rule.example));
            assert_eq!(
                matched, index,
                "row {index}'s example {:?} is taken by row {matched}",
                rule.example
            );
        }
    }

    #[test]
    fn starts() {
        for m in [
            "Starting automatic backup",
            "Starting manual backup",
            r#"Attempting backup with mode "automatic backup""#,
            r#"Attempting backup with mode "manual backup""#,
        ] {
            assert_eq!(recognize(m), Some(Recognized::Started), "{m}");
        }
    }

    #[test]
    fn completions_and_stamps() {
        let completed = |stamp: Option<&str>| {
            Some(Recognized::Completed {
                backup: stamp.map(str::to_owned),
            })
        };
        assert_eq!(recognize("Backup completed successfully."), completed(None));
        assert_eq!(
            recognize("Completed backup: 2022-05-21-192820"),
            completed(Some("2022-05-21-192820"))
        );
        assert_eq!(
            recognize("Completed backup: 2022-05-21-192820.backup"),
            completed(Some("2022-05-21-192820"))
        );
        assert_eq!(recognize("Backup succeeded"), completed(None));
        assert_eq!(
            recognize(
                "Successfully completed backing up 205.7 MB to '/Volumes/.timemachine/vault._smb._tcp.local./1BA82C89-0C1E-4F9A-9D3B-3B2C4A1E2F10/MattBookPro/2026-06-14-145122.backup'"
            ),
            completed(Some("2026-06-14-145122"))
        );
        assert_eq!(
            recognize(
                "Successfully completed backing up 1 KB to '/Volumes/X/2026-13-14-145122.backup'"
            ),
            completed(None),
            "an impossible stamp is dropped, the success kept"
        );
        assert_eq!(recognize("Completing backup"), Some(Recognized::Completing));
    }

    #[test]
    fn failures_and_cancellations() {
        assert_eq!(
            recognize("Backup failed: BACKUP_FAILED_DISCONNECTED_NETWORK (26)"),
            Some(Recognized::Failed {
                code: Some(26),
                reason: Some("BACKUP_FAILED_DISCONNECTED_NETWORK".into())
            })
        );
        assert_eq!(
            recognize("Backup failed: BACKUP_FAILED_AUTHENTICATION_ERROR"),
            Some(Recognized::Failed {
                code: None,
                reason: Some("BACKUP_FAILED_AUTHENTICATION_ERROR".into())
            })
        );
        assert_eq!(
            recognize("Backup failed with error: 501"),
            Some(Recognized::Failed {
                code: Some(501),
                reason: None
            })
        );
        assert_eq!(
            recognize("Backup failed"),
            Some(Recognized::Failed {
                code: None,
                reason: None
            })
        );
        assert_eq!(recognize("Backup canceled."), Some(Recognized::Canceled));
        assert_eq!(recognize("Backup cancelled"), Some(Recognized::Canceled));
    }

    #[test]
    fn noise_and_lookalikes_are_not_recognised() {
        for m in [
            "connection invalid",
            "TRY_ERROR_BLOCK: Backup failed: BACKUP_FAILED_DISCONNECTED_NETWORK (26)",
            "Limiting logging for limit 'TimeMachine'",
            "Backup failed to mount the destination, retrying",
            "Backup requested to last destination in rotation. specifiedOptions: TMBackupOptions(rawValue: 1)",
            "Finished copying items",
            "Mountpoint '/Volumes/.timemachine/x' is still valid",
            "Starting automatic backup of something else entirely",
            "",
        ] {
            assert_eq!(recognize(m), None, "{m:?}");
        }
    }

    #[test]
    fn reasons() {
        assert_eq!(
            reason_text(29),
            "the server refused the user name or password"
        );
        assert_eq!(
            reason_text(501),
            "Time Machine says the backups cannot be reliably restored and must start a new backup"
        );
        assert_eq!(reason_text(1234), UNKNOWN_REASON);
        for code in [18, 19, 21, 22, 26, 27, 28, 29, 31, 42, 45, 56, 70, 501] {
            assert_ne!(reason_text(code), UNKNOWN_REASON, "{code}");
        }
    }
}
