//! backstop-app: Backstop's menu-bar app. A tray icon with the state (ok / busy / attention) and
//! a menu, a window with the dashboard, the restore wizard and the preferences. Every menu click
//! and every window request goes through one action function ([`actions::perform`]) that calls
//! the agent core; the server's events are followed in-process ([`follower`]).
//!
//! `backstop-app [--server HOST:PORT] [--show]` (or BACKSTOP_SERVER; else the preferences, else
//! agent.toml's server). `--show` (or BACKSTOP_APP_SHOW=1) opens the window at start.

mod actions;
mod autostart;
#[cfg(test)]
mod bindings;
mod follower;
mod model;
mod state;
mod tray;

use std::sync::{Arc, Mutex};

use tauri::{Emitter, Manager, RunEvent, WindowEvent};

use actions::{Ctx, Shared};
use model::{Action, Reply};
use state::Status;

/// The window's one command: an [`Action`] in, a [`Reply`] out.
#[tauri::command]
async fn act(ctx: tauri::State<'_, Shared>, action: Action) -> Result<Reply, String> {
    actions::perform(ctx.inner(), action).await
}

/// A failed menu action: said in the window (`error` event) and on stderr.
pub fn report_error(ctx: &Ctx, message: &str) {
    eprintln!("backstop-app: {message}");
    let _ = ctx.app.emit("error", message);
}

struct Args {
    server: Option<String>,
    show: bool,
}

fn args() -> Args {
    let mut a = Args {
        server: std::env::var("BACKSTOP_SERVER")
            .ok()
            .filter(|s| !s.is_empty()),
        show: std::env::var("BACKSTOP_APP_SHOW").is_ok_and(|v| v == "1"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--server" => a.server = it.next(),
            s if s.starts_with("--server=") => a.server = Some(s["--server=".len()..].into()),
            "--show" => a.show = true,
            "--help" | "-h" => {
                println!("usage: backstop-app [--server HOST:PORT] [--show]");
                std::process::exit(0);
            }
            // WebDriver and the OS may pass their own arguments: ignored.
            _ => {}
        }
    }
    a
}

/// On macOS, the agent's backup detection (log stream, tmutil, durable queue) runs in-process
/// too; its notifications are left to the app's own event follower.
#[cfg(target_os = "macos")]
fn start_agent(config: backstop_agent_core::config::AgentConfig) {
    use backstop_agent_core::notify::{Notification, Notifier, NotifyError};
    struct Quiet;
    impl Notifier for Quiet {
        fn show(&self, _: &Notification) -> Result<(), NotifyError> {
            Ok(())
        }
    }
    if config.destinations.is_empty() {
        return;
    }
    tauri::async_runtime::spawn(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tauri::async_runtime::spawn(async move { while rx.recv().await.is_some() {} });
        let r = backstop_agent_core::agent::run(
            backstop_agent_core::sources::SystemSources::new(),
            config,
            Arc::new(Quiet),
            Default::default(),
            tx,
            std::future::pending::<()>(),
        )
        .await;
        if let Err(e) = r {
            eprintln!("backstop-app: the agent did not start: {e}");
        }
    });
}

fn main() {
    let args = args();
    let agent_config = backstop_agent_core::config::default_config_path()
        .filter(|p| p.exists())
        .and_then(
            |p| match backstop_agent_core::config::AgentConfig::load(&p) {
                Ok(c) => Some(c),
                Err(e) => {
                    eprintln!("backstop-app: {e}");
                    None
                }
            },
        );
    let prefs_path = backstop_agent_core::pairing::config_dir().join("app.json");
    let prefs = actions::load_prefs(&prefs_path);

    let app = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![act])
        .setup(move |app| {
            #[cfg(target_os = "macos")]
            app.set_activation_policy(tauri::ActivationPolicy::Accessory);
            #[cfg(target_os = "macos")]
            if let Some(c) = agent_config.clone() {
                start_agent(c);
            }
            let ctx: Shared = Arc::new(Ctx {
                app: app.handle().clone(),
                status: Mutex::new(Status::default()),
                server_override: args.server.clone(),
                agent_config: agent_config.clone(),
                prefs: Mutex::new(prefs.clone()),
                prefs_path: prefs_path.clone(),
            });
            app.manage(ctx.clone());
            ctx.status.lock().unwrap().server = ctx.server();
            let view = ctx.status.lock().unwrap().view();
            tray::create(app.handle(), &view)?;
            follower::restart(ctx.clone());
            if args.show
                && let Some(w) = app.get_webview_window("main")
            {
                w.show()?;
            }
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window keeps the app in the menu bar.
            if let WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                let _ = window.hide();
            }
        })
        .build(tauri::generate_context!())
        .expect("the Tauri app builds");
    app.run(|_, event| {
        // The last window closing does not quit a menu-bar app; Quit (exit with a code) does.
        if let RunEvent::ExitRequested { api, code, .. } = event
            && code.is_none()
        {
            api.prevent_exit();
        }
    });
}
