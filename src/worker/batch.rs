//! A batch: records parsed one by one, grouped by customer, each ending in a
//! [`Disposition`] that decides whether SQS sees it again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use tracing::Instrument;

use super::backoff::RetrySchedule;
use super::bulk::{self, Entry, Prewritten};
use super::conversation::{complete_prewritten, process_conversation, CaseOutcome, Job};
use super::error::RecordError;
use super::exchange::Exchange;
use super::health::BatchOutcome;
use super::settings::Reload;
use super::Worker;
use crate::event::{parse_body, InvalidEvent, ParsedBody};
use crate::salesforce::client::count_calls;
use crate::salesforce::error::Wait;
use crate::salesforce::ErrorClass;

/// Time kept back from the invocation's deadline to report results.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// What a batch needs: the queues and how many records run at once.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    pub sqs: aws_sdk_sqs::Client,
    /// Where a record that can never succeed is parked.
    pub dlq_url: String,
    /// Records of one batch processed at the same time (at least one).
    pub concurrency: usize,
    /// How long a record that failed for a transient reason stays hidden.
    pub retry: RetrySchedule,
}

/// What becomes of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Its Case is complete: delete it from the queue.
    Done,
    /// Not a close event: nothing to do, delete it.
    Ignored,
    /// Can never succeed as it is: now in the DLQ with its reason, delete it.
    Parked,
    /// Leave it in the queue for a later delivery: a wait the integration
    /// expects and rides out (Salesforce down or slow, the API allowance
    /// spent, a refused login), or held back behind such a record.
    RetryLater,
    /// Leave it in the queue for a later delivery after a failure that
    /// should not happen (see [`RecordError::is_expected_wait`]): it counts
    /// against the worker's health ([`super::health`]).
    Unexpected,
}

impl Disposition {
    pub(crate) fn leaves_the_queue(self) -> bool {
        !matches!(self, Self::RetryLater | Self::Unexpected)
    }
}

/// Set when Salesforce refuses everything for a while: the rest of the
/// batch is not tried, and waits for the same reason.
#[derive(Default)]
struct Stop {
    stopped: AtomicBool,
    for_allowance: AtomicBool,
}

impl Stop {
    fn stop(&self, wait: Wait) {
        self.for_allowance
            .fetch_or(wait == Wait::ForAllowance, Ordering::Relaxed);
        self.stopped.store(true, Ordering::Relaxed);
    }

    fn reason(&self) -> Option<Wait> {
        self.stopped.load(Ordering::Relaxed).then(|| {
            if self.for_allowance.load(Ordering::Relaxed) {
                Wait::ForAllowance
            } else {
                Wait::Backoff
            }
        })
    }
}

/// A record with its body parsed, or why it could not be.
struct Record {
    message: SqsMessage,
    parsed: Result<Parsed, InvalidEvent>,
}

enum Parsed {
    Closed(Box<Job>),
    Ignored { event_type: String },
}

/// Handles one SQS batch; the response lists exactly the records to retry.
pub async fn handle_batch(worker: &Worker, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    process_batch(worker, event, deadline).await.response
}

/// Handles one SQS batch: the records to retry, and whether the batch says
/// the worker is broken ([`BatchOutcome::into_result`]).
pub async fn process_batch(worker: &Worker, event: SqsEvent, deadline: Instant) -> BatchOutcome {
    let limit_hit = Stop::default();
    let groups = group_by_customer(event);
    // Boxed: re-reading the settings is a large future, and the batch's own
    // is moved about on its caller's stack.
    let prewritten = &Box::pin(write_together(worker, &groups, deadline, &limit_hit)).await;
    let results: Vec<Vec<(String, Disposition)>> = futures::stream::iter(groups)
        .map(|group| {
            let limit_hit = &limit_hit;
            async move {
                let mut out = Vec::with_capacity(group.len());
                let mut blocked = false;
                for record in group {
                    let id = record.message.message_id.clone().unwrap_or_default();
                    if blocked {
                        // A customer's messages are processed in order: once
                        // one is left for later, so are the ones after it
                        // (Lambda's rule for FIFO partial batch responses).
                        worker.batch.hold_back(&record.message).await;
                        out.push((id, Disposition::RetryLater));
                        continue;
                    }
                    let span = tracing::info_span!(
                        "record",
                        message_id = id.as_str(),
                        conversation_id = tracing::field::Empty
                    );
                    let done = prewritten.get(&id);
                    let disposition = process_record(worker, record, deadline, limit_hit, done)
                        .instrument(span)
                        .await;
                    blocked = !disposition.leaves_the_queue();
                    out.push((id, disposition));
                }
                out
            }
        })
        .buffer_unordered(worker.batch.concurrency)
        .collect()
        .await;

    BatchOutcome::of(results.into_iter().flatten())
}

