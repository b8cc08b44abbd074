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

/// A stand-in for personal data (a customer's number, an agent's e-mail) in
/// log lines: the first 12 hex digits of the SHA-256 of the value, trimmed
/// and lower-cased. The same person gives the same stand-in on every line
/// and every instance, so an operator can follow one person through the
/// logs, and can check a suspect by hashing the value they already know
/// (`printf %s agent@acme.example | sha256sum | cut -c1-12`), while the
/// logs themselves do not carry the value.
pub fn pseudonym(value: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(value.trim().to_lowercase().as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
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

    #[test]
    fn pseudonyms_are_stable_short_and_hide_the_value() {
        let a = pseudonym("Agent.Demo@acme.example");
        assert_eq!(a, pseudonym(" agent.demo@acme.example "), "case and spaces");
        assert_ne!(a, pseudonym("agent.other@acme.example"));
        assert_eq!(a.len(), 12);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        // The documented check: the first 12 hex digits of SHA-256.
        // The documented check: `printf %s +393331234567 | sha256sum | cut -c1-12`.
        assert_eq!(pseudonym("+393331234567"), "78f00e1ca317");
    }
}
