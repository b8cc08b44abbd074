//! What the functions do at cold start, once: logging and metrics, the SDK
//! configuration, and for the worker and links functions both secrets read
//! at the same time and parsed strictly. A misconfiguration fails here, as
//! an init error an operator sees in the log and the errors alarm, rather
//! than in every conversation.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};

use crate::aws::{load_sdk_config, SecretStore, SecretStoreError};
use crate::config::{ConfigError, SalesforceSettings, SecretIds, WitiopSecret};

/// A cold start that cannot go on.
#[derive(thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] SecretStoreError),
    #[error("secret {0} has no value")]
    Empty(String),
    #[error("the HTTPS client for Salesforce cannot start (are the roots SSL_CERT_FILE names there?): {0}")]
    Tls(#[source] reqwest::Error),
}

/// `main` returns this error and Rust prints a returned error with `Debug`:
/// the sentence an operator reads, as the start-up errors query finds it.
impl std::fmt::Debug for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Logging, then the metrics recorder naming `function` on every metric.
pub fn telemetry(
    function: &'static str,
) -> Result<&'static metrics_cloudwatch_embedded::Collector, metrics_cloudwatch_embedded::Error> {
    crate::telemetry::init();
    crate::telemetry::init_metrics(function)
}

/// What the worker and links functions start from.
pub struct Salesforce {
    pub sdk: aws_config::SdkConfig,
    /// The client of every Salesforce call.
    pub http: reqwest::Client,
    pub store: SecretStore,
    pub settings: SalesforceSettings,
    pub witiop: WitiopSecret,
}

/// Reads the Salesforce and WitiOp secrets named by `ids`, concurrently.
pub async fn salesforce(ids: &SecretIds) -> Result<Salesforce, StartupError> {
    // First: it needs no secret, and its failure names its cause.
    let http = crate::salesforce::client::try_http_client().map_err(StartupError::Tls)?;
    let sdk = load_sdk_config().await;
    let store = SecretStore::new(&sdk);
    let read = |id: &str| {
        let (store, id) = (store.clone(), id.to_owned());
        async move { store.current(&id).await?.ok_or(StartupError::Empty(id)) }
    };
    let (salesforce, witiop) = tokio::join!(read(&ids.salesforce), read(&ids.witiop));
    Ok(Salesforce {
        http,
        settings: SalesforceSettings::parse(&ids.salesforce, &salesforce?)?,
        witiop: WitiopSecret::parse(&ids.witiop, &witiop?)?,
        sdk,
        store,
    })
}

/// Serves an HTTP API route (payload 2.0): every request gets an explicit
/// response from `handler`, so nothing becomes API Gateway's bare 502.
pub async fn serve_http<F, Answer>(
    metrics: &'static metrics_cloudwatch_embedded::Collector,
    handler: F,
) -> Result<(), lambda_runtime::Error>
where
    F: Fn(ApiGatewayV2httpRequest) -> Answer,
    Answer: std::future::Future<Output = ApiGatewayV2httpResponse>,
{
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        lambda_runtime::service_fn(
            |event: lambda_runtime::LambdaEvent<ApiGatewayV2httpRequest>| {
                let answer = handler(event.payload);
                async move { Ok::<_, lambda_runtime::Error>(answer.await) }
            },
        ),
    )
    .await
}
