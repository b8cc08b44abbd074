//! The worker's health: the expected waits (Salesforce down, a refused
//! login) leave their records in the queue without failing the invocation,
//! while an unexpected failure (the token secret gone) fails it, so that
//! Lambda's error metric, and the alarm on it, count only what is broken.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::Message;
use local_salesforce::Fault;
use serde_json::json;
use witiop_salesforce::worker::{process_batch, BatchOutcome};

use crate::helpers::{sample_event, Stack, TOKENS};

/// Two conversations of two customers, as Lambda hands them over.
async fn two_conversations(s: &Stack) -> BatchOutcome {
    let messages: Vec<Message> = ["+39 333 123 4567", "+44 7911 123461"]
        .iter()
        .enumerate()
        .map(|(i, number)| {
            let mut body = sample_event();
            body["conversation"]["id"] = json!(9000 + i);
            body["conversation"]["customer"]["number"] = json!(number);
            Message::builder()
                .message_id(format!("msg-{i}"))
                .body(body.to_string())
                .build()
        })
        .collect();
    let event = proof::pipeline::lambda_sqs_event(&messages);
    process_batch(&s.worker, event, Instant::now() + Duration::from_secs(60)).await
}

#[track_caller]
fn waits_without_failing(outcome: BatchOutcome) {
    assert_eq!(outcome.unexpected, 0, "{outcome:?}");
    let response = outcome
        .into_result()
        .expect("an expected wait fails no invocation");
    assert_eq!(
        response.batch_item_failures.len(),
        2,
        "both conversations wait in the queue"
    );
}

#[tokio::test]
async fn a_salesforce_outage_fails_no_invocation() {
    let s = crate::helpers::stack().start().await;
    // Every attempt of every call of both conversations answers 503.
    s.sf.inject(Fault::Unavailable, 100);
    waits_without_failing(two_conversations(&s).await);
    assert!(s.sf.records("Case").is_empty());
}

#[tokio::test]
async fn a_refused_login_fails_no_invocation() {
    let s = crate::helpers::stack().start().await;
    s.sf.set_password(local_salesforce::API_USERNAME, "changed-password");
    waits_without_failing(two_conversations(&s).await);
    assert!(s.sf.counters().failed_logins >= 1, "the login was refused");
}

#[tokio::test]
async fn a_token_secret_that_cannot_be_read_fails_the_invocation() {
    let s = crate::helpers::stack().start().await;
    s.moto
        .secrets()
        .delete_secret()
        .secret_id(TOKENS)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let outcome = two_conversations(&s).await;
    assert!(outcome.unexpected >= 1, "{outcome:?}");
    let failed = outcome
        .into_result()
        .expect_err("a broken worker fails the invocation");
    assert_eq!(failed.records, 2);
}
