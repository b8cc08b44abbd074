//! Read-only resources about the org itself rather than its records: the
//! API versions it serves and the describe of an object.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::gate::{finish, rest_error, Passed, MAX_VERSION, MIN_VERSION};
use crate::server::Shared;

/// `GET /services/data`: every version served, oldest first, each with its
/// release's label and root ("Versions", REST API Developer Guide,
/// resources_versions.htm: "Authentication: none"; the answer's shape in
/// "List Available REST API Versions", dome_versions.htm).
pub(crate) async fn versions() -> Response {
    Json(Value::Array(version_list())).into_response()
}

fn version_list() -> Vec<Value> {
    // Three releases a year from Summer '14 (31.0): Summer, Winter (named
    // after the next year), Spring, as the page's example lists them.
    const SEASONS: [&str; 3] = ["Summer", "Winter", "Spring"];
    let (first, last) = (MIN_VERSION as u32, MAX_VERSION as u32);
    (first..=last)
        .map(|v| {
            let n = v - 31;
            let season = SEASONS[(n % 3) as usize];
            let year = 14 + n.div_ceil(3);
            json!({
                "label": format!("{season} '{year:02}"),
                "url": format!("/services/data/v{v}.0"),
                "version": format!("{v}.0"),
            })
        })
        .collect()
}

/// `GET /services/data/vXX.X/sobjects/{object}/describe` ("sObject
/// Describe", REST API Developer Guide, resources_sobject_describe.htm): an
/// authenticated data call like any other, counted against the allowance;
/// an object the org does not have is 404 `NOT_FOUND`.
pub(crate) async fn describe(
    State(state): State<Shared>,
    Path((_, object)): Path<(String, String)>,
    Passed { api, .. }: Passed,
) -> Response {
    let described = state
        .lock()
        .expect("state lock")
        .org
        .describe(&object, &api);
    match described {
        Some(body) => finish(&state, StatusCode::OK, body),
        None => rest_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::version_list;

    #[test]
    fn versions_carry_their_release() {
        let list = version_list();
        assert_eq!(list[0]["label"], "Summer '14");
        assert_eq!(list[0]["url"], "/services/data/v31.0");
        let v62 = list.iter().find(|v| v["version"] == "62.0").unwrap();
        assert_eq!(v62["label"], "Winter '25");
        assert_eq!(list.last().unwrap()["label"], "Summer '26");
    }
}
