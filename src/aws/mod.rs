//! AWS adapters: SDK configuration, Secrets Manager reads and writes.
//!
//! The SDK is configured once per cold start from the standard variables
//! (`AWS_REGION`, `AWS_ENDPOINT_URL`, …) so that the same binary talks to AWS
//! in production and to a local emulator in development and tests.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};

mod trust;

/// Loads the shared SDK configuration from the environment.
///
/// Lambda puts the execution role's credentials and the region in the
/// environment. When they are there, the default chains would pick them
/// first anyway; taking them directly skips building the rest of those
/// chains (profile files, web identity with its STS client, container and
/// instance-metadata providers): about 0.3 ms of every cold start, and no
/// instance-metadata provider exists at all. Elsewhere (an operator's shell
/// with a profile or SSO), the default chains as usual.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    let region = non_blank("AWS_REGION");
    if let Some(region) = &region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if non_blank("AWS_ACCESS_KEY_ID").is_some() && non_blank("AWS_SECRET_ACCESS_KEY").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    // In Lambda, where no profile can name another endpoint (see `trust`).
    if non_blank("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        let overrides: Vec<String> = std::env::vars_os()
            .filter(|(name, _)| name.to_string_lossy().starts_with("AWS_ENDPOINT_URL"))
            .map(|(_, url)| url.to_string_lossy().into_owned())
            .collect();
        // The variables the SDK's client takes a proxy from (hyper-util's
        // matcher: ALL_PROXY too).
        let proxied = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
            .iter()
            .any(|name| non_blank(name).is_some());
        if trust::roots(region.as_deref(), &overrides, proxied) == trust::Roots::AmazonTrustServices
        {
            loader = loader.http_client(trust::amazon_http_client());
        }
    }
    loader.load().await
}

/// An environment variable's value, unless unset or blank (as the SDK's own
/// environment providers treat a blank value: as absent).
fn non_blank(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A failed Secrets Manager call.
#[derive(Debug, thiserror::Error)]
#[error("secret {secret_id}: {operation} failed: {detail}")]
pub struct SecretStoreError {
    pub secret_id: String,
    pub operation: &'static str,
    /// The service's error code and message, never the secret's value.
    pub detail: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Secrets Manager as the project uses it: JSON strings by id and stage.
#[derive(Debug, Clone)]
pub struct SecretStore {
    client: aws_sdk_secretsmanager::Client,
}

/// The version stage holding the value before the last rotation.
pub const PREVIOUS_STAGE: &str = "AWSPREVIOUS";

impl SecretStore {
    /// A store whose every call fails: for code paths that must not reach it.
    #[cfg(feature = "testing")]
    pub fn unreachable() -> Self {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("eu-west-1"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        Self {
            client: aws_sdk_secretsmanager::Client::from_conf(config),
        }
    }

    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_secretsmanager::Client::new(config),
        }
    }

    /// The `AWSCURRENT` value; a secret with no value yet is `None`.
    pub async fn current(&self, secret_id: &str) -> Result<Option<String>, SecretStoreError> {
        self.read(secret_id, None).await
    }

    /// The value of a version stage, `None` when no version carries it.
    pub async fn read(
        &self,
        secret_id: &str,
        stage: Option<&str>,
    ) -> Result<Option<String>, SecretStoreError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.secret_string().map(str::to_owned)),
            Err(e) if e.code() == Some("ResourceNotFoundException") && stage.is_some() => Ok(None),
            // A secret created empty by the stack has no version yet.
            Err(e)
                if e.code() == Some("ResourceNotFoundException")
                    && e.message().is_some_and(|m| m.contains("version")) =>
            {
                Ok(None)
            }
            Err(e) => Err(SecretStoreError {
                secret_id: secret_id.to_owned(),
                operation: "GetSecretValue",
                detail: DisplayErrorContext(&e).to_string(),
                source: e.into(),
            }),
        }
    }

    /// Stores a new `AWSCURRENT` value.
    pub async fn write(&self, secret_id: &str, value: &str) -> Result<(), SecretStoreError> {
        self.client
            .put_secret_value()
            .secret_id(secret_id)
            .secret_string(value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| SecretStoreError {
                secret_id: secret_id.to_owned(),
                operation: "PutSecretValue",
                detail: DisplayErrorContext(&e).to_string(),
                source: e.into(),
            })
    }
}

#[cfg(feature = "testing")]
/// SDK configuration for a local emulator at `endpoint` with dummy credentials,
/// independent of the process environment (tests run many emulators at once).
pub async fn local_sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "local",
        ))
        .load()
        .await
}
