//! Logging: the process's `tracing` subscriber. Human-readable lines filtered by `RUST_LOG` go to
//! stderr, and [`CaptureLayer`] copies the events a mutation emits into its audit event.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::audit::capture::{CaptureLayer, install_panic_hook};

/// Installs the subscriber for the `chronicle` binary.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_filter(filter))
        .with(CaptureLayer.with_filter(LevelFilter::INFO))
        .try_init();
    install_panic_hook();
}

/// Installs a subscriber that only captures (for servers spawned inside a test process); a no-op when
/// one is installed already.
pub fn init_for_tests() {
    let _ = tracing_subscriber::registry()
        .with(CaptureLayer.with_filter(LevelFilter::INFO))
        .try_init();
    install_panic_hook();
}