/// Records of one customer (and so of one conversation) run one after the
/// other, in the order SQS delivered them: concurrent runs could each miss
/// the other's new Contact or Case. Records share a group when they share a
/// customer key (the number as the Contact match reads it) or a FIFO message
/// group (whose order Lambda's partial batch response must keep), so a
/// message queued under an older grouping still runs with its customer. Each
/// body is parsed on its own, so one poison message fails alone.
fn group_by_customer(event: SqsEvent) -> Vec<Vec<Record>> {
    let records: Vec<Record> = event
        .records
        .into_iter()
        .map(|message| {
            let parsed =
                parse_body(message.body.as_deref().unwrap_or("").as_bytes()).map(|p| match p {
                    ParsedBody::Closed(e) => Parsed::Closed(Box::new(Job::new(*e))),
                    ParsedBody::Ignored { event_type } => Parsed::Ignored { event_type },
                });
            Record { message, parsed }
        })
        .collect();
    let keys: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut keys = Vec::with_capacity(2);
            if let Some(group) = r.message.attributes.get("MessageGroupId") {
                keys.push(format!("group:{group}"));
            }
            if let Ok(Parsed::Closed(job)) = &r.parsed {
                keys.push(format!("customer:{}", job.key));
            }
            keys
        })
        .collect();
    // Union-find over the records: each key joins the records that carry
    // it, whatever the batch's size (ten on the template's FIFO queue).
    let mut parent: Vec<usize> = (0..records.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_with: HashMap<&str, usize> = HashMap::new();
    for (i, record_keys) in keys.iter().enumerate() {
        for key in record_keys {
            let earlier = *first_with.entry(key.as_str()).or_insert(i);
            let (a, b) = (root(&mut parent, earlier), root(&mut parent, i));
            // The earlier record's group absorbs the later one's, so that
            // groups keep the order of their first record.
            parent[a.max(b)] = a.min(b);
        }
    }
    let group_of: Vec<usize> = (0..records.len()).map(|i| root(&mut parent, i)).collect();
    let mut slot: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Vec<Record>> = Vec::new();
    for (record, group) in records.into_iter().zip(group_of) {
        let at = *slot.entry(group).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at].push(record);
    }
    groups
}

/// The batch's new Cases written together ([`super::bulk`]), within the
/// same deadline as the records.
async fn write_together(
    worker: &Worker,
    groups: &[Vec<Record>],
    deadline: Instant,
    limit_hit: &Stop,
) -> Prewritten {
    let entries: Vec<Entry> = groups
        .iter()
        .enumerate()
        .flat_map(|(group, records)| {
            records.iter().filter_map(move |r| match &r.parsed {
                Ok(Parsed::Closed(job)) => Some(Entry {
                    message_id: r.message.message_id.as_deref().unwrap_or(""),
                    group,
                    job,
                }),
                _ => None,
            })
        })
        .collect();
    // What the shared write did is found again by message id: a batch with
    // a record that has none (never one SQS delivered) takes the records'
    // own paths.
    if entries.iter().any(|e| e.message_id.is_empty()) {
        return Prewritten::new();
    }
    if entries.len() < 2 {
        return Prewritten::new();
    }
    worker.salesforce.reload_settings().await;
    let work_deadline = deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline);
    let left = work_deadline.saturating_duration_since(Instant::now());
    // Boxed: the batch's future would otherwise nest too deep to lay out.
    let run = Box::pin(crate::deadline::scope(
        work_deadline,
        bulk::write_batch(worker, &entries),
    ));
    let (written, calls) = count_calls(async {
        tokio::time::timeout(left, run)
            .await
            .unwrap_or(Err(RecordError::OutOfTime))
    })
    .await;
    let written = written.unwrap_or_else(|e| {
        // As after a record's failure: the allowance spent, the
        // credentials refused or a Salesforce too slow to answer stop the
        // batch; anything else leaves each record to its own path, where a
        // failure that should not happen is met and counted
        // (`super::health`).
        let stops = matches!(e.class(), ErrorClass::RetryLater(_)) || e.is_timeout();
        if stops && e.is_expected_wait() {
            limit_hit.stop(e.wait());
        }
        Prewritten::new()
    });
    tracing::info!(
        conversations = entries.len(),
        written_together = written.len(),
        salesforce_calls = calls,
        "batch read and written"
    );
    written
}

