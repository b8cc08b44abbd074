//! A strict in-memory Salesforce REST API, for tests and local runs.
//!
//! It implements exactly the resources the integration uses (OAuth token,
//! query, sObject create/update/upsert, sObject Collections, Composite,
//! ContentVersion upload) with the status codes, error bodies, limits and
//! audit-field rules of the real API, so that a request passing here would
//! pass against a real org. A control surface under `/__control/` seeds data,
//! flips org settings and injects faults; in-process users call the same
//! operations through [`LocalSalesforce`].
//!
//! # Layout
//!
//! - [`soql`]: the SOQL subset, parsed strictly.
//! - [`org`]: records, schema, validation, rollback journal.
//! - this file: HTTP routes, OAuth, limits, fault injection.

pub mod org;
pub mod soql;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use org::{Actor, Org, SaveError, UpsertError};

/// Connected App and API user credentials the server accepts by default.
pub const CONSUMER_KEY: &str = "local-consumer-key";
pub const CONSUMER_SECRET: &str = "local-consumer-secret";
pub const API_USERNAME: &str = "witiop.api@acme.example";
pub const API_PASSWORD: &str = "local-password";
pub const SECURITY_TOKEN: &str = "LOCALSECURITYTOKEN";

/// The integration's Salesforce secret (`configuration.md`) for a local
/// Salesforce at `url`, password flow, with `extra` keys merged over it.
pub fn secret_for(url: &str, extra: Value) -> Value {
    let mut secret = json!({
        "login_url": url,
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        "username": API_USERNAME,
        "password": API_PASSWORD,
        "security_token": SECURITY_TOKEN,
        "api_version": "62.0",
    });
    if let (Some(base), Value::Object(extra)) = (secret.as_object_mut(), extra) {
        base.extend(extra);
    }
    secret
}

/// The agent of the product's example, as WitiOp knows them.
pub const EXAMPLE_AGENT_EMAIL: &str = "agent.demo@acme.example";
/// The user that customer comments are posted as in the example set-up.
pub const EXAMPLE_CUSTOMER_USERNAME: &str = "witiop.customer@acme.example";

/// Ids of the users seeded by [`LocalSalesforce::seed_example_users`].
#[derive(Debug, Clone)]
pub struct ExampleUsers {
    pub agent: String,
    pub customer: String,
}

/// API versions served; others answer 404 as Salesforce does.
const MIN_VERSION: f64 = 31.0;
const MAX_VERSION: f64 = 66.0;
const MAX_COMPOSITE: usize = 25;
const MAX_COMPOSITE_QUERIES: usize = 5;
const MAX_COLLECTION: usize = 200;
const DEFAULT_BATCH: usize = 2000;

/// A fault served instead of the next data call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// 503 `SERVER_UNAVAILABLE` as JSON.
    Unavailable,
    /// 503 as an HTML page from the CDN.
    UnavailableHtml,
    /// 400 `UNABLE_TO_LOCK_ROW`.
    RowLock,
    /// 403 `REQUEST_LIMIT_EXCEEDED`.
    LimitExceeded,
}

struct Token {
    user_id: String,
    valid: bool,
}

/// Counters a test or benchmark reads.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counters {
    /// Calls counted against the org's API allowance (composite = 1, login = 0).
    pub api_calls: u64,
    pub logins: u64,
    pub failed_logins: u64,
    /// Data calls refused with 401.
    pub unauthorized: u64,
    pub faults_served: u64,
}

struct Inner {
    org: Org,
    tokens: HashMap<String, Token>,
    /// username → (password, user id)
    passwords: HashMap<String, (String, String)>,
    password_flow_enabled: bool,
    client_credentials_user: Option<String>,
    api_limit: u64,
    faults: VecDeque<Fault>,
    /// Data calls to let through before the queued faults start.
    fault_delay: u64,
    /// Probability of each fault on any data call (soak tests).
    fault_rates: Vec<(Fault, f64)>,
    /// Every data call fails with `REQUEST_LIMIT_EXCEEDED` until then.
    limit_until: Option<std::time::Instant>,
    latency: Duration,
    counters: Counters,
    cursors: HashMap<String, (Vec<Value>, usize)>,
    /// Tokens expire after this many authenticated calls (0 = never).
    expire_every: u64,
    calls_since_expiry: u64,
    base_url: String,
    /// Inside a Composite, whose own transaction covers nested collections.
    in_composite: bool,
}

/// A running local Salesforce.
#[derive(Clone)]
pub struct LocalSalesforce {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
    pub api_user_id: String,
}

type Shared = Arc<Mutex<Inner>>;

