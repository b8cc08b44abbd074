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
use super::composite::NO_AUTO_ASSIGN;
use super::error::{ErrorClass, ErrorCode, SalesforceError};
use crate::aws::SecretStore;
use crate::config::SalesforceConnection;
use crate::deadline;

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

/// How long one call may take: far under the worker's 120-second
/// invocation, so that a Salesforce that accepts connections and never
/// answers costs a few calls' worth of time, and the record is backed off
/// before the invocation ends. It is also the threshold of Salesforce's
/// concurrent long-running requests ("requests with a duration of 20
/// seconds or longer", 25 per production org: "API Request Limits and
/// Allocations", salesforce_app_limits_platform_api.htm): a call that takes
/// longer counts against them.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// The least time worth starting a retry with: a retry that could not get
/// an answer before the deadline is not started.
const LEAST_USEFUL_CALL: Duration = Duration::from_secs(5);

/// Backoff for retry-now errors inside an invocation.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Each call's timeout, shortened to the time the record has left.
    pub call_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(4),
            call_timeout: CALL_TIMEOUT,
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
    /// The last login Salesforce refused, remembered for `refusal_memory`.
    pub(super) refusal: Mutex<Option<super::auth::Refusal>>,
    /// How long a refused login is not retried ([`super::auth::REFUSAL_MEMORY`]).
    pub(super) refusal_memory: Duration,
    pub(super) retry: RetryPolicy,
}

/// Builds the HTTP client every Salesforce call shares: timeouts on every
/// call (data calls shorten theirs to the time left, see [`crate::deadline`]),
/// and a read timeout so that a transfer that stalls fails as soon as it
/// stalls. It fails when the platform's roots cannot be read (a wrong
/// `SSL_CERT_FILE`).
pub fn try_http_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(CALL_TIMEOUT)
        .read_timeout(CALL_TIMEOUT)
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
            refusal_memory: super::auth::REFUSAL_MEMORY,
            retry: RetryPolicy::default(),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Changes how long a refused login is not retried (tests use zero, to
    /// be refused twice in a row).
    pub fn with_refusal_memory(mut self, memory: Duration) -> Self {
        self.refusal_memory = memory;
        self
    }

    /// The HTTP client, to build a successor with new settings.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The retry policy, for a successor with new settings.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
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
    /// and backoff on retry-now errors as `replay` allows, while the time
    /// left allows a retry to finish.
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
            .adjust(|_, wait| wait.filter(|w| deadline::allows(*w, LEAST_USEFUL_CALL)))
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
        let timeout = deadline::bound(self.retry.call_timeout);
        if timeout.is_zero() {
            return Err(SalesforceError::OutOfTime);
        }
        let mut request = self
            .http
            .request(method.clone(), &url)
            .timeout(timeout)
            .header(
                AUTHORIZATION,
                format!("Bearer {}", session.access_token.expose_secret()),
            )
            .header("Accept", "application/json");
        if *method != Method::GET {
            // Otherwise assignment rules overwrite the OwnerId we set, on
            // this call or on any Case it updates through a trigger or flow.
            request = request.header(NO_AUTO_ASSIGN.0, NO_AUTO_ASSIGN.1);
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
            let code = metric_code(error.codes().next());
            metrics::counter!("salesforce_errors", "code" => code).increment(1);
            Err(error)
        }
    }

    fn record_usage(&self, headers: &HeaderMap) {
        let Some(info) = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .map(LimitInfo::parse)
        else {
            return;
        };
        tracing::debug!(?info, "Salesforce API usage");
        if let Some(ratio) = info.usage_ratio() {
            metrics::gauge!("salesforce_api_usage_ratio").set(ratio);
        }
        if let Some(usage) = info.api_usage {
            *self.usage.lock().expect("usage lock") = Some(usage);
        }
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
        serde_json::from_slice(&bytes).map_err(SalesforceError::Decode)
    }
}

