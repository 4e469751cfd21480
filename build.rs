//! Decides at build time which of the test suite's optional parts run, so that a part that cannot
//! run shows as `ignored` with its reason in `cargo test`'s summary instead of passing silently:
//!
//! - `chronicle_test_postgres` / `chronicle_test_mysql`: `CHRONICLE_TEST_POSTGRES_URL` /
//!   `CHRONICLE_TEST_MYSQL_URL` is set;
//! - `chronicle_test_ui`: `CHRONICLE_TEST_UI=1` (the browser tests need node, `npm ci --prefix
//!   tests/ui` and Chromium).
//!
//! With `CI=true` every part is on: in CI a missing database or browser fails its tests.

fn main() {
    for (cfg, var) in [
        ("chronicle_test_postgres", "CHRONICLE_TEST_POSTGRES_URL"),
        ("chronicle_test_mysql", "CHRONICLE_TEST_MYSQL_URL"),
        ("chronicle_test_ui", "CHRONICLE_TEST_UI"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        let set = std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0");
        if set || ci() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    println!("cargo::rerun-if-env-changed=CI");
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}