impl LocalSalesforce {
    /// Starts on `127.0.0.1:port` (0 = a free port), with the API user seeded.
    pub async fn start(port: u16) -> std::io::Result<Self> {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut org = Org::default();
        let api_user_id = org.seed_user(API_USERNAME, API_USERNAME, "WitiOp", "API", true);
        let mut passwords = HashMap::new();
        passwords.insert(
            API_USERNAME.to_owned(),
            (API_PASSWORD.to_owned(), api_user_id.clone()),
        );
        let inner = Arc::new(Mutex::new(Inner {
            org,
            tokens: HashMap::new(),
            passwords,
            password_flow_enabled: true,
            client_credentials_user: Some(api_user_id.clone()),
            api_limit: 100_000,
            faults: VecDeque::new(),
            fault_delay: 0,
            fault_rates: Vec::new(),
            limit_until: None,
            latency: Duration::ZERO,
            counters: Counters::default(),
            cursors: HashMap::new(),
            expire_every: 0,
            calls_since_expiry: 0,
            base_url: url.clone(),
            in_composite: false,
        }));
        // Salesforce accepts a trailing slash on every resource; routing here does not.
        let app = tower::Layer::layer(
            &tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash(),
            router(inner.clone()),
        );
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
            )
            .await;
        });
        Ok(Self {
            inner,
            url,
            api_user_id,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().expect("state lock"))
    }

    /// The integration's Salesforce secret for this server (see [`secret_for`]).
    pub fn secret(&self, extra: Value) -> Value {
        secret_for(&self.url, extra)
    }

    /// Seeds the users of the product's example: agent.demo (whose Email is
    /// the WitiOp agent's) and the user customer comments are posted as.
    pub fn seed_example_users(&self) -> ExampleUsers {
        ExampleUsers {
            agent: self.add_user(
                "agent.demo@acme.example.crm",
                EXAMPLE_AGENT_EMAIL,
                "Agent",
                "Demo",
                true,
            ),
            customer: self.add_user(
                EXAMPLE_CUSTOMER_USERNAME,
                EXAMPLE_CUSTOMER_USERNAME,
                "WitiOp",
                "Customer",
                true,
            ),
        }
    }

    /// Adds a user; returns its id.
    pub fn add_user(
        &self,
        username: &str,
        email: &str,
        first: &str,
        last: &str,
        active: bool,
    ) -> String {
        self.with(|s| s.org.seed_user(username, email, first, last, active))
    }

    /// Inserts a record as the API user, bypassing limits (seeding).
    pub fn insert(&self, object: &str, fields: Value) -> Result<String, String> {
        let api = self.api_user_id.clone();
        self.with(|s| {
            let body = fields.as_object().cloned().unwrap_or_default();
            s.org
                .insert(object, &body, &Actor { user_id: &api })
                .map_err(|e| e.message)
        })
    }

    /// Every record of an object, in creation order.
    pub fn records(&self, object: &str) -> Vec<Map<String, Value>> {
        self.with(|s| {
            s.org
                .records
                .get(object)
                .map(|t| t.values().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// The bytes uploaded as a ContentVersion.
    pub fn blob(&self, content_version_id: &str) -> Option<Vec<u8>> {
        self.with(|s| s.org.blobs.get(content_version_id).cloned())
    }

    pub fn set_audit_fields(&self, enabled: bool) {
        self.with(|s| s.org.audit_fields_enabled = enabled);
    }

    pub fn add_external_id(&self, object: &str, field: &str) {
        self.with(|s| {
            s.org
                .external_ids
                .insert((object.to_owned(), field.to_owned()))
        });
    }

    pub fn set_password_flow(&self, enabled: bool) {
        self.with(|s| s.password_flow_enabled = enabled);
    }

    pub fn set_password(&self, username: &str, password: &str) {
        self.with(|s| {
            if let Some(entry) = s.passwords.get_mut(username) {
                entry.0 = password.to_owned();
            }
        });
    }

    pub fn set_api_limit(&self, limit: u64) {
        self.with(|s| s.api_limit = limit);
    }

    /// Invalidates every issued token, as a session timeout or revocation would.
    pub fn expire_tokens(&self) {
        self.with(|s| s.tokens.values_mut().for_each(|t| t.valid = false));
    }

    /// Expires all tokens every `calls` authenticated calls (0 = never).
    pub fn expire_tokens_every(&self, calls: u64) {
        self.with(|s| s.expire_every = calls);
    }

    /// Lets `skip` data calls through, then serves `count` faults.
    pub fn inject_after(&self, skip: u64, fault: Fault, count: usize) {
        self.with(|s| {
            s.fault_delay = skip;
            s.faults.extend(std::iter::repeat_n(fault, count));
        });
    }

    /// Each data call fails with `fault` with the given probability.
    pub fn set_fault_rates(&self, rates: Vec<(Fault, f64)>) {
        self.with(|s| s.fault_rates = rates);
    }

    /// The org's allowance is exhausted for `window`, starting now.
    pub fn limit_for(&self, window: Duration) {
        self.with(|s| s.limit_until = Some(std::time::Instant::now() + window));
    }

    pub fn inject(&self, fault: Fault, count: usize) {
        self.with(|s| s.faults.extend(std::iter::repeat_n(fault, count)));
    }

    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }

    pub fn counters(&self) -> Counters {
        self.with(|s| s.counters.clone())
    }

    pub fn reset_counters(&self) {
        self.with(|s| s.counters = Counters::default());
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data/{version}/query", get(query))
        .route("/services/data/{version}/query/{cursor}", get(query_more))
        .route("/services/data/{version}/sobjects/{object}", post(create))
        .route(
            "/services/data/{version}/sobjects/{object}/{id}",
            patch(update).get(retrieve),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{field}/{value}",
            patch(upsert),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            post(collection),
        )
        .route("/services/data/{version}/composite", post(composite))
        .route("/services/data/{version}/search", get(search))
        .route("/services/data/{version}/limits", get(limits))
        .route("/__control/users", post(control_user))
        .route("/__control/records/{object}", post(control_record))
        .route("/__control/settings", post(control_settings))
        .route("/__control/faults", post(control_faults))
        .route("/__control/expire-tokens", post(control_expire))
        .route("/__control/dump", get(control_dump))
        .fallback(|| async {
            rest_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The requested resource does not exist",
            )
        })
        .with_state(state)
}

fn rest_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!([{"message": message, "errorCode": code}])),
    )
        .into_response()
}