/// Error codes as a metric dimension: a small fixed set, so that an
/// open-ended code cannot multiply custom metrics (each dimension value is
/// a metric of its own on the bill).
fn metric_code(code: Option<&ErrorCode>) -> &'static str {
    // Spelled out: the metric contract (tests/template) reads these values here.
    match code {
        Some(ErrorCode::InvalidSessionId) => "INVALID_SESSION_ID",
        Some(ErrorCode::RequestLimitExceeded) => "REQUEST_LIMIT_EXCEEDED",
        Some(ErrorCode::ServerUnavailable) => "SERVER_UNAVAILABLE",
        Some(ErrorCode::UnableToLockRow) => "UNABLE_TO_LOCK_ROW",
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
        SalesforceError::OutOfTime => true,
        _ => false,
    }
}

/// One reading of `Sforce-Limit-Info`. Salesforce separates its fields with
/// `; ` and writes each as `name=used/limit`: "api-usage=10018/100000;
/// api-bursts=1/750" on today's page ("Limit Info Header",
/// headers_api_usage.htm), and "api-usage=25/5000;
/// per-app-api-usage=17/250(appName=sample-connected-app)" where a
/// connected app has its own quota (the same page, API v200.0). Fields this
/// parser does not know are skipped, in any order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitInfo {
    /// The org's rolling 24-hour allowance: (used, limit).
    pub api_usage: Option<ApiUsage>,
    /// The connected app's own quota, when it has one: (used, limit).
    pub per_app_api_usage: Option<ApiUsage>,
    /// Times the org went over its allowance this month, and how many it may.
    pub api_bursts: Option<ApiUsage>,
}

impl LimitInfo {
    pub fn parse(header: &str) -> Self {
        let mut info = Self::default();
        for field in header.split(';') {
            let Some((name, value)) = field.trim().split_once('=') else {
                continue;
            };
            // `17/250(appName=…)`: the app's name follows the figures.
            let figures = value.split_once('(').map_or(value, |(f, _)| f);
            let Some(usage) = figures.trim().split_once('/').and_then(|(used, max)| {
                Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
            }) else {
                continue;
            };
            match name.trim() {
                "api-usage" => info.api_usage = Some(usage),
                "per-app-api-usage" => info.per_app_api_usage = Some(usage),
                "api-bursts" => info.api_bursts = Some(usage),
                _ => {}
            }
        }
        info
    }

    /// The share of the tighter of the two allowances that is spent: either
    /// one refuses calls with `REQUEST_LIMIT_EXCEEDED` once it is.
    pub fn usage_ratio(&self) -> Option<f64> {
        [self.api_usage, self.per_app_api_usage]
            .into_iter()
            .flatten()
            .filter(|(_, max)| *max > 0)
            .map(|(used, max)| used as f64 / max as f64)
            .reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_is_read_field_by_field_as_salesforce_writes_it() {
        // The Limit Info Header page's own examples, verbatim.
        let today = LimitInfo::parse("api-usage=10018/100000; api-bursts=1/750");
        assert_eq!(today.api_usage, Some((10_018, 100_000)));
        assert_eq!(today.api_bursts, Some((1, 750)));
        assert_eq!(today.per_app_api_usage, None);
        let per_app = LimitInfo::parse(
            "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)",
        );
        assert_eq!(per_app.api_usage, Some((25, 5000)));
        assert_eq!(per_app.per_app_api_usage, Some((17, 250)));
        // The app's quota is the tighter one here.
        assert_eq!(per_app.usage_ratio(), Some(17.0 / 250.0));
        assert_eq!(
            LimitInfo::parse("api-usage=18/15000").api_usage,
            Some((18, 15000))
        );
        // Order and unknown fields do not matter.
        let shuffled = LimitInfo::parse("future-field=1/2;api-bursts=0/750 ;  api-usage = 5/100");
        assert_eq!(shuffled.api_usage, Some((5, 100)));
        assert_eq!(shuffled.api_bursts, Some((0, 750)));
        for garbage in [
            "garbage",
            "",
            "api-usage=",
            "api-usage=a/b",
            "api-usage=5",
            ";;",
        ] {
            assert_eq!(LimitInfo::parse(garbage), LimitInfo::default(), "{garbage}");
        }
        assert_eq!(LimitInfo::parse("api-usage=0/0").usage_ratio(), None);
    }
}
