//! The router and the REST resources called directly (Composite has its
//! own module).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::gate::{answer, finish, parse_json, rest_error, JsonCall, Passed, WithBody};
use crate::operations::{
    run_collection, run_create, run_query, run_query_more, run_retrieve, run_update, run_upsert,
    SaveHeaders, DEFAULT_BATCH,
};
use crate::org::Actor;
use crate::server::Shared;
use crate::sosl::sosl_phone_search;
use crate::{composite, control, oauth};

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(oauth::token))
        .route("/services/data", get(crate::describe::versions))
        .route("/services/data/{version}/query", get(query))
        .route("/services/data/{version}/query/{cursor}", get(query_more))
        .route("/services/data/{version}/sobjects/{object}", post(create))
        .route(
            "/services/data/{version}/sobjects/{object}/{id}",
            patch(update).get(retrieve),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/describe",
            get(crate::describe::describe),
        )
        .route(
            "/services/data/{version}/sobjects/{object}/{field}/{value}",
            patch(upsert),
        )
        .route(
            "/services/data/{version}/composite/sobjects",
            post(collection),
        )
        .route(
            "/services/data/{version}/composite",
            post(composite::composite),
        )
        .route(
            "/services/data/{version}/composite/graph",
            post(composite::graph),
        )
        .route("/services/data/{version}/search", get(search))
        .route("/services/data/{version}/limits", get(limits))
        .route("/__control/users", post(control::user))
        .route("/__control/records/{object}", post(control::record))
        .route("/__control/settings", post(control::settings))
        .route("/__control/picklists", post(control::picklist))
        .route("/__control/faults", post(control::faults))
        .route("/__control/expire-tokens", post(control::expire_tokens))
        .route("/__control/dump", get(control::dump))
        .route(
            "/lightning/r/{object}/{id}/view",
            get(crate::lightning::record_page),
        )
        .fallback(|| async {
            rest_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The requested resource does not exist",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::gate::limit_info_on_data_calls,
        ))
        .with_state(state)
}

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
    headers: HeaderMap,
    Query(q): Query<Q>,
    Passed { api, user_id }: Passed,
) -> Response {
    let Some(text) = q.q else {
        return finish(
            &state,
            StatusCode::BAD_REQUEST,
            json!([{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}]),
        );
    };
    answer(&state, |s| {
        run_query(s, &text, &api, batch_size(&headers), &user_id)
    })
}

async fn query_more(
    State(state): State<Shared>,
    Path((_, cursor)): Path<(String, String)>,
    headers: HeaderMap,
    Passed { api, .. }: Passed,
) -> Response {
    answer(&state, |s| {
        run_query_more(s, &cursor, &api, batch_size(&headers))
    })
}

async fn create(
    State(state): State<Shared>,
    Path((_, object)): Path<(String, String)>,
    WithBody {
        passed,
        headers,
        body,
    }: WithBody,
) -> Response {
    let user_id = passed.user_id;
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let actor = SaveHeaders::from_headers(&headers).actor(&user_id);
    if content_type.starts_with("multipart/form-data") {
        let (status, body) = create_multipart(&state, &object, &content_type, body, &actor);
        return finish(&state, status, body);
    }
    let value = match parse_json(&body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    answer(&state, |s| run_create(s, &object, &value, &actor))
}

/// ContentVersion upload: an `entity_content` JSON part and a binary `VersionData` part.
fn create_multipart(
    state: &Shared,
    object: &str,
    content_type: &str,
    body: Bytes,
    actor: &Actor,
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
    match s.org.insert_with_blob(object, &entity, actor, Some(data)) {
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
    Path((_, object, id)): Path<(String, String, String)>,
    Passed { api, .. }: Passed,
) -> Response {
    answer(&state, |s| run_retrieve(s, &object, &id, &api))
}

async fn update(
    State(state): State<Shared>,
    Path((_, object, id)): Path<(String, String, String)>,
    call: JsonCall,
) -> Response {
    answer(&state, |s| {
        run_update(s, &object, &id, &call.value, &call.actor())
    })
}

async fn upsert(
    State(state): State<Shared>,
    Path((_, object, field, value)): Path<(String, String, String, String)>,
    call: JsonCall,
) -> Response {
    answer(&state, |s| {
        let actor = call.actor();
        run_upsert(s, &object, &field, &value, &call.value, &actor, &call.api)
    })
}

async fn collection(State(state): State<Shared>, call: JsonCall) -> Response {
    // Called directly, the request's own headers apply to every record.
    let (status, body) = run_collection(
        &mut state.lock().expect("state lock"),
        &call.value,
        &call.actor(),
        None,
    );
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
    Query(q): Query<Q>,
    Passed { api, user_id }: Passed,
) -> Response {
    let text = q.q.unwrap_or_default();
    let result = sosl_phone_search(
        &state.lock().expect("state lock").org,
        &text,
        &api,
        &user_id,
    );
    match result {
        Ok(v) => finish(&state, StatusCode::OK, v),
        Err(e) => finish(&state, StatusCode::BAD_REQUEST, e.rest()),
    }
}

async fn limits(State(state): State<Shared>, _: Passed) -> Response {
    let (used, max) = {
        let s = state.lock().expect("state lock");
        (s.counters.api_calls, s.limits.api_limit)
    };
    finish(
        &state,
        StatusCode::OK,
        json!({"DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)}}),
    )
}