// ---------------------------------------------------------------- OAuth

async fn token(State(state): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut s = state.lock().expect("state lock");
    let fail = |s: &mut Inner, error: &str, description: &str| {
        s.counters.failed_logins += 1;
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    if !matches!(grant, "password" | "client_credentials") {
        return fail(&mut s, "unsupported_grant_type", "grant type not supported");
    }
    if form.get("client_id").map(String::as_str) != Some(CONSUMER_KEY) {
        return fail(&mut s, "invalid_client_id", "client identifier invalid");
    }
    if form.get("client_secret").map(String::as_str) != Some(CONSUMER_SECRET) {
        return fail(&mut s, "invalid_client", "invalid client credentials");
    }
    let user_id = if grant == "password" {
        if !s.password_flow_enabled {
            return fail(&mut s, "invalid_grant", "authentication failure");
        }
        let username = form.get("username").cloned().unwrap_or_default();
        let presented = form.get("password").cloned().unwrap_or_default();
        match s.passwords.get(&username) {
            Some((password, id)) if presented == format!("{password}{SECURITY_TOKEN}") => {
                id.clone()
            }
            _ => return fail(&mut s, "invalid_grant", "authentication failure"),
        }
    } else {
        match s.client_credentials_user.clone() {
            Some(id) => id,
            None => {
                return fail(
                    &mut s,
                    "invalid_grant",
                    "no client credentials user enabled",
                )
            }
        }
    };
    s.counters.logins += 1;
    let org_id = "00DWt0000000001";
    let secret: String = (0..96)
        .map(|_| {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
            A[rand::random_range(0..A.len())] as char
        })
        .collect();
    let access_token = format!("{org_id}!AQ{secret}");
    s.tokens.insert(
        access_token.clone(),
        Token {
            user_id: user_id.clone(),
            valid: true,
        },
    );
    let issued_at = chrono::Utc::now().timestamp_millis().to_string();
    let base = s.base_url.clone();
    Json(json!({
        "access_token": access_token,
        "instance_url": base,
        "id": format!("{base}/id/{org_id}AAA/{user_id}"),
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": "bG9jYWwtc2lnbmF0dXJl",
    }))
    .into_response()
}

// ---------------------------------------------------------------- gatekeeping

/// Outcome of the checks every data call goes through.
enum Gate {
    Pass { user_id: String, api: String },
    Refuse(Response),
}

/// Bearer check, API version, injected faults and the API allowance.
async fn gate(state: &Shared, headers: &HeaderMap, version: &str) -> Gate {
    let latency = state.lock().expect("state lock").latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut s = state.lock().expect("state lock");
    let api = version.trim_start_matches('v');
    let known = version.starts_with('v')
        && api.split_once('.').is_some_and(|(_, b)| b == "0")
        && api
            .parse::<f64>()
            .is_ok_and(|v| (MIN_VERSION..=MAX_VERSION).contains(&v));
    if !known {
        return Gate::Refuse(rest_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        ));
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        })
        .map(str::trim)
        .unwrap_or("");
    let user_id = match s.tokens.get(bearer) {
        Some(t) if t.valid => t.user_id.clone(),
        _ => {
            s.counters.unauthorized += 1;
            return Gate::Refuse(rest_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            ));
        }
    };
    if s.expire_every > 0 {
        s.calls_since_expiry += 1;
        if s.calls_since_expiry > s.expire_every {
            s.calls_since_expiry = 0;
            s.tokens.values_mut().for_each(|t| t.valid = false);
            s.counters.unauthorized += 1;
            return Gate::Refuse(rest_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            ));
        }
    }
    let fault = if s.fault_delay > 0 {
        s.fault_delay -= 1;
        None
    } else {
        s.faults.pop_front()
    };
    let fault = fault.or_else(|| random_fault(&s.fault_rates));
    let fault = match s.limit_until {
        Some(until) if std::time::Instant::now() < until => Some(Fault::LimitExceeded),
        _ => fault,
    };
    if let Some(fault) = fault {
        s.counters.faults_served += 1;
        let r = match fault {
            Fault::Unavailable => rest_error(StatusCode::SERVICE_UNAVAILABLE, "SERVER_UNAVAILABLE", "Server temporarily unavailable, please try again later"),
            Fault::UnavailableHtml => (
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "text/html; charset=UTF-8")],
                "<html><head><title>Service Unavailable</title></head><body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request.</p></body></html>",
            )
                .into_response(),
            Fault::RowLock => rest_error(StatusCode::BAD_REQUEST, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records"),
            Fault::LimitExceeded => rest_error(StatusCode::FORBIDDEN, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
        };
        return Gate::Refuse(with_limit_info(&s, r));
    }
    if s.counters.api_calls >= s.api_limit {
        return Gate::Refuse(with_limit_info(
            &s,
            rest_error(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ),
        ));
    }
    s.counters.api_calls += 1;
    Gate::Pass {
        user_id,
        api: api.to_owned(),
    }
}

fn random_fault(rates: &[(Fault, f64)]) -> Option<Fault> {
    let roll: f64 = rand::random();
    let mut acc = 0.0;
    for (fault, rate) in rates {
        acc += rate;
        if roll < acc {
            return Some(*fault);
        }
    }
    None
}

