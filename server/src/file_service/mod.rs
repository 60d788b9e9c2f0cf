//! The file service that serves a share to Macs (Netatalk/AFP, Samba/SMB or none): taking one
//! share offline and back online around a restore, who is connected, and Netatalk's CNID database.
//! The parsers and argv builders are pure ([`netatalk`], [`samba`]); this module runs them.

pub mod netatalk;
pub mod samba;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{ServiceConfig, ServiceKind};
use crate::recovery::plan::ServiceFacts;
use crate::zfs::{Argv, RunError, Runner};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Run(#[from] RunError),
    #[error("{0}")]
    Other(String),
}

/// A share's file service, as configured.
pub struct FileService {
    pub config: ServiceConfig,
    runner: Arc<dyn Runner>,
}

/// Live sessions on a share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sessions {
    /// The service cannot tell (no way configured).
    Unknown,
    /// One line per client.
    Clients(Vec<String>),
}

/// `backstop doctor`: what the service is and what to change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Doctor {
    pub service: String,
    pub version: String,
    pub findings: Vec<String>,
    /// (summary, lines to add) pairs.
    pub advice: Vec<(String, Vec<String>)>,
}

/// What `dbd` said after a restore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CnidCheck {
    pub clean: bool,
    pub problems: Vec<String>,
    pub rebuilt: bool,
    pub millis: u64,
}

impl FileService {
    pub fn new(config: ServiceConfig, runner: Arc<dyn Runner>) -> FileService {
        FileService { config, runner }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.config.kind {
            ServiceKind::None => "none",
            ServiceKind::Samba { .. } => "samba",
            ServiceKind::Netatalk { .. } => "netatalk",
        }
    }

    async fn run(&self, argv: Vec<String>) -> Result<String, ServiceError> {
        Ok(self.runner.run(&Argv::new(&argv)).await?.stdout)
    }

    /// Who is connected to the share now.
    pub async fn sessions(&self) -> Result<Sessions, ServiceError> {
        if let Some(argv) = &self.config.sessions {
            let out = self.run(argv.clone()).await?;
            return Ok(Sessions::Clients(
                out.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect(),
            ));
        }
        match &self.config.kind {
            ServiceKind::None => Ok(Sessions::Unknown),
            ServiceKind::Samba {
                smb_conf,
                smbstatus,
                ..
            } => {
                let out = self
                    .runner
                    .run(&Argv::new(&samba::status(smbstatus, smb_conf)))
                    .await?;
                // smbstatus prints an empty list, exit 0, when it cannot read its config.
                if let Some(e) = samba::status_stderr_error(&out.stderr) {
                    return Err(ServiceError::Other(e.to_string()));
                }
                let sessions = samba::parse_share_sessions(&out.stdout, &self.config.volume)
                    .map_err(|e| ServiceError::Other(e.to_string()))?;
                Ok(Sessions::Clients(
                    sessions.into_iter().map(|s| s.machine).collect(),
                ))
            }
            ServiceKind::Netatalk { .. } => {
                let out = self
                    .run(vec![
                        "ps".into(),
                        "-A".into(),
                        "-o".into(),
                        "pid=".into(),
                        "-o".into(),
                        "ppid=".into(),
                        "-o".into(),
                        "comm=".into(),
                    ])
                    .await?;
                Ok(Sessions::Clients(afpd_sessions(&out)))
            }
        }
    }

