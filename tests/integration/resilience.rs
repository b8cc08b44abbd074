//! A bad week: FIFO ordering and deduplication, backoff that hides a failing
//! conversation, parking and redrive that keep the customer's group, and a
//! revoked webhook token that stops working on a warm instance. Against
//! moto's FIFO queues and the local Salesforce.

use std::time::Duration;

use crate::helpers::{bearing, event_file, sample_event, Moto, Stack, WITIOP};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use local_salesforce::Fault;
use serde_json::{json, Value};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};

const TOKEN: &str = "fifo-webhook-token-1";

/// moto with the template's FIFO queue (and its DLQ).
async fn fifo_moto() -> (Moto, String) {
    let moto = crate::helpers::moto().await;
    let (queue, _) = proof::pipeline::fifo_queues(&moto, "conversations", 30)
        .await
        .unwrap();
    (moto, queue)
}

/// The webhook into `queue`, trusting `TOKEN` only.
fn fixed_webhook(moto: &Moto, queue: &str) -> Webhook {
    crate::helpers::webhook(moto, queue, WebhookTokens::for_tests(vec![TOKEN.into()]))
}

fn conversation(id: u64, number: &str) -> Value {
    let mut e = sample_event();
    e["conversation"]["id"] = json!(id);
    e["conversation"]["customer"]["number"] = json!(number);
    e["event_id"] = json!(format!("evt-{id}"));
    e
}

/// The stack on FIFO queues, with backoff from `retry` up to four times it.
async fn stack(retry: Duration, concurrency: usize) -> Stack {
    crate::helpers::stack()
        .fifo()
        .concurrency(concurrency)
        .retry(retry, retry * 4)
        .start()
        .await
}

fn group(m: &Message) -> &str {
    &m.attributes().unwrap()[&MessageSystemAttributeName::MessageGroupId]
}

