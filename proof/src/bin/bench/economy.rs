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
