//! Netatalk (AFP): which version runs, where a volume's CNID database lives, what to change for
//! instant CNID-stable restores, and what `dbd` said. Pure: text in, values out, no I/O.
//!
//! Netatalk 3 and 4 read `afp.conf` (an INI file, parsed by iniparser); netatalk 2 read
//! `AppleVolumes.default` (one volume a line). Both are read here as netatalk reads them, from its
//! sources (libatalk/util/netatalk_conf.c, iniparser 4.2, netatalk 2's volume.c), checked against
//! the real netatalk 4.2.3 (fixtures in `tests/fixtures/netatalk/`):
//!
//! - INI: section and option names are case-insensitive (iniparser lowercases them); `;` and `#`
//!   start a comment line, and end an unquoted value; a value may be quoted ("…" or '…'); a line
//!   ending in `\` continues on the next; a later duplicate option wins. Anything else is a syntax
//!   error, on which netatalk refuses the whole file: so do we, naming the line.
//! - A section with a `path` is a volume (except `[Global]` and `[Homes]`); one without is a
//!   preset. A volume option is looked up in the volume's section, then in its preset (`vol preset`
//!   in the section, else in `[Global]`), never in `[Global]` itself: `cnid dev = no` in `[Global]`
//!   does nothing. The exceptions netatalk makes: `vol dbpath` falls back to `[Global]` (a global
//!   value without a `$` gets `/<volume name>/` appended), and `vol dbnest = yes` (only read in
//!   `[Global]`) puts every database in its volume's root.
//! - The database directory is `<dbpath>/.AppleDB`; the default dbpath is
//!   `<state dir>/CNID/<volume name>/` (`/var/lib/netatalk/` on Debian; `afpd -V` prints it).
//! - Variables as netatalk expands them outside a user session (the master, `cnid_dbd`, `dbd`):
//!   `$v` (volume name), `$$`; `$u`, `$f`, `$g`, `$h`, `$s` and unknown ones are kept as written
//!   (they need a user or the host); `$b`, `$d`, `$c`, `$i` expand to nothing in `vol dbpath`.
//!   Volume paths are not resolved (netatalk calls realpath; symlinks are not followed here).

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The major version of a Netatalk install.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NetatalkVersion {
    /// 2.x: `AppleVolumes.default`, `afpd.conf`, `dbd -s|-r`, database in the volume by default.
    V2,
    /// 3.x: `afp.conf`, `dbd [-f] [-s] -F CONF PATH`, database under the state dir by default.
    V3,
    /// 4.x: as 3.x.
    V4,
}

impl NetatalkVersion {
    /// Whether the volumes are configured in `afp.conf` (3 and 4) rather than
    /// `AppleVolumes.default` (2).
    pub fn uses_afp_conf(self) -> bool {
        self != NetatalkVersion::V2
    }
}

/// Programs whose `-v`/`-V` output names the Netatalk version.
const VERSIONED_PROGRAMS: &[&str] = &["netatalk", "afpd", "dbd", "cnid_metad", "cnid_dbd"];

/// The version from `netatalk -V`, `afpd -V`, `dbd -V`, `cnid_metad -V` or `cnid_dbd -V`, e.g.
/// "netatalk 4.2.3 - Netatalk AFP server service controller daemon", "afpd 2.2.6 - Apple Filing
/// Protocol (AFP) daemon of Netatalk", "dbd 4.2.3", "cnid_metad (Netatalk 4.2.3)".
/// `None` when no line says, or for a major version other than 2, 3 or 4.
pub fn parse_version(output: &str) -> Option<(NetatalkVersion, String)> {
    for line in output.lines() {
        let mut words = line.split_whitespace();
        let Some(program) = words.next() else {
            continue;
        };
        let program = program.rsplit('/').next().unwrap_or(program);
        if !VERSIONED_PROGRAMS.contains(&program) {
            continue;
        }
        let mut word = words.next().unwrap_or("");
        if word == "(Netatalk" {
            word = words.next().unwrap_or("").trim_end_matches(')');
        }
        let version: String = word
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '~' | '_'))
            .collect();
        if !version.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let major: String = version.chars().take_while(char::is_ascii_digit).collect();
        let v = match major.as_str() {
            "2" => NetatalkVersion::V2,
            "3" => NetatalkVersion::V3,
            "4" => NetatalkVersion::V4,
            _ => return None,
        };
        return Some((v, version));
    }
    None
}

/// Compiled-in paths that `afpd -V` (3, 4) or `afpd -v` (2) prints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AfpdPaths {
    /// `afp.conf:` (3, 4).
    pub afp_conf: Option<PathBuf>,
    /// `state directory:` (3, 4): the default CNID databases are under `CNID/` in it.
    pub state_dir: Option<PathBuf>,
    /// `AppleVolumes.default:` (2).
    pub apple_volumes_default: Option<PathBuf>,
}

/// The paths from `afpd -V` output (lines like `              afp.conf:\t/etc/netatalk/afp.conf`).
pub fn parse_afpd_paths(output: &str) -> AfpdPaths {
    let mut paths = AfpdPaths::default();
    for line in output.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if !value.starts_with('/') {
            continue;
        }
        match key.trim() {
            "afp.conf" => paths.afp_conf = Some(PathBuf::from(value)),
            "state directory" => paths.state_dir = Some(PathBuf::from(value)),
            "AppleVolumes.default" => paths.apple_volumes_default = Some(PathBuf::from(value)),
            _ => {}
        }
    }
    paths
}

