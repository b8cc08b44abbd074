//! What every data call passes before it reaches the org: the API version,
//! the session, injected latency and faults, the API allowance. Every answer
//! after the gate reports the allowance in `Sforce-Limit-Info`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::server::{Inner, Shared};

/// API versions served; others answer 404 as Salesforce does.
const MIN_VERSION: f64 = 31.0;
const MAX_VERSION: f64 = 66.0;
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
    /// Every data call fails with `REQUEST_LIMIT_EXCEEDED` until then.
    pub(crate) exhausted_until: Option<Instant>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            api_limit: DEFAULT_API_LIMIT,
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

/// Outcome of the checks every data call goes through.
pub(crate) enum Gate {
    Pass { user_id: String, api: String },
    Refuse(Response),
}

/// Bearer check, API version, injected faults and the API allowance.
pub(crate) async fn gate(state: &Shared, headers: &HeaderMap, version: &str) -> Gate {
    let latency = state.lock().expect("state lock").faults.latency;
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
    let Some(user_id) = s.logins.authenticate(bearer) else {
        s.counters.unauthorized += 1;
        return Gate::Refuse(rest_error(
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
        return Gate::Refuse(with_limit_info(&s, r));
    }
    if s.counters.api_calls >= s.limits.api_limit {
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

pub(crate) fn with_limit_info(s: &Inner, mut r: Response) -> Response {
    let v = format!("api-usage={}/{}", s.counters.api_calls, s.limits.api_limit);
    if let Ok(h) = HeaderValue::from_str(&v) {
        r.headers_mut().insert("sforce-limit-info", h);
    }
    r
}

/// Runs the gate: yields `(user_id, api)`, or returns its refusal from the
/// handler.
macro_rules! pass {
    ($state:expr, $headers:expr, $version:expr) => {
        match $crate::gate::gate(&$state, &$headers, &$version).await {
            $crate::gate::Gate::Pass { user_id, api } => (user_id, api),
            $crate::gate::Gate::Refuse(r) => return r,
        }
    };
}
pub(crate) use pass;

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

/// An answer after the gate, with the allowance it leaves.
pub(crate) fn finish(state: &Shared, status: StatusCode, body: Value) -> Response {
    let s = state.lock().expect("state lock");
    with_limit_info(&s, (status, Json(body)).into_response())
}