impl Stack {
    async fn send_in_group(&self, event: &Value, group: &str) {
        self.moto
            .sqs()
            .send_message()
            .queue_url(&self.queue)
            .message_body(event.to_string())
            .message_group_id(group)
            .message_deduplication_id(event["event_id"].as_str().unwrap())
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_webhook_groups_by_customer_and_a_retry_never_reaches_the_worker() {
    let (moto, queue) = fifo_moto().await;
    let hook = fixed_webhook(&moto, &queue);
    let body = event_file("conversation-closed.json");
    // Without an event_id the conversation and its closing time deduplicate.
    let mut anonymous: Value = serde_json::from_str(&body).unwrap();
    anonymous.as_object_mut().unwrap().remove("event_id");
    anonymous["conversation"]["customer"]["number"] = json!("0039 333 123 4567");
    for event in [body.clone(), anonymous.to_string()] {
        for _ in 0..2 {
            let answer = handle_webhook(&hook, bearing(TOKEN, &event)).await;
            assert_eq!(answer.status_code, 202);
        }
    }
    let messages = moto.receive(&queue).await.unwrap();
    assert_eq!(messages.len(), 2, "each duplicate was dropped by SQS");
    assert_eq!(group(&messages[0]), "393331234567");
    assert_eq!(
        group(&messages[1]),
        "393331234567",
        "0039… is the same customer"
    );
    assert_eq!(messages[0].body().unwrap(), body, "in the order they came");
}

/// Two spellings of one customer's number are one message group: SQS never
/// hands their conversations to two worker instances at once.
#[tokio::test]
async fn two_spellings_of_one_number_are_one_message_group() {
    let (moto, queue) = fifo_moto().await;
    let hook = fixed_webhook(&moto, &queue);
    for (id, number) in [
        (11, "+44 7911 123461"),
        (12, "+44 (0)7911 123461"),
        (13, "0044-7911-123461"),
    ] {
        let event = conversation(id, number).to_string();
        assert_eq!(
            handle_webhook(&hook, bearing(TOKEN, &event))
                .await
                .status_code,
            202
        );
    }
    let mut groups = Vec::new();
    for _ in 0..3 {
        for m in moto.receive(&queue).await.unwrap() {
            groups.push(group(&m).to_owned());
            moto.sqs()
                .delete_message()
                .queue_url(&queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(groups, ["447911123461"; 3]);
}

#[tokio::test]
async fn a_failing_conversation_backs_off_and_holds_back_its_customer_only() {
    // One record at a time, so the faults meet Maria's first conversation.
    let s = stack(Duration::from_secs(2), 1).await;
    let maria = "+393331234567";
    s.send_in_group(&conversation(1, maria), "393331234567")
        .await;
    s.send_in_group(&conversation(2, maria), "393331234567")
        .await;
    s.send_in_group(&conversation(3, "+447700900123"), "447700900123")
        .await;
    // Salesforce down for every attempt of the batch's shared read (after
    // which each conversation goes its own way), then of the first
    // conversation's first call.
    s.sf.inject(Fault::Unavailable, 8);
    let (received, failed) = s.poll().await;
    assert_eq!(received, 3);
    assert_eq!(failed.len(), 2, "Maria's two conversations: {failed:?}");
    // The failed head is hidden by the backoff (at least half of 2 s), so
    // nothing of Maria's group comes back at once, though the queue's own
    // visibility timeout was not involved for the second message.
    let (received, _) = s.poll().await;
    assert_eq!(received, 0, "the whole group waits for its head");
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let mut cases = 0;
    for _ in 0..10 {
        let (received, failed) = s.poll().await;
        assert!(failed.is_empty(), "{failed:?}");
        if received == 0 && cases == 3 {
            break;
        }
        cases = s.sf.records("Case").len();
        if cases < 3 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let subjects: Vec<String> =
        s.sf.records("Case")
            .iter()
            .map(|c| c["Subject"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    let one = subjects.iter().position(|x| x.ends_with("[1]")).unwrap();
    let two = subjects.iter().position(|x| x.ends_with("[2]")).unwrap();
    assert!(one < two, "the customer's order is kept: {subjects:?}");
}

/// Salesforce accepts connections and never answers, logins included:
/// every call ends by the record's deadline, the record is backed off
/// (not left to the queue's visibility timeout, where each timeout would
/// spend a delivery) and the batch is answered before the invocation ends.
#[tokio::test]
async fn a_hanging_salesforce_backs_the_record_off_before_the_deadline() {
    let s = crate::helpers::stack()
        .fifo()
        .visibility(2)
        .retry(Duration::from_secs(60), Duration::from_secs(240))
        .start()
        .await;
    s.send_in_group(&conversation(1, "+393331234567"), "393331234567")
        .await;
    s.send_in_group(&conversation(2, "+393331234567"), "393331234567")
        .await;
    s.sf.hang_for(Duration::from_secs(120), Duration::from_secs(120));
    let messages = s.moto.receive(&s.queue).await.unwrap();
    assert_eq!(messages.len(), 2);
    let invocation = Duration::from_secs(10);
    let started = std::time::Instant::now();
    let failed =
        proof::pipeline::deliver(&s.worker, &s.moto.sqs(), &s.queue, &messages, invocation)
            .await
            .unwrap();
    let took = started.elapsed();
    assert_eq!(failed.len(), 2, "both left for later");
    assert!(took < invocation, "answered before the deadline: {took:?}");
    // Hidden by the backoff (at least 30 s), not back after the queue's own
    // 2-second visibility timeout; nothing parked, nothing written.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(s.moto.receive(&s.queue).await.unwrap().is_empty());
    assert!(s.moto.receive(&s.dlq).await.unwrap().is_empty());
    assert!(s.sf.records("Case").is_empty());
}

#[tokio::test]
async fn parking_and_redrive_keep_the_customers_group() {
    let s = stack(Duration::from_secs(2), 4).await;
    let mut poison = conversation(7, "+393331234567");
    poison["conversation"]["messages"][0]["sender"] = json!("robot");
    s.send_in_group(&poison, "393331234567").await;
    let (_, failed) = s.poll().await;
    assert!(failed.is_empty(), "parked, not retried");
    s.operator("redrive", &[])
        .await
        .succeeds()
        .says(&["Done: 1 moved back"]);
    let back = s.moto.receive(&s.queue).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(group(&back[0]), "393331234567");
    assert_eq!(back[0].body().unwrap(), poison.to_string());
}

#[tokio::test]
async fn a_revoked_webhook_token_stops_working_on_a_warm_instance() {
    let (moto, queue) = fifo_moto().await;
    let value = |token: &str| json!({"webhook_token": token}).to_string();
    moto.secret(WITIOP, &value("leaked-webhook-token-1"))
        .await
        .unwrap();
    let tokens = WebhookTokens::load(SecretStore::new(&moto.sdk), WITIOP.into())
        .await
        .unwrap()
        .with_max_age(Duration::from_millis(200));
    let hook = crate::helpers::webhook(&moto, &queue, tokens);
    let body = event_file("conversation-closed.json");
    let status = |token: &'static str| {
        let hook = &hook;
        let body = body.clone();
        async move {
            handle_webhook(hook, bearing(token, &body))
                .await
                .status_code
        }
    };
    assert_eq!(status("leaked-webhook-token-1").await, 202);
    // The runbook's emergency revocation: rotate twice, so the leaked token
    // is neither AWSCURRENT nor AWSPREVIOUS.
    moto.put_secret(WITIOP, &value("interim-webhook-token-2"))
        .await
        .unwrap();
    moto.put_secret(WITIOP, &value("fresh-webhook-token-3"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The attacker keeps the instance warm with the leaked token: refused.
    assert_eq!(status("leaked-webhook-token-1").await, 401);
    assert_eq!(status("fresh-webhook-token-3").await, 202);
}

#[tokio::test]
async fn a_body_is_measured_before_it_is_parsed() {
    let (moto, queue) = fifo_moto().await;
    let hook = fixed_webhook(&moto, &queue);
    // Six megabytes of `[0,0,…]` would parse to far more memory.
    let huge = format!("[{}0]", "0,".repeat(3_000_000));
    let answer = handle_webhook(&hook, bearing(TOKEN, &huge)).await;
    assert_eq!(answer.status_code, 413);
    let mut base64 = bearing(TOKEN, "");
    base64.is_base64_encoded = true;
    base64.body = Some("A".repeat(1_000_000));
    assert_eq!(handle_webhook(&hook, base64).await.status_code, 413);
}