fn with_limit_info(s: &Inner, mut r: Response) -> Response {
    let v = format!("api-usage={}/{}", s.counters.api_calls, s.api_limit);
    if let Ok(h) = HeaderValue::from_str(&v) {
        r.headers_mut().insert("sforce-limit-info", h);
    }
    r
}

macro_rules! pass {
    ($state:expr, $headers:expr, $version:expr) => {
        match gate(&$state, &$headers, &$version).await {
            Gate::Pass { user_id, api } => (user_id, api),
            Gate::Refuse(r) => return r,
        }
    };
}

fn finish(state: &Shared, status: StatusCode, body: Value) -> Response {
    let s = state.lock().expect("state lock");
    with_limit_info(&s, (status, Json(body)).into_response())
}

#[allow(clippy::result_large_err)] // an axum Response is the natural error of a handler helper
fn parse_json(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        rest_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            &format!("Unexpected character: {e}"),
        )
    })
}

// ---------------------------------------------------------------- operations

/// One REST operation, shared by the direct routes and Composite.
fn run_query(s: &mut Inner, q: &str, api: &str, batch: usize) -> (StatusCode, Value) {
    match s.org.query(q, api) {
        Ok(records) => page(s, records, api, batch),
        Err(e) => (StatusCode::BAD_REQUEST, e.rest()),
    }
}

fn page(s: &mut Inner, mut records: Vec<Value>, api: &str, batch: usize) -> (StatusCode, Value) {
    let total = records.len();
    if total <= batch {
        return (
            StatusCode::OK,
            json!({"totalSize": total, "done": true, "records": records}),
        );
    }
    let rest = records.split_off(batch);
    let cursor = format!("01gWt{:010}", s.cursors.len() + 1);
    let next = format!("/services/data/v{api}/query/{cursor}-{batch}");
    s.cursors.insert(cursor, (rest, total));
    (
        StatusCode::OK,
        json!({"totalSize": total, "done": false, "nextRecordsUrl": next, "records": records}),
    )
}

fn run_query_more(s: &mut Inner, cursor: &str, api: &str, batch: usize) -> (StatusCode, Value) {
    let id = cursor.split('-').next().unwrap_or_default().to_owned();
    let Some((mut rest, total)) = s.cursors.remove(&id) else {
        return (
            StatusCode::BAD_REQUEST,
            json!([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]),
        );
    };
    if rest.len() <= batch {
        return (
            StatusCode::OK,
            json!({"totalSize": total, "done": true, "records": rest}),
        );
    }
    let tail = rest.split_off(batch);
    s.cursors.insert(id.clone(), (tail, total));
    let next = format!("/services/data/v{api}/query/{id}-{batch}");
    (
        StatusCode::OK,
        json!({"totalSize": total, "done": false, "nextRecordsUrl": next, "records": rest}),
    )
}

fn run_create(s: &mut Inner, object: &str, body: &Value, user_id: &str) -> (StatusCode, Value) {
    let Some(map) = body.as_object() else {
        return (
            StatusCode::BAD_REQUEST,
            json!([{"message": "Json Deserialization failed on token 'null' and has left off in the middle of parsing a row", "errorCode": "JSON_PARSER_ERROR"}]),
        );
    };
    match s.org.insert(object, map, &Actor { user_id }) {
        Ok(id) => (
            StatusCode::CREATED,
            json!({"id": id, "success": true, "errors": []}),
        ),
        Err(e) if e.code == "NOT_FOUND" => (StatusCode::NOT_FOUND, e.rest()),
        Err(e) => (StatusCode::BAD_REQUEST, e.rest()),
    }
}

fn run_update(s: &mut Inner, object: &str, id: &str, body: &Value) -> (StatusCode, Value) {
    let map = body.as_object().cloned().unwrap_or_default();
    match s.org.update(object, id, &map) {
        Ok(()) => (StatusCode::NO_CONTENT, Value::Null),
        Err(e) if e.code == "NOT_FOUND" => (StatusCode::NOT_FOUND, e.rest()),
        Err(e) => (StatusCode::BAD_REQUEST, e.rest()),
    }
}

fn run_upsert(
    s: &mut Inner,
    object: &str,
    field: &str,
    value: &str,
    body: &Value,
    user_id: &str,
    api: &str,
) -> (StatusCode, Value) {
    let map = body.as_object().cloned().unwrap_or_default();
    match s.org.upsert(object, field, value, &map, &Actor { user_id }) {
        Ok((id, true)) => (
            StatusCode::CREATED,
            json!({"id": id, "success": true, "errors": [], "created": true}),
        ),
        Ok((id, false)) => (
            StatusCode::OK,
            json!({"id": id, "success": true, "errors": [], "created": false}),
        ),
        Err(UpsertError::Save(e)) if e.code == "NOT_FOUND" => (StatusCode::NOT_FOUND, e.rest()),
        Err(UpsertError::Save(e)) => (StatusCode::BAD_REQUEST, e.rest()),
        Err(UpsertError::Multiple(ids)) => (
            StatusCode::MULTIPLE_CHOICES,
            json!(ids
                .iter()
                .map(|id| format!("/services/data/v{api}/sobjects/{object}/{id}"))
                .collect::<Vec<_>>()),
        ),
    }
}

