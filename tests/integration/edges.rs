//! What crosses a trust boundary: identifiers that become SQS values, the
//! heartbeat that says WitiOp is calling, deduplication of repeated closes,
//! attachment URLs carrying credentials, the `instance_url` the token goes
//! to, and refused logins in the shared token cache. Against moto and the
//! local Salesforce.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{bearing, sample_event, Moto, Stack, TOKENS};
use crate::worker::{media_access, media_server};
use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use serde_json::{json, Value};
use witiop_salesforce::salesforce::SalesforceError;
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};
use witiop_salesforce::worker::handle_batch;

const TOKEN: &str = "edges-webhook-token-1";

fn webhook(moto: &Moto, queue: &str) -> Webhook {
    crate::helpers::webhook(moto, queue, WebhookTokens::for_tests(vec![TOKEN.into()]))
}

fn body_json(r: &ApiGatewayV2httpResponse) -> Value {
    match &r.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("unexpected body {other:?}"),
    }
}

/// Each field whose value becomes an SQS attribute or a FIFO id, with a
/// value SQS refuses there: the webhook answers 400 naming the field,
/// whether the value came raw or as a JSON escape, and queues nothing.
#[tokio::test]
async fn hostile_values_of_sqs_bound_fields_are_400_naming_the_field() {
    let moto = crate::helpers::moto().await;
    let (queue, _) = proof::pipeline::fifo_queues(&moto, "conversations", 30)
        .await
        .unwrap();
    let hook = webhook(&moto, &queue);
    type Mutate = fn(&mut Value);
    let cases: [(Mutate, &str); 7] = [
        (
            |v| v["conversation"]["id"] = json!("1793\u{FFFE}"),
            "conversation.id",
        ),
        (
            |v| v["conversation"]["id"] = json!("\u{FFFF}"),
            "conversation.id",
        ),
        (
            |v| v["conversation"]["id"] = json!("17\u{1}93"),
            "conversation.id",
        ),
        (|v| v["event_id"] = json!("evt-\u{FFFE}"), "event_id"),
        (|v| v["event_id"] = json!("evt 1"), "event_id"),
        (
            |v| v["conversation"]["customer"]["number"] = json!("+39 333 123 4567\u{FFFE}"),
            "conversation.customer.number",
        ),
        (
            |v| v["conversation"]["customer"]["number"] = json!("+39 333\u{7} 123 4567"),
            "conversation.customer.number",
        ),
    ];
    for (mutate, field) in cases {
        let mut event = sample_event();
        mutate(&mut event);
        let raw = event.to_string();
        // The same characters as JSON escapes, as a sender would write them.
        let escaped = raw
            .replace('\u{FFFE}', "\\ufffe")
            .replace('\u{FFFF}', "\\uffff");
        for body in [raw, escaped] {
            let r = handle_webhook(&hook, bearing(TOKEN, &body)).await;
            assert_eq!(r.status_code, 400, "{field}: {body}");
            let b = body_json(&r);
            assert_eq!(b["error"], "invalid_event");
            assert_eq!(b["field"], field, "{body}");
        }
    }
    assert!(moto.receive(&queue).await.unwrap().is_empty());

    // In text a person wrote, the same characters are kept: the body is
    // queued with them escaped, and reads back as the same event.
    let mut event = sample_event();
    event["conversation"]["messages"][0]["text"] = json!("odd \u{FFFE}\u{FFFF} text");
    let r = handle_webhook(&hook, bearing(TOKEN, &event.to_string())).await;
    assert_eq!(r.status_code, 202, "{:?}", r.body);
    let queued = moto.receive(&queue).await.unwrap();
    let body: Value = serde_json::from_str(queued[0].body().unwrap()).unwrap();
    assert_eq!(body, event);
}

/// Counts the counters the code increments on this thread, by name.
#[derive(Clone, Default)]
struct Counters(Arc<Mutex<HashMap<String, u64>>>);

struct NamedCounter(String, Counters);

