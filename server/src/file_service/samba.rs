//! Samba (SMB): taking ONE share offline and back online around a restore without stopping smbd
//! for everyone, and who is connected to a share. Pure helpers (text, argv, parsers) plus one small
//! atomic file write; running the commands is the caller's business.
//!
//! The mechanism (measured with Samba 4.17, see tests/tests/samba_part.rs):
//! - each Time Machine share's section in smb.conf has `include = <dir>/<Share>.conf`
//!   ([`include_line`]), `<dir>` being by default `<state_dir>/samba` ([`fragment_dir`]); backstopd
//!   owns that fragment ([`fragment`], [`write_fragment`]);
//! - offline: write the fragment with `available = no`, then [`reload_config`] (new connections to
//!   that share fail with `NT_STATUS_BAD_NETWORK_NAME`; other shares are untouched), then
//!   [`close_share`] (drops the existing connections, asynchronously), then poll [`status`] with
//!   [`parse_share_sessions`] until none remain;
//! - online: write the harmless fragment, then [`reload_config`].
//!
//! Pitfalls these helpers guard against:
//! - `smbstatus` and `smbcontrol` without `-s CONF` look at the default smb.conf: smbstatus then
//!   prints an EMPTY list and exits 0 (a false "nobody is connected"), so every builder passes `-s`.
//! - `smbstatus -s MISSING.conf` also prints an empty list and exits 0, with `Can't load …` on
//!   stderr: check stderr with [`status_stderr_error`]. An smb.conf that loads but is not the one
//!   smbd runs with (another `lock directory`) gives an empty list with no hint at all.
//! - smbd silently ignores an `include` of a missing file: a missing fragment means "available".
//! - `smbcontrol … smbd …` when smbd does not run exits 1 with `Can't find pid for destination
//!   'smbd'` on stderr: [`smbd_not_running`] recognises it.
//! - Samba share names are case-insensitive and `close-share '*'` closes every share: names are
//!   validated ([`validate_conf_share_name`]) before they reach an argv.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// The program `smbcontrol` is run as when no prefix argv is configured.
pub const DEFAULT_SMBCONTROL: &str = "smbcontrol";
/// The program `smbstatus` is run as when no prefix argv is configured.
pub const DEFAULT_SMBSTATUS: &str = "smbstatus";
/// The folder under the state dir holding one include fragment per Samba share.
pub const FRAGMENT_DIR: &str = "samba";

/// What went wrong, in one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SambaError {
    /// `smbstatus` printed something that is not its JSON status.
    #[error("cannot read smbstatus output: {0}")]
    Status(String),
    /// A path that cannot go into smb.conf or an argv as it is.
    #[error("{0}")]
    Path(String),
    /// `smbstatus` said (on stderr) that it could not do its job.
    #[error("smbstatus failed: {0}")]
    Stderr(String),
}

/// One connection (a tree connect) to a share, as `smbstatus -S --json` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SmbSession {
    /// The share ("service") as smbd names it, in the case of its smb.conf section.
    pub share: String,
    /// The client: its address (smbd prints the IP, e.g. `192.168.1.20`) or name.
    pub machine: String,
    /// When the connection was made, RFC 3339 as smbstatus prints it
    /// (`2026-11-25T22:51:10.881893+00:00`).
    pub connected_at: Option<String>,
    /// The smbd process serving the connection.
    pub pid: Option<u32>,
}

/// The parts of `smbstatus -S --json` Backstop uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SmbStatus {
    /// The smb.conf smbstatus read, as it was given with `-s` (lets a caller check it).
    pub smb_conf: Option<String>,
    /// Samba's version, e.g. `4.17.12-Debian`.
    pub version: Option<String>,
    /// Every connection, to every share, oldest first.
    pub sessions: Vec<SmbSession>,
}

/// `<state_dir>/samba`: where the fragments live by default.
pub fn fragment_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(FRAGMENT_DIR)
}

/// `<dir>/<share>.conf`: the fragment the share's smb.conf section includes; `dir` is the
/// fragments' folder (by default [`fragment_dir`]). `share` must have passed
/// [`validate_conf_share_name`] (no `/`, not `..`).
pub fn fragment_path(dir: &Path, share: &str) -> PathBuf {
    dir.join(format!("{share}.conf"))
}

