//! Logging and metrics set-up: one JSON line per event, CloudWatch metrics
//! as Embedded Metric Format lines.

use tracing_subscriber::filter::Directive;
use tracing_subscriber::EnvFilter;

/// Crates that log whole events or requests at debug and trace: the webhook's
/// query string carries its token, and transcripts are personal data. Their
/// level is capped whatever `RUST_LOG` says.
const CAPPED: &[&str] = &[
    "lambda_runtime=info",
    "lambda_runtime_api_client=info",
    "hyper=info",
    "hyper_util=info",
    "reqwest=info",
    "aws_smithy_runtime=info",
    "aws_smithy_runtime_api=info",
    "aws_config=info",
];

/// Installs the JSON subscriber. Lambda adds its own timestamps and request
/// ids to CloudWatch, so lines carry only the fields we log.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter(std::env::var("RUST_LOG").ok().as_deref()))
        // The record's span (conversation and message ids) on every line.
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .without_time()
        .try_init();
}

/// `RUST_LOG` (default `info`), with the noisy crates capped.
fn filter(rust_log: Option<&str>) -> EnvFilter {
    let mut filter = rust_log
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    for cap in CAPPED {
        if let Ok(directive) = cap.parse::<Directive>() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the CloudWatch Embedded Metric Format recorder: metrics leave as
/// JSON lines on stdout after each invocation, with no API call. Every metric
/// carries the `Stack` dimension, so several deployments in one account stay
/// apart, and `Function`, so metrics both functions emit can be told apart.
pub fn init_metrics(
    function: &'static str,
) -> Result<&'static metrics_cloudwatch_embedded::Collector, metrics_cloudwatch_embedded::Error> {
    let stack = std::env::var("STACK_NAME").unwrap_or_else(|_| "local".to_owned());
    metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("WitiOpSalesforce")
        .with_dimension("Stack", stack)
        .with_dimension("Function", function)
        .lambda_cold_start_metric("cold_starts")
        .with_lambda_request_id("request_id")
        .init()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_never_reaches_the_runtime_crates() {
        let f = filter(Some("trace,lambda_runtime=trace")).to_string();
        assert!(f.contains("lambda_runtime=info"), "{f}");
        assert!(!f.contains("lambda_runtime=trace"), "{f}");
    }
}
