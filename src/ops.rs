//! Operator tools: look into the dead-letter queue and redrive it (the
//! `ops` binary; `ops/dlq` and `ops/redrive` do the same with the AWS CLI).
//!
//! Listing never deletes: messages are received, read, and made visible again
//! at once, and what was seen is compared with the counts SQS reports, since
//! a receive can miss messages (a short poll samples, a FIFO group hides the
//! messages behind a hidden one). Redriving uses SQS's own
//! `StartMessageMoveTask`, which moves messages back to the queue they came
//! from with their bodies and attributes. Only where that operation is truly
//! unavailable (the service says it is unsupported or unknown, or a local
//! emulator answers a bare "not implemented" 500, as moto does) is the same
//! move done message by message: send to the queue in the same message group
//! with the parked message's id as deduplication id, then delete from the
//! DLQ, so a crash in between is deduplicated by SQS or absorbed by the
//! worker's idempotency rather than losing a message. A refusal (access
//! denied, throttling) is an error: nothing is moved.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::queue;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
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

/// How long a listing hides each message, and when it stops so that it never
/// meets its own first messages again.
const LIST_VISIBILITY: i32 = 30;
const LIST_BUDGET: Duration = Duration::from_secs(25);

/// Up to `max` messages with all their attributes, hidden for `visibility`
/// seconds, waiting up to `wait` for the first.
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    max: i32,
    visibility: i32,
    wait: Duration,
) -> Result<Vec<Message>, OpsError> {
    Ok(sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max.clamp(1, 10))
        .visibility_timeout(visibility)
        .wait_time_seconds(wait.as_secs().min(20) as i32)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(failed("ReceiveMessage"))?
        .messages
        .unwrap_or_default())
}

/// A queue's ARN and its approximate counts (waiting, in flight).
async fn queue_state(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<(String, u64, u64), OpsError> {
    let mut a = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(failed("GetQueueAttributes"))?
        .attributes
        .unwrap_or_default();
    let mut count = |k| a.remove(&k).and_then(|v| v.parse().ok()).unwrap_or(0);
    let waiting = count(QueueAttributeName::ApproximateNumberOfMessages);
    let in_flight = count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
    let arn = a
        .remove(&QueueAttributeName::QueueArn)
        .ok_or_else(|| OpsError {
            operation: "GetQueueAttributes",
            detail: "no QueueArn".into(),
            source: "the queue has no QueueArn attribute".into(),
        })?;
    Ok((arn, waiting, in_flight))
}

/// Makes received messages visible again at once.
async fn make_visible(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    handles: &[String],
) -> Result<(), OpsError> {
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
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(failed("ChangeMessageVisibilityBatch"))?;
    }
    Ok(())
}

/// What a listing saw, against what SQS reported when it started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Survey {
    /// Oldest failure first.
    pub parked: Vec<Parked>,
    /// `ApproximateNumberOfMessages` and `…NotVisible` before the listing.
    pub waiting: u64,
    pub in_flight: u64,
    /// Why the listing stopped before the queue ran dry, if it did.
    pub stopped: Option<String>,
}

impl Survey {
    /// Whether every message SQS reported was seen.
    pub fn complete(&self) -> bool {
        self.stopped.is_none() && self.parked.len() as u64 >= self.waiting + self.in_flight
    }
}

/// Every message in the DLQ, left in place (short polls: for tests and
/// programs; an operator's listing long-polls with [`survey_dead_letters`]).
pub async fn list_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
) -> Result<Vec<Parked>, OpsError> {
    Ok(survey_dead_letters(sqs, dlq_url, Duration::ZERO)
        .await?
        .parked)
}

/// Lists the DLQ, long-polling up to `long_poll` while fewer messages were
/// seen than SQS reported (and once at the start), then makes every message
/// read visible again.
pub async fn survey_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    long_poll: Duration,
) -> Result<Survey, OpsError> {
    let (_, waiting, in_flight) = queue_state(sqs, dlq_url).await?;
    let reported = (waiting + in_flight) as usize;
    let mut seen: HashMap<String, Parked> = HashMap::new();
    let mut handles = Vec::new();
    let mut first: Option<Instant> = None;
    let mut empty_rounds = 0;
    let mut stopped = None;
    loop {
        let wait = if first.is_none() || seen.len() < reported {
            long_poll
        } else {
            long_poll.min(Duration::from_secs(1))
        };
        let messages = receive(sqs, dlq_url, 10, LIST_VISIBILITY, wait).await?;
        if messages.is_empty() {
            empty_rounds += 1;
            if seen.len() >= reported || !wait.is_zero() || empty_rounds >= 2 {
                break;
            }
            continue;
        }
        let started = *first.get_or_insert_with(Instant::now);
        let before = seen.len();
        for m in &messages {
            handles.extend(m.receipt_handle().map(str::to_owned));
            let p = Parked::from_message(m);
            seen.entry(p.message_id.clone()).or_insert(p);
        }
        if seen.len() == before {
            break; // the first messages read are visible again
        }
        if started.elapsed() >= LIST_BUDGET {
            stopped = Some("it took longer than the messages stay hidden".to_owned());
            break;
        }
    }
    make_visible(sqs, dlq_url, &handles).await?;
    let mut parked: Vec<Parked> = seen.into_values().collect();
    parked.sort_by(|a, b| {
        a.failed_at
            .cmp(&b.failed_at)
            .then(a.message_id.cmp(&b.message_id))
    });
    Ok(Survey {
        parked,
        waiting,
        in_flight,
        stopped,
    })
}