/// The fragment's content: `available = no` while a restore runs, only comments otherwise (an
/// include of an empty or comment-only file changes nothing).
pub fn fragment(available: bool, share: &str) -> String {
    // The name goes into a comment: escaped, so even an unvalidated name cannot add a line.
    let shown = share.escape_debug();
    if available {
        format!(
            "# Written by backstopd: share [{shown}] is available.\n\
             # During a restore it holds `available = no`; do not edit, backstopd rewrites it.\n"
        )
    } else {
        format!(
            "# Written by backstopd: share [{shown}] is offline while backstopd restores it.\n\
             # backstopd makes it available again when the restore ends (or on its next start).\n\
             available = no\n"
        )
    }
}

/// Writes `<dir>/<share>.conf` atomically (a temporary file in the same folder, fsync, rename),
/// creating the folder when missing, so smbd never reads a half-written file. Returns its path.
///
/// Write it (available) before smbd first reads smb.conf, and never delete it while the share
/// is offline: smbd silently ignores an include of a missing file, which means "available".
pub fn write_fragment(dir: &Path, share: &str, available: bool) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = fragment_path(dir, share);
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{share}.conf.tmp-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(fragment(available, share).as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

/// The line the admin adds to the share's section in smb.conf (shown by docs and doctor), e.g.
/// `include = /var/lib/backstop/samba/MattBookPro.conf` for `dir` = `/var/lib/backstop/samba`.
/// (`testparm -s` lists it in the section, so doctor can check it is there.)
///
/// Refuses paths smb.conf would read differently: not absolute (smbd would resolve it against its
/// own working directory), not UTF-8, with `%` (include paths undergo macro substitution), `\`
/// (line continuation) or control characters.
pub fn include_line(dir: &Path, share: &str) -> Result<String, SambaError> {
    let path = fragment_path(dir, share);
    let text = conf_text(&path)?;
    if let Some(c) = text
        .chars()
        .find(|c| *c == '%' || *c == '\\' || c.is_control())
    {
        return Err(SambaError::Path(format!(
            "'{}' contains '{}', which smb.conf's include would not read literally; choose a state_dir without it",
            text.escape_debug(),
            c.escape_debug()
        )));
    }
    Ok(format!("include = {text}"))
}

/// An absolute UTF-8 path's text.
fn conf_text(path: &Path) -> Result<String, SambaError> {
    let text = path
        .to_str()
        .ok_or_else(|| SambaError::Path(format!("'{}' is not UTF-8", path.display())))?;
    if !path.is_absolute() {
        return Err(SambaError::Path(format!(
            "'{}' is not absolute",
            text.escape_debug()
        )));
    }
    Ok(text.to_string())
}

/// Checks the smb.conf path given to smbcontrol and smbstatus: absolute and UTF-8 (the argv
/// builders take it as is).
pub fn validate_conf_path(conf: &Path) -> Result<(), SambaError> {
    conf_text(conf).map(|_| ())
}

/// Section names smb.conf reserves (compared without case).
const RESERVED: &[&str] = &["global", "homes", "printers", "print$", "ipc$"];

/// Samba's rules for a share name on top of [`crate::share::validate_share_name`] (which already
/// keeps out `*`, which `close-share` reads as "every share", a leading `-`, which would be read as
/// an option, `/`, `%`, `]` and spaces): not `.` or `..` (the fragment's file name), and not a section
/// smb.conf reserves (`global`, `homes`, `printers`, in any case).
///
/// Samba compares share names without case: two shares whose names differ only in case are one
/// share to smbd; see [`case_collision`].
pub fn validate_conf_share_name(name: &str) -> Result<(), String> {
    crate::share::validate_share_name(name)?;
    if name == "." || name == ".." {
        return Err(format!("'{name}' is not a Samba share name"));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "'{name}' is a section smb.conf reserves; use another name for the share"
        ));
    }
    Ok(())
}

/// The first two names that are the same share to Samba (equal without case), if any.
pub fn case_collision<'a>(names: &[&'a str]) -> Option<(&'a str, &'a str)> {
    for (i, a) in names.iter().enumerate() {
        if let Some(b) = names[i + 1..].iter().find(|b| b.eq_ignore_ascii_case(a)) {
            return Some((a, b));
        }
    }
    None
}

fn program(prefix: &[String], default: &str) -> Vec<String> {
    if prefix.is_empty() {
        vec![default.to_string()]
    } else {
        prefix.to_vec()
    }
}

fn conf_arg(conf: &Path) -> String {
    // validate_conf_path keeps non-UTF-8 paths out of the config; lossy only as a last resort.
    conf.to_string_lossy().into_owned()
}

