//! The REST operations, each answering (status, body) and shared by its
//! direct route and Composite.

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use crate::org::{Actor, SaveError, UpsertError};
use crate::server::Inner;

/// The request headers that change how records save: a direct call's own,
/// or a Composite subrequest's `httpHeaders` (which are all a subrequest
/// gets besides Accept, Authorization and Content-Type: "Composite Request
/// Body", REST API Developer Guide).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SaveHeaders {
    pub(crate) auto_assign: bool,
    pub(crate) allow_duplicates: bool,
}

impl SaveHeaders {
    pub(crate) fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
        let absent = Actor::new("");
        let mut h = Self {
            auto_assign: absent.auto_assign,
            allow_duplicates: absent.allow_duplicates,
        };
        for (name, value) in pairs {
            if name.eq_ignore_ascii_case("sforce-auto-assign") {
                // "Assignment Rule Header": TRUE, FALSE (either case) or an
                // AssignmentRule id, which runs that rule; only FALSE stops
                // the rules.
                h.auto_assign = !value.trim().eq_ignore_ascii_case("false");
            } else if name.eq_ignore_ascii_case("sforce-duplicate-rule-header") {
                // "Duplicate Rule Header": `allowSave=true;
                // includeRecordDetails=…; runAsCurrentUser=…`.
                h.allow_duplicates = value.split([';', ',']).any(|part| {
                    part.split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("allowSave")
                            && v.trim().eq_ignore_ascii_case("true")
                    })
                });
            }
        }
        h
    }

    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        Self::from_pairs(
            headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
        )
    }

    pub(crate) fn actor(self, user_id: &str) -> Actor<'_> {
        Actor {
            user_id,
            auto_assign: self.auto_assign,
            allow_duplicates: self.allow_duplicates,
        }
    }
}

/// Records per query page unless `Sforce-Query-Options` asks for fewer.
pub(crate) const DEFAULT_BATCH: usize = 2000;
const MAX_COLLECTION: usize = 200;

/// Queries with more pages to fetch.
#[derive(Default)]
pub(crate) struct Cursors {
    /// Locator id → (records not yet returned, the query's `totalSize`).
    open: HashMap<String, (Vec<Value>, usize)>,
}

