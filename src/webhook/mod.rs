//! The webhook: HTTP request → authenticate → validate → enqueue → response.
//!
//! Every expected outcome is an explicit response; an `Err` from a Lambda
//! handler would reach WitiOp as an opaque 502. The function never answers 2xx
//! for an event it did not queue, so WitiOp's own retries cover SQS outages.

use std::time::Instant;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageAttributeValue;
use base64::Engine;
use http::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde_json::json;

use crate::config::WebhookEnv;
use crate::event::{parse_body, ParsedBody};

mod tokens;
use crate::queue::{self, DeduplicationId, GroupId, SqsText};
pub use tokens::{TokenError, WebhookTokens};

/// What the webhook needs, built once per cold start.
pub struct Webhook {
    pub sqs: aws_sdk_sqs::Client,
    pub tokens: WebhookTokens,
    pub env: WebhookEnv,
}

/// Why a request was answered as it was; logged and, later, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Queued,
    Ignored,
    Unauthorized,
    Invalid,
    TooLarge,
    MethodNotAllowed,
    QueueUnavailable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Ignored => "ignored",
            Self::Unauthorized => "unauthorized",
            Self::Invalid => "invalid_event",
            Self::TooLarge => "payload_too_large",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::QueueUnavailable => "queue_unavailable",
        }
    }
}

/// Handles one API Gateway (HTTP API, payload 2.0) request.
pub async fn handle_webhook(
    webhook: &Webhook,
    request: ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    let started = Instant::now();
    let ((outcome, conversation_id, response), message_id) = route(webhook, request).await;
    // The heartbeat alarm's metric: WitiOp calling us, that is a request
    // that passed authentication and carried a valid `conversation.closed`
    // event, queued or not (an SQS outage is not WitiOp's silence). Neither
    // anonymous requests, nor invalid bodies, nor ignored types (the smoke
    // test posts one with the real token) count: they must not keep the
    // alarm green while WitiOp is silent. An answer names a conversation
    // exactly when such an event was read.
    if conversation_id.is_some() {
        metrics::counter!("witiop_closes_received").increment(1);
    }
    match outcome {
        Outcome::Queued => metrics::counter!("conversations_queued").increment(1),
        Outcome::Ignored => metrics::counter!("events_ignored").increment(1),
        other => metrics::counter!("webhook_rejections", "reason" => other.as_str()).increment(1),
    }
    tracing::info!(
        outcome = outcome.as_str(),
        status = response.status_code,
        conversation_id = conversation_id.as_deref().unwrap_or(""),
        // The SQS message id ties this line to the worker's for the same event.
        message_id = message_id.as_deref().unwrap_or(""),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "webhook request"
    );
    response
}

/// A request that passed every check and is ready for the queue.
pub struct Prepared {
    pub conversation_id: String,
    message_body: SqsText,
    attributes: Vec<(String, MessageAttributeValue)>,
    /// FIFO message group: the customer.
    group_id: GroupId,
    /// FIFO deduplication id: the event.
    deduplication_id: DeduplicationId,
    /// The agent's signed link to the Case, when links are on.
    case_url: Option<String>,
}

/// The outcome, the conversation (named only once the request was
/// authenticated and its body read as a valid `conversation.closed` event)
/// and the response.
type Answer = (Outcome, Option<String>, ApiGatewayV2httpResponse);

/// The answer, and the SQS message id when the event was queued.
async fn route(webhook: &Webhook, request: ApiGatewayV2httpRequest) -> (Answer, Option<String>) {
    match prepare(webhook, &request).await {
        Ok(prepared) => enqueue(webhook, prepared).await,
        Err(answer) => (answer, None),
    }
}