/// `SMBCONTROL… -s CONF smbd reload-config`: smbd and its children re-read smb.conf (and the
/// fragments). `smbcontrol` is a prefix argv (e.g. `["smbcontrol"]` or
/// `["sudo", "-n", "smbcontrol"]`); empty means [`DEFAULT_SMBCONTROL`].
pub fn reload_config(smbcontrol: &[String], conf: &Path) -> Vec<String> {
    let mut argv = program(smbcontrol, DEFAULT_SMBCONTROL);
    argv.extend([
        "-s".into(),
        conf_arg(conf),
        "smbd".into(),
        "reload-config".into(),
    ]);
    argv
}

/// `SMBCONTROL… -s CONF smbd close-share SHARE`: drops every connection to that share (smbd does it
/// asynchronously: poll [`status`]). `share` must have passed [`validate_conf_share_name`].
pub fn close_share(smbcontrol: &[String], conf: &Path, share: &str) -> Vec<String> {
    let mut argv = program(smbcontrol, DEFAULT_SMBCONTROL);
    argv.extend([
        "-s".into(),
        conf_arg(conf),
        "smbd".into(),
        "close-share".into(),
        share.to_string(),
    ]);
    argv
}

/// `SMBSTATUS… -s CONF -S --json`: the connections per share, for [`parse_share_sessions`].
/// (`--json` needs Samba 4.16 or newer.)
pub fn status(smbstatus: &[String], conf: &Path) -> Vec<String> {
    let mut argv = program(smbstatus, DEFAULT_SMBSTATUS);
    argv.extend(["-s".into(), conf_arg(conf), "-S".into(), "--json".into()]);
    argv
}

/// True when smbcontrol's output says no smbd runs for that smb.conf (then there is nothing to
/// reload or close; smbcontrol exits 1).
pub fn smbd_not_running(stderr: &str) -> bool {
    stderr.contains("Can't find pid for destination")
}

/// smbstatus exits 0 with an empty list when it cannot load the smb.conf; its stderr then says
/// `Can't load CONF - run testparm to debug it`. Returns that problem, if stderr shows one.
pub fn status_stderr_error(stderr: &str) -> Option<SambaError> {
    stderr
        .lines()
        .find(|l| l.starts_with("Can't load "))
        .map(|l| SambaError::Stderr(l.trim().to_string()))
}

/// Parses `smbstatus -s CONF -S --json` (Samba 4.16+; `tcons` is an object of tree connects).
pub fn parse_status(json: &str) -> Result<SmbStatus, SambaError> {
    if json.trim().is_empty() {
        return Err(SambaError::Status(
            "smbstatus printed nothing (is it Samba 4.16 or newer, run with --json?)".into(),
        ));
    }
    let doc: serde_json::Value = serde_json::from_str(json).map_err(|e| {
        SambaError::Status(format!("not JSON ({e}); starts with '{}'", start_of(json)))
    })?;
    let obj = doc
        .as_object()
        .ok_or_else(|| SambaError::Status("the JSON is not an object".into()))?;
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let tcons = obj
        .get("tcons")
        .ok_or_else(|| SambaError::Status("no \"tcons\" (was it run with -S --json?)".into()))?
        .as_object()
        .ok_or_else(|| SambaError::Status("\"tcons\" is not an object".into()))?;
    let mut sessions = Vec::with_capacity(tcons.len());
    for (id, tcon) in tcons {
        let tcon = tcon
            .as_object()
            .ok_or_else(|| SambaError::Status(format!("tcon {id} is not an object")))?;
        let share = text(tcon.get("service"))
            .ok_or_else(|| SambaError::Status(format!("tcon {id} has no \"service\"")))?;
        let pid = tcon
            .get("server_id")
            .and_then(|s| s.get("pid"))
            .and_then(|p| match p {
                serde_json::Value::String(s) => s.parse().ok(),
                serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
                _ => None,
            });
        sessions.push(SmbSession {
            share,
            machine: text(tcon.get("machine")).unwrap_or_default(),
            connected_at: text(tcon.get("connected_at")),
            pid,
        });
    }
    sessions.sort_by(|a, b| {
        (&a.connected_at, &a.share, &a.machine, a.pid).cmp(&(
            &b.connected_at,
            &b.share,
            &b.machine,
            b.pid,
        ))
    });
    Ok(SmbStatus {
        smb_conf: text(obj.get("smb_conf")),
        version: text(obj.get("version")),
        sessions,
    })
}

