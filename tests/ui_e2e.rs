//! Runs the history browser's end-to-end tests (`tests/ui/ui.test.mjs`: node's test runner,
//! playwright-core and Debian's headless Chromium) against this build's `chronicle` binary, so that
//! `cargo test --workspace` covers the UI too. They need node, `npm ci --prefix tests/ui` and
//! `/usr/bin/chromium` (or `CHROMIUM`), so they run when `CHRONICLE_TEST_UI=1` or `CI=true` (see
//! `build.rs`) and show as ignored otherwise; when they run, anything missing fails them.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

#[test]
#[cfg_attr(
    not(chronicle_test_ui),
    ignore = "CHRONICLE_TEST_UI is not set (needs node, `npm ci --prefix tests/ui`, chromium)"
)]
fn the_history_browser_passes_its_end_to_end_tests_in_headless_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Command::new("node").arg("--version").output().is_ok(),
        "node is not installed"
    );
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/ui`"
    );
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: `apt-get install chromium`"
    );
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
