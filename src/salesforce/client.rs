//! The REST client: login, token cache, retries, and the resources the worker uses.
//!
//! The access token lives in memory for the life of a cold start and in the
//! `SALESFORCE_TOKEN_SECRET_ID` secret for all instances. On `401
//! INVALID_SESSION_ID` the client first adopts a token another instance has
//! stored (if it differs from the one that failed), and logs in only when
//! there is none, so a fleet of workers does not stampede the login endpoint,
//! which Salesforce rate-limits per user. Logins are single-flight within an
//! instance: concurrent calls wait for the same one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::{parse_errors, ErrorClass, SalesforceError};
use crate::aws::SecretStore;
use crate::config::{AuthFlow, SalesforceSettings};

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

/// A live session: what every data call needs.
#[derive(Clone)]
pub struct Session {
    pub access_token: SecretString,
    pub instance_url: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_token", &"[REDACTED]")
            .field("instance_url", &self.instance_url)
            .finish()
    }
}

impl Session {
    fn same_token(&self, other: &Session) -> bool {
        self.access_token.expose_secret() == other.access_token.expose_secret()
    }
}

/// The token cache's JSON shape, shared by all worker instances.
#[derive(Serialize, Deserialize)]
struct StoredToken {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    issued_at: String,
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

pub struct SalesforceClient {
    http: reqwest::Client,
    settings: Arc<SalesforceSettings>,
    tokens: SecretStore,
    token_secret_id: String,
    session: Mutex<Option<Session>>,
    login_lock: tokio::sync::Mutex<()>,
    calls: AtomicU64,
    logins: AtomicU64,
    usage: Mutex<Option<ApiUsage>>,
    retry: RetryPolicy,
}

/// Builds the HTTP client every Salesforce call shares: timeouts on every call.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(90))
        .pool_idle_timeout(Duration::from_secs(50))
        .user_agent(concat!("witiop-salesforce/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the TLS backend initialises")
}

#[derive(Deserialize)]
struct LoginOk {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    issued_at: String,
}

#[derive(Deserialize, Default)]
struct LoginErr {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl SalesforceClient {
    pub fn new(
        http: reqwest::Client,
        settings: Arc<SalesforceSettings>,
        tokens: SecretStore,
        token_secret_id: String,
    ) -> Self {
        Self {
            http,
            settings,
            tokens,
            token_secret_id,
            session: Mutex::new(None),
            login_lock: tokio::sync::Mutex::new(()),
            calls: AtomicU64::new(0),
            logins: AtomicU64::new(0),
            usage: Mutex::new(None),
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

    pub fn settings(&self) -> &SalesforceSettings {
        &self.settings
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
        format!("/services/data/v{}", self.settings.api_version)
    }

    // ------------------------------------------------------------ session

    /// The session to use now: memory, else the shared cache, else a login.
    pub async fn session(&self) -> Result<Session, SalesforceError> {
        if let Some(s) = self.session.lock().expect("session lock").clone() {
            return Ok(s);
        }
        let _guard = self.login_lock.lock().await;
        if let Some(s) = self.session.lock().expect("session lock").clone() {
            return Ok(s);
        }
        let session = match self.stored_session().await? {
            Some(s) => s,
            None => self.login_and_store().await?,
        };
        *self.session.lock().expect("session lock") = Some(session.clone());
        Ok(session)
    }

    /// Replaces a session that Salesforce refused. With `adopt`, a different
    /// token stored by another instance is taken instead of logging in.
    async fn renew(&self, stale: &Session, adopt: bool) -> Result<Session, SalesforceError> {
        let _guard = self.login_lock.lock().await;
        if let Some(current) = self.session.lock().expect("session lock").clone() {
            if !current.same_token(stale) {
                // Another task of this instance renewed it while we waited.
                return Ok(current);
            }
        }
        let stored = if adopt {
            self.stored_session()
                .await?
                .filter(|s| !s.same_token(stale))
        } else {
            None
        };
        let session = match stored {
            Some(s) => {
                tracing::info!("using the Salesforce token stored by another instance");
                s
            }
            None => self.login_and_store().await?,
        };
        *self.session.lock().expect("session lock") = Some(session.clone());
        Ok(session)
    }

    async fn stored_session(&self) -> Result<Option<Session>, SalesforceError> {
        let Some(text) = self.tokens.current(&self.token_secret_id).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_str::<StoredToken>(&text)
            .ok()
            .filter(|t| !t.access_token.is_empty() && t.instance_url.starts_with("http"))
            .map(|t| Session {
                access_token: SecretString::from(t.access_token),
                instance_url: t.instance_url.trim_end_matches('/').to_owned(),
            }))
    }

    async fn login_and_store(&self) -> Result<Session, SalesforceError> {
        let (session, issued_at) = self.login().await?;
        let stored = StoredToken {
            access_token: session.access_token.expose_secret().to_owned(),
            instance_url: session.instance_url.clone(),
            issued_at,
        };
        let text =
            serde_json::to_string(&stored).map_err(|e| SalesforceError::Decode(e.to_string()))?;
        if let Err(e) = self.tokens.write(&self.token_secret_id, &text).await {
            // The token works without being shared; other instances will log in.
            tracing::warn!(error = %e, "could not store the Salesforce token for other instances");
        }
        Ok(session)
    }

    /// OAuth 2.0 login with the configured flow.
    async fn login(&self) -> Result<(Session, String), SalesforceError> {
        let s = &self.settings;
        let flow = s.auth_flow;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", flow.as_str().to_owned()),
            ("client_id", s.consumer_key.clone()),
            (
                "client_secret",
                s.consumer_secret.expose_secret().to_owned(),
            ),
        ];
        if flow == AuthFlow::Password {
            let password = format!(
                "{}{}",
                s.password.as_ref().map(|p| p.expose_secret()).unwrap_or(""),
                s.security_token
                    .as_ref()
                    .map(|t| t.expose_secret())
                    .unwrap_or("")
            );
            form.push(("username", s.username.clone().unwrap_or_default()));
            form.push(("password", password));
        }
        let url = format!("{}/services/oauth2/token", s.login_url);
        let failed = |status: u16, error: String, description: String| SalesforceError::Login {
            flow: flow.as_str(),
            login_url: s.login_url.clone(),
            error,
            description,
            status,
        };
        let response = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| failed(0, "unreachable".into(), without_url(&e)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| failed(status.as_u16(), "unreadable answer".into(), without_url(&e)))?;
        if !status.is_success() {
            let err: LoginErr = serde_json::from_slice(&body).unwrap_or_default();
            let (error, description) = if err.error.is_empty() {
                (
                    format!("HTTP {}", status.as_u16()),
                    String::from_utf8_lossy(&body).chars().take(200).collect(),
                )
            } else {
                (err.error, err.error_description)
            };
            return Err(failed(status.as_u16(), error, description));
        }
        let ok: LoginOk = serde_json::from_slice(&body)
            .map_err(|e| failed(status.as_u16(), "unexpected answer".into(), e.to_string()))?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        tracing::info!(flow = flow.as_str(), instance_url = %ok.instance_url, "logged in to Salesforce");
        Ok((
            Session {
                access_token: SecretString::from(ok.access_token),
                instance_url: ok.instance_url.trim_end_matches('/').to_owned(),
            },
            ok.issued_at,
        ))
    }

