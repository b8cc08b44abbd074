//! The REST operations, each answering (status, body) and shared by its
//! direct route and Composite.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::org::{Actor, SaveError, UpsertError};
use crate::server::Inner;

/// Records per query page unless `Sforce-Query-Options` asks for fewer.
pub(crate) const DEFAULT_BATCH: usize = 2000;
const MAX_COLLECTION: usize = 200;

/// Queries with more pages to fetch.
#[derive(Default)]
pub(crate) struct Cursors {
    /// Locator id → (records not yet returned, the query's `totalSize`).
    open: HashMap<String, (Vec<Value>, usize)>,
}

pub(crate) fn run_query(s: &mut Inner, q: &str, api: &str, batch: usize) -> (StatusCode, Value) {
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
    let cursor = format!("01gWt{:010}", s.cursors.open.len() + 1);
    let next = format!("/services/data/v{api}/query/{cursor}-{batch}");
    s.cursors.open.insert(cursor, (rest, total));
    (
        StatusCode::OK,
        json!({"totalSize": total, "done": false, "nextRecordsUrl": next, "records": records}),
    )
}

pub(crate) fn run_query_more(
    s: &mut Inner,
    cursor: &str,
    api: &str,
    batch: usize,
) -> (StatusCode, Value) {
    let id = cursor.split('-').next().unwrap_or_default().to_owned();
    let Some((mut rest, total)) = s.cursors.open.remove(&id) else {
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
    s.cursors.open.insert(id.clone(), (tail, total));
    let next = format!("/services/data/v{api}/query/{id}-{batch}");
    (
        StatusCode::OK,
        json!({"totalSize": total, "done": false, "nextRecordsUrl": next, "records": rest}),
    )
}

pub(crate) fn run_create(
    s: &mut Inner,
    object: &str,
    body: &Value,
    user_id: &str,
) -> (StatusCode, Value) {
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

pub(crate) fn run_update(
    s: &mut Inner,
    object: &str,
    id: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let map = body.as_object().cloned().unwrap_or_default();
    match s.org.update(object, id, &map) {
        Ok(()) => (StatusCode::NO_CONTENT, Value::Null),
        Err(e) if e.code == "NOT_FOUND" => (StatusCode::NOT_FOUND, e.rest()),
        Err(e) => (StatusCode::BAD_REQUEST, e.rest()),
    }
}

pub(crate) fn run_upsert(
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

pub(crate) fn run_collection(s: &mut Inner, body: &Value, user_id: &str) -> (StatusCode, Value) {
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
    let nested = s.in_composite;
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