/// Where a volume's CNID database is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CnidDb {
    /// In the volume (so in the dataset, when the dataset is the volume): a snapshot holds it and
    /// a restore brings it back with the files.
    InsideVolume,
    /// Outside the volume: the `.AppleDB` directory itself (as netatalk sees it, e.g.
    /// `/var/lib/netatalk/CNID/tm/.AppleDB`). Only this directory is the database: never delete
    /// its parent.
    Outside(PathBuf),
}

/// Where in its configuration a volume is defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An `afp.conf` section, as spelled in the file (its first header).
    Section(String),
    /// An `AppleVolumes.default` line (1-based number; the line as written, continuations joined).
    AppleVolumesLine { number: usize, text: String },
}

/// How a volume is set up, with every option resolved as netatalk resolves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeSetup {
    /// The volume's name (what clients see and `backstop`'s `service.volume` names).
    pub name: String,
    /// The shared directory, as netatalk sees it (before realpath).
    pub path: String,
    pub cnid_db: CnidDb,
    /// The `.AppleDB` directory, wherever it is.
    pub db_dir: PathBuf,
    /// `cnid dev` (netatalk 2: no `nodev` in `options:`): CNIDs keyed by device number too.
    pub cnid_dev: bool,
    /// `cnid scheme` (`dbd` unless set; netatalk 2: `cnidscheme:`).
    pub cnid_scheme: String,
    /// `time machine = yes` (netatalk 2: `tm` in `options:`).
    pub time_machine: bool,
    /// `vol dbnest = yes` in `[Global]` put the database in the volume.
    pub dbnest: bool,
    pub origin: Origin,
}

/// An `afp.conf` (netatalk 3 and 4), parsed as netatalk's iniparser parses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AfpConf {
    /// Sections in file order, merged by lowercased name (iniparser keeps one per name).
    sections: Vec<Section>,
    state_dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Section {
    /// Lowercased.
    key: String,
    /// As spelled in the first header.
    spelled: String,
    /// (lowercased option name, value), in file order; a later duplicate wins.
    options: Vec<(String, String)>,
}

impl Section {
    fn get(&self, option: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == option)
            .map(|(_, v)| v.as_str())
    }
}

/// Debian's (and netatalk's default) state directory.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/netatalk/";

/// A syntax error in a netatalk configuration file: one line, naming the line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct AfpConfError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// Joins lines ending in `\` with the next, as iniparser and netatalk 2 do; yields (first line
/// number, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let (number, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        let trimmed = raw.trim_end();
        if let Some(head) = trimmed.strip_suffix('\\') {
            acc.push_str(head);
            pending = Some((number, acc));
        } else {
            acc.push_str(raw);
            out.push((number, acc));
        }
    }
    if let Some(p) = pending {
        out.push(p);
    }
    out
}

/// A quoted value: up to the closing quote, backslash escapes honoured; the rest of the line
/// (a comment) is ignored. `None` when the quote is not closed.
fn quoted(rest: &str, quote: char) -> Option<String> {
    let mut value = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(chars.next()?),
            c if c == quote => return Some(value),
            c => value.push(c),
        }
    }
    None
}

/// Parses an `afp.conf`. Errors are one line and name the line number.
pub fn parse_afp_conf(text: &str) -> Result<AfpConf, AfpConfError> {
    let mut sections: Vec<Section> = Vec::new();
    // Options before the first section go nowhere netatalk looks.
    let mut current: Option<usize> = None;
    for (number, line) in logical_lines(text) {
        let err = |message: String| AfpConfError {
            line: number,
            message,
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(err(format!(
                    "section header `{line}` does not end with `]` (comments need a line of their own)"
                )));
            };
            let name = name.split(']').next().unwrap_or(name).trim();
            if name.is_empty() {
                return Err(err("empty section name `[]`".to_string()));
            }
            let key = name.to_lowercase();
            current = Some(match sections.iter().position(|s| s.key == key) {
                Some(i) => i,
                None => {
                    sections.push(Section {
                        key,
                        spelled: name.to_string(),
                        options: Vec::new(),
                    });
                    sections.len() - 1
                }
            });
            continue;
        }
        let Some((key, rest)) = line.split_once('=') else {
            return Err(err(format!(
                "`{line}` is neither `option = value`, a `[section]` nor a comment"
            )));
        };
        let key = key.trim().to_lowercase();
        if key.is_empty() {
            return Err(err(format!("`{line}` has no option name before `=`")));
        }
        let rest = rest.trim_start();
        let value = if let Some(q) = rest.strip_prefix('"') {
            quoted(q, '"').ok_or_else(|| err(format!("unclosed `\"` in `{line}`")))?
        } else if let Some(q) = rest.strip_prefix('\'') {
            quoted(q, '\'').ok_or_else(|| err(format!("unclosed `'` in `{line}`")))?
        } else {
            rest.split([';', '#'])
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        };
        if let Some(i) = current {
            sections[i].options.push((key, value));
        }
    }
    Ok(AfpConf {
        sections,
        state_dir: PathBuf::from(DEFAULT_STATE_DIR),
    })
}

/// iniparser's booleans: the first character decides (`y`, `t`, `1` / `n`, `f`, `0`); anything
/// else counts as unset.
fn boolean(value: &str) -> Option<bool> {
    match value.chars().next()? {
        'y' | 'Y' | 't' | 'T' | '1' => Some(true),
        'n' | 'N' | 'f' | 'F' | '0' => Some(false),
        _ => None,
    }
}

/// What a `$x` variable becomes, outside a user session.
enum Var<'a> {
    Text(&'a str),
    Nothing,
    Keep,
}

