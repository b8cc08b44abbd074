//! The webhook handler driven end to end against moto's SQS and Secrets Manager.

use crate::helpers::{event_file, webhook_request as sample_request, with_auth, with_body, Moto};
use crate::helpers::{sample_event, WITIOP as SECRET};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use serde_json::{json, Value};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};

const TOKEN: &str = "local-webhook-token";

/// moto with a queue and the WitiOp secret, and the webhook, cold started.
struct Hook {
    moto: Moto,
    queue: String,
    webhook: Webhook,
}

async fn stack() -> Hook {
    let moto = crate::helpers::moto().await;
    let (queue, _dlq) = moto.queues("conversations", 30, 5).await.unwrap();
    moto.secret(
        SECRET,
        &json!({"webhook_token": TOKEN, "api_token": "media-token"}).to_string(),
    )
    .await
    .unwrap();
    let webhook = webhook_for(&moto, &queue).await;
    Hook {
        moto,
        queue,
        webhook,
    }
}

async fn webhook_for(moto: &Moto, queue: &str) -> Webhook {
    let tokens = WebhookTokens::load(SecretStore::new(&moto.sdk), SECRET.to_owned())
        .await
        .unwrap();
    crate::helpers::webhook(moto, queue, tokens)
}

fn body_json(r: &ApiGatewayV2httpResponse) -> Value {
    match &r.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

impl Hook {
    /// The webhook's answer to `r`.
    async fn answer(&self, r: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        handle_webhook(&self.webhook, r).await
    }

    /// The webhook's answer to the sample request carrying `body`.
    async fn answer_body(&self, body: &str) -> ApiGatewayV2httpResponse {
        self.answer(with_body(sample_request(), body)).await
    }

    async fn nothing_queued(&self) -> bool {
        self.moto.receive(&self.queue).await.unwrap().is_empty()
    }
}

#[tokio::test]
async fn sample_event_is_queued_with_attributes() {
    let s = stack().await;
    let r = s.answer(sample_request()).await;
    assert_eq!(r.status_code, 202);
    let b = body_json(&r);
    assert_eq!(b["status"], "queued");
    assert_eq!(b["conversation_id"], "1793");

    let messages = s.moto.receive(&s.queue).await.unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.message_id(), b["message_id"].as_str());
    assert_eq!(
        m.body(),
        Some(event_file("conversation-closed.json").as_str())
    );
    let attrs = m.message_attributes().unwrap();
    assert_eq!(attrs["conversation_id"].string_value(), Some("1793"));
    assert_eq!(
        attrs["event_id"].string_value(),
        Some("0b6c2a8e-4f1d-4a53-9d1e-2f0a7b5d9c11")
    );
}

#[tokio::test]
async fn token_in_query_string_is_accepted() {
    let s = stack().await;
    let mut r = sample_request();
    r.headers.remove("authorization");
    r.raw_query_string = Some(format!("token={TOKEN}"));
    assert_eq!(s.answer(r).await.status_code, 202);
}

#[tokio::test]
async fn wrong_or_missing_token_is_401_and_nothing_is_queued() {
    let s = stack().await;
    for auth in ["Bearer wrong-token", "Bearer ", "Basic bG9jYWw="] {
        let r = s.answer(with_auth(sample_request(), auth)).await;
        assert_eq!(r.status_code, 401, "{auth}");
        assert_eq!(body_json(&r)["error"], "unauthorized");
        let text = format!("{r:?}");
        assert!(
            !text.contains(TOKEN),
            "the response must not echo the token"
        );
    }
    let mut r = sample_request();
    r.headers.remove("authorization");
    assert_eq!(s.answer(r).await.status_code, 401);
    assert!(s.nothing_queued().await);
}

#[tokio::test]
async fn invalid_events_are_400_naming_the_field() {
    let s = stack().await;
    let r = s
        .answer(serde_json::from_str(&event_file("webhook-request-invalid.json")).unwrap())
        .await;
    assert_eq!(r.status_code, 400);
    let b = body_json(&r);
    assert_eq!(b["error"], "invalid_event");
    assert_eq!(b["field"], "conversation.customer.number");
    assert_eq!(b["message"], "missing");

    let mut sample = sample_event();
    sample["conversation"]["messages"][1]["sent_at"] = json!("24/11/2026");
    for (body, field) in [
        (sample.to_string(), "conversation.messages[1].sent_at"),
        ("{\"type\": \"conversation.closed\",".to_owned(), ""),
    ] {
        let r = s.answer_body(&body).await;
        assert_eq!(r.status_code, 400, "{field}");
        assert_eq!(body_json(&r)["field"], field);
    }
    assert!(s.nothing_queued().await);
}

#[tokio::test]
async fn other_event_types_are_acknowledged_and_not_queued() {
    let s = stack().await;
    let r = s
        .answer_body(r#"{"type":"conversation.assigned","conversation":{"id":1}}"#)
        .await;
    assert_eq!(r.status_code, 202);
    assert_eq!(body_json(&r)["status"], "ignored");
    assert!(s.nothing_queued().await);
}

#[tokio::test]
async fn body_larger_than_the_queue_accepts_is_413() {
    let s = stack().await;
    let mut sample = sample_event();
    sample["conversation"]["messages"][0]["text"] = json!("x".repeat(300_000));
    let r = s.answer_body(&sample.to_string()).await;
    assert_eq!(r.status_code, 413);
    let message = body_json(&r)["message"].as_str().unwrap().to_owned();
    assert!(message.contains("262144"), "{message}");
    assert!(s.nothing_queued().await);
}

#[tokio::test]
async fn previous_token_is_accepted_after_rotation() {
    let s = stack().await;
    let new_token = "rotated-webhook-token-2";
    s.moto
        .put_secret(SECRET, &json!({"webhook_token": new_token}).to_string())
        .await
        .unwrap();
    // A fresh cold start sees both stages, and trusts no other token.
    let webhook = webhook_for(&s.moto, &s.queue).await;
    for (token, status) in [(TOKEN, 202), (new_token, 202), ("some-other-token", 401)] {
        let r = handle_webhook(
            &webhook,
            with_auth(sample_request(), &format!("Bearer {token}")),
        )
        .await;
        assert_eq!(r.status_code, status, "{token}");
    }
}

#[tokio::test]
async fn sqs_failure_is_503_never_2xx() {
    let s = stack().await;
    let mut webhook = webhook_for(&s.moto, &s.queue).await;
    webhook.env.queue_url = format!("{}/123456789012/no-such-queue", s.moto.endpoint);
    let r = handle_webhook(&webhook, sample_request()).await;
    assert_eq!(r.status_code, 503);
    assert_eq!(body_json(&r)["error"], "queue_unavailable");

    // SQS unreachable altogether.
    let closed = witiop_salesforce::aws::local_sdk_config(&format!(
        "http://127.0.0.1:{}",
        crate::helpers::free_port()
    ))
    .await;
    webhook.sqs = aws_sdk_sqs::Client::new(&closed);
    webhook.env.queue_url = s.queue.clone();
    let r = handle_webhook(&webhook, sample_request()).await;
    assert_eq!(r.status_code, 503);
    assert!(r.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn get_is_405() {
    let s = stack().await;
    let mut r = sample_request();
    r.request_context.http.method = http::Method::GET;
    assert_eq!(s.answer(r).await.status_code, 405);
}