/// Processes one record to its disposition, with one log line and the
/// metrics of its outcome. `prewritten`: its Case, when the batch's shared
/// write created it; only its files are left to do.
async fn process_record(
    worker: &Worker,
    record: Record,
    deadline: Instant,
    limit_hit: &Stop,
    prewritten: Option<&CaseOutcome>,
) -> Disposition {
    let message = &record.message;
    let message_id = message.message_id.as_deref().unwrap_or("");
    let started = Instant::now();
    let job = match record.parsed {
        Ok(Parsed::Closed(job)) => job,
        Ok(Parsed::Ignored { event_type }) => {
            tracing::info!(
                message_id,
                event_type,
                outcome = "ignored",
                "not a close event"
            );
            return Disposition::Ignored;
        }
        Err(e) => {
            return worker
                .batch
                .park(message, None, &RecordError::InvalidEvent(e))
                .await
        }
    };
    let conversation_id = job.event.conversation.id.to_string();
    tracing::Span::current().record("conversation_id", conversation_id.as_str());
    if let Some(wait) = limit_hit.reason() {
        tracing::warn!(
            message_id,
            conversation_id,
            outcome = "deferred",
            "Salesforce refused earlier in this batch (API allowance or credentials)"
        );
        worker.batch.back_off(message, wait).await;
        return Disposition::RetryLater;
    }
    // Every call the record makes ends by then, so that a record that runs
    // out of time is still backed off, and the batch answered, before
    // Lambda's own deadline.
    let work_deadline = deadline.checked_sub(DEADLINE_MARGIN).unwrap_or(deadline);
    let run = async {
        let attempt = || async {
            let left = work_deadline.saturating_duration_since(Instant::now());
            let work = conversation_work(worker, &job, prewritten);
            match tokio::time::timeout(left, work).await {
                Ok(r) => r,
                Err(_) => Err(RecordError::OutOfTime),
            }
        };
        // The secrets are re-read on a timer, so an admin's fix reaches
        // warm workers without a redeploy.
        worker.salesforce.reload_settings().await;
        match attempt().await {
            // A refused login or a configuration failure may mean the secret
            // was fixed since it was last read.
            Err(e)
                if e.may_be_fixed_by_settings()
                    && worker.salesforce.reload_settings().await == Reload::Changed =>
            {
                attempt().await
            }
            other => other,
        }
    };
    let run = crate::deadline::scope(work_deadline, run);
    let (result, calls) = count_calls(run).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(outcome) => {
            let cost = Cost { calls, latency_ms };
            report_success(&worker.salesforce, &job, message_id, &outcome, cost);
            Disposition::Done
        }
        Err(e) => match e.class() {
            ErrorClass::Permanent => worker.batch.park(message, Some(&job.event), &e).await,
            class => {
                let wait = e.wait();
                // The allowance is spent or the credentials refused: calling
                // on for the rest of the batch would only spend what is left
                // of it, or lock the API user out. A Salesforce that let a
                // call time out is likely to let the next ones time out too.
                if matches!(class, ErrorClass::RetryLater(_)) || e.is_timeout() {
                    limit_hit.stop(wait);
                }
                let unexpected = !e.is_expected_wait();
                tracing::warn!(
                    message_id,
                    conversation_id,
                    outcome = "retry",
                    unexpected,
                    error_code = e.code(),
                    error = %e,
                    salesforce_calls = calls,
                    latency_ms,
                    "conversation left in the queue for a later attempt"
                );
                metrics::counter!("conversations_retried").increment(1);
                // Out of time or not, the record backs off like any
                // transient failure: left to the queue's visibility timeout,
                // a hanging Salesforce would spend one delivery per timeout
                // and park the conversation within hours.
                worker.batch.back_off(message, wait).await;
                if unexpected {
                    Disposition::Unexpected
                } else {
                    Disposition::RetryLater
                }
            }
        },
    }
}