fn run_collection(s: &mut Inner, body: &Value, user_id: &str) -> (StatusCode, Value) {
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return (
            StatusCode::BAD_REQUEST,
            json!([{"message": "records is required", "errorCode": "INVALID_FIELD"}]),
        );
    };
    if records.len() > MAX_COLLECTION {
        return (
            StatusCode::BAD_REQUEST,
            json!([{"message": "record limit reached. cannot submit more than 200 records into this call", "errorCode": "EXCEEDED_ID_LIMIT"}]),
        );
    }
    let nested = s.org_in_transaction();
    if all_or_none && !nested {
        s.org.begin();
    }
    let mut results = Vec::with_capacity(records.len());
    let mut failed = false;
    for r in records {
        let object = r
            .pointer("/attributes/type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let result = match r.as_object() {
            _ if object.is_empty() => Err(SaveError::new(
                "INVALID_TYPE",
                "When creating a record, the type must be specified in attributes",
                &[],
            )),
            Some(map) => s.org.insert(object, map, &Actor { user_id }),
            None => Err(SaveError::new(
                "JSON_PARSER_ERROR",
                "record is not an object",
                &[],
            )),
        };
        match result {
            Ok(id) => results.push(json!({"id": id, "success": true, "errors": []})),
            Err(e) => {
                failed = true;
                results.push(json!({"success": false, "errors": [e.record()]}));
            }
        }
    }
    if all_or_none && failed {
        // Every record that did not fail itself reports the rollback.
        if nested {
            // Inside a composite the enclosing transaction undoes the inserts.
        } else {
            s.org.rollback();
        }
        for r in results.iter_mut() {
            if r["success"] == json!(true) {
                *r = json!({"id": Value::Null, "success": false, "errors": [{
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                    "fields": []
                }]});
            }
        }
        // Signal the enclosing composite that this subrequest failed as a whole.
        return (StatusCode::BAD_REQUEST, Value::Array(results));
    }
    if all_or_none && !nested {
        s.org.commit();
    }
    (StatusCode::OK, Value::Array(results))
}

impl Inner {
    fn org_in_transaction(&self) -> bool {
        self.in_composite
    }
}

// ---------------------------------------------------------------- routes

#[derive(Deserialize)]
struct Q {
    q: Option<String>,
}

fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.trim().strip_prefix("batchSize="))
        })
        .and_then(|n| n.parse::<usize>().ok())
        .map(|n| n.clamp(200, DEFAULT_BATCH))
        .unwrap_or(DEFAULT_BATCH)
}

async fn query(
    State(state): State<Shared>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Q>,
) -> Response {
    let (_, api) = pass!(state, headers, version);
    let Some(text) = q.q else {
        return finish(
            &state,
            StatusCode::BAD_REQUEST,
            json!([{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}]),
        );
    };
    let (status, body) = run_query(
        &mut state.lock().expect("state lock"),
        &text,
        &api,
        batch_size(&headers),
    );
    finish(&state, status, body)
}

async fn query_more(
    State(state): State<Shared>,
    Path((version, cursor)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, api) = pass!(state, headers, version);
    let (status, body) = run_query_more(
        &mut state.lock().expect("state lock"),
        &cursor,
        &api,
        batch_size(&headers),
    );
    finish(&state, status, body)
}

async fn create(
    State(state): State<Shared>,
    Path((version, object)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user_id, _) = pass!(state, headers, version);
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if content_type.starts_with("multipart/form-data") {
        let (status, body) = create_multipart(&state, &object, &content_type, body, &user_id);
        return finish(&state, status, body);
    }
    let value = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (status, body) = run_create(
        &mut state.lock().expect("state lock"),
        &object,
        &value,
        &user_id,
    );
    finish(&state, status, body)
}

/// ContentVersion upload: an `entity_content` JSON part and a binary `VersionData` part.
fn create_multipart(
    state: &Shared,
    object: &str,
    content_type: &str,
    body: Bytes,
    user_id: &str,
) -> (StatusCode, Value) {
    let bad = |m: &str| {
        (
            StatusCode::BAD_REQUEST,
            json!([{"message": m, "errorCode": "INVALID_MULTIPART_REQUEST"}]),
        )
    };
    let Some(boundary) = content_type
        .split("boundary=")
        .nth(1)
        .map(|b| b.trim_matches('"').to_owned())
    else {
        return bad("Multipart message must include a boundary");
    };
    let delimiter = format!("--{boundary}");
    let parts = split_multipart(&body, delimiter.as_bytes());
    let mut entity: Option<Value> = None;
    let mut data: Option<Vec<u8>> = None;
    for (headers, content) in parts {
        let name = headers
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("")
            .to_owned();
        match name.as_str() {
            "entity_content" => match serde_json::from_slice(&content) {
                Ok(v) => entity = Some(v),
                Err(_) => return bad("entity_content is not valid JSON"),
            },
            "VersionData" => data = Some(content),
            _ => {}
        }
    }
    let Some(Value::Object(entity)) = entity else {
        return bad("Multipart message must include a non-binary part named entity_content");
    };
    let Some(data) = data else {
        return bad("Multipart message must include a binary part named VersionData");
    };
    if !object.eq_ignore_ascii_case("ContentVersion") {
        return bad("Binary parts are only accepted for ContentVersion here");
    }
    let mut s = state.lock().expect("state lock");
    match s
        .org
        .insert_with_blob(object, &entity, &Actor { user_id }, Some(data))
    {
        Ok(id) => (
            StatusCode::CREATED,
            json!({"id": id, "success": true, "errors": []}),
        ),
        Err(e) => (StatusCode::BAD_REQUEST, e.rest()),
    }
}

