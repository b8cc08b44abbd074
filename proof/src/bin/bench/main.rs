//! `make bench`: measures economy, throughput, latency, cold start, memory and
//! binary size in one run, and writes `docs/benchmarks.md`.
//!
//! # Layout
//!
//! Each measurement returns typed results and reports its progress on stderr;
//! only [`render`] writes Markdown.
//!
//! - [`economy`]: Salesforce API calls per conversation.
//! - [`throughput`]: one worker instance's conversations per second.
//! - [`latency`]: the warm webhook handler.
//! - [`cold_start`]: the release binaries' cold starts, phase by phase, with
//!   the SDK's set-up timed by [`probe`]s (the bench re-run as `--probe-sdk`).
//! - [`memory`]: the functions' peak resident memory.
//! - [`sizes`]: the x86_64 and arm64 binaries.
//! - [`opt_levels`]: what each optimisation level changes, measured by the
//!   bench built at that level and re-run as `--speed`.
//! - [`goals`]: the goals and whether they are met.
//! - [`fixtures`], [`stats`]: events, stacks and percentiles they share.

mod cold_start;
mod economy;
mod fixtures;
mod goals;
mod latency;
mod memory;
mod opt_levels;
mod probe;
mod render;
mod sizes;
mod stats;
mod throughput;

use anyhow::Context;
use proof::root;

use crate::opt_levels::{speed, SPEED};
use crate::probe::{run_probe, PROBE};

pub fn progress(message: &str) {
    eprintln!("bench: {message}");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some(PROBE) => return run_probe(std::env::args().nth(2).as_deref()).await,
        Some(SPEED) => {
            let speed = speed().await?;
            println!("{}", serde_json::to_string(&speed)?);
            return Ok(());
        }
        Some(other) => anyhow::bail!("unknown argument {other}"),
        None => {}
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("calls") {
        return calls_only().await;
    }
    let configured = opt_levels::configured_opt_level();
    progress(&format!(
        "release build of webhook, worker and echo into {} (opt-level {configured})",
        proof::target_dir().display()
    ));
    proof::build_release(&["webhook", "worker", "echo"]).context("release build")?;

    let calls = economy::calls_per_conversation().await?;
    let batches = economy::calls_per_batch().await?;
    let backlog = economy::backlog().await?;
    let speed = speed().await?;
    let throttled = throughput::throttled_rate().await?;
    let whole_ms = latency::webhook_whole().await?;
    let memory = memory::peak_memory().await?;
    let sizes = sizes::measure();
    let levels = opt_levels::compare(&configured, &speed, &sizes)?;
    let goals = goals::judge(&sizes, &speed.cold);

    let mut out = render::document(&render::Report {
        date: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        machine: proof::report::machine(),
        configured,
        calls,
        batches,
        backlog,
        throttled,
        whole_ms,
        speed,
        memory,
        sizes,
        levels,
        goals,
    })?;
    let path = root().join("docs/benchmarks.md");
    // Sections other commands write are carried over as they are: the long
    // soak's, and CI's stage times (printed by `.ci/run`).
    let before = std::fs::read_to_string(&path).unwrap_or_default();
    for heading in [proof::report::SOAK_HEADING, proof::report::CI_HEADING] {
        if let Some(kept) = proof::report::section(&before, heading) {
            out = proof::report::replace_section(&out, heading, kept);
        }
    }
    std::fs::write(&path, &out)?;
    println!("{out}");
    progress(&format!("wrote {}", path.display()));
    Ok(())
}

/// `BENCH_ONLY=calls`: the API-call sections alone (minutes, not the
/// release and arm64 builds of the whole bench), written over their
/// predecessors; every other section of the page is kept as it was.
async fn calls_only() -> anyhow::Result<()> {
    use proof::report::{replace_section, section};
    use render::{BATCH_HEADING, CALLS_HEADING};
    let calls = economy::calls_per_conversation().await?;
    let batches = economy::calls_per_batch().await?;
    let backlog = economy::backlog().await?;
    let (mut per_conversation, mut per_batch) = (String::new(), String::new());
    render::calls(&mut per_conversation, &calls)?;
    render::batch_calls(&mut per_batch, &batches, &backlog)?;
    per_batch.push_str(&format!(
        "These two sections: `make bench BENCH_ONLY=calls` on {} ({}).\n",
        chrono::Utc::now().format("%Y-%m-%d"),
        proof::report::machine()
    ));
    let path = root().join("docs/benchmarks.md");
    let before = std::fs::read_to_string(&path).unwrap_or_default();
    let out = if section(&before, BATCH_HEADING).is_some() {
        let doc = replace_section(&before, BATCH_HEADING, &per_batch);
        replace_section(&doc, CALLS_HEADING, &per_conversation)
    } else {
        // The batch section goes right after the per-conversation one.
        replace_section(
            &before,
            CALLS_HEADING,
            &format!("{per_conversation}\n{per_batch}"),
        )
    };
    std::fs::write(&path, &out)?;
    println!("{per_conversation}\n{per_batch}");
    progress(&format!(
        "wrote the API-call sections of {}",
        path.display()
    ));
    Ok(())
}
