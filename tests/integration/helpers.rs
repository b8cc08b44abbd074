//! Shared by every test module: a real `moto` server per test, reached over
//! HTTP, the local Salesforce's secret and client, and Lambda's SQS poller.

use std::path::PathBuf;
use std::time::Duration;

#[allow(unused_imports)]
pub use proof::{free_port, Moto};

/// A moto server on a free port for one test.
pub async fn moto() -> Moto {
    Moto::start()
        .await
        .expect("moto_server must be installed (make test creates .venv with it)")
}

/// Reads a file of `events/`.
pub fn event_file(name: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("events")
            .join(name),
    )
    .unwrap()
}

/// The Salesforce secret for a local Salesforce at `url`, with `extra` keys merged in.
pub fn salesforce_secret(url: &str, extra: serde_json::Value) -> serde_json::Value {
    local_salesforce::secret_for(url, extra)
}

/// The Case policy of a Salesforce secret.
pub fn case_policy(secret: &serde_json::Value) -> witiop_salesforce::config::CasePolicy {
    witiop_salesforce::config::SalesforceSettings::parse("salesforce", &secret.to_string())
        .expect("valid settings")
        .policy
}

/// A client of the local Salesforce whose token cache is `token_secret` in moto.
pub fn salesforce_client(
    moto: &Moto,
    secret: &serde_json::Value,
    token_secret: &str,
) -> witiop_salesforce::salesforce::SalesforceClient {
    let settings =
        witiop_salesforce::config::SalesforceSettings::parse("salesforce", &secret.to_string())
            .expect("valid settings");
    witiop_salesforce::salesforce::SalesforceClient::new(
        witiop_salesforce::salesforce::client::http_client(),
        std::sync::Arc::new(settings.connection),
        witiop_salesforce::aws::SecretStore::new(&moto.sdk),
        token_secret.to_owned(),
    )
    .with_retry(witiop_salesforce::salesforce::RetryPolicy {
        attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    })
}

/// What Lambda's SQS poller hands the function: the received messages with
/// their system attributes (group id, receive count), message attributes
/// and receipt handles.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> aws_lambda_events::sqs::SqsEvent {
    use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
    let mut event = SqsEvent::default();
    for m in messages {
        let mut r = SqsMessage::default();
        r.message_id = m.message_id.clone();
        r.receipt_handle = m.receipt_handle.clone();
        r.body = m.body.clone();
        r.attributes = m
            .attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        r.message_attributes = m
            .message_attributes()
            .map(|a| {
                a.iter()
                    .map(|(k, v)| {
                        let mut attr = SqsMessageAttribute::default();
                        attr.string_value = v.string_value.clone();
                        attr.data_type = Some(v.data_type.clone());
                        (k.clone(), attr)
                    })
                    .collect()
            })
            .unwrap_or_default();
        event.records.push(r);
    }
    event
}

/// One pass of Lambda's SQS poller: receive what is visible, invoke the
/// worker, delete what it did not report as failed. Returns the number
/// received and the failed message ids.
pub async fn poll(
    worker: &witiop_salesforce::worker::Worker,
    moto: &Moto,
    queue: &str,
) -> (usize, Vec<String>) {
    let messages = moto.receive(queue).await.unwrap();
    let response = witiop_salesforce::worker::handle_batch(
        worker,
        sqs_event(&messages),
        std::time::Instant::now() + Duration::from_secs(60),
    )
    .await;
    let failed: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    let sqs = moto.sqs();
    for m in &messages {
        if !failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    (messages.len(), failed)
}
