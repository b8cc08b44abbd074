//! The REST client: retries, API-call accounting and the transport every
//! resource shares. Login and the token cache are in [`super::auth`], the
//! resources in [`super::resources`], Composite's shapes in
//! [`super::composite`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::Session;
use super::error::{ErrorClass, SalesforceError};
use crate::aws::SecretStore;
use crate::config::SalesforceConnection;

tokio::task_local! {
    /// Calls made by the current unit of work (one conversation), counted
    /// apart from the client's total because conversations run concurrently.
    static CALLS: Arc<AtomicU64>;
}

/// Runs `work` and returns the Salesforce API calls it made.
pub async fn count_calls<F: std::future::Future>(work: F) -> (F::Output, u64) {
    let counter = Arc::new(AtomicU64::new(0));
    let out = CALLS.scope(counter.clone(), work).await;
    (out, counter.load(Ordering::Relaxed))
}

/// Backoff for retry-now errors inside an invocation.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(4),
        }
    }
}

/// Whether a request may be sent again after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Reads: retry on any retry-now error, timeouts included.
    Safe,
    /// Writes: retry only when Salesforce said it did nothing (503 JSON,
    /// `UNABLE_TO_LOCK_ROW`, connection refused), never after a timeout.
    OnlyIfRejected,
}

/// The latest `Sforce-Limit-Info` reading: (used, allowance).
pub type ApiUsage = (u64, u64);

/// One org's REST API, as one set of credentials sees it.
pub struct SalesforceClient {
    pub(super) http: reqwest::Client,
    pub(super) connection: Arc<SalesforceConnection>,
    pub(super) tokens: SecretStore,
    pub(super) token_secret_id: String,
    pub(super) session: Mutex<Option<Session>>,
    pub(super) login_lock: tokio::sync::Mutex<()>,
    pub(super) calls: AtomicU64,
    pub(super) logins: AtomicU64,
    pub(super) usage: Mutex<Option<ApiUsage>>,
    /// The last login Salesforce refused, remembered for a minute.
    pub(super) refusal: Mutex<Option<super::auth::Refusal>>,
    pub(super) retry: RetryPolicy,
}

