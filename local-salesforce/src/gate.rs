//! What every data call passes before it reaches the org: the API version,
//! the session, injected latency and faults, the API allowance. Every answer
//! after the gate reports the allowance in `Sforce-Limit-Info`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::operations::SaveHeaders;
use crate::org::Actor;
use crate::server::{Inner, Shared};

/// API versions served; others answer 404 as Salesforce does. 67.0 is the
/// newest release the REST API guide lists (Summer '26; the Composite
/// Graph guide uses it); a later one answers `NOT_FOUND`, as an org does for
/// a version it does not know.
pub(crate) const MIN_VERSION: f64 = 31.0;
pub(crate) const MAX_VERSION: f64 = 67.0;
const DEFAULT_API_LIMIT: u64 = 100_000;

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

/// The faults and latency injected into data calls.
#[derive(Default)]
pub(crate) struct FaultPlan {
    /// Until then, every data call and login is accepted and answered
    /// nothing for the given time (then a 503 from the CDN, long after any
    /// sensible client timeout): a Salesforce that hangs rather than fails.
    pub(crate) hang: Option<(Instant, Duration)>,
    queue: VecDeque<Fault>,
    /// Data calls to let through before the queued faults start.
    delay: u64,
    /// Probability of each fault on any data call (soak tests).
    pub(crate) rates: Vec<(Fault, f64)>,
    pub(crate) latency: Duration,
}

impl FaultPlan {
    pub(crate) fn inject(&mut self, fault: Fault, count: usize) {
        self.queue.extend(std::iter::repeat_n(fault, count));
    }

    pub(crate) fn inject_after(&mut self, skip: u64, fault: Fault, count: usize) {
        self.delay = skip;
        self.inject(fault, count);
    }

    /// The fault for this data call: a queued one once the delay is over,
    /// else one drawn from the rates.
    /// How long the next call hangs, if a hang is in force.
    pub(crate) fn stall(&self) -> Option<Duration> {
        self.hang
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, stall)| stall)
    }

    fn next(&mut self) -> Option<Fault> {
        let fault = if self.delay > 0 {
            self.delay -= 1;
            None
        } else {
            self.queue.pop_front()
        };
        fault.or_else(|| random_fault(&self.rates))
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

/// The org's API allowance; its usage is [`crate::Counters::api_calls`].
pub(crate) struct Limits {
    pub(crate) api_limit: u64,
    pub(crate) info_form: LimitInfoForm,
    /// Every data call fails with `REQUEST_LIMIT_EXCEEDED` until then.
    pub(crate) exhausted_until: Option<Instant>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            api_limit: DEFAULT_API_LIMIT,
            info_form: LimitInfoForm::default(),
            exhausted_until: None,
        }
    }
}

pub(crate) fn rest_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!([{"message": message, "errorCode": code}])),
    )
        .into_response()
}

/// A data call that passed the gate: its caller and API version. As an
/// extractor it comes after a handler's others, so the gate runs once they
/// have succeeded.
pub(crate) struct Passed {
    pub(crate) user_id: String,
    pub(crate) api: String,
}

impl FromRequestParts<Shared> for Passed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, Response> {
        let version = version(parts, state).await?;
        gate(state, &parts.headers, &version).await
    }
}

/// A data call with its body, read before the gate runs.
pub(crate) struct WithBody {
    pub(crate) passed: Passed,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl FromRequest<Shared> for WithBody {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let version = version(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let passed = gate(state, &headers, &version).await?;
        Ok(Self {
            passed,
            headers,
            body,
        })
    }
}

/// A data call whose JSON body is parsed once the gate has passed it, with
/// the request's own save headers.
pub(crate) struct JsonCall {
    pub(crate) user_id: String,
    pub(crate) api: String,
    pub(crate) save: SaveHeaders,
    pub(crate) value: Value,
}

impl JsonCall {
    /// The caller, under the request's own save headers.
    pub(crate) fn actor(&self) -> Actor<'_> {
        self.save.actor(&self.user_id)
    }
}

impl FromRequest<Shared> for JsonCall {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Shared) -> Result<Self, Response> {
        let WithBody {
            passed,
            headers,
            body,
        } = WithBody::from_request(request, state).await?;
        Ok(Self {
            value: parse_json(&body)?,
            save: SaveHeaders::from_headers(&headers),
            user_id: passed.user_id,
            api: passed.api,
        })
    }
}

#[allow(clippy::result_large_err)] // an axum Response is the natural error of a handler helper
pub(crate) fn parse_json(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        rest_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            &format!("Unexpected character: {e}"),
        )
    })
}