/// netatalk's volxlate: `$x` replaced by what `var` says; `$$` is `$`.
fn expand<'a>(text: &str, var: impl Fn(char) -> Var<'a>) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let Some(&v) = chars.peek() else {
            out.push('$');
            continue;
        };
        chars.next();
        if v == '$' {
            out.push('$');
            continue;
        }
        match var(v) {
            Var::Text(t) => out.push_str(t),
            Var::Nothing => {}
            Var::Keep => {
                out.push('$');
                out.push(v);
            }
        }
    }
    out
}

/// The last path component, as netatalk's `$b`/`$v` take it.
fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Lexically normalized (no `.`, `..` resolved, no trailing or doubled `/`).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn db_location(volume_path: &str, dbpath: &str) -> (CnidDb, PathBuf) {
    let volume = normalize(Path::new(volume_path));
    let dbpath = normalize(Path::new(dbpath));
    let db_dir = dbpath.join(".AppleDB");
    let cnid_db = if dbpath.starts_with(&volume) {
        CnidDb::InsideVolume
    } else {
        CnidDb::Outside(db_dir.clone())
    };
    (cnid_db, db_dir)
}

impl AfpConf {
    /// The state directory for default database paths (`afpd -V` prints it as
    /// `state directory:`); [`DEFAULT_STATE_DIR`] unless set.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> AfpConf {
        self.state_dir = dir.into();
        self
    }

    fn section(&self, name: &str) -> Option<&Section> {
        let key = name.to_lowercase();
        self.sections.iter().find(|s| s.key == key)
    }

    /// An option of `[Global]`.
    pub fn global(&self, option: &str) -> Option<&str> {
        self.section("global")?.get(&option.to_lowercase())
    }

    /// The files named by `include` options (netatalk reads them as if typed in place; this
    /// parser does not read files: the caller may).
    pub fn includes(&self) -> Vec<String> {
        self.sections
            .iter()
            .filter_map(|s| s.get("include"))
            .map(str::to_string)
            .collect()
    }

    /// (volume name, its section) for every volume section, in file order.
    fn volume_sections(&self) -> impl Iterator<Item = (String, &Section)> {
        self.sections
            .iter()
            .filter(|s| s.key != "global" && s.key != "homes")
            .filter_map(|s| {
                let path = self.path_of(s)?;
                let spelled = s.get("volume name").unwrap_or(&s.key);
                let name = expand(spelled, |v| match v {
                    'b' | 'v' => Var::Text(basename(&path)),
                    'd' => Var::Text(&path),
                    _ => Var::Keep,
                });
                Some((name, s))
            })
    }

    fn path_of(&self, s: &Section) -> Option<String> {
        let raw = s.get("path")?;
        if raw.is_empty() {
            return None;
        }
        Some(expand(raw, |v| match v {
            'b' | 'd' | 'v' | 'c' | 'i' => Var::Nothing,
            _ => Var::Keep,
        }))
    }

    /// The names of the volumes (sections with a `path`, not `[Homes]`), in file order.
    pub fn volume_names(&self) -> Vec<String> {
        self.volume_sections().map(|(n, _)| n).collect()
    }

    /// The volume clients know as `name`, with its options resolved (volume section, then its
    /// preset, then the exceptions netatalk makes for the database path). Like afpd, which
    /// opens volumes by name regardless of case, a name that differs only in case matches when
    /// no name matches exactly (a section `[TimeMachine]` without `volume name` is the volume
    /// "timemachine").
    pub fn volume(&self, name: &str) -> Option<VolumeSetup> {
        let (name, section) = self
            .volume_sections()
            .find(|(n, _)| n == name)
            .or_else(|| {
                let lower = name.to_lowercase();
                let mut it = self
                    .volume_sections()
                    .filter(|(n, _)| n.to_lowercase() == lower);
                let one = it.next()?;
                it.next().is_none().then_some(one)
            })?;
        let path = self.path_of(section)?;
        let preset = section
            .get("vol preset")
            .or_else(|| self.global("vol preset"))
            .and_then(|p| self.section(p));
        let opt = |option: &str| -> Option<&str> {
            section
                .get(option)
                .or_else(|| preset.and_then(|p| p.get(option)))
        };
        let flag = |option: &str, default: bool| opt(option).and_then(boolean).unwrap_or(default);

        // The volume name with '/' made ':', as netatalk uses it in database paths.
        let db_name = name.replace('/', ":");
        let dbnest = self.global("vol dbnest").and_then(boolean).unwrap_or(false);
        let dbpath = if dbnest {
            path.clone()
        } else {
            let raw = match opt("vol dbpath") {
                Some(v) => v.to_string(),
                None => match self.global("vol dbpath") {
                    Some(g) if !g.contains('$') => format!("{g}/{db_name}/"),
                    Some(g) => g.to_string(),
                    None => format!("{}/CNID/{db_name}/", self.state_dir.display()),
                },
            };
            expand(&raw, |v| match v {
                'v' => Var::Text(&db_name),
                'b' | 'd' | 'c' | 'i' => Var::Nothing,
                _ => Var::Keep,
            })
        };
        let (cnid_db, db_dir) = db_location(&path, &dbpath);
        Some(VolumeSetup {
            name,
            path,
            cnid_db,
            db_dir,
            cnid_dev: flag("cnid dev", true),
            cnid_scheme: opt("cnid scheme").unwrap_or("dbd").to_string(),
            time_machine: flag("time machine", false),
            dbnest,
            origin: Origin::Section(section.spelled.clone()),
        })
    }
}

/// A netatalk 2 `AppleVolumes.default`: one volume a line, `path ["name"] [option:value …]`, with
/// `:DEFAULT:` options for every later line; `~` lines (home directories) are not volumes here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppleVolumes {
    volumes: Vec<VolumeSetup>,
}