/// How a redrive was carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    /// SQS moves the messages; the handle identifies the task, whose progress
    /// [`move_task_progress`] reads with the DLQ's ARN.
    MoveTask {
        task_handle: String,
        source_arn: String,
    },
    /// Moved one by one; the count of messages moved.
    Copied { moved: usize },
}

/// Error codes meaning "this endpoint does not offer StartMessageMoveTask"
/// (the same list as `ops/opsjson.py`).
const UNSUPPORTED: &[&str] = &[
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "InvalidAction",
    "UnknownOperation",
    "UnknownOperationException",
    "NotImplemented",
];

/// Whether a failed StartMessageMoveTask means the operation is unavailable
/// here: an "unsupported" code, or a bare 500/501 with no AWS error code at
/// all (moto answers an action it does not implement that way). Access
/// denied, throttling and every other service error are not.
fn move_task_unavailable<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_sqs::config::http::HttpResponse>,
) -> bool {
    match e.code() {
        Some(code) => UNSUPPORTED.contains(&code),
        None => {
            matches!(e, SdkError::ServiceError(_))
                && e.raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 500 | 501))
        }
    }
}

/// Moves everything in the DLQ back to the source queue.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
) -> Result<Redrive, OpsError> {
    redrive_reporting(sqs, dlq_url, queue_url, &mut |_| {}).await
}

/// [`redrive`], telling `progress` what it does as it goes.
pub async fn redrive_reporting(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<Redrive, OpsError> {
    let (dlq_arn, waiting, in_flight) = queue_state(sqs, dlq_url).await?;
    let (queue_arn, _, _) = queue_state(sqs, queue_url).await?;
    progress(format!(
        "the dead-letter queue reports {waiting} waiting and {in_flight} in flight; \
         starting a message move task {dlq_arn} -> {queue_arn}"
    ));
    match sqs
        .start_message_move_task()
        .source_arn(&dlq_arn)
        .destination_arn(&queue_arn)
        .send()
        .await
    {
        Ok(out) => Ok(Redrive::MoveTask {
            task_handle: out.task_handle().unwrap_or_default().to_owned(),
            source_arn: dlq_arn,
        }),
        Err(e) if move_task_unavailable(&e) => {
            progress(format!(
                "StartMessageMoveTask is not available here ({}): moving the messages one by one",
                e.code().unwrap_or("HTTP 500 without an error code")
            ));
            copy_back(sqs, dlq_url, queue_url, waiting + in_flight, progress)
                .await
                .map(|moved| Redrive::Copied { moved })
        }
        Err(e) => Err(failed("StartMessageMoveTask")(e)),
    }
}

/// The state of a message move task, as `ListMessageMoveTasks` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveProgress {
    /// RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED.
    pub status: String,
    pub moved: i64,
    pub to_move: Option<i64>,
    pub failure: Option<String>,
}

impl MoveProgress {
    pub fn finished(&self) -> bool {
        !matches!(self.status.as_str(), "RUNNING" | "CANCELLING")
    }
}

/// The progress of the task `task_handle` (or, if it is no longer listed by
/// handle, the newest task) moving messages out of `source_arn`.
pub async fn move_task_progress(
    sqs: &aws_sdk_sqs::Client,
    source_arn: &str,
    task_handle: &str,
) -> Result<Option<MoveProgress>, OpsError> {
    let tasks = sqs
        .list_message_move_tasks()
        .source_arn(source_arn)
        .max_results(10)
        .send()
        .await
        .map_err(failed("ListMessageMoveTasks"))?
        .results
        .unwrap_or_default();
    let task = tasks
        .iter()
        .find(|t| t.task_handle() == Some(task_handle))
        .or(tasks.first());
    Ok(task.map(|t| MoveProgress {
        status: t.status().unwrap_or("UNKNOWN").to_owned(),
        moved: t.approximate_number_of_messages_moved(),
        to_move: t.approximate_number_of_messages_to_move(),
        failure: t.failure_reason().map(str::to_owned),
    }))
}

/// Moves the messages parked before the move started, one by one. One
/// parked again meanwhile (its cause not fixed) carries a later SentTimestamp
/// and is left where it is, so a run always ends (with the laptop's clock
/// against SQS's: a skew of seconds only widens or narrows that window).
async fn copy_back(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
    about: u64,
    progress: &mut (dyn FnMut(String) + Send),
) -> Result<usize, OpsError> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let sent_after_start = |m: &Message| {
        m.attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .and_then(|t| t.parse::<u128>().ok())
            .is_some_and(|t| t > started)
    };
    let mut moved = 0;
    let mut skipped = Vec::new();
    loop {
        let messages = receive(sqs, dlq_url, 10, 60, Duration::from_secs(1)).await?;
        if messages.is_empty() {
            break;
        }
        for m in messages {
            if sent_after_start(&m) {
                skipped.extend(m.receipt_handle().map(str::to_owned));
                continue;
            }
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
            progress(format!(
                "moved conversation {} (message {}): {moved} of about {about}",
                Parked::from_message(&m).conversation_id,
                m.message_id().unwrap_or_default()
            ));
        }
    }
    if !skipped.is_empty() {
        progress(format!(
            "{} message(s) parked again since the redrive started were left in the dead-letter queue",
            skipped.len()
        ));
        make_visible(sqs, dlq_url, &skipped).await?;
    }
    Ok(moved)
}
