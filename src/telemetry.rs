//! Logging: one JSON line per event, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber. Lambda adds its own timestamps and request
/// ids to CloudWatch, so lines carry only the fields we log.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .try_init();
}
