// tauri-build embeds `frontendDist` (../../ui/dist, built by `npm run build` in ui/). So that
// `cargo build --workspace` works before the UI was ever built, a placeholder page is written
// when there is no build; `make ui` (or `npm --prefix ui run build`) replaces it.
fn main() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/dist");
    if !dist.join("index.html").exists() {
        std::fs::create_dir_all(&dist).expect("create ui/dist");
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><meta charset=utf-8><title>Backstop</title>\
             <p>The UI was not built: run <code>npm ci &amp;&amp; npm run build</code> in ui/, \
             then build the app again.</p>",
        )
        .expect("write the placeholder ui/dist/index.html");
    }
    println!("cargo:rerun-if-changed=../../ui/dist");
    tauri_build::build()
}
