//! The agent's link to the Case: `GET /witiop/cases/{conversation id}`,
//! signed by the webhook. A wrong signature is a bare 404; a Case that
//! exists is a 302 to it in Lightning; one that does not exist yet is a
//! small page that refreshes until it does.
//!
//! Found Case ids are remembered by the warm instance, so reopening a link
//! costs no API call, and each link asks Salesforce at most once per
//! [`THROTTLE`] however often it is opened.

mod page;
pub mod signing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use http::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use secrecy::SecretString;

use crate::phone::CustomerNumber;
use crate::salesforce::records::{case_lookup_query, CaseKey, CaseRow};
use crate::salesforce::SalesforceClient;

/// At most one Salesforce call per link per this interval, per instance.
pub const THROTTLE: Duration = Duration::from_secs(2);
/// Entries kept before the oldest are forgotten.
const MEMORY: usize = 10_000;

/// What the links function needs, built once per cold start.
pub struct Links {
    pub salesforce: Arc<SalesforceClient>,
    /// The Case's External ID field, when configured (else the Subject is the key).
    pub case_external_id_field: Option<String>,
    /// `None`: links are off and every request is a 404.
    pub link_key: Option<SecretString>,
    found: Mutex<HashMap<String, String>>,
    asked: Mutex<HashMap<String, Instant>>,
}

impl Links {
    pub fn new(
        salesforce: Arc<SalesforceClient>,
        case_external_id_field: Option<String>,
        link_key: Option<SecretString>,
    ) -> Self {
        Self {
            salesforce,
            case_external_id_field,
            link_key,
            found: Mutex::new(HashMap::new()),
            asked: Mutex::new(HashMap::new()),
        }
    }

    /// True when this link may ask Salesforce now (and records that it did).
    fn may_ask(&self, conversation_id: &str) -> bool {
        let mut asked = self.asked.lock().expect("throttle lock");
        let now = Instant::now();
        if asked
            .get(conversation_id)
            .is_some_and(|t| now.duration_since(*t) < THROTTLE)
        {
            return false;
        }
        if asked.len() >= MEMORY {
            asked.retain(|_, t| now.duration_since(*t) < THROTTLE);
        }
        asked.insert(conversation_id.to_owned(), now);
        true
    }

    fn remember(&self, conversation_id: &str, case_id: &str) {
        let mut found = self.found.lock().expect("found lock");
        if found.len() >= MEMORY {
            found.clear();
        }
        found.insert(conversation_id.to_owned(), case_id.to_owned());
    }
}

/// Handles one request of the links route.
pub async fn handle_link(
    links: &Links,
    request: ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let Some(key) = &links.link_key else {
        return not_found();
    };
    let Some(conversation_id) = conversation_id(&request) else {
        return not_found();
    };
    let query = |name: &str| query_param(&request, name);
    let (Some(digits), Some(signature)) = (query("n"), query("sig")) else {
        return not_found();
    };
    if !signing::verify(key, &conversation_id, &digits, &signature) {
        tracing::info!(outcome = "bad_signature", "case link refused");
        return not_found();
    }
    let cached = links
        .found
        .lock()
        .expect("found lock")
        .get(&conversation_id)
        .cloned();
    let case_id = match cached {
        Some(id) => Some(id),
        None if links.may_ask(&conversation_id) => {
            match find_case(links, &conversation_id, &digits).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(conversation_id, error = %e, "could not look the Case up");
                    None
                }
            }
        }
        None => None,
    };
    if let Some(case_id) = case_id {
        match links.salesforce.session().await {
            Ok(session) => {
                links.remember(&conversation_id, &case_id);
                tracing::info!(
                    conversation_id,
                    case_id,
                    outcome = "redirect",
                    "case link opened"
                );
                return redirect(&format!(
                    "{}/lightning/r/Case/{case_id}/view",
                    session.instance_url
                ));
            }
            Err(e) => tracing::warn!(conversation_id, error = %e, "no Salesforce session"),
        }
    }
    let now = epoch_seconds();
    let since = query("since")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s <= now)
        .unwrap_or(now);
    let refresh = (now - since < page::PATIENCE.as_secs()).then(|| {
        format!(
            "{}{}?n={digits}&sig={signature}&since={since}",
            signing::PATH_PREFIX,
            signing::encode_segment(&conversation_id)
        )
    });
    tracing::info!(
        conversation_id,
        outcome = "waiting",
        "case link opened before its Case exists"
    );
    html(page::waiting(&conversation_id, refresh.as_deref()))
}

async fn find_case(
    links: &Links,
    conversation_id: &str,
    digits: &str,
) -> Result<Option<String>, crate::salesforce::SalesforceError> {
    let subject;
    let key = match &links.case_external_id_field {
        Some(field) => CaseKey::ExternalId {
            field,
            value: conversation_id,
        },
        None => {
            // The worker's Subject: the number in E.164, then the id.
            let number = CustomerNumber::parse(&format!("+{digits}")).display();
            subject = format!("{number} [{conversation_id}]");
            CaseKey::Subject(&subject)
        }
    };
    let rows: Vec<CaseRow> = links.salesforce.query(&case_lookup_query(key)).await?;
    Ok(rows.into_iter().next().map(|r| r.id))
}

/// The conversation id: the route's path parameter, else the raw path's tail.
fn conversation_id(request: &ApiGatewayV2httpRequest) -> Option<String> {
    if let Some(id) = request.path_parameters.get("conversation_id") {
        return Some(id.clone()).filter(|s| !s.is_empty());
    }
    let path = request.raw_path.as_deref()?;
    let tail = &path[path.find(signing::PATH_PREFIX)? + signing::PATH_PREFIX.len()..];
    let decoded = percent_decode(tail)?;
    Some(decoded).filter(|s| !s.is_empty() && !s.contains('/'))
}

fn query_param(request: &ApiGatewayV2httpRequest, name: &str) -> Option<String> {
    if let Some(v) = request.query_string_parameters.first(name) {
        return Some(v.to_owned());
    }
    let raw = request.raw_query_string.as_deref()?;
    reqwest::Url::parse(&format!("http://q/?{raw}"))
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `%XX` escapes of a path segment decoded; `None` if malformed or not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let raw = s.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hex = std::str::from_utf8(raw.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn response(status: i64, headers: HeaderMap, body: Option<String>) -> ApiGatewayV2httpResponse {
    let mut r = ApiGatewayV2httpResponse::default();
    r.status_code = status;
    r.headers = headers;
    r.body = body.map(Body::Text);
    r
}

/// Every answer: never cached, and the signed URL never sent on as a referrer.
fn base_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h
}

fn not_found() -> ApiGatewayV2httpResponse {
    let mut h = base_headers();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response(404, h, Some("Not Found".to_owned()))
}

fn redirect(location: &str) -> ApiGatewayV2httpResponse {
    let mut h = base_headers();
    match HeaderValue::from_str(location) {
        Ok(v) => {
            h.insert(LOCATION, v);
            response(302, h, None)
        }
        Err(_) => not_found(),
    }
}

fn html(body: String) -> ApiGatewayV2httpResponse {
    let mut h = base_headers();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response(200, h, Some(body))
}
