//! The tray (menu-bar) icon and its menu. The menu is a pure function of the state
//! ([`menu_items`]); a click becomes an [`Action`] ([`action_for`]) for the action function.

use std::sync::Mutex;

use tauri::image::Image;
use tauri::menu::{IsMenuItem, Menu, MenuItem, MenuItemKind, PredefinedMenuItem, Submenu};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use crate::model::{Action, AppState, MenuItemView, Page, TrayState};

pub const TRAY_ID: &str = "backstop";

fn item(id: &str, label: &str, accelerator: Option<&str>) -> MenuItemView {
    MenuItemView {
        id: id.into(),
        label: label.into(),
        enabled: true,
        accelerator: accelerator.map(str::to_string),
        children: Vec::new(),
        separator: false,
    }
}

fn status(label: String) -> MenuItemView {
    MenuItemView {
        enabled: false,
        ..item("", &label, None)
    }
}

fn separator() -> MenuItemView {
    MenuItemView {
        separator: true,
        ..item("", "", None)
    }
}

fn verified(v: &str) -> &'static str {
    match v {
        "good" => "verified good",
        "bad" => "Time Machine flagged it",
        _ => "not verified",
    }
}

/// The menu for this state: the status block, then the commands.
pub fn menu_items(s: &AppState) -> Vec<MenuItemView> {
    let mut m = Vec::new();
    if let Some(a) = s.attention.first() {
        m.push(status(format!("⚠ {a}")));
    } else if let Some(b) = &s.busy {
        m.push(status(b.clone()));
    }
    m.push(status(format!(
        "Last backup: {}",
        s.last_backup.as_deref().unwrap_or("none seen yet")
    )));
    m.push(status(match &s.last_snapshot {
        Some(x) => format!("Last snapshot: {} ({})", x.name, verified(&x.verification)),
        None => "Last snapshot: none seen yet".into(),
    }));
    m.push(status(format!(
        "Pools: {}",
        s.pool_health.as_deref().unwrap_or("unknown")
    )));
    m.push(status(if s.connected {
        format!("Server: {} (connected)", s.server)
    } else {
        format!("Server: {} (not connected)", s.server)
    }));
    m.push(separator());
    m.push(item("snapshot_now", "Snapshot Now", Some("CmdOrCtrl+S")));
    let mut restore = item("restore", "Restore", None);
    for r in &s.recent {
        let mark = if r.verification == "good" { "✓ " } else { "" };
        restore.children.push(item(
            &format!("restore:{}:{}", r.share, r.name),
            &format!("{mark}{}", r.name),
            None,
        ));
    }
    if !s.recent.is_empty() {
        restore.children.push(separator());
    }
    restore
        .children
        .push(item("restore_more", "More…", Some("CmdOrCtrl+R")));
    m.push(restore);
    m.push(item("scrub_now", "Scrub Pool Now", None));
    m.push(separator());
    m.push(item(
        "open_dashboard",
        "Open Dashboard…",
        Some("CmdOrCtrl+D"),
    ));
    m.push(item("preferences", "Preferences…", Some("CmdOrCtrl+,")));
    m.push(separator());
    m.push(item("quit", "Quit Backstop", Some("CmdOrCtrl+Q")));
    m
}

/// The action of a menu item.
pub fn action_for(id: &str) -> Option<Action> {
    let open = |page| Action::Open {
        page,
        share: None,
        to: None,
    };
    Some(match id {
        "snapshot_now" => Action::SnapshotNow { share: None },
        "restore_more" => open(Page::Restore),
        "scrub_now" => Action::ScrubNow { pool: None },
        "open_dashboard" => open(Page::Dashboard),
        "preferences" => open(Page::Preferences),
        "quit" => Action::Quit,
        _ => {
            let rest = id.strip_prefix("restore:")?;
            let (share, snap) = rest.split_once(':')?;
            Action::Open {
                page: Page::Restore,
                share: Some(share.into()),
                to: Some(snap.into()),
            }
        }
    })
}

/// The icon: a filled circle, green when fine, blue while busy, orange when attention is needed.
pub fn icon(state: TrayState) -> Image<'static> {
    const N: u32 = 32;
    let (r, g, b) = match state {
        TrayState::Ok => (0x2f, 0x9e, 0x44),
        TrayState::Busy => (0x1c, 0x7e, 0xd6),
        TrayState::Attention => (0xf0, 0x8c, 0x00),
    };
    let mut rgba = Vec::with_capacity((N * N * 4) as usize);
    let c = (N as f32 - 1.0) / 2.0;
    for y in 0..N {
        for x in 0..N {
            let d = ((x as f32 - c).powi(2) + (y as f32 - c).powi(2)).sqrt();
            let alpha = (c - d + 0.5).clamp(0.0, 1.0);
            // A white ring inside marks busy; attention gets a white bar.
            let white = match state {
                TrayState::Busy => (6.0..8.0).contains(&d),
                TrayState::Attention => (x as f32 - c).abs() < 2.0 && (6..20).contains(&y),
                TrayState::Ok => false,
            };
            let (pr, pg, pb) = if white { (255, 255, 255) } else { (r, g, b) };
            rgba.extend_from_slice(&[pr, pg, pb, (alpha * 255.0) as u8]);
        }
    }
    Image::new_owned(rgba, N, N)
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, items: &[MenuItemView]) -> tauri::Result<Menu<R>> {
    let kinds = build_items(app, items)?;
    let refs: Vec<&dyn IsMenuItem<R>> = kinds.iter().map(|k| k as &dyn IsMenuItem<R>).collect();
    Menu::with_items(app, &refs)
}