/// The `{version}` of a data call's path, e.g. `v62.0`.
async fn version(parts: &mut Parts, state: &Shared) -> Result<String, Response> {
    let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(params.remove("version").unwrap_or_default())
}

/// Bearer check, API version, injected faults and the API allowance.
async fn gate(state: &Shared, headers: &HeaderMap, version: &str) -> Result<Passed, Response> {
    let (latency, stall) = {
        let s = state.lock().expect("state lock");
        (s.faults.latency, s.faults.stall())
    };
    if let Some(stall) = stall {
        return Err(hang(state, stall).await);
    }
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
        return Err(rest_error(
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
    let Some(user_id) = s.logins.authenticate(bearer) else {
        s.counters.unauthorized += 1;
        return Err(rest_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        ));
    };
    let fault = s.faults.next();
    let fault = match s.limits.exhausted_until {
        Some(until) if Instant::now() < until => Some(Fault::LimitExceeded),
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
        return Err(with_limit_info(&s, r));
    }
    if s.counters.api_calls >= s.limits.api_limit {
        return Err(with_limit_info(
            &s,
            rest_error(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ),
        ));
    }
    s.counters.api_calls += 1;
    Ok(Passed {
        user_id,
        api: api.to_owned(),
    })
}

/// Holds a call for `stall`, then answers as the CDN does when the servers
/// behind it never did.
pub(crate) async fn hang(state: &Shared, stall: Duration) -> Response {
    {
        let mut s = state.lock().expect("state lock");
        s.counters.faults_served += 1;
        s.counters.hung += 1;
    }
    tokio::time::sleep(stall).await;
    (
        StatusCode::GATEWAY_TIMEOUT,
        [("content-type", "text/html; charset=UTF-8")],
        "<html><head><title>Gateway Timeout</title></head><body><h1>Gateway Timeout</h1></body></html>",
    )
        .into_response()
}

/// Which fields `Sforce-Limit-Info` carries besides `api-usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitInfoForm {
    /// `api-usage=USED/LIMIT` alone.
    #[default]
    ApiUsage,
    /// With the connected app's own quota, as "Limit Info Header" (API
    /// v200.0) shows it: `api-usage=25/5000;
    /// per-app-api-usage=17/250(appName=sample-connected-app)`.
    PerApp,
    /// With the month's bursts, as today's page shows it:
    /// `api-usage=10018/100000; api-bursts=1/750`.
    Bursts,
}

/// The connected app's own quota when [`LimitInfoForm::PerApp`] is on.
const PER_APP_LIMIT: u64 = 250_000;

pub(crate) fn with_limit_info(s: &Inner, mut r: Response) -> Response {
    let used = s.counters.api_calls;
    // "Limit Info Header" (REST API Developer Guide, headers_api_usage.htm):
    // fields separated by "; ", each `name=used/limit`.
    let v = match s.limits.info_form {
        LimitInfoForm::ApiUsage => format!("api-usage={used}/{}", s.limits.api_limit),
        LimitInfoForm::PerApp => format!(
            "api-usage={used}/{}; per-app-api-usage={used}/{PER_APP_LIMIT}(appName=WitiOp_Integration)",
            s.limits.api_limit
        ),
        LimitInfoForm::Bursts => format!("api-usage={used}/{}; api-bursts=0/750", s.limits.api_limit),
    };
    if let Ok(h) = HeaderValue::from_str(&v) {
        r.headers_mut().insert("sforce-limit-info", h);
    }
    r
}

/// Every answer under `/services/data`, refusals included, reports the
/// allowance ("Limit Info Header", REST API Developer Guide: "This response
/// header is returned in each request to REST API"); handlers that already
/// set it keep theirs.
pub(crate) async fn limit_info_on_data_calls(
    axum::extract::State(state): axum::extract::State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let data = request.uri().path().starts_with("/services/data");
    let response = next.run(request).await;
    if !data || response.headers().contains_key("sforce-limit-info") {
        return response;
    }
    let s = state.lock().expect("state lock");
    with_limit_info(&s, response)
}

/// An answer after the gate, with the allowance it leaves; a 204 has no body.
pub(crate) fn finish(state: &Shared, status: StatusCode, body: Value) -> Response {
    let s = state.lock().expect("state lock");
    let response = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (status, Json(body)).into_response()
    };
    with_limit_info(&s, response)
}

/// Runs `operation` on the shared state and answers with its status and body.
pub(crate) fn answer(
    state: &Shared,
    operation: impl FnOnce(&mut Inner) -> (StatusCode, Value),
) -> Response {
    let (status, body) = operation(&mut state.lock().expect("state lock"));
    finish(state, status, body)
}
