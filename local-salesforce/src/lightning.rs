//! The Lightning Experience record page, so that a browser sent to a record
//! lands on a page naming it rather than on an API error. Real orgs use
//! `/lightning/r/{object}/{record id}/view` since Summer '18 ("Here's What
//! You Need To Know About The New URL Format For Lightning",
//! https://developer.salesforce.com/blogs/2018/01/heres-need-know-new-url-format-lightning.html);
//! Salesforce does not document its UI URLs as an API, hence only this one.
//!
//! There is no UI login here: the page is served to anyone, and it calls
//! nothing counted against the API allowance.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::server::Shared;

/// `GET /lightning/r/{object}/{id}/view`: a small page naming the record,
/// `404` when the object or the record is unknown.
pub(crate) async fn record_page(
    State(state): State<Shared>,
    Path((object, id)): Path<(String, String)>,
) -> Response {
    let found = {
        let s = state.lock().expect("state lock");
        s.org
            .records
            .get(object.as_str())
            .and_then(|table| table.get(&id))
            .map(|record| {
                // What Lightning shows as the record's name: CaseNumber for a
                // Case, Name for most other objects.
                ["Name", "CaseNumber"]
                    .iter()
                    .find_map(|f| record.get(*f).and_then(|v| v.as_str()))
                    .unwrap_or(&id)
                    .to_owned()
            })
    };
    let (status, title, body) = match found {
        Some(name) => (
            StatusCode::OK,
            format!("{} | {} | Salesforce", escape(&name), escape(&object)),
            format!(
                "<h1>{} {}</h1><p>Record {}</p>",
                escape(&object),
                escape(&name),
                escape(&id)
            ),
        ),
        None => (
            StatusCode::NOT_FOUND,
            "Page not found | Salesforce".to_owned(),
            "<h1>This record is not available</h1>".to_owned(),
        ),
    };
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title></head><body>{body}</body></html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use crate::LocalSalesforce;

    #[tokio::test]
    async fn a_record_has_a_page_and_an_unknown_one_is_a_404() {
        let sf = LocalSalesforce::start(0).await.unwrap();
        let user = sf.api_user_id.clone();
        let http = reqwest::Client::new();
        let page = http
            .get(format!("{}/lightning/r/User/{user}/view", sf.url))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(page
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("text/html")));
        let html = page.text().await.unwrap();
        assert!(html.contains("| User | Salesforce</title>"), "{html}");
        assert!(html.contains(&user), "{html}");
        for missing in ["User/005000000000000AAA", "Nothing/x"] {
            let url = format!("{}/lightning/r/{missing}/view", sf.url);
            assert_eq!(http.get(url).send().await.unwrap().status(), 404);
        }
        assert_eq!(sf.counters().api_calls, 0);
    }
}
