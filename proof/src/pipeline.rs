//! The pipeline's pieces as `make local` and the integration tests assemble
//! them in process: the template's FIFO queues, the webhook, and one pass of
//! Lambda's SQS event source over the real worker handler.

use std::time::{Duration, Instant};

use anyhow::Context;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{Message, QueueAttributeName};
use witiop_salesforce::config::WebhookEnv;
use witiop_salesforce::webhook::{Webhook, WebhookTokens};
use witiop_salesforce::worker::{handle_batch, Worker};

use crate::Moto;

/// `<name>.fifo` and its dead-letter queue `<name>-dlq.fifo`, FIFO as in
/// `template.yaml` (deduplication and throughput per message group, 14-day
/// retention); the queue hides a received message for `visibility` seconds,
/// the dead-letter queue for 30.
pub async fn fifo_queues(
    moto: &Moto,
    name: &str,
    visibility: u32,
) -> anyhow::Result<(String, String)> {
    let sqs = moto.sqs();
    let create = |name: String, visibility: u32| {
        sqs.create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::DeduplicationScope, "messageGroup")
            .attributes(QueueAttributeName::FifoThroughputLimit, "perMessageGroupId")
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                visibility.to_string(),
            )
            .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
    };
    let dlq = create(format!("{name}-dlq.fifo"), 30)
        .send()
        .await?
        .queue_url
        .context("dlq")?;
    let queue = create(format!("{name}.fifo"), visibility)
        .send()
        .await?
        .queue_url
        .context("queue")?;
    Ok((queue, dlq))
}

/// The webhook function as its Lambda main builds it, queueing into
/// `queue_url` and reading its tokens from the secret `witiop_secret_id`.
pub fn webhook(
    sqs: aws_sdk_sqs::Client,
    tokens: WebhookTokens,
    queue_url: &str,
    witiop_secret_id: &str,
    max_message_bytes: usize,
) -> Webhook {
    Webhook {
        sqs,
        tokens,
        env: WebhookEnv {
            queue_url: queue_url.to_owned(),
            witiop_secret_id: witiop_secret_id.to_owned(),
            max_message_bytes,
        },
    }
}

/// What Lambda's SQS event source hands the function: the received messages
/// with their system attributes (group id, receive count), message
/// attributes and receipt handles.
pub fn lambda_sqs_event(messages: &[Message]) -> SqsEvent {
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

/// The rest of one pass of Lambda's SQS event source, once `messages` are
/// received from `queue_url`: invokes the worker with `budget` to run, then
/// deletes every message it did not report as failed. Returns the failed
/// message ids; a delete that fails leaves its message to come back, as in
/// Lambda, and is the error once every delete was tried.
pub async fn deliver(
    worker: &Worker,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    messages: &[Message],
    budget: Duration,
) -> anyhow::Result<Vec<String>> {
    let response = handle_batch(worker, lambda_sqs_event(messages), Instant::now() + budget).await;
    let failed: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    let mut outcome = Ok(());
    for m in messages {
        if failed.iter().any(|id| Some(id.as_str()) == m.message_id()) {
            continue;
        }
        let Some(handle) = m.receipt_handle() else {
            continue;
        };
        let deleted = sqs
            .delete_message()
            .queue_url(queue_url)
            .receipt_handle(handle)
            .send()
            .await;
        if let (Err(e), Ok(())) = (deleted, &outcome) {
            outcome = Err(anyhow::Error::new(e).context("deleting a processed message"));
        }
    }
    outcome.map(|()| failed)
}
