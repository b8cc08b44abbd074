//! Composite: up to 25 subrequests in one API call, later ones referring to
//! earlier results as `@{reference.path}`; with `allOrNone` they roll back
//! together.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use crate::gate::{finish, pass};
use crate::operations::{
    run_collection, run_create, run_query, run_query_more, run_update, run_upsert, DEFAULT_BATCH,
};
use crate::routes::parse_json;
use crate::server::{Inner, Shared};

const MAX_COMPOSITE: usize = 25;
const MAX_COMPOSITE_QUERIES: usize = 5;

pub(crate) async fn composite(
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