impl AppleVolumes {
    pub fn volume(&self, name: &str) -> Option<VolumeSetup> {
        self.volumes.iter().find(|v| v.name == name).cloned()
    }

    pub fn volume_names(&self) -> Vec<String> {
        self.volumes.iter().map(|v| v.name.clone()).collect()
    }
}

/// Splits an `AppleVolumes.default` line into words: whitespace-separated, `"…"` quoted.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else {
            return Ok(out);
        };
        let mut word = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(c) => word.push(c),
                    None => return Err("unclosed `\"`".to_string()),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
        }
        out.push(word);
    }
}

/// Parses a netatalk 2 `AppleVolumes.default` (or `.system`). Errors name the line.
pub fn parse_apple_volumes(text: &str) -> Result<AppleVolumes, AfpConfError> {
    let mut defaults: Vec<(String, String)> = Vec::new();
    let mut volumes = Vec::new();
    for (number, line) in logical_lines(text) {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let ws = words(trimmed).map_err(|message| AfpConfError {
            line: number,
            message,
        })?;
        let Some(first) = ws.first() else {
            continue;
        };
        let options_of = |ws: &[String]| -> Vec<(String, String)> {
            ws.iter()
                .filter_map(|w| w.split_once(':'))
                .map(|(k, v)| (k.to_lowercase(), v.to_string()))
                .collect()
        };
        if first == ":DEFAULT:" {
            defaults = options_of(&ws[1..]);
            continue;
        }
        if first.starts_with('~') || !first.starts_with('/') {
            continue;
        }
        let path = first.clone();
        let (name_word, option_words) = match ws.get(1) {
            Some(w) if !w.contains(':') => (Some(w.clone()), &ws[2..]),
            _ => (None, &ws[1..]),
        };
        let mut opts = defaults.clone();
        opts.extend(options_of(option_words));
        let opt = |k: &str| {
            opts.iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        // `options:` flags add up (netatalk 2 ORs each line's into the defaults').
        let flags: Vec<&str> = opts
            .iter()
            .filter(|(k, _)| k == "options")
            .flat_map(|(_, v)| v.split(','))
            .collect();
        let name = match name_word {
            Some(n) => expand(&n, |v| match v {
                'b' | 'v' => Var::Text(basename(&path)),
                'd' => Var::Text(&path),
                _ => Var::Keep,
            }),
            None => basename(&path).to_string(),
        };
        let db_name = name.replace('/', ":");
        let dbpath = match opt("dbpath") {
            Some(d) => expand(d, |v| match v {
                'v' => Var::Text(&db_name),
                'b' | 'd' | 'c' | 'i' => Var::Nothing,
                _ => Var::Keep,
            }),
            None => path.clone(),
        };
        let (cnid_db, db_dir) = db_location(&path, &dbpath);
        volumes.push(VolumeSetup {
            name,
            path,
            cnid_db,
            db_dir,
            cnid_dev: !flags.contains(&"nodev"),
            cnid_scheme: opt("cnidscheme").unwrap_or("dbd").to_string(),
            time_machine: flags.contains(&"tm"),
            dbnest: false,
            origin: Origin::AppleVolumesLine {
                number,
                text: trimmed.to_string(),
            },
        });
    }
    Ok(AppleVolumes { volumes })
}

/// One change for `backstop doctor`: a one-line summary and the exact configuration lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advice {
    /// One line: what is wrong for restores, and where the lines go.
    pub summary: String,
    /// The lines to add (afp.conf: under `section`, replacing any line setting the same option
    /// there; AppleVolumes.default: the volume's whole new line).
    pub lines: Vec<String>,
    /// `[section]` for afp.conf; `AppleVolumes.default line N` for netatalk 2.
    pub section: String,
}

/// What to change so restores of this volume are instant and keep every CNID: a `dbd` database
/// inside the volume (`vol dbpath = <volume path>`, or `vol dbnest = yes` for every volume) and
/// `cnid dev = no` (a clone swap gives the dataset a new device number). Empty when it is fine.
pub fn advice(setup: &VolumeSetup) -> Vec<Advice> {
    match &setup.origin {
        Origin::Section(section) => afp_conf_advice(setup, section),
        Origin::AppleVolumesLine { number, text } => apple_volumes_advice(setup, *number, text),
    }
}

fn afp_conf_advice(setup: &VolumeSetup, section: &str) -> Vec<Advice> {
    let header = format!("[{section}]");
    let mut out = Vec::new();
    if setup.cnid_scheme != "dbd" {
        out.push(Advice {
            summary: format!(
                "volume '{}' uses `cnid scheme = {}`: only the dbd backend keeps its database in files a snapshot holds; set it in {header}",
                setup.name, setup.cnid_scheme
            ),
            lines: vec!["cnid scheme = dbd".to_string()],
            section: header.clone(),
        });
    }
    if let CnidDb::Outside(db) = &setup.cnid_db {
        out.push(Advice {
            summary: format!(
                "volume '{}' keeps its CNID database outside the dataset ({}), so a restore brings back files but not their CNIDs; add to {header} (or `vol dbnest = yes` in [Global] for every volume), then with netatalk stopped move {} to {}/.AppleDB",
                setup.name,
                db.display(),
                db.display(),
                setup.path.trim_end_matches('/')
            ),
            lines: vec![format!("vol dbpath = {}", setup.path)],
            section: header.clone(),
        });
    }
    if setup.cnid_dev {
        out.push(Advice {
            summary: format!(
                "volume '{}' keys CNIDs by device number (`cnid dev` defaults to yes, and a [Global] setting does not count): a clone-and-swap restore changes the device number and renumbers every file; add to {header}",
                setup.name
            ),
            lines: vec!["cnid dev = no".to_string()],
            section: header,
        });
    }
    out
}

