//! `smbstatus -S --json` output (and smbstatus's stderr) →
//! `backstop_server::file_service::samba::parse_status`, `parse_share_sessions`,
//! `status_stderr_error`, `smbd_not_running`.
//!
//! Checks: no panic; deterministic; an error is one line; sessions come sorted (oldest first);
//! the sessions of one share are exactly those whose share matches it without case.
#![no_main]

use backstop_fuzz::{assert_one_line, assert_same, text};
use backstop_server::file_service::samba::{
    parse_share_sessions, parse_status, smbd_not_running, status_stderr_error,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let status = parse_status(&text);
    assert_same("smbstatus", &status, &parse_status(&text));
    match &status {
        Ok(status) => {
            let key = |s: &backstop_server::file_service::samba::SmbSession| {
                (
                    s.connected_at.clone(),
                    s.share.clone(),
                    s.machine.clone(),
                    s.pid,
                )
            };
            for pair in status.sessions.windows(2) {
                assert!(
                    key(&pair[0]) <= key(&pair[1]),
                    "sessions not sorted: {pair:?}"
                );
            }
            for session in &status.sessions {
                let own = parse_share_sessions(&text, &session.share).expect("parsed once");
                let want = status
                    .sessions
                    .iter()
                    .filter(|s| s.share.eq_ignore_ascii_case(&session.share))
                    .count();
                assert_eq!(own.len(), want, "sessions of {:?}", session.share);
            }
        }
        Err(e) => {
            assert_one_line("smbstatus error", &e.to_string());
            assert_eq!(
                parse_share_sessions(&text, "TimeMachine").err().as_ref(),
                Some(e),
                "malformed output must be an error, never an empty list"
            );
        }
    }
    if let Some(e) = status_stderr_error(&text) {
        assert_one_line("smbstatus stderr error", &e.to_string());
    }
    let _ = smbd_not_running(&text);
});
