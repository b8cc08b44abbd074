//! Worker throughput of one instance: batches of 10 conversations, one batch
//! after another as one Lambda instance takes them.

use std::time::{Duration, Instant};

use witiop_salesforce::worker::handle_batch;

use crate::fixtures::{batch, conversation, stack};
use crate::progress;

/// Batches of the unthrottled run.
pub const FAST_BATCHES: u64 = 40;
/// Latency added to every Salesforce call in the throttled run.
pub const ADDED_LATENCY_MS: u64 = 50;
/// Batches of the throttled run.
const SLOW_BATCHES: u64 = 15;

/// Conversations per second of one worker instance with `latency_ms` added
/// to every Salesforce call.
pub async fn worker_rate(latency_ms: u64, batches: u64) -> anyhow::Result<f64> {
    let s = stack(false).await?;
    s.sf.set_latency(Duration::from_millis(latency_ms));
    let started = Instant::now();
    let mut id = 0;
    for _ in 0..batches {
        let bodies: Vec<String> = (0..10)
            .map(|_| {
                id += 1;
                conversation(id, &format!("+39333{:07}", 2_000_000 + id), 5, None).to_string()
            })
            .collect();
        let r = handle_batch(
            &s.worker,
            batch(&bodies),
            Instant::now() + Duration::from_secs(600),
        )
        .await;
        anyhow::ensure!(r.batch_item_failures.is_empty(), "throughput batch failed");
    }
    Ok((batches * 10) as f64 / started.elapsed().as_secs_f64())
}

/// Conversations per second with [`ADDED_LATENCY_MS`] per Salesforce call.
pub async fn throttled_rate() -> anyhow::Result<f64> {
    progress(&format!(
        "worker throughput with {ADDED_LATENCY_MS} ms per Salesforce call ({SLOW_BATCHES} batches)"
    ));
    let throttled = worker_rate(ADDED_LATENCY_MS, SLOW_BATCHES).await?;
    progress(&format!(
        "throughput at {ADDED_LATENCY_MS} ms: {throttled:.1}/s"
    ));
    Ok(throttled)
}

/// A batch of 10 is written in 2 sequential calls (one read, one write).
pub fn bound(latency_ms: u64) -> f64 {
    BATCH as f64 / (2.0 * latency_ms as f64 / 1000.0)
}

/// Conversations per batch.
const BATCH: u64 = 10;