impl metrics::CounterFn for NamedCounter {
    fn increment(&self, value: u64) {
        *self.1 .0.lock().unwrap().entry(self.0.clone()).or_default() += value;
    }
    fn absolute(&self, value: u64) {
        self.1 .0.lock().unwrap().insert(self.0.clone(), value);
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        metrics::Counter::from_arc(Arc::new(NamedCounter(key.name().to_owned(), self.clone())))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

impl Counters {
    fn get(&self, name: &str) -> u64 {
        self.0.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

/// The heartbeat counts WitiOp's closes only: no anonymous request, no
/// invalid body, and not the smoke test's ignored event type, though it
/// bears the real token, keeps the alarm green.
#[tokio::test]
async fn the_heartbeat_counts_authenticated_valid_closes_only() {
    let moto = crate::helpers::moto().await;
    let (queue, _) = moto.queues("conversations", 30, 5).await.unwrap();
    let hook = webhook(&moto, &queue);
    let counters = Counters::default();
    // The test runs on one thread, and so does every await below.
    let _guard = metrics::set_default_local_recorder(&counters);
    let sample = sample_event().to_string();
    let mut invalid = sample_event();
    invalid["conversation"]["id"] = json!("\u{FFFE}");
    let smoke = json!({"type": "ops.smoke", "event_id": "smoke-1"}).to_string();
    let mut anonymous = crate::helpers::with_body(crate::helpers::webhook_request(), &sample);
    anonymous.headers.remove("authorization");
    for (request, status) in [
        (bearing("wrong-token-of-anyone", &sample), 401),
        (anonymous, 401),
        (bearing(TOKEN, &smoke), 202),
        (bearing(TOKEN, &invalid.to_string()), 400),
        (bearing(TOKEN, "{not json"), 400),
    ] {
        assert_eq!(handle_webhook(&hook, request).await.status_code, status);
    }
    assert_eq!(counters.get("witiop_closes_received"), 0);
    assert_eq!(counters.get("events_ignored"), 1, "the smoke test was seen");

    let r = handle_webhook(&hook, bearing(TOKEN, &sample)).await;
    assert_eq!(r.status_code, 202);
    assert_eq!(counters.get("witiop_closes_received"), 1);
    assert_eq!(counters.get("conversations_queued"), 1);
}

impl Stack {
    /// Polls the queue as Lambda would until a poll finds nothing (at most
    /// `passes` polls); returns how many messages were delivered.
    async fn drain(&self, passes: usize) -> usize {
        let mut delivered = 0;
        for _ in 0..passes {
            let (received, failed) = self.poll().await;
            assert!(failed.is_empty(), "{failed:?}");
            if received == 0 {
                break;
            }
            delivered += received;
        }
        delivered
    }
}

/// Without `event_id` and `closed_at`, a second close of one conversation
/// with more messages is another event (the contract: a hash of the whole
/// body): both are queued, and the Case gets every message once.
#[tokio::test]
async fn a_second_close_with_more_messages_is_not_deduplicated_away() {
    let s = crate::helpers::stack().fifo().start().await;
    let hook = webhook(&s.moto, &s.queue);
    let mut first = sample_event();
    first.as_object_mut().unwrap().remove("event_id");
    first["conversation"]
        .as_object_mut()
        .unwrap()
        .remove("closed_at");
    let second = first.clone();
    first["conversation"]["messages"]
        .as_array_mut()
        .unwrap()
        .truncate(2);
    let mut ids = Vec::new();
    for event in [&first, &second] {
        let r = handle_webhook(&hook, bearing(TOKEN, &event.to_string())).await;
        assert_eq!(r.status_code, 202);
        assert_eq!(body_json(&r)["status"], "queued");
        ids.push(body_json(&r)["message_id"].clone());
    }
    assert_ne!(ids[0], ids[1]);
    // A WitiOp retry of the second, spaced and ordered differently, is the
    // same body: SQS drops it.
    let mut retry = serde_json::to_string_pretty(&second).unwrap();
    retry.push('\n');
    let r = handle_webhook(&hook, bearing(TOKEN, &retry)).await;
    assert_eq!(r.status_code, 202);

    assert_eq!(s.drain(5).await, 2, "both closes, not the retry");
    let cases = s.sf.records("Case");
    assert_eq!(cases.len(), 1);
    let comments = s.sf.records("CaseComment");
    let bodies: Vec<&str> = comments
        .iter()
        .map(|c| c["CommentBody"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    for message in second["conversation"]["messages"].as_array().unwrap() {
        let Some(text) = message["text"].as_str() else {
            continue;
        };
        assert_eq!(
            bodies.iter().filter(|b| b.contains(text)).count(),
            1,
            "{text}: {bodies:?}"
        );
    }
}

/// An attachment URL with a user name or a password is linked in its
/// comment and never fetched, even on a listed media host.
#[tokio::test]
async fn attachment_urls_with_credentials_are_linked_never_fetched() {
    let s = crate::helpers::stack()
        .settings(json!({"add_attachments": true}))
        .start()
        .await;
    let media = media_server(vec![1, 2, 3], None).await;
    s.worker.set_media(media_access(&[&media.host]));
    let path = "/media/8f2c/invoice.pdf";
    let mut event = sample_event();
    event["conversation"]["messages"][2]["attachments"] = json!([
        {"url": format!("http://user:secret@{}{path}", media.host), "file_name": "a.pdf"},
        {"url": format!("http://:secret@{}{path}", media.host), "file_name": "b.pdf"},
        {"url": format!("http://user@{}{path}", media.host), "file_name": "c.pdf"},
    ]);
    let batch = proof::pipeline::lambda_sqs_event(&[aws_sdk_sqs::types::Message::builder()
        .message_id("msg-0")
        .body(event.to_string())
        .build()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let response = handle_batch(&s.worker, batch, deadline).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(media.requests(), 0, "nothing was downloaded");
    assert_eq!(media.tokens_seen(), 0);
    assert!(s.sf.records("ContentVersion").is_empty());
    let comments = s.sf.records("CaseComment");
    let body = comments[2]["CommentBody"].as_str().unwrap();
    for name in ["a.pdf", "b.pdf", "c.pdf"] {
        assert!(
            body.contains(&format!(
                "📎 {name} is not copied to Salesforce (its address carries a user name or password)"
            )),
            "{body}"
        );
    }
}

async fn stored_token(moto: &Moto) -> Value {
    let text = moto
        .secrets()
        .get_secret_value()
        .secret_id(TOKENS)
        .send()
        .await
        .unwrap()
        .secret_string
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A cached token whose `instance_url` is not a Salesforce host is never
/// used: whoever can write the cache cannot send the token elsewhere. The
/// next instance logs in afresh and repairs the cache.
#[tokio::test]
async fn a_cached_instance_url_off_salesforce_is_ignored() {
    let e = crate::helpers::org(json!({})).await;
    let _: Vec<Value> = e.client().query("SELECT Id FROM User").await.unwrap();
    assert_eq!(e.sf.counters().logins, 1);
    let mut cached = stored_token(&e.moto).await;
    cached["instance_url"] = json!("https://attacker.example");
    e.moto
        .put_secret(TOKENS, &cached.to_string())
        .await
        .unwrap();

    let next = e.client();
    let users: Vec<Value> = next.query("SELECT Id FROM User").await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(e.sf.counters().logins, 2, "a fresh login, not the cache");
    assert_eq!(stored_token(&e.moto).await["instance_url"], e.sf.url);
}

/// A login that answers an `instance_url` off Salesforce's hosts is a
/// configuration error naming it, and nothing is cached.
#[tokio::test]
async fn a_login_answering_an_instance_url_off_salesforce_is_refused() {
    let e = crate::helpers::org(json!({})).await;
    e.sf.set_instance_url("https://acme.my.salesforce.com.attacker.example");
    let err = e
        .client()
        .query::<Value>("SELECT Id FROM User")
        .await
        .unwrap_err();
    match &err {
        SalesforceError::Login {
            error, description, ..
        } => {
            assert_eq!(error, "instance_url refused");
            assert!(
                description.contains("acme.my.salesforce.com.attacker.example"),
                "{description}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(stored_token(&e.moto).await, json!({}));
}

/// A refusal repeated is recorded once: the token cache gets one new
/// version, not one per refused login.
#[tokio::test]
async fn two_refused_logins_in_a_row_write_one_secret_version() {
    let e = crate::helpers::org(json!({"password": "not-the-password"})).await;
    let versions = || async {
        e.moto
            .secrets()
            .list_secret_version_ids()
            .secret_id(TOKENS)
            .send()
            .await
            .unwrap()
            .versions()
            .len()
    };
    assert_eq!(versions().await, 1, "the empty cache");
    // No memory of the refusal: every call tries to log in again.
    let client = e.client().with_refusal_memory(Duration::ZERO);
    for _ in 0..2 {
        let err = client
            .query::<Value>("SELECT Id FROM User")
            .await
            .unwrap_err();
        assert!(matches!(err, SalesforceError::Login { .. }), "{err:?}");
    }
    assert_eq!(e.sf.counters().failed_logins, 2, "two logins were refused");
    assert_eq!(versions().await, 2, "one version for both refusals");
    assert!(stored_token(&e.moto).await["refused"].is_object());
}