/// Builds the HTTP client every Salesforce call shares: timeouts on every
/// call. It fails when the platform's roots cannot be read (a wrong
/// `SSL_CERT_FILE`).
pub fn try_http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(90))
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("witiop-salesforce/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// [`try_http_client`], for tests and local runs, where the roots are there.
pub fn http_client() -> reqwest::Client {
    try_http_client().expect("the TLS backend initialises")
}

impl SalesforceClient {
    pub fn new(
        http: reqwest::Client,
        connection: Arc<SalesforceConnection>,
        tokens: SecretStore,
        token_secret_id: String,
    ) -> Self {
        Self {
            http,
            connection,
            tokens,
            token_secret_id,
            session: Mutex::new(None),
            login_lock: tokio::sync::Mutex::new(()),
            calls: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            usage: Mutex::new(None),
            refusal: Mutex::new(None),
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The HTTP client, to build a successor with new settings.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn connection(&self) -> &SalesforceConnection {
        &self.connection
    }

    /// Data API calls sent so far (logins excluded, as Salesforce counts).
    pub fn api_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Logins performed by this instance.
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    pub fn api_usage(&self) -> Option<ApiUsage> {
        *self.usage.lock().expect("usage lock")
    }

    /// `/services/data/vXX.X`, the prefix of every data URL and composite subrequest.
    pub fn data_path(&self) -> String {
        format!("/services/data/v{}", self.connection.api_version)
    }

    /// Sends a data call: bearer token, limit tracking, one re-login on 401,
    /// and backoff on retry-now errors as `replay` allows.
    pub(super) async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
        replay: Replay,
    ) -> Result<(StatusCode, bytes::Bytes), SalesforceError> {
        let attempt = || async { self.send_with_relogin(&method, path_or_url, build).await };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.attempts.saturating_sub(1))
            .with_jitter();
        attempt
            .retry(backoff)
            .when(|e: &SalesforceError| {
                e.class() == ErrorClass::RetryNow
                    && (replay == Replay::Safe || was_rejected(e))
            })
            .notify(|e: &SalesforceError, wait: Duration| {
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "Salesforce call failed, retrying");
            })
            .await
    }

    async fn send_with_relogin(
        &self,
        method: &Method,
        path_or_url: &str,
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
    ) -> Result<(StatusCode, bytes::Bytes), SalesforceError> {
        let mut session = self.session().await?;
        for renewal in 0..3 {
            match self.send_once(&session, method, path_or_url, build).await {
                Err(e) if e.class() == ErrorClass::Relogin && renewal < 2 => {
                    // First adopt another instance's token if there is one;
                    // if that fails too, log in.
                    session = self.renew(&session, renewal == 0).await?;
                }
                other => return other,
            }
        }
        unreachable!("the loop returns on its last round")
    }

    async fn send_once(
        &self,
        session: &Session,
        method: &Method,
        path_or_url: &str,
        build: &(dyn Fn(RequestBuilder) -> RequestBuilder + Sync),
    ) -> Result<(StatusCode, bytes::Bytes), SalesforceError> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{}", session.instance_url, path_or_url)
        };
        let mut request = self
            .http
            .request(method.clone(), &url)
            .header(
                AUTHORIZATION,
                format!("Bearer {}", session.access_token.expose_secret()),
            )
            .header("Accept", "application/json");
        if *method != Method::GET {
            // Otherwise assignment rules overwrite the OwnerId we set.
            request = request.header("Sforce-Auto-Assign", "FALSE");
        }
        let request = build(request);
        self.calls.fetch_add(1, Ordering::Relaxed);
        let _ = CALLS.try_with(|c| c.fetch_add(1, Ordering::Relaxed));
        metrics::counter!("salesforce_api_calls").increment(1);
        let response = request
            .send()
            .await
            .map_err(|e| SalesforceError::Transport(e.without_url()))?;
        let status = response.status();
        self.record_usage(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| SalesforceError::Transport(e.without_url()))?;
        if status.is_success() || status == StatusCode::MULTIPLE_CHOICES {
            Ok((status, body))
        } else {
            let error = SalesforceError::from_response(status.as_u16(), &body);
            metrics::counter!("salesforce_errors", "code" => metric_code(error.code()))
                .increment(1);
            Err(error)
        }
    }

    fn record_usage(&self, headers: &HeaderMap) {
        let Some(usage) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_limit_info)
        else {
            return;
        };
        tracing::debug!(
            api_used = usage.0,
            api_max = usage.1,
            "Salesforce API usage"
        );
        if usage.1 > 0 {
            metrics::gauge!("salesforce_api_usage_ratio").set(usage.0 as f64 / usage.1 as f64);
        }
        *self.usage.lock().expect("usage lock") = Some(usage);
    }

    pub(super) async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        replay: Replay,
    ) -> Result<T, SalesforceError> {
        let build = |r: RequestBuilder| match body {
            Some(b) => r.json(b),
            None => r,
        };
        let (_, bytes) = self.send(method, path, &build, replay).await?;
        serde_json::from_slice(&bytes).map_err(|e| SalesforceError::Decode(e.to_string()))
    }
}

/// Error codes as a metric dimension: a small fixed set, so that an
/// open-ended code cannot multiply custom metrics (each dimension value is
/// a metric of its own on the bill).
pub(crate) fn metric_code(code: Option<&str>) -> &'static str {
    match code {
        Some("INVALID_SESSION_ID") => "INVALID_SESSION_ID",
        Some("REQUEST_LIMIT_EXCEEDED") => "REQUEST_LIMIT_EXCEEDED",
        Some("SERVER_UNAVAILABLE") => "SERVER_UNAVAILABLE",
        Some("UNABLE_TO_LOCK_ROW") => "UNABLE_TO_LOCK_ROW",
        _ => "other",
    }
}

/// Whether Salesforce said it did nothing, so a write may be sent again.
fn was_rejected(e: &SalesforceError) -> bool {
    match e {
        SalesforceError::Api { .. } => true,
        // A CDN page or a refused connection: the request never ran.
        SalesforceError::NonJson { status, .. } => *status == 503,
        SalesforceError::Transport(t) => t.is_connect(),
        _ => false,
    }
}

/// `api-usage=USED/MAX` → (used, max).
pub fn parse_limit_info(header: &str) -> Option<ApiUsage> {
    header.split(',').find_map(|part| {
        let (used, max) = part.trim().strip_prefix("api-usage=")?.split_once('/')?;
        Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_parses() {
        assert_eq!(parse_limit_info("api-usage=18/15000"), Some((18, 15000)));
        assert_eq!(
            parse_limit_info("per-app-api-usage=1/10, api-usage=5/100"),
            Some((5, 100))
        );
        assert_eq!(parse_limit_info("garbage"), None);
    }
}
