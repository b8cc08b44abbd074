//! The links route's HTTP side: what a request names, and the answers,
//! each one uncacheable and never sending the signed URL on as a referrer.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use http::header::{HeaderMap, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};

use super::signing;

/// The conversation id: the route's path parameter, else the raw path's tail.
pub(super) fn conversation_id(request: &ApiGatewayV2httpRequest) -> Option<String> {
    if let Some(id) = request.path_parameters.get("conversation_id") {
        return Some(id.clone()).filter(|s| !s.is_empty());
    }
    let path = request.raw_path.as_deref()?;
    let tail = &path[path.find(signing::PATH_PREFIX)? + signing::PATH_PREFIX.len()..];
    let decoded = percent_decode(tail)?;
    Some(decoded).filter(|s| !s.is_empty() && !s.contains('/'))
}

pub(super) fn query_param(request: &ApiGatewayV2httpRequest, name: &str) -> Option<String> {
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

pub(super) fn not_found() -> ApiGatewayV2httpResponse {
    let mut h = base_headers();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response(404, h, Some("Not Found".to_owned()))
}

pub(super) fn redirect(location: &str) -> ApiGatewayV2httpResponse {
    let mut h = base_headers();
    match HeaderValue::from_str(location) {
        Ok(v) => {
            h.insert(LOCATION, v);
            response(302, h, None)
        }
        Err(_) => not_found(),
    }
}

pub(super) fn html(body: String) -> ApiGatewayV2httpResponse {
    let mut h = base_headers();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response(200, h, Some(body))
}
