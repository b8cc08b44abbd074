//! Operator tools: look into the dead-letter queue and redrive it.
//!
//! Listing never deletes: messages are received, read, and made visible again
//! at once. Redriving uses SQS's own `StartMessageMoveTask`, which moves
//! messages back to the queue they came from with their bodies and
//! attributes; where the endpoint does not offer it (the local emulator), the
//! same move is done message by message: send to the queue, then delete from
//! the DLQ, so a crash in between duplicates a message (absorbed by the
//! worker's idempotency) rather than losing one.

use std::collections::HashMap;

use crate::queue;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};

#[derive(Debug, thiserror::Error)]
#[error("{operation}: {detail}")]
pub struct OpsError {
    pub operation: &'static str,
    /// The service's error code and message.
    pub detail: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

fn failed<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl Fn(E) -> OpsError {
    move |e| OpsError {
        operation,
        detail: DisplayErrorContext(&e).to_string(),
        source: e.into(),
    }
}

/// One parked conversation, as an operator needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub message_id: String,
    pub conversation_id: String,
    pub error_code: String,
    pub error_message: String,
    pub failed_at: String,
    pub receive_count: String,
}

impl Parked {
    fn from_message(m: &Message) -> Self {
        let attr = |name: &str| {
            m.message_attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .unwrap_or("")
                .to_owned()
        };
        let system = |name: MessageSystemAttributeName| {
            m.attributes()
                .and_then(|a| a.get(&name))
                .cloned()
                .unwrap_or_default()
        };
        let failed_at = match attr(queue::FAILED_AT) {
            s if !s.is_empty() => s,
            // Moved here by SQS after maxReceiveCount, not parked by the worker.
            _ => system(MessageSystemAttributeName::SentTimestamp),
        };
        let error_code = match attr(queue::ERROR_CODE) {
            s if !s.is_empty() => s,
            _ => "max_receive_count".to_owned(),
        };
        let error_message = match attr(queue::ERROR_MESSAGE) {
            s if !s.is_empty() => s,
            _ => "failed on every delivery: read the worker's log for this conversation id"
                .to_owned(),
        };
        Self {
            message_id: m.message_id().unwrap_or_default().to_owned(),
            conversation_id: attr(queue::CONVERSATION_ID),
            error_code,
            error_message,
            failed_at,
            receive_count: system(MessageSystemAttributeName::ApproximateReceiveCount),
        }
    }
}

/// Up to 10 messages with all their attributes, hidden for a minute while
/// they are read or moved.
async fn receive_hidden(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<Message>, OpsError> {
    Ok(sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(60)
        .wait_time_seconds(0)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(failed("ReceiveMessage"))?
        .messages
        .unwrap_or_default())
}

/// Every message in the DLQ, left in place.
pub async fn list_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
) -> Result<Vec<Parked>, OpsError> {
    let mut seen: HashMap<String, Parked> = HashMap::new();
    let mut handles = Vec::new();
    let mut empty_rounds = 0;
    while empty_rounds < 2 {
        let messages = receive_hidden(sqs, dlq_url).await?;
        if messages.is_empty() {
            empty_rounds += 1;
            continue;
        }
        for m in &messages {
            if let Some(h) = m.receipt_handle() {
                handles.push(h.to_owned());
            }
            let p = Parked::from_message(m);
            seen.entry(p.message_id.clone()).or_insert(p);
        }
    }
    for chunk in handles.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, h)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(h)
                    .visibility_timeout(0)
                    .build()
                    .expect("id and handle are set")
            })
            .collect();
        sqs.change_message_visibility_batch()
            .queue_url(dlq_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(failed("ChangeMessageVisibilityBatch"))?;
    }
    let mut list: Vec<Parked> = seen.into_values().collect();
    list.sort_by(|a, b| {
        a.failed_at
            .cmp(&b.failed_at)
            .then(a.message_id.cmp(&b.message_id))
    });
    Ok(list)
}

/// How a redrive was carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    /// SQS moves the messages; the handle identifies the task.
    MoveTask { task_handle: String },
    /// Moved one by one; the count of messages moved.
    Copied { moved: usize },
}

/// Moves everything in the DLQ back to the source queue.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
) -> Result<Redrive, OpsError> {
    let arn = |url: String| async move {
        sqs.get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(failed("GetQueueAttributes"))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| OpsError {
                operation: "GetQueueAttributes",
                detail: "no QueueArn".into(),
                source: "the queue has no QueueArn attribute".into(),
            })
    };
    let dlq_arn = arn(dlq_url.to_owned()).await?;
    let queue_arn = arn(queue_url.to_owned()).await?;
    match sqs
        .start_message_move_task()
        .source_arn(&dlq_arn)
        .destination_arn(&queue_arn)
        .send()
        .await
    {
        Ok(out) => Ok(Redrive::MoveTask {
            task_handle: out.task_handle().unwrap_or_default().to_owned(),
        }),
        // A caller who may not move messages may not copy them either.
        Err(e) if e.code().is_some_and(|c| c.starts_with("AccessDenied")) => {
            Err(failed("StartMessageMoveTask")(e))
        }
        Err(e) => {
            eprintln!(
                "StartMessageMoveTask is not available here ({}); moving the messages one by one",
                e.code().unwrap_or("no error code")
            );
            copy_back(sqs, dlq_url, queue_url)
                .await
                .map(|moved| Redrive::Copied { moved })
        }
    }
}

async fn copy_back(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
) -> Result<usize, OpsError> {
    let mut moved = 0;
    loop {
        let messages = receive_hidden(sqs, dlq_url).await?;
        if messages.is_empty() {
            return Ok(moved);
        }
        for m in messages {
            let mut send = sqs
                .send_message()
                .queue_url(queue_url)
                .message_body(m.body().unwrap_or_default())
                .set_message_attributes(m.message_attributes.clone());
            if queue_url.ends_with(".fifo") {
                // The customer's group keeps its order; the parked message's
                // own id deduplicates a move repeated after a crash.
                let group = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                    .cloned()
                    .unwrap_or_else(|| "redriven".to_owned());
                send = send
                    .message_group_id(group)
                    .message_deduplication_id(m.message_id().unwrap_or_default());
            }
            send.send().await.map_err(failed("SendMessage"))?;
            if let Some(h) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(dlq_url)
                    .receipt_handle(h)
                    .send()
                    .await
                    .map_err(failed("DeleteMessage"))?;
            }
            moved += 1;
        }
    }
}
