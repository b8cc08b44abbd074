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

/// Installs the CloudWatch Embedded Metric Format recorder: metrics leave as
/// JSON lines on stdout after each invocation, with no API call. Every metric
/// carries the `Stack` dimension so several deployments in one account stay apart.
pub fn init_metrics(
) -> Result<&'static metrics_cloudwatch_embedded::Collector, metrics_cloudwatch_embedded::Error> {
    let stack = std::env::var("STACK_NAME").unwrap_or_else(|_| "local".to_owned());
    metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("WitiOpSalesforce")
        .with_dimension("Stack", stack)
        .lambda_cold_start_metric("cold_starts")
        .with_lambda_request_id("request_id")
        .init()
}
