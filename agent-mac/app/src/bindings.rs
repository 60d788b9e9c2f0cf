//! ui/src/bindings.ts is generated from the types in `model.rs`. This test fails when the
//! committed file is stale; `UPDATE_BINDINGS=1 cargo test -p backstop-app bindings` rewrites it.

use ts_rs::TS;

use crate::model::*;

fn render() -> String {
    let decls = [
        Action::decl(),
        Page::decl(),
        Reply::decl(),
        Navigate::decl(),
        TrayState::decl(),
        AppState::decl(),
        NotificationView::decl(),
        SnapshotRow::decl(),
        DashboardData::decl(),
        SpaceView::decl(),
        PoolView::decl(),
        DeviceView::decl(),
        EventView::decl(),
        PlanView::decl(),
        RestoreProgress::decl(),
        RestoreResult::decl(),
        Prefs::decl(),
        DestinationView::decl(),
        MenuItemView::decl(),
    ];
    let mut out = String::from(
        "// Generated from agent-mac/app/src/model.rs by ts-rs; do not edit.\n\
         // Regenerate: UPDATE_BINDINGS=1 cargo test -p backstop-app bindings\n\n",
    );
    for d in decls {
        out.push_str("export ");
        out.push_str(&d);
        out.push_str("\n\n");
    }
    out.push_str(
        "/** The events the app emits, by name. */\nexport type Events = {\n  state: AppState;\n  navigate: Navigate;\n  \"restore-progress\": RestoreProgress;\n  error: string;\n};\n",
    );
    out
}

#[test]
fn bindings_ts_is_up_to_date() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings.ts");
    let want = render();
    if std::env::var("UPDATE_BINDINGS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is stale: run `UPDATE_BINDINGS=1 cargo test -p backstop-app bindings` and commit it",
        path.display()
    );
}