fn build_items<R: Runtime>(
    app: &AppHandle<R>,
    items: &[MenuItemView],
) -> tauri::Result<Vec<MenuItemKind<R>>> {
    let mut out = Vec::new();
    for i in items {
        if i.separator {
            out.push(MenuItemKind::Predefined(PredefinedMenuItem::separator(
                app,
            )?));
        } else if !i.children.is_empty() {
            let kids = build_items(app, &i.children)?;
            let refs: Vec<&dyn IsMenuItem<R>> =
                kids.iter().map(|k| k as &dyn IsMenuItem<R>).collect();
            out.push(MenuItemKind::Submenu(Submenu::with_id_and_items(
                app, &i.id, &i.label, i.enabled, &refs,
            )?));
        } else {
            let id = if i.id.is_empty() {
                format!("status:{}", out.len())
            } else {
                i.id.clone()
            };
            out.push(MenuItemKind::MenuItem(MenuItem::with_id(
                app,
                id,
                &i.label,
                i.enabled,
                i.accelerator.as_deref(),
            )?));
        }
    }
    Ok(out)
}

static SHOWN: Mutex<Option<(TrayState, Vec<MenuItemView>)>> = Mutex::new(None);

/// Creates the tray icon; clicks go to the action function.
pub fn create(app: &AppHandle, state: &AppState) -> tauri::Result<()> {
    let items = menu_items(state);
    let menu = build_menu(app, &items)?;
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon(state.tray))
        .tooltip("Backstop")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .on_menu_event(|app, event| {
            if let Some(action) = action_for(event.id().as_ref()) {
                let ctx = app.state::<crate::actions::Shared>().inner().clone();
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = crate::actions::perform(&ctx, action).await {
                        crate::report_error(&ctx, &e);
                    }
                });
            }
        })
        .build(app)?;
    *SHOWN.lock().unwrap_or_else(|p| p.into_inner()) = Some((state.tray, items));
    Ok(())
}

/// Brings the icon and the menu up to date (only what changed).
pub fn refresh(app: &AppHandle, state: &AppState) {
    let Some(tray) = app.tray_by_id(TRAY_ID) else {
        return;
    };
    let items = menu_items(state);
    let mut shown = SHOWN.lock().unwrap_or_else(|p| p.into_inner());
    let (icon_changed, menu_changed) = match &*shown {
        Some((t, m)) => (*t != state.tray, *m != items),
        None => (true, true),
    };
    if icon_changed {
        let _ = tray.set_icon(Some(icon(state.tray)));
        let _ = tray.set_tooltip(Some(match state.tray {
            TrayState::Ok => "Backstop: all is well",
            TrayState::Busy => "Backstop: working…",
            TrayState::Attention => "Backstop: needs your attention",
        }));
    }
    if menu_changed && let Ok(menu) = build_menu(app, &items) {
        let _ = tray.set_menu(Some(menu));
    }
    *shown = Some((state.tray, items));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_of_the_menu_has_an_action() {
        let menu = menu_items(&AppState::default());
        let ids: Vec<&str> = menu
            .iter()
            .flat_map(|i| std::iter::once(i).chain(i.children.iter()))
            .filter(|i| i.enabled && !i.separator && i.children.is_empty())
            .map(|i| i.id.as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "snapshot_now",
                "restore_more",
                "scrub_now",
                "open_dashboard",
                "preferences",
                "quit"
            ]
        );
        for id in ids {
            assert!(action_for(id).is_some(), "{id}");
        }
        assert_eq!(
            action_for("restore:Matt:20261125_1000"),
            Some(Action::Open {
                page: Page::Restore,
                share: Some("Matt".into()),
                to: Some("20261125_1000".into())
            })
        );
        assert_eq!(action_for("status:1"), None);
    }

    #[test]
    fn the_status_block_says_what_needs_attention_first() {
        let s = AppState {
            attention: vec!["tank: disk sdb has 3 checksum errors".into()],
            tray: TrayState::Attention,
            ..Default::default()
        };
        let m = menu_items(&s);
        assert_eq!(m[0].label, "⚠ tank: disk sdb has 3 checksum errors");
        assert!(!m[0].enabled);
    }

    #[test]
    fn the_icons_differ_by_state() {
        let a = icon(TrayState::Ok);
        let b = icon(TrayState::Attention);
        assert_eq!(a.width(), 32);
        assert_ne!(a.rgba(), b.rgba());
    }
}