fn apple_volumes_advice(setup: &VolumeSetup, number: usize, text: &str) -> Vec<Advice> {
    let mut problems = Vec::new();
    if setup.cnid_scheme != "dbd" {
        problems.push(format!("uses cnidscheme:{}", setup.cnid_scheme));
    }
    if matches!(setup.cnid_db, CnidDb::Outside(_)) {
        problems.push("keeps its CNID database outside the volume (dbpath:)".to_string());
    }
    if setup.cnid_dev {
        problems.push("keys CNIDs by device number (no `nodev` option)".to_string());
    }
    if problems.is_empty() {
        return Vec::new();
    }
    // The volume's line, rewritten: dbpath: dropped (the default is the volume itself),
    // cnidscheme:dbd, nodev added to options:.
    let mut ws = words(text).unwrap_or_default();
    ws.retain(|w| {
        let k = w.split_once(':').map(|(k, _)| k.to_lowercase());
        !matches!(k.as_deref(), Some("dbpath") | Some("cnidscheme"))
    });
    if setup.cnid_scheme != "dbd" {
        ws.push("cnidscheme:dbd".to_string());
    }
    if setup.cnid_dev {
        match ws
            .iter_mut()
            .rev()
            .find(|w| w.to_lowercase().starts_with("options:"))
        {
            Some(w) if w.len() > "options:".len() => w.push_str(",nodev"),
            Some(w) => w.push_str("nodev"),
            None => ws.push("options:nodev".to_string()),
        }
    }
    let line = ws
        .iter()
        .map(|w| {
            if w.contains(char::is_whitespace) {
                format!("\"{w}\"")
            } else {
                w.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    vec![Advice {
        summary: format!(
            "volume '{}' {}: replace line {number} of AppleVolumes.default with",
            setup.name,
            problems.join(" and ")
        ),
        lines: vec![line],
        section: format!("AppleVolumes.default line {number}"),
    }]
}

/// What `dbd` reported. dbd exits 0 even when it could not reach the CNID server or found
/// mismatches, so its output is the only word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbdReport {
    /// No problem line (an empty output, or only progress and debug lines).
    pub clean: bool,
    /// The lines that are problems, as dbd printed them (log lines without their timestamp).
    pub problems: Vec<String>,
}

impl fmt::Display for DbdReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.clean {
            write!(f, "dbd: clean")
        } else {
            write!(f, "dbd: {}", self.problems.join("; "))
        }
    }
}

/// Lines `dbd` prints that are not problems: `-v` progress and debug output, `-t` statistics.
const DBD_BENIGN_PREFIXES: &[&str] = &[
    "adouble:ea volume",
    "adouble:v2 volume",
    "File without meta EA:",
    "Entering directory:",
    "CNID from .AppleDouble file",
    "EA: ",
    "Ignoring \"",
    "Ignoring special dir",
    "Ignoring AppleDouble CNID hint",
    "Scanned: ",
];

/// A netatalk log line: `Nov 25 22:59:38.716264 dbd[14395] {cnid_dbd.c:149} (error:CNID): text`.
/// Returns (level, text).
fn log_line(line: &str) -> Option<(&str, &str)> {
    let after_src = line.split_once("} (")?.1;
    let (level_and_type, text) = after_src.split_once("): ")?;
    let level = level_and_type.split(':').next()?;
    Some((level, text))
}

/// Reads `dbd` output (stdout and stderr together): every line that is not progress, debug or
/// statistics is a problem, e.g. `CNID mismatch for '/srv/tm/a', CNID db: 17, ad-file: 0`,
/// `Bad CNID in adouble file of …`, `… (error:CNID): transmit: connection refused (volume tm)`,
/// `Couldn't find volume for '…'`.
pub fn parse_dbd_output(out: &str) -> DbdReport {
    let mut problems = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some((level, text)) = log_line(line) {
            let level = level.to_lowercase();
            if level.starts_with("debug")
                || level == "maxdebug"
                || level == "info"
                || level == "note"
            {
                continue;
            }
            problems.push(format!("{level}: {text}"));
            continue;
        }
        if DBD_BENIGN_PREFIXES.iter().any(|p| line.starts_with(p)) {
            continue;
        }
        problems.push(line.to_string());
    }
    DbdReport {
        clean: problems.is_empty(),
        problems,
    }
}

/// What a `dbd` run should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbdMode {
    /// Check only (`-s`; netatalk 3/4 still add missing records and may fix cached CNIDs).
    Scan,
    /// Update the database from the volume (netatalk 2 `-r`; netatalk 3/4 the default).
    Rebuild,
    /// Wipe the database, then rebuild (`-f`): CNIDs not cached in the files are renumbered.
    WipeAndRebuild,
}

