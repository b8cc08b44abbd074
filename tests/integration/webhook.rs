//! The webhook handler driven end to end against moto's SQS and Secrets Manager.

use crate::helpers::{event_file, Moto};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use http::HeaderValue;
use serde_json::{json, Value};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::config::WebhookEnv;
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};

const TOKEN: &str = "local-webhook-token";
const SECRET: &str = "witiop";

struct Stack {
    moto: Moto,
    queue: String,
    webhook: Webhook,
}

async fn stack() -> Stack {
    let moto = crate::helpers::moto().await;
    let (queue, _dlq) = moto.queues("conversations", 30, 5).await.unwrap();
    moto.secret(
        SECRET,
        &json!({"webhook_token": TOKEN, "api_token": "media-token"}).to_string(),
    )
    .await
    .unwrap();
    let webhook = webhook_for(&moto, &queue).await;
    Stack {
        moto,
        queue,
        webhook,
    }
}

async fn webhook_for(moto: &Moto, queue: &str) -> Webhook {
    let tokens = WebhookTokens::load(SecretStore::new(&moto.sdk), SECRET.to_owned())
        .await
        .unwrap();
    Webhook {
        sqs: moto.sqs(),
        tokens,
        env: WebhookEnv {
            queue_url: queue.to_owned(),
            witiop_secret_id: SECRET.to_owned(),
            max_message_bytes: 262_144,
        },
    }
}

fn sample_request() -> ApiGatewayV2httpRequest {
    serde_json::from_str(&event_file("webhook-request.json")).unwrap()
}

fn with_body(body: &str) -> ApiGatewayV2httpRequest {
    let mut r = sample_request();
    r.body = Some(body.to_owned());
    r
}

fn with_auth(mut r: ApiGatewayV2httpRequest, auth: &str) -> ApiGatewayV2httpRequest {
    r.headers
        .insert("authorization", HeaderValue::from_str(auth).unwrap());
    r
}

fn body_json(r: &ApiGatewayV2httpResponse) -> Value {
    match &r.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

#[tokio::test]
async fn sample_event_is_queued_with_attributes() {
    let s = stack().await;
    let r = handle_webhook(&s.webhook, sample_request()).await;
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
    assert_eq!(handle_webhook(&s.webhook, r).await.status_code, 202);
}

#[tokio::test]
async fn wrong_or_missing_token_is_401_and_nothing_is_queued() {
    let s = stack().await;
    for auth in ["Bearer wrong-token", "Bearer ", "Basic bG9jYWw="] {
        let r = handle_webhook(&s.webhook, with_auth(sample_request(), auth)).await;
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
    assert_eq!(handle_webhook(&s.webhook, r).await.status_code, 401);
    assert!(s.moto.receive(&s.queue).await.unwrap().is_empty());
}

#[tokio::test]
async fn invalid_events_are_400_naming_the_field() {
    let s = stack().await;
    let r = handle_webhook(
        &s.webhook,
        serde_json::from_str(&event_file("webhook-request-invalid.json")).unwrap(),
    )
    .await;
    assert_eq!(r.status_code, 400);
    let b = body_json(&r);
    assert_eq!(b["error"], "invalid_event");
    assert_eq!(b["field"], "conversation.customer.number");
    assert_eq!(b["message"], "missing");

    let mut sample: Value = serde_json::from_str(&event_file("conversation-closed.json")).unwrap();
    sample["conversation"]["messages"][1]["sent_at"] = json!("24/11/2026");
    let r = handle_webhook(&s.webhook, with_body(&sample.to_string())).await;
    assert_eq!(r.status_code, 400);
    assert_eq!(body_json(&r)["field"], "conversation.messages[1].sent_at");

    let r = handle_webhook(&s.webhook, with_body("{\"type\": \"conversation.closed\",")).await;
    assert_eq!(r.status_code, 400);
    assert_eq!(body_json(&r)["field"], "");
    assert!(s.moto.receive(&s.queue).await.unwrap().is_empty());
}

#[tokio::test]
async fn other_event_types_are_acknowledged_and_not_queued() {
    let s = stack().await;
    let r = handle_webhook(
        &s.webhook,
        with_body(r#"{"type":"conversation.assigned","conversation":{"id":1}}"#),
    )
    .await;
    assert_eq!(r.status_code, 202);
    assert_eq!(body_json(&r)["status"], "ignored");
    assert!(s.moto.receive(&s.queue).await.unwrap().is_empty());
}

#[tokio::test]
async fn body_larger_than_the_queue_accepts_is_413() {
    let s = stack().await;
    let mut sample: Value = serde_json::from_str(&event_file("conversation-closed.json")).unwrap();
    sample["conversation"]["messages"][0]["text"] = json!("x".repeat(300_000));
    let r = handle_webhook(&s.webhook, with_body(&sample.to_string())).await;
    assert_eq!(r.status_code, 413);
    assert!(body_json(&r)["message"]
        .as_str()
        .unwrap()
        .contains("262144"));
    assert!(s.moto.receive(&s.queue).await.unwrap().is_empty());
}

#[tokio::test]
async fn previous_token_is_accepted_after_rotation() {
    let s = stack().await;
    let new_token = "rotated-webhook-token-2";
    s.moto
        .put_secret(SECRET, &json!({"webhook_token": new_token}).to_string())
        .await
        .unwrap();
    // A fresh cold start sees both stages.
    let webhook = webhook_for(&s.moto, &s.queue).await;
    for token in [TOKEN, new_token] {
        let r = handle_webhook(
            &webhook,
            with_auth(sample_request(), &format!("Bearer {token}")),
        )
        .await;
        assert_eq!(r.status_code, 202, "{token}");
    }
    let r = handle_webhook(
        &webhook,
        with_auth(sample_request(), "Bearer some-other-token"),
    )
    .await;
    assert_eq!(r.status_code, 401);
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
    assert_eq!(handle_webhook(&s.webhook, r).await.status_code, 405);
}
