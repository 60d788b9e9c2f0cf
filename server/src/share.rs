//! A Share: a Time Machine destination, served by Netatalk or Samba, backed by one ZFS dataset.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// What people type: `backstop list MattBookPro`.
    pub name: String,
    /// The ZFS dataset holding the share, e.g. `zones/MacBackup/MattBookPro`.
    pub dataset: String,
}

/// Space of a share's dataset, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareSpace {
    pub used: u64,
    pub used_by_snapshots: u64,
    pub available: u64,
    pub referenced: u64,
}

/// Share names: `[A-Za-z0-9._-]{1,64}`, not starting with `-`.
pub fn validate_share_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!(
            "'{}' must be 1 to 64 characters long",
            name.escape_debug()
        ));
    }
    if name.starts_with('-') {
        return Err(format!("'{name}' must not start with '-'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!(
            "'{}' contains '{}'; use letters, digits, '.', '_' and '-'",
            name.escape_debug(),
            c.escape_debug()
        ));
    }
    Ok(())
}

/// Dataset names: `pool[/child…]`, each component `[A-Za-z0-9_.:-]+`, not starting with `-`,
/// no snapshot part, at most 200 characters (leaving room for snapshot names within ZFS's 255).
pub fn validate_dataset(dataset: &str) -> Result<(), String> {
    let shown = dataset.escape_debug();
    if dataset.is_empty() {
        return Err("is empty; give the dataset, e.g. \"tank/TimeMachine/MattBookPro\"".into());
    }
    if dataset.len() > 200 {
        return Err(format!("'{shown}' is longer than 200 characters"));
    }
    for component in dataset.split('/') {
        if component.is_empty() {
            return Err(format!(
                "'{shown}' has an empty component (a leading, trailing or double '/')"
            ));
        }
        if component.starts_with('-') {
            return Err(format!("'{shown}': a component must not start with '-'"));
        }
        if component == "." || component == ".." {
            return Err(format!("'{shown}': '{component}' is not a dataset name"));
        }
        if let Some(c) = component
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_.:-".contains(*c)))
        {
            return Err(format!(
                "'{shown}' contains '{}'; a dataset name uses letters, digits, '_', '.', ':' and '-' (and '/' between components)",
                c.escape_debug()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_names() {
        assert!(validate_share_name("MattBookPro").is_ok());
        assert!(validate_share_name("i-Mac_2.local").is_ok());
        for bad in ["", "-rf", "a b", "a/b", "Matt's", &"x".repeat(65), "ä"] {
            assert!(validate_share_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn datasets() {
        assert!(validate_dataset("zones/MacBackup/MattBookPro").is_ok());
        assert!(validate_dataset("tank").is_ok());
        for bad in [
            "",
            "/tank",
            "tank/",
            "tank//a",
            "-rf",
            "tank/-x",
            "tank@snap",
            "tank/a b",
            "tank/../x",
            "tank/a\nb",
            "tank#b",
        ] {
            assert!(validate_dataset(bad).is_err(), "{bad:?}");
        }
    }
}