/// Everything the webhook does before SQS: method, token, body, validation,
/// size. Public so the benchmark can time the handler's own work.
pub async fn prepare(
    webhook: &Webhook,
    request: &ApiGatewayV2httpRequest,
) -> Result<Prepared, Answer> {
    if request.request_context.http.method != http::Method::POST {
        let mut r = error_response(405, Outcome::MethodNotAllowed, "use POST", None);
        r.headers.insert("allow", HeaderValue::from_static("POST"));
        return Err((Outcome::MethodNotAllowed, None, r));
    }

    let Some(token) = presented_token(request) else {
        return Err(unauthorized(
            "missing webhook token: send `Authorization: Bearer <token>` or `?token=<token>`",
        ));
    };
    if !webhook.tokens.verify(&token).await {
        return Err(unauthorized("invalid webhook token"));
    }

    // Size before anything else: a few MB of `[0,0,…]` parse into far more
    // memory than they take on the wire.
    let too_large = |size: usize| {
        let message = format!(
            "the event is {size} bytes; the queue accepts at most {} bytes per message",
            webhook.env.max_message_bytes
        );
        (
            Outcome::TooLarge,
            None,
            error_response(413, Outcome::TooLarge, &message, None),
        )
    };
    let raw_len = request.body.as_deref().map_or(0, str::len);
    // Base64 takes 4 bytes for 3: anything longer cannot decode to a fit.
    if raw_len / 4 * 3 > webhook.env.max_message_bytes {
        return Err(too_large(raw_len / 4 * 3));
    }
    let body = match request_body(request) {
        Ok(b) => b,
        Err(message) => return Err((Outcome::Invalid, None, invalid_response("", &message))),
    };
    if body.len() > webhook.env.max_message_bytes {
        return Err(too_large(body.len()));
    }

    let event = match parse_body(&body) {
        Ok(ParsedBody::Closed(e)) => e,
        Ok(ParsedBody::Ignored { event_type }) => {
            tracing::info!(event_type, "event type ignored");
            return Err((
                Outcome::Ignored,
                None,
                json_response(202, json!({"status": "ignored", "type": event_type})),
            ));
        }
        Err(e) => {
            // The field, never its value: values may be personal data.
            tracing::warn!(field = e.field, reason = e.message, "event refused");
            return Err((
                Outcome::Invalid,
                None,
                invalid_response(&e.field, &e.message),
            ));
        }
    };
    let conversation_id = event.conversation.id.to_string();
    let group_id = GroupId::for_customer(&event.conversation.customer.number);
    let case_url = webhook.tokens.link_key().await.map(|key| {
        let context = &request.request_context;
        crate::links::signing::case_url(
            &key,
            context.domain_name.as_deref().unwrap_or("localhost"),
            context.stage.as_deref().unwrap_or("$default"),
            &conversation_id,
            group_id.as_str(),
        )
    });

    let message_body = match sqs_safe_body(&body) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(field = "", reason = %e, "event refused");
            return Err((
                Outcome::Invalid,
                None,
                invalid_response("", &format!("the body {e}")),
            ));
        }
    };
    // The body as SQS will hold it: the deduplication hash of an event
    // without `event_id` and `closed_at` is taken over this, canonical.
    let deduplication_id = match DeduplicationId::of_event(&event, &message_body) {
        Ok(id) => id,
        Err(e) => {
            return Err((
                Outcome::Invalid,
                None,
                invalid_response("", &format!("body is not valid JSON: {e}")),
            ))
        }
    };
    let attributes = message_attributes(&event);
    let size = message_body.as_str().len() + attributes_size(&attributes);
    if size > webhook.env.max_message_bytes {
        let message = format!(
            "the event is {size} bytes; the queue accepts at most {} bytes per message",
            webhook.env.max_message_bytes
        );
        return Err((
            Outcome::TooLarge,
            Some(conversation_id),
            error_response(413, Outcome::TooLarge, &message, None),
        ));
    }
    Ok(Prepared {
        conversation_id,
        message_body,
        attributes,
        group_id,
        deduplication_id,
        case_url,
    })
}