/// The connections to `share` (compared without case, as Samba does) from
/// `smbstatus -s CONF -S --json`. Malformed output is an error, never an empty list.
pub fn parse_share_sessions(json: &str, share: &str) -> Result<Vec<SmbSession>, SambaError> {
    Ok(parse_status(json)?
        .sessions
        .into_iter()
        .filter(|s| s.share.eq_ignore_ascii_case(share))
        .collect())
}

/// The first 40 characters of `text`, escaped, for one-line errors.
fn start_of(text: &str) -> String {
    let t = text.trim_start();
    let mut s: String = t.chars().take(40).collect();
    if t.chars().count() > 40 {
        s.push('…');
    }
    s.escape_debug().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/samba");

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture")
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn no_connection() {
        let json = fixture("smbstatus-S-json-none.json");
        assert_eq!(parse_share_sessions(&json, "TMA").unwrap(), vec![]);
        let st = parse_status(&json).unwrap();
        assert_eq!(st.smb_conf.as_deref(), Some("smb.conf"));
        assert_eq!(st.version.as_deref(), Some("4.17.12-Debian"));
    }

    #[test]
    fn one_connection() {
        let json = fixture("smbstatus-S-json-one.json");
        let got = parse_share_sessions(&json, "TMA").unwrap();
        assert_eq!(
            got,
            vec![SmbSession {
                share: "TMA".into(),
                machine: "127.0.0.1".into(),
                connected_at: Some("2026-11-25T22:51:10.881893+00:00".into()),
                pid: Some(7365),
            }]
        );
        // Samba compares share names without case.
        assert_eq!(parse_share_sessions(&json, "tma").unwrap(), got);
        assert_eq!(parse_share_sessions(&json, "TMB").unwrap(), vec![]);
        assert_eq!(parse_share_sessions(&json, "TM").unwrap(), vec![]);
    }

    #[test]
    fn several_connections_on_two_shares() {
        let json = fixture("smbstatus-S-json-three.json");
        let a = parse_share_sessions(&json, "TMA").unwrap();
        assert_eq!(a.len(), 2);
        // Oldest first.
        assert_eq!(a[0].pid, Some(12671));
        assert_eq!(a[1].pid, Some(12670));
        let b = parse_share_sessions(&json, "TMB").unwrap();
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].machine, "127.0.0.1");
        assert_eq!(parse_status(&json).unwrap().sessions.len(), 3);
    }

    #[test]
    fn malformed_output_is_a_one_line_error() {
        for (bad, want) in [
            ("", "printed nothing"),
            ("   \n", "printed nothing"),
            ("{", "not JSON"),
            (
                "Usage: smbstatus [OPTION...]\n  -p, --processes",
                "not JSON",
            ),
            ("[]", "not an object"),
            ("{\"version\": \"4.17\"}", "no \"tcons\""),
            ("{\"tcons\": []}", "\"tcons\" is not an object"),
            ("{\"tcons\": {\"1\": 5}}", "tcon 1 is not an object"),
            (
                "{\"tcons\": {\"1\": {\"machine\": \"m\"}}}",
                "has no \"service\"",
            ),
            (
                "{\"tcons\": {\"1\": {\"service\": 7}}}",
                "has no \"service\"",
            ),
        ] {
            let err = parse_share_sessions(bad, "TMA").unwrap_err().to_string();
            assert!(err.contains(want), "{bad:?}: {err}");
            assert!(!err.contains('\n'), "{bad:?}: {err}");
        }
        // Truncated real output.
        let json = fixture("smbstatus-S-json-one.json");
        let err = parse_status(&json[..json.len() / 2])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot read smbstatus output: not JSON"),
            "{err}"
        );
        assert!(!err.contains('\n'));
    }

    #[test]
    fn odd_but_valid_fields_are_tolerated() {
        let json = r#"{"tcons": {"9": {"service": "TMA", "server_id": {"pid": 42}},
                                "8": {"service": "TMA", "server_id": {"pid": "x"}, "machine": null}}}"#;
        let got = parse_share_sessions(json, "TMA").unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.iter().any(|s| s.pid == Some(42)));
        assert!(got.iter().any(|s| s.pid.is_none() && s.machine.is_empty()));
        assert!(got.iter().all(|s| s.connected_at.is_none()));
    }

    #[test]
    fn stderr_checks_match_real_output() {
        let missing = fixture("smbstatus-missing-conf.stderr");
        let err = status_stderr_error(&missing).expect("a problem");
        assert_eq!(
            err.to_string(),
            "smbstatus failed: Can't load /nonexistent/smb.conf - run testparm to debug it"
        );
        assert_eq!(status_stderr_error(""), None);
        assert!(smbd_not_running(&fixture("smbcontrol-no-smbd.stderr")));
        assert!(!smbd_not_running(""));
    }

    #[test]
    fn argv_builders_always_pass_the_conf() {
        let conf = Path::new("/etc/samba/smb.conf");
        assert_eq!(
            reload_config(&s(&["smbcontrol"]), conf),
            s(&[
                "smbcontrol",
                "-s",
                "/etc/samba/smb.conf",
                "smbd",
                "reload-config"
            ])
        );
        assert_eq!(
            close_share(&s(&["sudo", "-n", "smbcontrol"]), conf, "MattBookPro"),
            s(&[
                "sudo",
                "-n",
                "smbcontrol",
                "-s",
                "/etc/samba/smb.conf",
                "smbd",
                "close-share",
                "MattBookPro"
            ])
        );
        assert_eq!(
            status(&s(&["/usr/bin/smbstatus"]), conf),
            s(&[
                "/usr/bin/smbstatus",
                "-s",
                "/etc/samba/smb.conf",
                "-S",
                "--json"
            ])
        );
        // An empty prefix means the default program, never an argv starting with "-s".
        assert_eq!(reload_config(&[], conf)[0], "smbcontrol");
        assert_eq!(close_share(&[], conf, "A")[0], "smbcontrol");
        assert_eq!(status(&[], conf)[0], "smbstatus");
        // A path with spaces stays one argument.
        let odd = Path::new("/srv/my samba/smb.conf");
        assert_eq!(status(&[], odd)[2], "/srv/my samba/smb.conf");
    }

    #[test]
    fn fragments() {
        let state = fragment_dir(Path::new("/var/lib/backstop"));
        let state = state.as_path();
        assert_eq!(
            fragment_path(state, "MattBookPro"),
            Path::new("/var/lib/backstop/samba/MattBookPro.conf")
        );
        assert_eq!(
            include_line(state, "MattBookPro").unwrap(),
            "include = /var/lib/backstop/samba/MattBookPro.conf"
        );
        let off = fragment(false, "MattBookPro");
        let on = fragment(true, "MattBookPro");
        let settings = |t: &str| -> Vec<String> {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(settings(&off), vec!["available = no"]);
        assert!(settings(&on).is_empty(), "{on}");
        assert!(on.contains("[MattBookPro]") && on.ends_with('\n'));
        // A name with a newline cannot add a setting.
        let evil = fragment(true, "x\navailable = no");
        assert!(settings(&evil).is_empty(), "{evil}");
    }

    #[test]
    fn include_line_refuses_paths_smb_conf_would_misread() {
        for (dir, want) in [
            ("relative/state", "not absolute"),
            ("/var/lib/100%m", "'%'"),
            ("/var/lib/a\\b", "'\\\\'"),
            ("/var/lib/a\nb", "'\\n'"),
        ] {
            let err = include_line(Path::new(dir), "A").unwrap_err().to_string();
            assert!(err.contains(want), "{dir:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
        assert!(include_line(Path::new("/srv/back stop"), "A").is_ok());
        assert!(validate_conf_path(Path::new("/etc/samba/smb.conf")).is_ok());
        assert!(validate_conf_path(Path::new("smb.conf")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = Path::new(std::ffi::OsStr::from_bytes(b"/etc/\xff.conf"));
            assert!(
                validate_conf_path(p)
                    .unwrap_err()
                    .to_string()
                    .contains("not UTF-8")
            );
        }
    }

    #[test]
    fn write_fragment_is_atomic_and_creates_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let frags = fragment_dir(dir.path());
        let path = write_fragment(&frags, "TMA", false).unwrap();
        assert_eq!(path, fragment_path(&frags, "TMA"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            fragment(false, "TMA")
        );
        write_fragment(&frags, "TMA", true).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            fragment(true, "TMA")
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&frags)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("TMA.conf")]);
    }

    #[test]
    fn share_names() {
        for ok in ["MattBookPro", "TM.backup", "a_b-c", "Globals", "home"] {
            assert_eq!(validate_conf_share_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "global", "GLOBAL", "Homes", "printers", ".", "..", "*", "-x", "a b", "a]", "a%b", "",
        ] {
            assert!(validate_conf_share_name(bad).is_err(), "{bad}");
        }
        assert_eq!(case_collision(&["A", "b", "a"]), Some(("A", "a")));
        assert_eq!(case_collision(&["A", "b", "c"]), None);
        assert_eq!(case_collision(&[]), None);
    }
}
