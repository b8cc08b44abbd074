//! The control surface under `/__control/`: seeds users and records, flips
//! org settings, injects faults and dumps the org, for runs that cannot call
//! [`crate::LocalSalesforce`] in-process.

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::gate::{Fault, LimitInfoForm};
use crate::org::{self, Actor, USER_TYPES};
use crate::server::Shared;
use crate::API_USERNAME;

#[derive(Deserialize)]
pub(crate) struct NewUser {
    username: String,
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default = "yes")]
    active: bool,
    password: Option<String>,
    /// A licence other than `Standard` (see `LocalSalesforce::add_user_of_type`).
    user_type: Option<String>,
}

fn yes() -> bool {
    true
}

pub(crate) async fn user(State(state): State<Shared>, Json(u): Json<NewUser>) -> Response {
    let user_type = u.user_type.as_deref().unwrap_or("Standard");
    if !USER_TYPES.contains(&user_type) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("unknown user_type {user_type}: one of {USER_TYPES:?}")})),
        )
            .into_response();
    }
    let mut s = state.lock().expect("state lock");
    let id = s.org.seed_user(&org::NewUser {
        username: &u.username,
        email: &u.email,
        first: &u.first_name,
        last: &u.last_name,
        active: u.active,
        user_type,
    });
    if let Some(p) = u.password {
        s.logins.add_password(u.username.clone(), p, id.clone());
    }
    Json(json!({"id": id})).into_response()
}

pub(crate) async fn record(
    State(state): State<Shared>,
    Path(object): Path<String>,
    Json(fields): Json<Value>,
) -> Response {
    let mut s = state.lock().expect("state lock");
    let api = s
        .logins
        .user_id_of(API_USERNAME)
        .map(str::to_owned)
        .unwrap_or_default();
    let map = fields.as_object().cloned().unwrap_or_default();
    match s.org.insert(&object, &map, &Actor::seeding(&api)) {
        Ok(id) => Json(json!({"id": id})).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(e.rest())).into_response(),
    }
}

#[derive(Deserialize)]
pub(crate) struct Settings {
    audit_fields: Option<bool>,
    password_flow: Option<bool>,
    api_limit: Option<u64>,
    latency_ms: Option<u64>,
    external_id: Option<(String, String)>,
    expire_tokens_every: Option<u64>,
    /// username → new password
    password: Option<(String, String)>,
    /// `{"owner": "005…"}` activates the Case assignment rule, `{"owner":
    /// null}` deactivates it (`LocalSalesforce::set_case_assignment_rule`).
    case_assignment_rule: Option<CaseAssignment>,
    /// `LocalSalesforce::set_contact_duplicate_rule`.
    contact_duplicate_rule: Option<bool>,
    /// `LocalSalesforce::set_limit_info_form`.
    limit_info_form: Option<LimitInfoForm>,
    /// `{"seconds": S, "stall_ms": N}`: `LocalSalesforce::hang_for`.
    hang: Option<Hang>,
    /// `LocalSalesforce::set_case_comment_trigger`.
    case_comment_trigger: Option<bool>,
    /// `LocalSalesforce::set_clashing_records_hidden`.
    clashing_records_hidden: Option<bool>,
    /// A PEM certificate: `LocalSalesforce::set_jwt_certificate`.
    jwt_certificate: Option<String>,
    /// Usernames: `LocalSalesforce::pre_authorise`.
    pre_authorise: Option<Vec<String>>,
    /// `LocalSalesforce::set_jwt_audience`.
    jwt_audience: Option<String>,
    /// Seconds: `LocalSalesforce::set_clock_ahead`.
    clock_ahead_seconds: Option<u64>,
}

#[derive(Deserialize)]
pub(crate) struct Hang {
    seconds: u64,
    stall_ms: u64,
}

#[derive(Deserialize)]
pub(crate) struct CaseAssignment {
    owner: Option<String>,
}