async fn enqueue(webhook: &Webhook, prepared: Prepared) -> (Answer, Option<String>) {
    let conversation_id = prepared.conversation_id;
    let case_url = prepared.case_url;
    let mut request = webhook
        .sqs
        .send_message()
        .queue_url(&webhook.env.queue_url)
        .message_body(prepared.message_body.into_string())
        .set_message_attributes(Some(prepared.attributes.into_iter().collect()));
    if webhook.env.queue_url.ends_with(".fifo") {
        request = request
            .message_group_id(prepared.group_id.into_string())
            .message_deduplication_id(prepared.deduplication_id.into_string());
    }
    let sent = request.send().await;
    match sent {
        Ok(out) => {
            let message_id = out.message_id().unwrap_or_default().to_owned();
            let mut body = json!({
                "status": "queued",
                "conversation_id": conversation_id,
                "message_id": message_id,
            });
            if let Some(url) = case_url {
                body["case_url"] = json!(url);
            }
            let answer = (
                Outcome::Queued,
                Some(conversation_id),
                json_response(202, body),
            );
            (answer, Some(message_id))
        }
        Err(e) => {
            tracing::error!(
                error = %DisplayErrorContext(&e),
                conversation_id,
                "could not queue the event"
            );
            let mut r = error_response(
                503,
                Outcome::QueueUnavailable,
                "the event could not be queued; retry later",
                None,
            );
            r.headers
                .insert(RETRY_AFTER, HeaderValue::from_static("30"));
            ((Outcome::QueueUnavailable, Some(conversation_id), r), None)
        }
    }
}

fn unauthorized(message: &str) -> Answer {
    let mut r = error_response(401, Outcome::Unauthorized, message, None);
    r.headers
        .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    (Outcome::Unauthorized, None, r)
}

/// The token from `Authorization: Bearer …`, else from `?token=…`.
fn presented_token(request: &ApiGatewayV2httpRequest) -> Option<String> {
    if let Some(value) = request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let value = value.trim();
        if let Some((scheme, token)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some(token.trim().to_owned());
            }
        }
    }
    if let Some(token) = request.query_string_parameters.first("token") {
        return Some(token.to_owned());
    }
    // Direct invocations and some emulators fill only the raw query string.
    request.raw_query_string.as_deref().and_then(|q| {
        reqwest::Url::parse(&format!("http://q/?{q}"))
            .ok()?
            .query_pairs()
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    })
}

fn request_body(request: &ApiGatewayV2httpRequest) -> Result<Vec<u8>, String> {
    let Some(body) = request.body.as_deref() else {
        return Err("the request has no body".to_owned());
    };
    if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| "the body is marked base64 but is not".to_owned())
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

/// The body as an SQS message. Valid JSON may carry U+FFFE and U+FFFF raw
/// inside strings, and SQS refuses both (see [`SqsText`]); escaping them
/// keeps the JSON equal. Every other character SQS refuses cannot appear
/// raw in JSON that parsed (control characters only as escapes, no
/// surrogates in UTF-8), and escapes travel as the six characters they are:
/// the webhook sends the body as received, never re-serialised. The check
/// stays, so that a body SQS would refuse is a 400, not a 503 forever.
fn sqs_safe_body(body: &[u8]) -> Result<SqsText, queue::SqsValueError> {
    // `parse_body` accepted it, so it is UTF-8.
    let text = String::from_utf8_lossy(body);
    if !text.contains(['\u{FFFE}', '\u{FFFF}']) {
        return SqsText::parse(&text);
    }
    SqsText::parse(
        &text
            .replace('\u{FFFE}', "\\ufffe")
            .replace('\u{FFFF}', "\\uffff"),
    )
}

