//! Start at login: a LaunchAgent on macOS, an XDG autostart entry elsewhere. Behind cfg; the
//! on/off switch is in Preferences.

use std::path::PathBuf;

#[cfg(target_os = "macos")]
fn entry() -> Option<PathBuf> {
    dirs::home_dir().map(|h| h.join("Library/LaunchAgents/org.backstop.app.plist"))
}

#[cfg(not(target_os = "macos"))]
fn entry() -> Option<PathBuf> {
    dirs::config_dir().map(|c| c.join("autostart/backstop-app.desktop"))
}

#[cfg(target_os = "macos")]
fn contents(exe: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>org.backstop.app</string>
  <key>ProgramArguments</key><array><string>{exe}</string></array>
  <key>RunAtLoad</key><true/>
  <key>ProcessType</key><string>Interactive</string>
</dict>
</plist>
"#
    )
}

#[cfg(not(target_os = "macos"))]
fn contents(exe: &str) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName=Backstop\nComment=Time Machine snapshots and recovery\nExec=\"{exe}\"\nX-GNOME-Autostart-enabled=true\nNoDisplay=true\n"
    )
}

pub fn is_enabled() -> bool {
    entry().is_some_and(|p| p.exists())
}

pub fn set(on: bool) -> std::io::Result<()> {
    let path = entry().ok_or_else(|| std::io::Error::other("no home directory"))?;
    if on {
        let exe = std::env::current_exe()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, contents(&exe.display().to_string()))
    } else {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