pub(crate) async fn settings(State(state): State<Shared>, Json(c): Json<Settings>) -> Response {
    // Checked before any setting changes: a refused request changes nothing.
    let certificate = match c
        .jwt_certificate
        .as_deref()
        .map(crate::oauth::certificate_der)
    {
        Some(Err(e)) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
        }
        Some(Ok(der)) => Some(der),
        None => None,
    };
    let mut s = state.lock().expect("state lock");
    if let Some(der) = certificate {
        s.logins.jwt.certificate = Some(der);
    }
    if let Some(users) = c.pre_authorise {
        s.logins.jwt.pre_authorised.extend(users);
    }
    if let Some(v) = c.jwt_audience {
        s.logins.jwt.audience = v;
    }
    if let Some(v) = c.clock_ahead_seconds {
        s.logins.jwt.clock_ahead = i64::try_from(v).unwrap_or(i64::MAX);
    }
    if let Some(v) = c.audit_fields {
        s.org.audit_fields_enabled = v;
    }
    if let Some(v) = c.password_flow {
        s.logins.password_flow_enabled = v;
    }
    if let Some(v) = c.api_limit {
        s.limits.api_limit = v;
    }
    if let Some(v) = c.latency_ms {
        s.faults.latency = Duration::from_millis(v);
    }
    if let Some(v) = c.external_id {
        s.org.external_ids.insert(v);
    }
    if let Some(v) = c.expire_tokens_every {
        s.logins.expire_every = v;
    }
    if let Some((user, password)) = c.password {
        s.logins.set_password(&user, password);
    }
    if let Some(rule) = c.case_assignment_rule {
        s.org.case_assignment_owner = rule.owner;
    }
    if let Some(v) = c.contact_duplicate_rule {
        s.org.contact_duplicate_rule = v;
    }
    if let Some(v) = c.limit_info_form {
        s.limits.info_form = v;
    }
    if let Some(h) = c.hang {
        s.faults.hang = Some((
            std::time::Instant::now() + Duration::from_secs(h.seconds),
            Duration::from_millis(h.stall_ms),
        ));
    }
    if let Some(v) = c.case_comment_trigger {
        s.org.case_comment_trigger = v;
    }
    if let Some(v) = c.clashing_records_hidden {
        s.org.clashing_records_hidden = v;
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `{"object": "Case", "field": "Origin", "values": [...], "restricted":
/// true}`: a picklist's values (`LocalSalesforce::set_picklist`);
/// `restricted` defaults to true (`LocalSalesforce::restrict_picklist`).
#[derive(Deserialize)]
pub(crate) struct Picklist {
    object: String,
    field: String,
    values: Vec<String>,
    #[serde(default = "yes")]
    restricted: bool,
}

pub(crate) async fn picklist(State(state): State<Shared>, Json(p): Json<Picklist>) -> Response {
    let picklist = org::Picklist {
        values: p.values,
        restricted: p.restricted,
    };
    state
        .lock()
        .expect("state lock")
        .org
        .picklists
        .insert((p.object, p.field), picklist);
    StatusCode::NO_CONTENT.into_response()
}

// The name is part of the 422 body for a malformed request
// ("expected struct Faults"), so it stays.
#[derive(Deserialize)]
pub(crate) struct Faults {
    fault: Fault,
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

pub(crate) async fn faults(State(state): State<Shared>, Json(f): Json<Faults>) -> Response {
    state
        .lock()
        .expect("state lock")
        .faults
        .inject(f.fault, f.count);
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn expire_tokens(State(state): State<Shared>) -> Response {
    state.lock().expect("state lock").logins.expire_all();
    StatusCode::NO_CONTENT.into_response()
}

pub(crate) async fn dump(State(state): State<Shared>, RawQuery(_): RawQuery) -> Response {
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
    Json(json!({
        "records": records,
        "counters": s.counters,
        "audit_fields": s.org.audit_fields_enabled,
        "case_assignment_owner": s.org.case_assignment_owner,
        "contact_duplicate_rule": s.org.contact_duplicate_rule,
    }))
    .into_response()
}
