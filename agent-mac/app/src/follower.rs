//! The server's events, in-process: subscribe from the last cursor, reconnect with backoff,
//! update the tray's state and show notifications through the agent core's `notify` module.

use std::sync::Mutex;
use std::time::Duration;

use backstop_agent_core::notify::{DesktopNotifier, Notifier, notification_for};
use backstop_proto::v1 as pb;
use pb::subscribe_response::Item;

use crate::actions::Shared;
use crate::model::Prefs;

static TASK: Mutex<Option<tauri::async_runtime::JoinHandle<()>>> = Mutex::new(None);

/// Starts following (again, after the server changed).
pub fn restart(ctx: Shared) {
    let mut task = TASK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = task.take() {
        t.abort();
    }
    ctx.with_status(|s| {
        s.connected = false;
        s.connection_error = None;
        s.server = ctx.server();
    });
    *task = Some(tauri::async_runtime::spawn(follow(ctx)));
}

/// Whether the user wants notifications of this severity.
pub fn wanted(p: &Prefs, severity: pb::Severity) -> bool {
    match severity {
        pb::Severity::Critical => p.notify_critical,
        pb::Severity::Warning => p.notify_warning,
        pb::Severity::Info | pb::Severity::Unspecified => p.notify_info,
    }
}

async fn show(ctx: &Shared, event: &pb::Event) {
    if !wanted(&ctx.prefs(), event.severity()) {
        return;
    }
    let Some(n) = notification_for(event) else {
        return;
    };
    let shown = n.clone();
    // `show` blocks on a D-Bus round trip: off the async workers.
    let r = tauri::async_runtime::spawn_blocking(move || DesktopNotifier::new().show(&shown)).await;
    match r {
        Ok(Ok(())) => ctx.with_status(|s| s.notified(&n)),
        Ok(Err(e)) => eprintln!("backstop-app: {e}"),
        Err(e) => eprintln!("backstop-app: notification task: {e}"),
    }
}

async fn follow(ctx: Shared) {
    let mut attempt = 0u32;
    // The first connection's backlog is history; after a reconnect, what was missed is news.
    let mut first = true;
    loop {
        let server = ctx.server();
        let error = match backstop_agent_core::Client::connect(&server).await {
            Err(e) => e.to_string(),
            Ok(client) => {
                let _ = ctx.refresh_recent(&client).await;
                let _ = ctx.refresh_health(&client).await;
                let cursor = ctx.with_status(|s| s.cursor);
                match client.subscribe(cursor, true).await {
                    Err(e) => e.to_string(),
                    Ok(mut sub) => {
                        ctx.with_status(|s| {
                            s.connected = true;
                            s.connection_error = None;
                        });
                        attempt = 0;
                        let mut live = !first;
                        loop {
                            match sub.next().await {
                                Ok(Some(Item::Event(e))) => {
                                    ctx.with_status(|s| s.on_event(&e, live));
                                    if live {
                                        show(&ctx, &e).await;
                                        refresh_after(&ctx, &client, &e).await;
                                    }
                                }
                                Ok(Some(Item::CaughtUp(_))) => {
                                    live = true;
                                    first = false;
                                }
                                Ok(Some(Item::Missed(_))) => {}
                                Ok(None) => break "the server ended the event stream".to_string(),
                                Err(e) => break e.to_string(),
                            }
                        }
                    }
                }
            }
        };
        ctx.with_status(|s| {
            s.connected = false;
            s.connection_error = Some(error);
        });
        let wait = Duration::from_secs(1 << attempt.min(5));
        attempt += 1;
        tokio::time::sleep(wait).await;
    }
}

/// What an event makes worth reading again.
async fn refresh_after(ctx: &Shared, client: &backstop_agent_core::Client, e: &pb::Event) {
    use pb::event::Kind;
    match &e.kind {
        Some(Kind::PoolHealthChanged(_)) => {
            let _ = ctx.refresh_health(client).await;
        }
        Some(Kind::SnapshotCreated(_))
        | Some(Kind::SnapshotsPruned(_))
        | Some(Kind::Recovery(_)) => {
            let _ = ctx.refresh_recent(client).await;
        }
        _ => {}
    }
}
