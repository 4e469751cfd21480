//! Runs the history browser's end-to-end tests (`tests/ui/ui.test.mjs`: node's test runner,
//! playwright-core and Debian's headless Chromium) against this build's `chronicle` binary, so that
//! `cargo test --workspace` covers the UI too. Outside CI, a machine without node, the npm packages
//! (`npm ci --prefix tests/ui`) or `/usr/bin/chromium` skips it with a message; with `CI=true` that
//! fails instead.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_history_browser_passes_its_end_to_end_tests_in_headless_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node = Command::new("node").arg("--version").output();
    let missing = if node.is_err() {
        Some("node is not installed".to_owned())
    } else if !dir.join("node_modules/playwright-core").exists() {
        Some("playwright-core is not installed: run `npm ci --prefix tests/ui`".to_owned())
    } else if !Path::new(&chromium).exists() {
        Some(format!("{chromium} is missing: `apt-get install chromium`"))
    } else {
        None
    };
    if let Some(why) = missing {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "the UI tests must run in CI: {why}"
        );
        eprintln!("skipping the UI tests: {why}");
        return;
    }
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", "ui.test.mjs"])
        .current_dir(&dir)
        .env("CHRONICLE_BIN", env!("CARGO_BIN_EXE_chronicle"))
        .env("CHROMIUM", &chromium)
        .status()
        .expect("node runs");
    assert!(
        status.success(),
        "the UI tests failed (see their output above)"
    );
}