    /// Takes the share away from clients (only this share where the service allows it).
    pub async fn offline(&self) -> Result<(), ServiceError> {
        match &self.config.kind {
            ServiceKind::Samba {
                smb_conf,
                smbcontrol,
                fragment_dir,
                ..
            } => {
                self.write_fragment(fragment_dir, false)?;
                self.run(samba::reload_config(smbcontrol, smb_conf)).await?;
                self.run(samba::close_share(
                    smbcontrol,
                    smb_conf,
                    &self.config.volume,
                ))
                .await?;
                let deadline = Instant::now() + Duration::from_secs(15);
                loop {
                    match self.sessions().await? {
                        Sessions::Clients(c) if !c.is_empty() => {
                            if Instant::now() > deadline {
                                return Err(ServiceError::Other(format!(
                                    "share '{}' still has clients after close-share: {}",
                                    self.config.volume,
                                    c.join(", ")
                                )));
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        _ => return Ok(()),
                    }
                }
            }
            _ => match &self.config.control {
                Some(c) => self.run(c.stop.clone()).await.map(drop),
                None => Ok(()),
            },
        }
    }

    /// Serves the share again.
    pub async fn online(&self) -> Result<(), ServiceError> {
        match &self.config.kind {
            ServiceKind::Samba {
                smb_conf,
                smbcontrol,
                fragment_dir,
                ..
            } => {
                self.write_fragment(fragment_dir, true)?;
                self.run(samba::reload_config(smbcontrol, smb_conf))
                    .await
                    .map(drop)
            }
            _ => match &self.config.control {
                Some(c) => self.run(c.start.clone()).await.map(drop),
                None => Ok(()),
            },
        }
    }

    fn write_fragment(&self, dir: &Path, available: bool) -> Result<(), ServiceError> {
        samba::write_fragment(dir, &self.config.volume, available)
            .map(drop)
            .map_err(|e| {
                ServiceError::Other(format!(
                    "cannot write {}: {e}",
                    samba::fragment_path(dir, &self.config.volume).display()
                ))
            })
    }

    /// Makes sure a Samba share's include fragment exists (available), so smb.conf's `include`
    /// never points to a missing file.
    pub fn prepare(&self) -> Result<(), ServiceError> {
        if let ServiceKind::Samba { fragment_dir, .. } = &self.config.kind {
            let path = samba::fragment_path(fragment_dir, &self.config.volume);
            if !path.exists() {
                self.write_fragment(fragment_dir, true)?;
            }
        }
        Ok(())
    }

    fn volume_setup(&self) -> Result<Option<(netatalk::VolumeSetup, PathBuf)>, ServiceError> {
        let ServiceKind::Netatalk { afp_conf, root, .. } = &self.config.kind else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(afp_conf)
            .map_err(|e| ServiceError::Other(format!("cannot read {}: {e}", afp_conf.display())))?;
        let conf = netatalk::parse_afp_conf(&text)
            .map_err(|e| ServiceError::Other(format!("{}: {e}", afp_conf.display())))?;
        let setup = conf.volume(&self.config.volume).ok_or_else(|| {
            ServiceError::Other(format!(
                "{} has no volume named '{}' (set the share's service.volume)",
                afp_conf.display(),
                self.config.volume
            ))
        })?;
        Ok(Some((setup, root.clone())))
    }

    /// What the recovery planner needs to know.
    pub fn facts(&self) -> Result<ServiceFacts, ServiceError> {
        Ok(match &self.config.kind {
            ServiceKind::None => ServiceFacts::None,
            ServiceKind::Samba { .. } => ServiceFacts::Samba,
            ServiceKind::Netatalk { .. } => {
                let (setup, root) = self.volume_setup()?.expect("netatalk");
                match &setup.cnid_db {
                    netatalk::CnidDb::InsideVolume => ServiceFacts::Netatalk {
                        db_inside: true,
                        cnid_dev: setup.cnid_dev,
                        db_dir: None,
                    },
                    netatalk::CnidDb::Outside(p) => ServiceFacts::Netatalk {
                        db_inside: false,
                        cnid_dev: setup.cnid_dev,
                        db_dir: Some(under_root(&root, p)),
                    },
                }
            }
        })
    }

    /// Runs `dbd` on the volume after a restore: a scan (`-s`) or, when the database was moved
    /// aside, a rebuild. dbd exits 0 even when it fails: its output says.
    pub async fn cnid_check(&self, rebuild: bool) -> Result<Option<CnidCheck>, ServiceError> {
        let ServiceKind::Netatalk { dbd, .. } = &self.config.kind else {
            return Ok(None);
        };
        let (setup, _) = self.volume_setup()?.expect("netatalk");
        let mut argv = dbd.clone();
        if !rebuild {
            argv.push("-s".into());
        }
        argv.push(setup.path.clone());
        let t = Instant::now();
        let out = self.runner.run(&Argv::new(&argv)).await?;
        let report = netatalk::parse_dbd_output(&format!("{}\n{}", out.stdout, out.stderr));
        Ok(Some(CnidCheck {
            clean: report.clean,
            problems: report.problems,
            rebuilt: rebuild,
            millis: t.elapsed().as_millis() as u64,
        }))
    }

    /// `backstop doctor`: the service, its version and what to change for instant restores.
    pub async fn doctor(&self) -> Result<Doctor, ServiceError> {
        let mut d = Doctor {
            service: self.kind_name().to_string(),
            ..Doctor::default()
        };
        match &self.config.kind {
            ServiceKind::None => d.findings.push(
                "no file service is configured for this share: a restore only swaps the dataset"
                    .into(),
            ),
            ServiceKind::Samba {
                smb_conf,
                fragment_dir,
                ..
            } => {
                let path = samba::fragment_path(fragment_dir, &self.config.volume);
                let conf = std::fs::read_to_string(smb_conf).unwrap_or_default();
                if conf.contains(&path.display().to_string()) {
                    d.findings.push(format!(
                        "{} includes {}: the share can be taken offline alone",
                        smb_conf.display(),
                        path.display()
                    ));
                } else {
                    d.advice.push((
                        format!(
                            "add this line to the [{}] section of {} so a restore takes only this share offline",
                            self.config.volume,
                            smb_conf.display()
                        ),
                        vec![format!("include = {}", path.display())],
                    ));
                }
            }
            ServiceKind::Netatalk { netatalk: prog, .. } => {
                let mut argv = prog.clone();
                argv.push("-V".into());
                if let Ok(out) = self.runner.run(&Argv::new(&argv)).await
                    && let Some((_, v)) =
                        netatalk::parse_version(&format!("{}\n{}", out.stdout, out.stderr))
                {
                    d.version = v;
                }
                let (setup, _) = self.volume_setup()?.expect("netatalk");
                let advice = netatalk::advice(&setup);
                if advice.is_empty() {
                    d.findings.push(format!(
                        "volume '{}': CNID database inside the dataset and `cnid dev = no`: restores are instant and keep every CNID",
                        self.config.volume
                    ));
                }
                for a in advice {
                    d.advice.push((a.summary, a.lines));
                }
            }
        }
        Ok(d)
    }
}

/// A path from the service's config, seen from the host (`root` is a chroot, or `/`).
fn under_root(root: &Path, p: &Path) -> PathBuf {
    match p.strip_prefix("/") {
        Ok(rel) => root.join(rel),
        Err(_) => root.join(p),
    }
}

/// AFP sessions from `ps -A -o pid= -o ppid= -o comm=`: each client is an `afpd` forked by the
/// master `afpd`. Netatalk cannot say which volume a session uses, so every session counts.
pub fn afpd_sessions(ps: &str) -> Vec<String> {
    let procs: Vec<(u32, u32, &str)> = ps
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((
                it.next()?.parse().ok()?,
                it.next()?.parse().ok()?,
                it.next()?,
            ))
        })
        .collect();
    procs
        .iter()
        .filter(|(_, ppid, comm)| {
            *comm == "afpd" && procs.iter().any(|(pid, _, c)| pid == ppid && *c == "afpd")
        })
        .map(|(pid, _, _)| format!("afpd session (pid {pid})"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn afp_sessions_are_afpd_children_of_afpd() {
        let ps = "  1     0 init\n 100     1 netatalk\n 101   100 afpd\n 102   100 cnid_metad\n 103   101 afpd\n 104   101 afpd\n 105   102 cnid_dbd\n garbage line\n";
        assert_eq!(
            afpd_sessions(ps),
            vec!["afpd session (pid 103)", "afpd session (pid 104)"]
        );
        assert!(afpd_sessions(" 101   100 afpd\n").is_empty());
    }

    #[test]
    fn config_paths_are_seen_through_the_root() {
        assert_eq!(
            under_root(Path::new("/chroot"), Path::new("/var/lib/netatalk/CNID/x")),
            PathBuf::from("/chroot/var/lib/netatalk/CNID/x")
        );
        assert_eq!(
            under_root(Path::new("/"), Path::new("/srv/x")),
            PathBuf::from("/srv/x")
        );
    }
}