fn split_multipart(body: &[u8], delimiter: &[u8]) -> Vec<(String, Vec<u8>)> {
    let find = |hay: &[u8], needle: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|p| p + from)
    };
    let mut out = Vec::new();
    let mut pos = match find(body, delimiter, 0) {
        Some(p) => p + delimiter.len(),
        None => return out,
    };
    loop {
        if body.get(pos..pos + 2) == Some(b"--") {
            break;
        }
        let start = pos + 2; // CRLF after the delimiter
        let Some(header_end) = find(body, b"\r\n\r\n", start) else {
            break;
        };
        let headers = String::from_utf8_lossy(&body[start..header_end]).into_owned();
        let content_start = header_end + 4;
        let Some(next) = find(body, delimiter, content_start) else {
            break;
        };
        let content_end = next.saturating_sub(2).max(content_start);
        out.push((headers, body[content_start..content_end].to_vec()));
        pos = next + delimiter.len();
    }
    out
}

async fn retrieve(
    State(state): State<Shared>,
    Path((version, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let (_, _) = pass!(state, headers, version);
    let row = {
        let s = state.lock().expect("state lock");
        org::normalize_id(&id).and_then(|id| s.org.get(&object, &id).cloned())
    };
    match row {
        Some(row) => finish(&state, StatusCode::OK, Value::Object(row)),
        None => finish(
            &state,
            StatusCode::NOT_FOUND,
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        ),
    }
}

async fn update(
    State(state): State<Shared>,
    Path((version, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (_, _) = pass!(state, headers, version);
    let value = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (status, body) = run_update(&mut state.lock().expect("state lock"), &object, &id, &value);
    if status == StatusCode::NO_CONTENT {
        let s = state.lock().expect("state lock");
        return with_limit_info(&s, StatusCode::NO_CONTENT.into_response());
    }
    finish(&state, status, body)
}

async fn upsert(
    State(state): State<Shared>,
    Path((version, object, field, value)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user_id, api) = pass!(state, headers, version);
    let json_body = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (status, body) = run_upsert(
        &mut state.lock().expect("state lock"),
        &object,
        &field,
        &value,
        &json_body,
        &user_id,
        &api,
    );
    finish(&state, status, body)
}

async fn collection(
    State(state): State<Shared>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user_id, _) = pass!(state, headers, version);
    let value = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (status, body) = run_collection(&mut state.lock().expect("state lock"), &value, &user_id);
    // A collection answers 200 with per-record results even when records fail.
    let status = if status == StatusCode::BAD_REQUEST
        && body.is_array()
        && body.get(0).is_some_and(|r| r.get("success").is_some())
    {
        StatusCode::OK
    } else {
        status
    };
    finish(&state, status, body)
}

async fn search(
    State(state): State<Shared>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(q): Query<Q>,
) -> Response {
    let (_, api) = pass!(state, headers, version);
    let text = q.q.unwrap_or_default();
    let result = sosl_phone_search(&state.lock().expect("state lock").org, &text, &api);
    match result {
        Ok(v) => finish(&state, StatusCode::OK, v),
        Err(e) => finish(&state, StatusCode::BAD_REQUEST, e.rest()),
    }
}

/// `FIND {term} IN PHONE FIELDS RETURNING Contact(fields)`: phone fields are
/// matched on their digits, as Salesforce's phone search does.
fn sosl_phone_search(org: &Org, text: &str, api: &str) -> Result<Value, SaveError> {
    let malformed = |m: &str| SaveError::new("MALFORMED_SEARCH", m.to_owned(), &[]);
    let rest = text
        .trim()
        .strip_prefix("FIND")
        .or_else(|| text.trim().strip_prefix("find"))
        .ok_or_else(|| malformed("expected FIND"))?
        .trim_start();
    let rest = rest
        .strip_prefix('{')
        .ok_or_else(|| malformed("expected {"))?;
    let mut term = String::new();
    let mut chars = rest.char_indices();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, n)) => term.push(n),
                None => return Err(malformed("dangling backslash")),
            },
            '}' => {
                end = Some(i);
                break;
            }
            c if "&|!(){}[]^\"~*?:'+-".contains(c) => {
                return Err(malformed(&format!(
                    "unescaped reserved character '{c}' in search term"
                )));
            }
            c => term.push(c),
        }
    }
    let end = end.ok_or_else(|| malformed("expected }"))?;
    let tail = rest[end + 1..].trim();
    let upper = tail.to_ascii_uppercase();
    if !upper.starts_with("IN PHONE FIELDS RETURNING CONTACT(") || !tail.ends_with(')') {
        return Err(malformed(
            "only IN PHONE FIELDS RETURNING Contact(...) is supported",
        ));
    }
    let open = tail.find('(').unwrap_or(0);
    let fields = &tail[open + 1..tail.len() - 1];
    let digits: String = term.chars().filter(char::is_ascii_digit).collect();
    let all = org.query(&format!("SELECT {fields} FROM Contact"), api)?;
    let ids = org.query("SELECT Id, Phone, MobilePhone FROM Contact", api)?;
    let hits: Vec<Value> = all
        .into_iter()
        .zip(ids)
        .filter(|(_, phones)| {
            ["Phone", "MobilePhone"].iter().any(|f| {
                let d: String = phones[*f]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect();
                !digits.is_empty()
                    && !d.is_empty()
                    && (d.ends_with(&digits) || digits.ends_with(&d))
            })
        })
        .map(|(r, _)| r)
        .collect();
    Ok(json!({"searchRecords": hits}))
}

