//! Salesforce API calls per conversation: one new conversation at a time,
//! warm token, counted by the local Salesforce (a Composite is one call).

use std::time::{Duration, Instant};

use witiop_salesforce::worker::handle_batch;

use crate::fixtures::{batch, conversation, media_server, stack};
use crate::progress;

/// Conversation lengths measured.
const MESSAGES: [usize; 5] = [1, 10, 300, 1000, 5000];

/// One conversation length's calls, without and with attachments.
pub struct Calls {
    pub messages: usize,
    pub plain: u64,
    /// Every tenth message carrying one file.
    pub with_files: u64,
    /// Files written (ContentVersion records).
    pub files: usize,
}

impl Calls {
    /// One request per record: the 5 + N of a naive integration.
    pub fn naive(&self) -> usize {
        5 + self.messages
    }
}

pub async fn calls_per_conversation() -> anyhow::Result<Vec<Calls>> {
    progress("Salesforce API calls per conversation (1 to 5,000 messages, with and without files)");
    let media = media_server().await?;
    let mut rows = Vec::new();
    for n in MESSAGES {
        let plain = {
            let s = stack(false).await?;
            let failures = handle_batch(
                &s.worker,
                batch(&[conversation(1, "+393331234567", n, None).to_string()]),
                Instant::now() + Duration::from_secs(600),
            )
            .await;
            anyhow::ensure!(failures.batch_item_failures.is_empty(), "plain run failed");
            anyhow::ensure!(s.sf.records("CaseComment").len() == n, "comments");
            s.sf.counters().api_calls
        };
        let (with_files, files) = {
            let s = stack(true).await?;
            let failures = handle_batch(
                &s.worker,
                batch(&[conversation(1, "+393331234567", n, Some(&media)).to_string()]),
                Instant::now() + Duration::from_secs(600),
            )
            .await;
            anyhow::ensure!(
                failures.batch_item_failures.is_empty(),
                "attachment run failed"
            );
            (
                s.sf.counters().api_calls,
                s.sf.records("ContentVersion").len(),
            )
        };
        progress(&format!("calls: {n} messages -> {plain} / {with_files}"));
        rows.push(Calls {
            messages: n,
            plain,
            with_files,
            files,
        });
    }
    Ok(rows)
}

/// Conversations per batch measured (a FIFO trigger hands at most 10).
const BATCH_SIZES: [usize; 3] = [1, 5, 10];
/// Messages per conversation: the example event's three, and a long one.
const BATCH_LENGTHS: [usize; 2] = [3, 100];
/// The backlog drained, and how many customers it holds (some with
/// several conversations, as after an outage).
pub const BACKLOG: usize = 10_000;
const BACKLOG_CUSTOMERS: usize = 8_800;

/// One batch shape's calls, without and with an active Case assignment rule.
pub struct BatchCalls {
    pub conversations: usize,
    pub messages: usize,
    pub calls: u64,
    pub calls_with_rule: u64,
}

/// Draining a backlog in full batches with an active assignment rule.
pub struct Backlog {
    pub conversations: usize,
    pub batches: usize,
    pub calls: u64,
    pub seconds: f64,
}

/// An org like a real one: a Case assignment rule routing to a queue user,
/// a CaseComment trigger touching the Case, the standard Contact duplicate
/// rule; returns the queue user's id.
fn with_rules(sf: &local_salesforce::LocalSalesforce) -> String {
    let queue = sf.add_user(
        "support.queue@acme.example",
        "support.queue@acme.example",
        "Support",
        "Queue",
        true,
    );
    sf.set_case_assignment_rule(Some(queue.clone()));
    sf.set_case_comment_trigger(true);
    sf.set_contact_duplicate_rule(true);
    queue
}

/// `n` conversations of `messages` each, customer `i % customers`.
fn conversations(first: u64, n: usize, messages: usize, customers: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let number = format!("+39333{:07}", i % customers);
            conversation(first + i as u64, &number, messages, None).to_string()
        })
        .collect()
}

/// Every Case of the org exactly once, none owned by `queue`.
fn check_org(
    sf: &local_salesforce::LocalSalesforce,
    cases: usize,
    comments: usize,
    queue: Option<&str>,
) -> anyhow::Result<()> {
    let all = sf.records("Case");
    anyhow::ensure!(all.len() == cases, "{} Cases for {cases}", all.len());
    let written = sf.records("CaseComment").len();
    anyhow::ensure!(written == comments, "{written} comments for {comments}");
    if let Some(queue) = queue {
        anyhow::ensure!(
            all.iter().all(|c| c["OwnerId"].as_str() != Some(queue)),
            "a Case was re-owned by the assignment rule"
        );
    }
    Ok(())
}

pub async fn calls_per_batch() -> anyhow::Result<Vec<BatchCalls>> {
    progress("Salesforce API calls per batch (1, 5 and 10 new conversations, with and without an assignment rule)");
    let mut rows = Vec::new();
    for messages in BATCH_LENGTHS {
        for size in BATCH_SIZES {
            let mut calls = [0u64; 2];
            for (k, rules) in [false, true].into_iter().enumerate() {
                let s = stack(false).await?;
                let queue = rules.then(|| with_rules(&s.sf));
                let bodies = conversations(1, size, messages, size);
                let failures = handle_batch(
                    &s.worker,
                    batch(&bodies),
                    Instant::now() + Duration::from_secs(600),
                )
                .await;
                anyhow::ensure!(failures.batch_item_failures.is_empty(), "a batch failed");
                check_org(&s.sf, size, size * messages, queue.as_deref())?;
                calls[k] = s.sf.counters().api_calls;
            }
            progress(&format!(
                "calls: batch of {size} x {messages} messages -> {} / {} with a rule",
                calls[0], calls[1]
            ));
            rows.push(BatchCalls {
                conversations: size,
                messages,
                calls: calls[0],
                calls_with_rule: calls[1],
            });
        }
    }
    Ok(rows)
}

/// A backlog after an outage, drained by one worker in full batches of
/// seed-sized conversations, in an org with the rules of a real one.
pub async fn backlog() -> anyhow::Result<Backlog> {
    progress(&format!(
        "draining a backlog of {BACKLOG} conversations in batches of 10 (an assignment rule active)"
    ));
    let s = stack(false).await?;
    let queue = with_rules(&s.sf);
    let bodies = conversations(100_000, BACKLOG, 3, BACKLOG_CUSTOMERS);
    let started = Instant::now();
    let mut batches = 0;
    for chunk in bodies.chunks(10) {
        let failures = handle_batch(
            &s.worker,
            batch(chunk),
            Instant::now() + Duration::from_secs(600),
        )
        .await;
        anyhow::ensure!(failures.batch_item_failures.is_empty(), "a batch failed");
        batches += 1;
        if batches % 200 == 0 {
            progress(&format!(
                "backlog: {batches} batches, {} calls",
                s.sf.counters().api_calls
            ));
        }
    }
    check_org(&s.sf, BACKLOG, BACKLOG * 3, Some(&queue))?;
    let contacts = s.sf.records("Contact").len();
    anyhow::ensure!(
        contacts == BACKLOG_CUSTOMERS,
        "{contacts} Contacts for {BACKLOG_CUSTOMERS} customers"
    );
    Ok(Backlog {
        conversations: BACKLOG,
        batches,
        calls: s.sf.counters().api_calls,
        seconds: started.elapsed().as_secs_f64(),
    })
}
