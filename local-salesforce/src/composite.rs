//! Composite: up to 25 subrequests in one API call, later ones referring to
//! earlier results as `@{reference.path}` (`composite/refs.rs`); with
//! `allOrNone` they roll back together. Each subrequest carries only its own
//! `httpHeaders`.

mod graph;
mod refs;

pub(crate) use graph::graph;

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::gate::{finish, JsonCall};
use crate::operations::{
    run_collection, run_create, run_query, run_query_more, run_retrieve, run_update, run_upsert,
    SaveHeaders, DEFAULT_BATCH,
};
use crate::org::object_name;
use crate::server::{Inner, Shared};

const MAX_COMPOSITE: usize = 25;
const MAX_COMPOSITE_QUERIES: usize = 5;

/// Headers a subrequest inherits from the top-level request and must not
/// name ("Composite Request Body", REST API Developer Guide: "Don't specify
/// these headers in a subrequest. If you do, the top-level request fails and
/// returns an HTTP 400 response").
const INHERITED: [&str; 3] = ["Accept", "Authorization", "Content-Type"];

const HALTED: &str =
    "The transaction was rolled back since another operation in the same transaction failed.";

pub(crate) async fn composite(State(state): State<Shared>, call: JsonCall) -> Response {
    let JsonCall {
        user_id,
        api,
        value,
        ..
    } = call;
    let all_or_none = value
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let subs = match check_request(&value) {
        Ok(subs) => subs,
        Err(errors) => return finish(&state, StatusCode::BAD_REQUEST, errors),
    };

    let mut s = state.lock().expect("state lock");
    s.org.begin();
    let mut results: Vec<(String, StatusCode, Value, Map<String, Value>)> = Vec::new();
    let mut outputs: HashMap<String, Value> = HashMap::new();
    let mut failed_at: Option<usize> = None;
    for (i, sub) in subs.iter().enumerate() {
        let reference = sub["referenceId"].as_str().unwrap_or_default().to_owned();
        if failed_at.is_some() && all_or_none {
            let halted = json!([{"errorCode": "PROCESSING_HALTED", "message": HALTED}]);
            results.push((reference, StatusCode::BAD_REQUEST, halted, Map::new()));
            continue;
        }
        // Only the subrequest's own headers: the top-level request's
        // Sforce-Auto-Assign or duplicate-rule header does not reach it.
        let save = SaveHeaders::from_pairs(
            sub.get("httpHeaders")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?))),
        );
        let call = Call {
            user_id: &user_id,
            api: &api,
            save,
            all_or_none,
        };
        let (status, body, headers) = match refs::resolve(sub, &outputs) {
            Ok((method, url, body)) => execute_sub(&mut s, &call, &method, &url, &body),
            // "Invalid reference specified…" answers PROCESSING_HALTED, 400.
            Err(message) => (
                StatusCode::BAD_REQUEST,
                json!([{"errorCode": "PROCESSING_HALTED", "message": message}]),
                Map::new(),
            ),
        };
        if status.is_success() {
            outputs.insert(reference.clone(), body.clone());
        } else if failed_at.is_none() {
            failed_at = Some(i);
        }
        results.push((reference, status, body, headers));
    }
    if let (Some(at), true) = (failed_at, all_or_none) {
        s.org.rollback();
        // "Composite Subrequest Result": under allOrNone, once one fails
        // "all other subrequests return the 400 HTTP status code".
        for r in results.iter_mut().take(at) {
            r.1 = StatusCode::BAD_REQUEST;
            r.2 = json!([{"errorCode": "PROCESSING_HALTED", "message": HALTED}]);
            r.3 = Map::new();
        }
    } else {
        s.org.commit();
    }
    drop(s);
    let body: Vec<Value> = results
        .into_iter()
        .map(|(reference, status, body, headers)| {
            json!({"body": body, "httpHeaders": headers, "httpStatusCode": status.as_u16(), "referenceId": reference})
        })
        .collect();
    finish(&state, StatusCode::OK, json!({"compositeResponse": body}))
}