async fn limits(
    State(state): State<Shared>,
    Path(version): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (_, _) = pass!(state, headers, version);
    let (used, max) = {
        let s = state.lock().expect("state lock");
        (s.counters.api_calls, s.api_limit)
    };
    finish(
        &state,
        StatusCode::OK,
        json!({"DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)}}),
    )
}

// ---------------------------------------------------------------- composite

async fn composite(
    State(state): State<Shared>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user_id, api) = pass!(state, headers, version);
    let value = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let all_or_none = value
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(subs) = value
        .get("compositeRequest")
        .and_then(Value::as_array)
        .cloned()
    else {
        return finish(
            &state,
            StatusCode::BAD_REQUEST,
            json!([{"message": "compositeRequest is required", "errorCode": "INVALID_FIELD"}]),
        );
    };
    if subs.len() > MAX_COMPOSITE {
        return finish(
            &state,
            StatusCode::BAD_REQUEST,
            json!([{"message": format!("Composite requests cannot have more than {MAX_COMPOSITE} subrequests"), "errorCode": "LIMIT_EXCEEDED"}]),
        );
    }
    let heavy = subs
        .iter()
        .filter(|s| {
            let url = s.get("url").and_then(Value::as_str).unwrap_or("");
            url.contains("/query") || url.contains("/composite/sobjects")
        })
        .count();
    if heavy > MAX_COMPOSITE_QUERIES {
        return finish(
            &state,
            StatusCode::BAD_REQUEST,
            json!([{"message": format!("Composite requests cannot have more than {MAX_COMPOSITE_QUERIES} query or sObject Collections subrequests"), "errorCode": "LIMIT_EXCEEDED"}]),
        );
    }
    let mut ref_ids = std::collections::HashSet::new();
    for sub in &subs {
        let r = sub.get("referenceId").and_then(Value::as_str).unwrap_or("");
        let valid = !r.is_empty()
            && r.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || !ref_ids.insert(r.to_owned()) {
            return finish(
                &state,
                StatusCode::BAD_REQUEST,
                json!([{"message": format!("Invalid or duplicate referenceId '{r}'"), "errorCode": "INVALID_FIELD"}]),
            );
        }
    }

    let mut s = state.lock().expect("state lock");
    s.in_composite = true;
    s.org.begin();
    let mut results: Vec<(String, StatusCode, Value)> = Vec::new();
    let mut outputs: HashMap<String, Value> = HashMap::new();
    let mut failed_at: Option<usize> = None;
    for (i, sub) in subs.iter().enumerate() {
        let reference = sub["referenceId"].as_str().unwrap_or_default().to_owned();
        if failed_at.is_some() && all_or_none {
            results.push((reference, StatusCode::BAD_REQUEST, json!([{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation in the same transaction failed."}])));
            continue;
        }
        let outcome = resolve_refs(sub, &outputs)
            .map(|(method, url, body)| execute_sub(&mut s, &method, &url, &body, &user_id, &api));
        let (status, body) = match outcome {
            Ok(r) => r,
            Err(message) => (
                StatusCode::BAD_REQUEST,
                json!([{"errorCode": "PROCESSING_HALTED", "message": message}]),
            ),
        };
        if !status.is_success() && failed_at.is_none() {
            failed_at = Some(i);
        }
        if status.is_success() {
            outputs.insert(reference.clone(), body.clone());
        }
        results.push((reference, status, body));
    }
    if let (Some(at), true) = (failed_at, all_or_none) {
        s.org.rollback();
        // Subrequests that had succeeded are reported as rolled back too.
        for (i, r) in results.iter_mut().enumerate() {
            if i < at {
                r.1 = StatusCode::BAD_REQUEST;
                r.2 = json!([{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation in the same transaction failed."}]);
            }
        }
    } else {
        s.org.commit();
    }
    s.in_composite = false;
    let body: Vec<Value> = results
        .into_iter()
        .map(|(reference, status, body)| json!({"body": if body.is_null() { Value::Null } else { body }, "httpHeaders": {}, "httpStatusCode": status.as_u16(), "referenceId": reference}))
        .collect();
    drop(s);
    finish(&state, StatusCode::OK, json!({"compositeResponse": body}))
}

/// Replaces `@{ref.path}` in the url and body with earlier results.
fn resolve_refs(
    sub: &Value,
    outputs: &HashMap<String, Value>,
) -> Result<(String, String, Value), String> {
    let method = sub
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_ascii_uppercase();
    let url = sub
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let url = substitute(&url, outputs, true)?;
    let body = match sub.get("body") {
        Some(b) => {
            let text = substitute(&b.to_string(), outputs, false)?;
            serde_json::from_str(&text).map_err(|e| e.to_string())?
        }
        None => Value::Null,
    };
    Ok((method, url, body))
}

fn substitute(
    text: &str,
    outputs: &HashMap<String, Value>,
    in_url: bool,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or("unterminated reference")?;
        let expr = &after[..end];
        let value = lookup(expr, outputs).ok_or_else(|| {
            let reference = expr.split(['.', '[']).next().unwrap_or(expr);
            format!("Invalid reference specified. No value for {expr} found in {reference}. Provided referenceId ({reference}) must be a reference to a previously successful subrequest.")
        })?;
        let text = match value {
            Value::String(s) => s,
            other => other.to_string(),
        };
        if in_url {
            out.push_str(&text);
        } else {
            // Inside a JSON string literal: keep it a valid literal.
            let quoted = serde_json::to_string(&text).map_err(|e| e.to_string())?;
            out.push_str(&quoted[1..quoted.len() - 1]);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(expr: &str, outputs: &HashMap<String, Value>) -> Option<Value> {
    let mut parts = Vec::new();
    for seg in expr.split('.') {
        let mut seg = seg;
        let name_end = seg.find('[').unwrap_or(seg.len());
        parts.push(seg[..name_end].to_owned());
        seg = &seg[name_end..];
        while let Some(close) = seg.find(']') {
            parts.push(seg[1..close].to_owned());
            seg = &seg[close + 1..];
        }
    }
    let (first, path) = parts.split_first()?;
    let mut v = outputs.get(first)?.clone();
    for p in path.iter().filter(|p| !p.is_empty()) {
        v = match p.parse::<usize>() {
            Ok(i) => v.get(i)?.clone(),
            Err(_) => v.get(p.as_str())?.clone(),
        };
    }
    if v.is_null() {
        None
    } else {
        Some(v)
    }
}

fn execute_sub(
    s: &mut Inner,
    method: &str,
    url: &str,
    body: &Value,
    user_id: &str,
    api: &str,
) -> (StatusCode, Value) {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        )
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let Some(rest) = path.strip_prefix(&format!("/services/data/v{api}/")) else {
        return not_found();
    };
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        ("GET", ["query"]) => {
            let q = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("q="))
                .map(percent_decode)
                .unwrap_or_default();
            run_query(s, &q, api, DEFAULT_BATCH)
        }
        ("GET", ["query", cursor]) => run_query_more(s, cursor, api, DEFAULT_BATCH),
        ("POST", ["sobjects", object]) => run_create(s, object, body, user_id),
        ("PATCH", ["sobjects", object, id]) => run_update(s, object, id, body),
        ("PATCH", ["sobjects", object, field, value]) => {
            run_upsert(s, object, field, &percent_decode(value), body, user_id, api)
        }
        ("POST", ["composite", "sobjects"]) => run_collection(s, body, user_id),
        _ => not_found(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------- control

#[derive(Deserialize)]
struct NewUser {
    username: String,
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default = "yes")]
    active: bool,
    password: Option<String>,
}

fn yes() -> bool {
    true
}

async fn control_user(State(state): State<Shared>, Json(u): Json<NewUser>) -> Response {
    let mut s = state.lock().expect("state lock");
    let id = s
        .org
        .seed_user(&u.username, &u.email, &u.first_name, &u.last_name, u.active);
    if let Some(p) = u.password {
        s.passwords.insert(u.username.clone(), (p, id.clone()));
    }
    Json(json!({"id": id})).into_response()
}

async fn control_record(
    State(state): State<Shared>,
    Path(object): Path<String>,
    Json(fields): Json<Value>,
) -> Response {
    let mut s = state.lock().expect("state lock");
    let api = s
        .passwords
        .get(API_USERNAME)
        .map(|p| p.1.clone())
        .unwrap_or_default();
    let map = fields.as_object().cloned().unwrap_or_default();
    match s.org.insert(&object, &map, &Actor { user_id: &api }) {
        Ok(id) => Json(json!({"id": id})).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(e.rest())).into_response(),
    }
}

#[derive(Deserialize)]
struct Settings {
    audit_fields: Option<bool>,
    password_flow: Option<bool>,
    api_limit: Option<u64>,
    latency_ms: Option<u64>,
    external_id: Option<(String, String)>,
    expire_tokens_every: Option<u64>,
    /// username → new password
    password: Option<(String, String)>,
}

async fn control_settings(State(state): State<Shared>, Json(c): Json<Settings>) -> Response {
    let mut s = state.lock().expect("state lock");
    if let Some(v) = c.audit_fields {
        s.org.audit_fields_enabled = v;
    }
    if let Some(v) = c.password_flow {
        s.password_flow_enabled = v;
    }
    if let Some(v) = c.api_limit {
        s.api_limit = v;
    }
    if let Some(v) = c.latency_ms {
        s.latency = Duration::from_millis(v);
    }
    if let Some(v) = c.external_id {
        s.org.external_ids.insert(v);
    }
    if let Some(v) = c.expire_tokens_every {
        s.expire_every = v;
    }
    if let Some((user, password)) = c.password {
        if let Some(entry) = s.passwords.get_mut(&user) {
            entry.0 = password;
        }
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct Faults {
    fault: Fault,
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

async fn control_faults(State(state): State<Shared>, Json(f): Json<Faults>) -> Response {
    state
        .lock()
        .expect("state lock")
        .faults
        .extend(std::iter::repeat_n(f.fault, f.count));
    StatusCode::NO_CONTENT.into_response()
}

async fn control_expire(State(state): State<Shared>) -> Response {
    state
        .lock()
        .expect("state lock")
        .tokens
        .values_mut()
        .for_each(|t| t.valid = false);
    StatusCode::NO_CONTENT.into_response()
}

async fn control_dump(State(state): State<Shared>, RawQuery(_): RawQuery) -> Response {
    let s = state.lock().expect("state lock");
    let records: Map<String, Value> = s
        .org
        .records
        .iter()
        .map(|(k, t)| {
            (
                (*k).to_owned(),
                Value::Array(t.values().cloned().map(Value::Object).collect()),
            )
        })
        .collect();
    Json(json!({"records": records, "counters": s.counters, "audit_fields": s.org.audit_fields_enabled})).into_response()
}