/// The event's message attributes, each a value SQS accepts by construction.
fn message_attributes(event: &crate::event::CloseEvent) -> Vec<(String, MessageAttributeValue)> {
    let mut attributes = vec![(
        queue::CONVERSATION_ID.to_owned(),
        queue::string_attribute(event.conversation.id.as_attribute()),
    )];
    if let Some(id) = &event.event_id {
        attributes.push((
            queue::EVENT_ID.to_owned(),
            queue::string_attribute(id.as_attribute()),
        ));
    }
    attributes
}

/// SQS counts attribute names, types and values toward the message size.
fn attributes_size(attributes: &[(String, MessageAttributeValue)]) -> usize {
    attributes
        .iter()
        .map(|(name, v)| name.len() + v.data_type().len() + v.string_value().map_or(0, str::len))
        .sum()
}

fn json_response(status: i64, body: serde_json::Value) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut r = ApiGatewayV2httpResponse::default();
    r.status_code = status;
    r.headers = headers;
    r.body = Some(Body::Text(body.to_string()));
    r
}

fn error_response(
    status: i64,
    outcome: Outcome,
    message: &str,
    field: Option<&str>,
) -> ApiGatewayV2httpResponse {
    let mut body = json!({"error": outcome.as_str(), "message": message});
    if let Some(field) = field {
        body["field"] = json!(field);
    }
    json_response(status, body)
}

fn invalid_response(field: &str, message: &str) -> ApiGatewayV2httpResponse {
    error_response(400, Outcome::Invalid, message, Some(field))
}

#[cfg(test)]
mod tests {
    use super::tokens::matches_any;
    use super::*;
    use secrecy::SecretString;

    fn request(auth: Option<&str>, query: Option<&str>) -> ApiGatewayV2httpRequest {
        let mut r: ApiGatewayV2httpRequest =
            serde_json::from_str(include_str!("../../events/webhook-request.json")).unwrap();
        r.headers.remove(AUTHORIZATION);
        if let Some(a) = auth {
            r.headers
                .insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        r.raw_query_string = query.map(str::to_owned);
        r
    }

    #[test]
    fn token_is_taken_from_header_or_query() {
        let cases = [
            (Some("Bearer abc"), None, Some("abc")),
            (Some("bearer  abc "), None, Some("abc")),
            (Some("Basic abc"), None, None),
            (Some("Bearer "), None, None),
            (None, Some("token=a%2Bb&x=1"), Some("a+b")),
            (None, Some("x=1"), None),
            (Some("Bearer h"), Some("token=q"), Some("h")),
            (None, None, None),
        ];
        for (auth, query, expected) in cases {
            assert_eq!(
                presented_token(&request(auth, query)).as_deref(),
                expected,
                "{auth:?} {query:?}"
            );
        }
    }

    #[test]
    fn constant_time_match_accepts_any_listed_token() {
        let accepted = vec![
            SecretString::from("current-token"),
            SecretString::from("previous-token"),
        ];
        assert!(matches_any(&accepted, "current-token"));
        assert!(matches_any(&accepted, "previous-token"));
        assert!(!matches_any(&accepted, "current-toke"));
        assert!(!matches_any(&accepted, "current-token-and-more"));
        assert!(!matches_any(&accepted, &"x".repeat(10_000)));
        assert!(!matches_any(&accepted, ""));
        assert!(!matches_any(&[], "x"));
    }

    #[test]
    fn body_escapes_what_sqs_refuses() {
        let body = "{\"t\":\"a\u{FFFF}b\u{FFFE}\"}";
        let safe = sqs_safe_body(body.as_bytes()).unwrap().into_string();
        assert_eq!(safe, "{\"t\":\"a\\uffffb\\ufffe\"}");
        let a: serde_json::Value = serde_json::from_str(body).unwrap();
        let b: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn base64_bodies_are_decoded() {
        let mut r = request(None, None);
        r.body = Some(base64::engine::general_purpose::STANDARD.encode("{}"));
        r.is_base64_encoded = true;
        assert_eq!(request_body(&r).unwrap(), b"{}");
        r.body = Some("***".into());
        assert!(request_body(&r).is_err());
    }
}