pub(crate) fn run_query(
    s: &mut Inner,
    q: &str,
    api: &str,
    batch: usize,
    viewer: &str,
) -> (StatusCode, Value) {
    match s.org.query(q, api, Some(viewer)) {
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
    actor: &Actor,
) -> (StatusCode, Value) {
    let Some(map) = body.as_object() else {
        return (
            StatusCode::BAD_REQUEST,
            json!([{"message": "Json Deserialization failed on token 'null' and has left off in the middle of parsing a row", "errorCode": "JSON_PARSER_ERROR"}]),
        );
    };
    match s.org.insert(object, map, actor) {
        Ok(id) => (
            StatusCode::CREATED,
            json!({"id": id, "success": true, "errors": []}),
        ),
        Err(e) => save_failed(&e),
    }
}

/// The fields an update or upsert body sets; a body that is not an object
/// sets none.
fn fields(body: &Value) -> Map<String, Value> {
    body.as_object().cloned().unwrap_or_default()
}

/// A save refused: 404 for a record or object that does not exist, else 400.
fn save_failed(e: &SaveError) -> (StatusCode, Value) {
    let status = if e.code == "NOT_FOUND" {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_REQUEST
    };
    (status, e.rest())
}

pub(crate) fn run_update(
    s: &mut Inner,
    object: &str,
    id: &str,
    body: &Value,
    actor: &Actor,
) -> (StatusCode, Value) {
    match s.org.update(object, id, &fields(body), actor) {
        Ok(()) => (StatusCode::NO_CONTENT, Value::Null),
        Err(e) => save_failed(&e),
    }
}

pub(crate) fn run_upsert(
    s: &mut Inner,
    object: &str,
    field: &str,
    value: &str,
    body: &Value,
    actor: &Actor,
    api: &str,
) -> (StatusCode, Value) {
    match s.org.upsert(object, field, value, &fields(body), actor) {
        Ok((id, true)) => (
            StatusCode::CREATED,
            json!({"id": id, "success": true, "errors": [], "created": true}),
        ),
        Ok((id, false)) => (
            StatusCode::OK,
            json!({"id": id, "success": true, "errors": [], "created": false}),
        ),
        Err(UpsertError::Save(e)) => save_failed(&e),
        Err(UpsertError::Multiple(ids)) => (
            StatusCode::MULTIPLE_CHOICES,
            json!(ids
                .iter()
                .map(|id| format!("/services/data/v{api}/sobjects/{object}/{id}"))
                .collect::<Vec<_>>()),
        ),
    }
}

/// `GET sobjects/{Type}/{id}`: every field of the record, with its
/// `attributes` ("Get Field Values from a Standard Object Record", REST API
/// Developer Guide: without `fields`, "the request retrieves all standard
/// and custom fields").
pub(crate) fn run_retrieve(s: &Inner, object: &str, id: &str, api: &str) -> (StatusCode, Value) {
    match s.org.retrieve(object, id, api) {
        Some(row) => (StatusCode::OK, row),
        None => (
            StatusCode::NOT_FOUND,
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        ),
    }
}

/// `GET sobjects/{Type}/{field}/{value}`: the record whose External ID
/// holds `value`, shaped as `GET sobjects/{Type}/{id}` answers ("Get a
/// Record Using an External ID", REST API Developer Guide,
/// https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/using_resources_retrieve_with_externalid.htm);
/// 404 when none does. Several matches answer 300 with their urls as the
/// upsert does: the page shows one match only, and a client cannot count
/// on reading a record it did not name uniquely.
pub(crate) fn run_retrieve_by_external_id(
    s: &Inner,
    object: &str,
    field: &str,
    value: &str,
    api: &str,
) -> (StatusCode, Value) {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        )
    };
    let Some((name, _, _)) = s.org.fields_of(object) else {
        return not_found();
    };
    let Some(ext) = s.org.external_id_field(name, field) else {
        return (
            StatusCode::NOT_FOUND,
            json!([{"errorCode": "NOT_FOUND", "message": format!("Provided external ID field does not exist or is not accessible: {field}")}]),
        );
    };
    match s.org.matching_external_id(name, &ext, value).as_slice() {
        [] => not_found(),
        [one] => run_retrieve(s, name, one, api),
        many => (
            StatusCode::MULTIPLE_CHOICES,
            json!(many
                .iter()
                .map(|id| format!("/services/data/v{api}/sobjects/{name}/{id}"))
                .collect::<Vec<_>>()),
        ),
    }
}

/// sObject Collections create. Inside a Composite, `composite_all_or_none`
/// is the Composite's own flag: when true it overrides the collection's
/// ("allOrNone Parameters in Composite and Collections Requests", REST API
/// Developer Guide: "the all-or-none behavior also applies to each of the
/// sObject Collections subrequests, overriding the value of allOrNone in the
/// subrequests").
pub(crate) fn run_collection(
    s: &mut Inner,
    body: &Value,
    actor: &Actor,
    composite_all_or_none: Option<bool>,
) -> (StatusCode, Value) {
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || composite_all_or_none == Some(true);
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
    // A Composite's transaction is already open: roll back to where this
    // collection began, leaving the Composite's earlier saves to its flag.
    let own_transaction = !s.org.in_transaction();
    if own_transaction {
        s.org.begin();
    }
    let savepoint = s.org.savepoint();
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
            Some(map) => s.org.insert(object, map, actor),
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
        s.org.rollback_to(savepoint);
        if own_transaction {
            s.org.commit();
        }
        // Every record that did not fail itself reports the rollback.
        for r in results.iter_mut() {
            if r["success"] == json!(true) {
                *r = json!({"id": Value::Null, "success": false, "errors": [{
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                    "fields": []
                }]});
            }
        }
        // Signal an enclosing composite that this subrequest failed as a whole.
        return (StatusCode::BAD_REQUEST, Value::Array(results));
    }
    if own_transaction {
        s.org.commit();
    }
    (StatusCode::OK, Value::Array(results))
}