/// The checks made on the whole request before any subrequest runs; a
/// failure is the top-level 400 with its error array.
fn check_request(value: &Value) -> Result<Vec<Value>, Value> {
    let bad = |code: &str, message: String| json!([{"message": message, "errorCode": code}]);
    let Some(subs) = value.get("compositeRequest").and_then(Value::as_array) else {
        return Err(bad("INVALID_FIELD", "compositeRequest is required".into()));
    };
    if subs.len() > MAX_COMPOSITE {
        return Err(bad(
            "LIMIT_EXCEEDED",
            format!("Composite requests cannot have more than {MAX_COMPOSITE} subrequests"),
        ));
    }
    let heavy = subs
        .iter()
        .filter(|s| {
            let url = s.get("url").and_then(Value::as_str).unwrap_or("");
            url.contains("/query") || url.contains("/composite/sobjects")
        })
        .count();
    if heavy > MAX_COMPOSITE_QUERIES {
        return Err(bad(
            "LIMIT_EXCEEDED",
            format!("Composite requests cannot have more than {MAX_COMPOSITE_QUERIES} query or sObject Collections subrequests"),
        ));
    }
    let mut ref_ids = std::collections::HashSet::new();
    for sub in subs {
        let r = sub.get("referenceId").and_then(Value::as_str).unwrap_or("");
        let valid = !r.is_empty()
            && r.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || !ref_ids.insert(r.to_owned()) {
            return Err(bad(
                "INVALID_FIELD",
                format!("Invalid or duplicate referenceId '{r}'"),
            ));
        }
        match sub.get("httpHeaders") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                if let Some((name, _)) = h.iter().find(|(_, v)| !v.is_string()) {
                    return Err(bad(
                        "JSON_PARSER_ERROR",
                        format!("httpHeaders: the value of header '{name}' must be a string"),
                    ));
                }
                // The guide names no error code for this refusal; the code
                // Salesforce gives its other checks of the request body
                // before any subrequest runs ("Handle Errors with Composite
                // Resources", Salesforce Developers blog) is used.
                if let Some(name) = h
                    .keys()
                    .find(|k| INHERITED.iter().any(|i| i.eq_ignore_ascii_case(k)))
                {
                    return Err(bad(
                        "JSON_PARSER_ERROR",
                        format!("The header '{name}' of subrequest '{r}' is inherited from the composite request and cannot be set in httpHeaders"),
                    ));
                }
            }
            Some(_) => {
                return Err(bad(
                    "JSON_PARSER_ERROR",
                    format!("httpHeaders of subrequest '{r}' must be an object"),
                ))
            }
        }
    }
    Ok(subs.clone())
}

/// One subrequest's caller, headers and the Composite's allOrNone.
struct Call<'a> {
    user_id: &'a str,
    api: &'a str,
    save: SaveHeaders,
    all_or_none: bool,
}

fn execute_sub(
    s: &mut Inner,
    call: &Call,
    method: &str,
    url: &str,
    body: &Value,
) -> (StatusCode, Value, Map<String, Value>) {
    let api = call.api;
    let actor = call.save.actor(call.user_id);
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        )
    };
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let Some(rest) = path.strip_prefix(&format!("/services/data/v{api}/")) else {
        let (status, body) = not_found();
        return (status, body, Map::new());
    };
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let (status, body) = match (method, segs.as_slice()) {
        ("GET", ["query"]) => {
            let q = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("q="))
                .map(percent_decode)
                .unwrap_or_default();
            run_query(s, &q, api, DEFAULT_BATCH, call.user_id)
        }
        ("GET", ["query", cursor]) => run_query_more(s, cursor, api, DEFAULT_BATCH),
        ("GET", ["sobjects", object, id]) => run_retrieve(s, object, id, api),
        ("POST", ["sobjects", object]) => run_create(s, object, body, &actor),
        ("PATCH", ["sobjects", object, id]) => run_update(s, object, id, body, &actor),
        ("PATCH", ["sobjects", object, field, value]) => {
            run_upsert(s, object, field, &percent_decode(value), body, &actor, api)
        }
        ("POST", ["composite", "sobjects"]) => {
            run_collection(s, body, &actor, Some(call.all_or_none))
        }
        _ => not_found(),
    };
    let object = segs.get(1).copied().unwrap_or("");
    let headers = created_location(status, api, object, &body);
    (status, body, headers)
}

/// A created record's result carries its location ("Composite Subrequest
/// Result", REST API Developer Guide, whose example shows
/// `"Location": "/services/data/vXX.X/sobjects/Account/001…"`); other
/// results carry no header.
fn created_location(
    status: StatusCode,
    api: &str,
    object: &str,
    body: &Value,
) -> Map<String, Value> {
    let mut headers = Map::new();
    if status == StatusCode::CREATED {
        if let (Some(object), Some(id)) =
            (object_name(object), body.get("id").and_then(Value::as_str))
        {
            headers.insert(
                "Location".into(),
                json!(format!("/services/data/v{api}/sobjects/{object}/{id}")),
            );
        }
    }
    headers
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