/// The arguments after `dbd` itself: netatalk 3/4 take the config file with `-F` (the
/// volume is found in it by path); netatalk 2 has no config option.
pub fn dbd_args(
    version: NetatalkVersion,
    mode: DbdMode,
    afp_conf: Option<&Path>,
    volume_path: &str,
) -> Vec<String> {
    let mut args = Vec::new();
    match version {
        NetatalkVersion::V2 => match mode {
            DbdMode::Scan => args.push("-s".to_string()),
            DbdMode::Rebuild => args.push("-r".to_string()),
            DbdMode::WipeAndRebuild => {
                args.push("-r".to_string());
                args.push("-f".to_string());
            }
        },
        NetatalkVersion::V3 | NetatalkVersion::V4 => {
            if let Some(conf) = afp_conf {
                args.push("-F".to_string());
                args.push(conf.display().to_string());
            }
            match mode {
                DbdMode::Scan => args.push("-s".to_string()),
                DbdMode::Rebuild => {}
                DbdMode::WipeAndRebuild => args.push("-f".to_string()),
            }
        }
    }
    args.push(volume_path.to_string());
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/netatalk")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn conf(name: &str) -> AfpConf {
        parse_afp_conf(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    // --- versions -------------------------------------------------------------------------

    #[test]
    fn versions_of_the_real_netatalk_4() {
        for f in [
            "netatalk-V.4.2.3.txt",
            "afpd-V.4.2.3.txt",
            "dbd-V.4.2.3.txt",
            "cnid_metad-V.4.2.3.txt",
        ] {
            assert_eq!(
                parse_version(&fixture(f)),
                Some((NetatalkVersion::V4, "4.2.3".to_string())),
                "{f}"
            );
        }
    }

    #[test]
    fn versions_of_netatalk_2_and_3() {
        assert_eq!(
            parse_version(&fixture("afpd-V.2.2.6.txt")),
            Some((NetatalkVersion::V2, "2.2.6".to_string()))
        );
        assert_eq!(
            parse_version(&fixture("afpd-V.3.1.12.txt")),
            Some((NetatalkVersion::V3, "3.1.12".to_string()))
        );
        assert_eq!(
            parse_version("/usr/local/sbin/afpd 3.0.2 - Apple Filing Protocol (AFP) daemon"),
            Some((NetatalkVersion::V3, "3.0.2".to_string()))
        );
        assert_eq!(
            parse_version("afpd 2.2.1.1 - Apple Filing Protocol (AFP) daemon of Netatalk"),
            Some((NetatalkVersion::V2, "2.2.1.1".to_string()))
        );
    }

    #[test]
    fn versions_that_are_not() {
        assert_eq!(parse_version(""), None);
        assert_eq!(parse_version("sh: 1: netatalk: not found"), None);
        assert_eq!(parse_version("netatalk: invalid option -- 'V'"), None);
        assert_eq!(parse_version("afpd 1.6.4 - Apple Filing Protocol"), None);
        assert_eq!(parse_version("netatalk 5.0.0 - the future"), None);
        assert_eq!(parse_version("smbd 4.17.12"), None);
    }

    #[test]
    fn compiled_in_paths() {
        let p = parse_afpd_paths(&fixture("afpd-V.4.2.3.txt"));
        assert_eq!(p.afp_conf, Some(PathBuf::from("/etc/netatalk/afp.conf")));
        assert_eq!(p.state_dir, Some(PathBuf::from("/var/lib/netatalk/")));
        assert_eq!(p.apple_volumes_default, None);
        let p2 = parse_afpd_paths(&fixture("afpd-V.2.2.6.txt"));
        assert_eq!(
            p2.apple_volumes_default,
            Some(PathBuf::from("/etc/netatalk/AppleVolumes.default"))
        );
        assert_eq!(p2.afp_conf, None);
    }

    // --- afp.conf ---------------------------------------------------------------------------

    #[test]
    fn debians_default_afp_conf_has_no_volume() {
        let c = conf("afp.conf.debian-trixie-default");
        assert_eq!(c.volume_names(), Vec::<String>::new());
        assert_eq!(c.volume("my backup"), None);
        assert_eq!(c.global("zeroconf"), None);
    }

    #[test]
    fn the_test_instance_keeps_its_database_inside() {
        let c = conf("afp.conf.test-instance");
        assert_eq!(c.global("afp port"), Some("10611"));
        assert_eq!(c.global("CNID Server"), Some("127.0.0.1:10612"));
        let v = c.volume("tm").expect("volume tm");
        assert_eq!(v.path, "/srv/na2dir");
        assert_eq!(v.cnid_db, CnidDb::InsideVolume);
        assert_eq!(v.db_dir, PathBuf::from("/srv/na2dir/.AppleDB"));
        assert!(!v.cnid_dev);
        assert!(v.time_machine);
        assert_eq!(v.cnid_scheme, "dbd");
        assert_eq!(advice(&v), Vec::new());
    }

    #[test]
    fn the_default_database_is_under_the_state_dir() {
        let c = conf("afp.conf.default-db");
        let v = c.volume("TimeMachine").expect("volume");
        assert_eq!(v.path, "/tank/tm");
        assert_eq!(
            v.cnid_db,
            CnidDb::Outside(PathBuf::from("/var/lib/netatalk/CNID/TimeMachine/.AppleDB"))
        );
        assert!(v.cnid_dev);
        assert!(v.time_machine);
        let v = c
            .clone()
            .with_state_dir("/opt/local/var/netatalk/")
            .volume("TimeMachine")
            .unwrap();
        assert_eq!(
            v.db_dir,
            PathBuf::from("/opt/local/var/netatalk/CNID/TimeMachine/.AppleDB")
        );
        // The section name, lowercased, when there is no `volume name`.
        let other = c.volume("other").expect("volume other");
        assert_eq!(
            other.db_dir,
            PathBuf::from("/var/lib/netatalk/CNID/other/.AppleDB")
        );
        // afpd opens volumes regardless of case.
        assert_eq!(c.volume("Other").unwrap().name, "other");
        assert_eq!(c.volume_names(), vec!["TimeMachine", "other"]);
    }

    #[test]
    fn advice_for_the_seeds_setup() {
        let v = conf("afp.conf.default-db").volume("TimeMachine").unwrap();
        let a = advice(&v);
        assert_eq!(a.len(), 2, "{a:#?}");
        assert_eq!(a[0].section, "[Time Machine]");
        assert_eq!(a[0].lines, vec!["vol dbpath = /tank/tm"]);
        assert!(
            a[0].summary
                .contains("/var/lib/netatalk/CNID/TimeMachine/.AppleDB")
        );
        assert!(!a[0].summary.contains('\n'));
        assert_eq!(a[1].lines, vec!["cnid dev = no"]);
        assert_eq!(a[1].section, "[Time Machine]");
    }

    #[test]
    fn global_options_and_presets() {
        let c = conf("afp.conf.presets");
        // `cnid dev = no` in [Global] is not a volume option: netatalk ignores it there.
        let plain = c.volume("plain").unwrap();
        assert!(plain.cnid_dev);
        // A global dbpath without a variable gets the volume name appended.
        assert_eq!(
            plain.cnid_db,
            CnidDb::Outside(PathBuf::from("/var/db/afp/plain/.AppleDB"))
        );
        // The default preset (vol preset in [Global]) gives time machine and cnid dev.
        assert!(plain.time_machine);
        let tm = c.volume("Backups of Anna").unwrap();
        // The section's own preset wins over the global one.
        assert!(!tm.cnid_dev);
        assert!(tm.time_machine);
        assert_eq!(tm.cnid_scheme, "dbd");
        // The volume's own dbpath, with $v, is not appended to.
        assert_eq!(
            tm.db_dir,
            PathBuf::from("/tank/tm/anna/.cnid/Backups of Anna/.AppleDB")
        );
        assert_eq!(tm.cnid_db, CnidDb::InsideVolume);
        assert_eq!(advice(&tm), Vec::new());
        // A section without path is a preset, not a volume.
        assert_eq!(c.volume("tmpreset"), None);
        assert_eq!(c.volume_names(), vec!["plain", "Backups of Anna", "mysql"]);
        let m = c.volume("mysql").unwrap();
        assert_eq!(m.cnid_scheme, "mysql");
        let a = advice(&m);
        assert_eq!(a[0].lines, vec!["cnid scheme = dbd"]);
    }

    #[test]
    fn dbnest_puts_every_database_in_its_volume() {
        let c = parse_afp_conf(
            "[Global]\nvol dbnest = yes\nvol dbpath = /elsewhere\n[tm]\npath = /tank/tm/\ncnid dev = no\n",
        )
        .unwrap();
        let v = c.volume("tm").unwrap();
        assert!(v.dbnest);
        assert_eq!(v.cnid_db, CnidDb::InsideVolume);
        assert_eq!(v.db_dir, PathBuf::from("/tank/tm/.AppleDB"));
        assert_eq!(advice(&v), Vec::new());
    }

    #[test]
    fn ini_syntax_as_iniparser_reads_it() {
        let c = conf("afp.conf.syntax");
        // No `volume name`: the section's name, lowercased (netatalk 4.2.3 agrees).
        assert_eq!(c.volume_names(), vec!["time machine", "weird"]);
        let v = c.volume("Time Machine").expect("volume");
        assert_eq!(v.name, "time machine");
        // Quoted value with a `;` inside; inline comment after an unquoted value.
        assert_eq!(v.path, "/tank/tm;odd");
        assert!(v.time_machine);
        // Uppercase option names, `vol DBPath` with a continuation line.
        assert_eq!(v.cnid_db, CnidDb::InsideVolume);
        assert_eq!(v.db_dir, PathBuf::from("/tank/tm;odd/.AppleDB"));
        // `cnid dev = yes` then a later `cnid dev = False`: the last wins.
        assert!(!v.cnid_dev);
        assert_eq!(c.includes(), vec!["/etc/netatalk/extra.conf"]);
        // A boolean netatalk cannot read counts as unset (the default).
        let w = c.volume("weird").unwrap();
        assert!(!w.time_machine);
        assert!(w.cnid_dev);
    }

    #[test]
    fn variables_in_names_and_paths() {
        let c = parse_afp_conf(
            "[Global]\nvol dbpath = /var/db/$v-$u/$$x/$h\n[x]\npath = /tank/$u/tm\nvolume name = TM of $b\n",
        )
        .unwrap();
        assert_eq!(c.volume_names(), vec!["TM of tm"]);
        let v = c.volume("TM of tm").unwrap();
        assert_eq!(v.path, "/tank/$u/tm");
        assert_eq!(
            v.db_dir,
            PathBuf::from("/var/db/TM of tm-$u/$x/$h/.AppleDB")
        );
        let c = parse_afp_conf("[a/b]\npath = /srv/ab\n").unwrap();
        let v = c.volume("a/b").unwrap();
        assert_eq!(
            v.db_dir,
            PathBuf::from("/var/lib/netatalk/CNID/a:b/.AppleDB")
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        for (text, line, needle) in [
            ("[Global]\nzeroconf = no\nthis is not ini\n", 3, "neither"),
            ("[Global] ; comment\n", 1, "does not end with `]`"),
            ("[Global]\n= value\n", 2, "no option name"),
            ("[tm]\npath = \"/tank/tm\n", 2, "unclosed"),
            ("\n\n[]\n", 3, "empty section"),
        ] {
            let e = parse_afp_conf(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")), "{e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let e = parse_afp_conf(&fixture("afp.conf.broken")).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
    }

    #[test]
    fn names_differing_only_in_case() {
        let c =
            parse_afp_conf("[a]\nvolume name = TM\npath = /a\n[b]\nvolume name = tm\npath = /b\n")
                .unwrap();
        assert_eq!(c.volume("TM").unwrap().path, "/a");
        assert_eq!(c.volume("tm").unwrap().path, "/b");
        assert_eq!(c.volume("Tm"), None, "ambiguous");
    }

    #[test]
    fn homes_and_empty_paths_are_not_volumes() {
        let c =
            parse_afp_conf("[Homes]\nbasedir regex = /home\npath = afp\n[e]\npath =\n").unwrap();
        assert_eq!(c.volume_names(), Vec::<String>::new());
    }

    // --- netatalk 2 -------------------------------------------------------------------------

    #[test]
    fn netatalk_2_apple_volumes() {
        let av = parse_apple_volumes(&fixture("AppleVolumes.default.2.2")).unwrap();
        assert_eq!(
            av.volume_names(),
            vec!["Media", "Time Machine", "tmnodev", "elsewhere"]
        );
        let tm = av.volume("Time Machine").unwrap();
        assert_eq!(tm.path, "/srv/TimeMachine");
        assert!(tm.time_machine, "tm from options:");
        assert!(tm.cnid_dev);
        assert_eq!(tm.cnid_db, CnidDb::InsideVolume);
        let a = advice(&tm);
        assert_eq!(a.len(), 1);
        assert_eq!(
            a[0].lines,
            vec![
                "/srv/TimeMachine \"Time Machine\" options:usedots,upriv,tm,nodev ea:ad allow:anders"
            ]
        );
        assert!(a[0].summary.contains("line 6"), "{}", a[0].summary);
        let ok = av.volume("tmnodev").unwrap();
        assert!(!ok.cnid_dev);
        assert!(ok.time_machine, ":DEFAULT: options apply");
        assert_eq!(advice(&ok), Vec::new());
        let e = av.volume("elsewhere").unwrap();
        assert_eq!(
            e.cnid_db,
            CnidDb::Outside(PathBuf::from("/var/db/cnid/elsewhere/.AppleDB"))
        );
        let a = advice(&e);
        assert_eq!(a[0].lines, vec!["/tank/elsewhere options:nodev"]);
    }

    // --- dbd --------------------------------------------------------------------------------

    #[test]
    fn dbd_clean_scans() {
        for f in ["dbd-s.clean.4.2.3.txt", "dbd-s-v.clean.4.2.3.txt"] {
            let r = parse_dbd_output(&fixture(f));
            assert!(r.clean, "{f}: {r:?}");
            assert_eq!(r.problems, Vec::<String>::new());
        }
    }

    #[test]
    fn dbd_cannot_reach_the_cnid_server() {
        let r = parse_dbd_output(&fixture("dbd-s.connection-refused.4.2.3.txt"));
        assert!(!r.clean);
        assert_eq!(r.problems.len(), 3, "{r:?}");
        assert_eq!(
            r.problems[2],
            "error: transmit: connection refused (volume tm)"
        );
    }

    #[test]
    fn dbd_mismatches() {
        let r = parse_dbd_output(&fixture("dbd-s.cnid-mismatch.4.2.3.txt"));
        assert!(!r.clean);
        assert_eq!(r.problems.len(), 4);
        assert_eq!(
            r.problems[1],
            "CNID mismatch for '/srv/na2dir/b.txt', CNID db: 17, ad-file: 0"
        );
        let r = parse_dbd_output(&fixture("dbd-rebuild.first-run-ad.4.2.3.txt"));
        assert!(!r.clean);
        assert!(r.problems.iter().any(|p| p.starts_with("Bad CNID")));
        let r = parse_dbd_output(&fixture("dbd-s.missing-appledouble.4.2.3.txt"));
        assert!(!r.clean);
    }

    #[test]
    fn dbd_errors_and_unknown_lines_are_problems() {
        let r = parse_dbd_output(
            "Nov 25 22:59:38.756032 dbd[14398] {netatalk_conf.c:1973} (error:Default): getvolbypath(\"/srv/nosuch\"): no user home share defined in configuration\nCouldn't find volume for '/srv/nosuch'\n",
        );
        assert_eq!(r.problems.len(), 2, "{r:?}");
        assert_eq!(r.problems[1], "Couldn't find volume for '/srv/nosuch'");
        // A config netatalk refuses (iniparser names the same line as parse_afp_conf).
        let r = parse_dbd_output(&fixture("dbd-s.syntax-error.4.2.3.txt"));
        assert_eq!(r.problems.len(), 3, "{r:?}");
        assert_eq!(r.problems[2], "Couldn't load afp.conf");
        let r = parse_dbd_output("Scanned:      10000, time:          3 s\nsomething new\n");
        assert_eq!(r.problems, vec!["something new"]);
        let r = parse_dbd_output(
            "Nov 25 22:59:45.640229 dbd[14501] {cnid_dbd.c:235} (debug:CNID): connecting\n\n",
        );
        assert!(r.clean);
        assert_eq!(r.to_string(), "dbd: clean");
    }

    #[test]
    fn dbd_argv_per_version() {
        assert_eq!(
            dbd_args(
                NetatalkVersion::V4,
                DbdMode::Scan,
                Some(Path::new("/etc/netatalk/afp.conf")),
                "/tank/tm"
            ),
            vec!["-F", "/etc/netatalk/afp.conf", "-s", "/tank/tm"]
        );
        assert_eq!(
            dbd_args(NetatalkVersion::V3, DbdMode::Rebuild, None, "/tank/tm"),
            vec!["/tank/tm"]
        );
        assert_eq!(
            dbd_args(NetatalkVersion::V4, DbdMode::WipeAndRebuild, None, "/t"),
            vec!["-f", "/t"]
        );
        assert_eq!(
            dbd_args(NetatalkVersion::V2, DbdMode::WipeAndRebuild, None, "/t"),
            vec!["-r", "-f", "/t"]
        );
        assert_eq!(
            dbd_args(NetatalkVersion::V2, DbdMode::Scan, None, "/t"),
            vec!["-s", "/t"]
        );
    }
}