/// A record's Salesforce work, built outside the batch's own future and
/// boxed: a conversation's future is large, and polling it inline would
/// put it on the stack of the batch's caller.
fn conversation_work<'a>(
    worker: &'a Worker,
    job: &'a Job,
    prewritten: Option<&'a CaseOutcome>,
) -> futures::future::BoxFuture<'a, Result<CaseOutcome, RecordError>> {
    match prewritten {
        Some(outcome) => Box::pin(complete_prewritten(
            &worker.salesforce,
            &worker.files,
            job,
            outcome,
        )),
        None => Box::pin(process_conversation(&worker.salesforce, &worker.files, job)),
    }
}

/// What a record's run cost: Salesforce calls and time.
#[derive(Debug, Clone, Copy)]
struct Cost {
    calls: u64,
    latency_ms: u64,
}

fn report_success(exchange: &Exchange, job: &Job, message_id: &str, o: &CaseOutcome, cost: Cost) {
    let Cost { calls, latency_ms } = cost;
    // The org's allowance as Salesforce last reported it (Sforce-Limit-Info).
    let usage = exchange
        .active()
        .client
        .api_usage()
        .map(|(used, max)| format!("{used}/{max}"));
    let lag_s = job.event.conversation.closed_at.map(|t| {
        (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0
    });
    tracing::info!(
        message_id,
        conversation_id = %job.event.conversation.id,
        outcome = if o.case_created { "case_created" } else { "case_updated" },
        case_id = o.case_id.as_str(),
        case_number = o.case_number.as_deref().unwrap_or(""),
        contact_created = o.contact_created,
        comments_created = o.comments_created,
        attachments_uploaded = o.attachments_uploaded,
        salesforce_calls = calls,
        api_usage = usage.as_deref().unwrap_or(""),
        latency_ms,
        lag_s,
        "conversation processed"
    );
    if o.case_created {
        metrics::counter!("cases_created").increment(1);
        if let Some(lag) = lag_s {
            metrics::histogram!("case_lag_seconds").record(lag);
        }
    }
    metrics::counter!("comments_created").increment(o.comments_created as u64);
    metrics::counter!("attachments_uploaded").increment(o.attachments_uploaded as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, group: Option<&str>, number: &str) -> SqsMessage {
        let mut body: serde_json::Value =
            serde_json::from_str(include_str!("../../events/conversation-closed.json")).unwrap();
        body["conversation"]["customer"]["number"] = serde_json::json!(number);
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.to_string());
        if let Some(group) = group {
            m.attributes.insert("MessageGroupId".into(), group.into());
        }
        m
    }

    /// Records join when they share a customer key or a message group, even
    /// through a third record, and each group keeps the delivery order.
    #[test]
    fn records_are_grouped_by_key_or_message_group() {
        let mut event = SqsEvent::default();
        event.records = vec![
            message("a", Some("old-group"), "+44 7911 123461"),
            message("b", None, "+39 333 123 4567"),
            message("c", Some("old-group"), "+49 1512 3456789"),
            message("d", None, "+49 (0)1512 3456789"),
            message("e", Some("447911123461"), "+44 (0)7911 123461"),
        ];
        let groups: Vec<Vec<String>> = group_by_customer(event)
            .into_iter()
            .map(|g| {
                g.into_iter()
                    .map(|r| r.message.message_id.unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(groups, [vec!["a", "c", "d", "e"], vec!["b"]]);
    }
}