    // ------------------------------------------------------------ transport

    /// Sends a data call: bearer token, limit tracking, one re-login on 401,
    /// and backoff on retry-now errors as `replay` allows.
    async fn send(
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
            let code = error
                .code()
                .map_or_else(|| format!("HTTP_{}", status.as_u16()), str::to_owned);
            metrics::counter!("salesforce_errors", "code" => code).increment(1);
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

    async fn json<T: DeserializeOwned>(
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

    // ------------------------------------------------------------ resources

    /// Runs a SOQL query and follows `nextRecordsUrl` to the end.
    pub async fn query<T: DeserializeOwned>(&self, soql: &str) -> Result<Vec<T>, SalesforceError> {
        let path = format!("{}/query?q={}", self.data_path(), encode_component(soql));
        let mut page: QueryPage<T> = self.json(Method::GET, &path, None, Replay::Safe).await?;
        let mut records = std::mem::take(&mut page.records);
        while let Some(next) = page.next_records_url.take() {
            page = self.json(Method::GET, &next, None, Replay::Safe).await?;
            records.append(&mut page.records);
        }
        Ok(records)
    }

    /// The remaining records of a query answered inside a Composite.
    pub async fn rest_of_query<T: DeserializeOwned>(
        &self,
        first: &SubResponse,
    ) -> Result<Vec<T>, SalesforceError> {
        let mut records = first.records()?;
        let mut next = first.has_more();
        while let Some(url) = next {
            let mut page: QueryPage<T> = self.json(Method::GET, &url, None, Replay::Safe).await?;
            records.append(&mut page.records);
            next = page.next_records_url;
        }
        Ok(records)
    }

    /// Runs a SOSL search; returns the matching records.
    pub async fn search(&self, sosl: &str) -> Result<Vec<Value>, SalesforceError> {
        let path = format!("{}/search?q={}", self.data_path(), encode_component(sosl));
        let value: Value = self.json(Method::GET, &path, None, Replay::Safe).await?;
        Ok(value
            .get("searchRecords")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// Creates one record; returns its id.
    pub async fn create(&self, object: &str, fields: &Value) -> Result<String, SalesforceError> {
        let path = format!("{}/sobjects/{object}", self.data_path());
        let result: SaveResult = self
            .json(Method::POST, &path, Some(fields), Replay::OnlyIfRejected)
            .await?;
        result.into_id()
    }

    /// Upserts on an External ID field: the id and whether it was created.
    pub async fn upsert(
        &self,
        object: &str,
        field: &str,
        value: &str,
        fields: &Value,
    ) -> Result<(String, bool), SalesforceError> {
        let path = format!(
            "{}/sobjects/{object}/{field}/{}",
            self.data_path(),
            encode_component(value)
        );
        let build = |r: RequestBuilder| r.json(fields);
        // Upsert is idempotent by construction: replaying it is safe.
        let (status, bytes) = self
            .send(Method::PATCH, &path, &build, Replay::Safe)
            .await?;
        if status == StatusCode::MULTIPLE_CHOICES {
            return Err(SalesforceError::Api {
                status: 300,
                errors: vec![super::error::ApiError {
                    code: "MULTIPLE_CHOICES".into(),
                    message: format!("several {object} records have {field} = {value}"),
                    fields: vec![field.to_owned()],
                }],
            });
        }
        let result: SaveResult =
            serde_json::from_slice(&bytes).map_err(|e| SalesforceError::Decode(e.to_string()))?;
        let created = result.created.unwrap_or(status == StatusCode::CREATED);
        Ok((result.into_id()?, created))
    }

    /// sObject Collections create (at most 200 records); results in input order.
    pub async fn create_collection(
        &self,
        records: &[Value],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        let path = format!("{}/composite/sobjects", self.data_path());
        let body = json!({"allOrNone": all_or_none, "records": records});
        self.json(Method::POST, &path, Some(&body), Replay::OnlyIfRejected)
            .await
    }

    /// Composite: up to 25 subrequests in one API call.
    pub async fn composite(
        &self,
        requests: &[Subrequest],
        all_or_none: bool,
    ) -> Result<Vec<SubResponse>, SalesforceError> {
        let path = format!("{}/composite", self.data_path());
        let body = json!({"allOrNone": all_or_none, "compositeRequest": requests});
        let replay = if requests.iter().all(|r| r.method == "GET") {
            Replay::Safe
        } else {
            Replay::OnlyIfRejected
        };
        let response: CompositeResponse =
            self.json(Method::POST, &path, Some(&body), replay).await?;
        Ok(response.composite_response)
    }

    /// Uploads a file as a ContentVersion with a multipart body, the bytes
    /// streamed from `data` rather than base64-encoded in memory.
    pub async fn upload_content_version(
        &self,
        entity: &Value,
        file_name: &str,
        content_type: &str,
        data: impl Fn() -> reqwest::Body + Sync,
    ) -> Result<String, SalesforceError> {
        let path = format!("{}/sobjects/ContentVersion", self.data_path());
        let entity_text = entity.to_string();
        let build = |r: RequestBuilder| {
            let json_part = reqwest::multipart::Part::text(entity_text.clone())
                .mime_str("application/json")
                .expect("static mime type");
            let file_part = reqwest::multipart::Part::stream(data())
                .file_name(file_name.to_owned())
                .mime_str(content_type)
                .unwrap_or_else(|_| {
                    reqwest::multipart::Part::stream(data()).file_name(file_name.to_owned())
                });
            let form = reqwest::multipart::Form::new()
                .part("entity_content", json_part)
                .part("VersionData", file_part);
            r.multipart(form).timeout(Duration::from_secs(300))
        };
        let (_, bytes) = self
            .send(Method::POST, &path, &build, Replay::OnlyIfRejected)
            .await?;
        let result: SaveResult =
            serde_json::from_slice(&bytes).map_err(|e| SalesforceError::Decode(e.to_string()))?;
        result.into_id()
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

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(url) = e.url() {
        s = s.replace(url.as_str(), "");
    }
    s
}

/// `api-usage=USED/MAX` → (used, max).
pub fn parse_limit_info(header: &str) -> Option<ApiUsage> {
    header.split(',').find_map(|part| {
        let (used, max) = part.trim().strip_prefix("api-usage=")?.split_once('/')?;
        Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
    })
}

fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryPage<T> {
    #[serde(default = "Vec::new")]
    records: Vec<T>,
    next_records_url: Option<String>,
}

/// A save result of create, upsert or a collection.
#[derive(Debug, Clone, Deserialize)]
pub struct SaveResult {
    pub id: Option<String>,
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<super::error::ApiError>,
    pub created: Option<bool>,
}

impl SaveResult {
    pub fn into_id(self) -> Result<String, SalesforceError> {
        match (self.success, self.id) {
            (true, Some(id)) => Ok(id),
            _ => Err(SalesforceError::Api {
                status: 400,
                errors: self.errors,
            }),
        }
    }
}

/// One subrequest of a Composite call.
#[derive(Debug, Clone, Serialize)]
pub struct Subrequest {
    pub method: &'static str,
    pub url: String,
    #[serde(rename = "referenceId")]
    pub reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

impl Subrequest {
    pub fn query(data_path: &str, reference_id: &str, soql: &str) -> Self {
        Self {
            method: "GET",
            url: format!("{data_path}/query?q={}", encode_component(soql)),
            reference_id: reference_id.to_owned(),
            body: None,
        }
    }

    /// A query whose text holds composite references (`@{ref.records[0].Id}`):
    /// those must reach Salesforce unencoded to be substituted.
    pub fn query_with_references(data_path: &str, reference_id: &str, soql: &str) -> Self {
        let mut url = format!("{data_path}/query?q=");
        let mut rest = soql;
        while let Some(start) = rest.find("@{") {
            let end = rest[start..]
                .find('}')
                .map_or(rest.len(), |e| start + e + 1);
            url.push_str(&encode_component(&rest[..start]));
            url.push_str(&rest[start..end]);
            rest = &rest[end..];
        }
        url.push_str(&encode_component(rest));
        Self {
            method: "GET",
            url,
            reference_id: reference_id.to_owned(),
            body: None,
        }
    }

    pub fn create(data_path: &str, reference_id: &str, object: &str, fields: Value) -> Self {
        Self {
            method: "POST",
            url: format!("{data_path}/sobjects/{object}"),
            reference_id: reference_id.to_owned(),
            body: Some(fields),
        }
    }

    pub fn upsert(
        data_path: &str,
        reference_id: &str,
        object: &str,
        field: &str,
        value: &str,
        fields: Value,
    ) -> Self {
        Self {
            method: "PATCH",
            url: format!(
                "{data_path}/sobjects/{object}/{field}/{}",
                encode_component(value)
            ),
            reference_id: reference_id.to_owned(),
            body: Some(fields),
        }
    }

    pub fn collection(data_path: &str, reference_id: &str, records: Vec<Value>) -> Self {
        Self {
            method: "POST",
            url: format!("{data_path}/composite/sobjects"),
            reference_id: reference_id.to_owned(),
            body: Some(json!({"allOrNone": true, "records": records})),
        }
    }
}

#[derive(Deserialize)]
struct CompositeResponse {
    #[serde(rename = "compositeResponse")]
    composite_response: Vec<SubResponse>,
}

/// One subrequest's answer inside a Composite response.
#[derive(Debug, Clone, Deserialize)]
pub struct SubResponse {
    #[serde(default)]
    pub body: Value,
    #[serde(rename = "httpStatusCode")]
    pub status: u16,
    #[serde(rename = "referenceId")]
    pub reference_id: String,
}

impl SubResponse {
    /// The subrequest's error, if it failed, including per-record failures
    /// that a collection reports under a 200.
    pub fn error(&self) -> Option<SalesforceError> {
        if !(200..300).contains(&self.status) {
            return Some(SalesforceError::Api {
                status: self.status,
                errors: parse_errors(&self.body).unwrap_or_default(),
            });
        }
        if let Value::Array(items) = &self.body {
            let failed: Vec<_> = items
                .iter()
                .filter(|r| r.get("success") == Some(&Value::Bool(false)))
                .cloned()
                .collect();
            if !failed.is_empty() {
                let mut errors = parse_errors(&Value::Array(failed)).unwrap_or_default();
                // The record that failed first, those rolled back with it after.
                errors.sort_by_key(|e| e.code == super::error::ROLLED_BACK);
                return Some(SalesforceError::Api {
                    status: 400,
                    errors,
                });
            }
        }
        None
    }

    /// The records of a query subrequest.
    pub fn records<T: DeserializeOwned>(&self) -> Result<Vec<T>, SalesforceError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        let records = self
            .body
            .get("records")
            .cloned()
            .unwrap_or(Value::Array(vec![]));
        serde_json::from_value(records).map_err(|e| SalesforceError::Decode(e.to_string()))
    }

    /// True when a query subrequest has more pages than it returned.
    pub fn has_more(&self) -> Option<String> {
        self.body
            .get("nextRecordsUrl")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
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

    #[test]
    fn components_are_encoded() {
        assert_eq!(encode_component("a b+c/'é"), "a%20b%2Bc%2F%27%C3%A9");
    }
}
