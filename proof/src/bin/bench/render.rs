//! The one place that writes Markdown: every measurement's results into the
//! sections and tables of `docs/benchmarks.md`, whose titles the README and
//! the docs link to.

use std::fmt::{Result, Write as _};

use crate::cold_start::{ColdStart, COLD_RUNS};
use crate::economy::{Backlog, BatchCalls, Calls};
use crate::fixtures::CONCURRENCY;
use crate::goals::{under_size_goal, Goals, COLD_GOAL, SIZE_GOAL_TEXT};
use crate::latency::Spread;
use crate::memory::Memory;
use crate::opt_levels::{Level, Speed};
use crate::sizes::Sizes;
use crate::throughput::{bound, ADDED_LATENCY_MS};

/// Everything one full run measured, one field per section.
pub struct Report {
    /// The day of the run, and the machine's CPU, cores and memory.
    pub date: String,
    pub machine: String,
    /// The release profile's `opt-level`.
    pub configured: String,
    pub calls: Vec<Calls>,
    pub batches: Vec<BatchCalls>,
    pub backlog: Backlog,
    /// Worker conversations/s with [`ADDED_LATENCY_MS`] per Salesforce call.
    pub throttled: f64,
    /// The whole webhook handler, ms.
    pub whole_ms: Spread,
    pub speed: Speed,
    pub memory: Memory,
    pub sizes: Sizes,
    pub levels: Vec<Level>,
    pub goals: Goals,
}

/// The whole page, less the long soak's section (carried over by the caller).
pub fn document(r: &Report) -> std::result::Result<String, std::fmt::Error> {
    let mut out = String::new();
    writeln!(out, "# Benchmarks\n")?;
    writeln!(out, "Written by `make bench` on {} ({}). Everything runs on loopback: moto for SQS and Secrets Manager, the local Salesforce for the REST API.\n", r.date, r.machine)?;
    goals(&mut out, &r.goals, &r.speed.cold, &r.configured)?;
    calls(&mut out, &r.calls)?;
    batch_calls(&mut out, &r.batches, &r.backlog)?;
    throughput(&mut out, r.speed.worker_rate, r.throttled)?;
    latency(&mut out, &r.speed.own_us, &r.whole_ms)?;
    cold_start(&mut out, &r.speed.cold)?;
    memory(&mut out, &r.memory)?;
    sizes(&mut out, &r.sizes, &r.configured)?;
    if r.levels.len() >= 2 {
        levels(&mut out, &r.levels, &r.configured)?;
    }
    Ok(out)
}

fn goals(out: &mut String, g: &Goals, cold: &ColdStart, configured: &str) -> Result {
    let yes_no = |b: bool| if b { "**met**" } else { "**not met**" };
    table(out, "Goals", "", &["goal", "measured", ""], "lll")?;
    match g.arm64 {
        Some((h, k)) => writeln!(
            out,
            "| each arm64 binary under {SIZE_GOAL_TEXT} | webhook {}, worker {} (`opt-level = {}`) | {} |",
            mb(h),
            mb(k),
            level_name(configured),
            yes_no(g.sizes_met)
        )?,
        None => writeln!(
            out,
            "| each arm64 binary under {SIZE_GOAL_TEXT} | arm64 binaries not built (`make bench` builds them) | not measured |"
        )?,
    }
    writeln!(
        out,
        "| webhook cold start less the secret round trip within {COLD_GOAL:.0}× the bare echo function's | {:.2} ms = {:.2}× echo's {:.2} ms (x86_64) | {} |\n",
        cold.webhook_init_less_secret,
        g.cold_ratio,
        cold.echo_init,
        yes_no(g.cold_met)
    )?;
    writeln!(out, "Where the webhook's cold start goes is under [Cold start](#cold-start); sizes and speed at each optimisation level under [Optimisation levels](#optimisation-levels).")?;
    writeln!(out, "The largest step was the SDK's trust store: Amazon's five roots take {:.2} ms to set up, the platform's whole store {:.2} ms.", cold.tls_setup, cold.platform_tls)?;
    writeln!(out)
}

/// The heading of the per-conversation economy's section.
pub const CALLS_HEADING: &str = "## Salesforce API calls per conversation";

pub fn calls(out: &mut String, rows: &[Calls]) -> Result {
    table(out, &CALLS_HEADING[3..], "A new conversation, warm token, against the local Salesforce's call counter (a Composite counts as one call, as in Salesforce). \"Naive\" is the 5 + N calls of one request per record. With attachments, every tenth message carries one file.", &["messages", "calls", "with attachments (files)", "naive"], "rrrr")?;
    for c in rows {
        let (n, plain, with_files, files) = (c.messages, c.plain, c.with_files, c.files);
        writeln!(
            out,
            "| {n} | {plain} | {with_files} ({files}) | {} |",
            c.naive()
        )?;
    }
    writeln!(out)
}

/// The heading of the batch economy's section.
pub const BATCH_HEADING: &str = "## Salesforce API calls per batch";
/// The goals of issue "Two API calls per batch": a full batch of ten
/// seed-sized conversations, without and with an assignment rule, and the
/// calls to drain a 10,000-conversation backlog.
const BATCH_GOAL: u64 = 2;
const BATCH_GOAL_WITH_RULE: u64 = 5;
const BACKLOG_GOAL: u64 = 2_500;

pub fn batch_calls(out: &mut String, rows: &[BatchCalls], backlog: &Backlog) -> Result {
    table(out, &BATCH_HEADING[3..], "New conversations of distinct customers in one SQS batch, warm token, against the local Salesforce's call counter. \"With a rule\": an active Case assignment rule routing to a queue, a CaseComment trigger that touches its Case, and the standard Contact duplicate rule; no Case was re-owned. The batch is read in one Composite and its new Cases written in one atomic Composite (`src/worker/bulk.rs`); a lone conversation takes its own path, at the same two calls.", &["conversations", "messages each", "calls", "with a rule", "per conversation"], "rrrrr")?;
    for r in rows {
        writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} |",
            r.conversations,
            r.messages,
            r.calls,
            r.calls_with_rule,
            r.calls_with_rule as f64 / r.conversations as f64
        )?;
    }
    writeln!(out)?;
    let full = rows
        .iter()
        .find(|r| r.conversations == 10 && r.messages == 3);
    let verdict = |met: bool| if met { "**met**" } else { "**not met**" };
    if let Some(full) = full {
        writeln!(
            out,
            "- A full batch of 10 seed-sized conversations: {} calls without a rule (goal ≤ {BATCH_GOAL}) {}, {} with one (goal ≤ {BATCH_GOAL_WITH_RULE}) {}.",
            full.calls,
            verdict(full.calls <= BATCH_GOAL),
            full.calls_with_rule,
            verdict(full.calls_with_rule <= BATCH_GOAL_WITH_RULE)
        )?;
    }
    writeln!(
        out,
        "- A backlog of {} conversations (8,800 customers, an assignment rule active) drained in {} batches with {} calls ({:.2} per conversation, goal ≤ {BACKLOG_GOAL} calls) {}, every Case, Contact and comment exactly once, in {:.0} s.",
        backlog.conversations,
        backlog.batches,
        backlog.calls,
        backlog.calls as f64 / backlog.conversations as f64,
        verdict(backlog.calls <= BACKLOG_GOAL),
        backlog.seconds
    )?;
    writeln!(out)
}

fn throughput(out: &mut String, unthrottled: f64, throttled: f64) -> Result {
    table(out, "Worker throughput (one instance)", &format!("Batches of 10 conversations (5 messages each, distinct customers), processed one batch after another as one Lambda instance does, `RECORD_CONCURRENCY` = {CONCURRENCY}. A batch of 10 new conversations is one read and one write, 2 sequential calls, so with latency L per call the bound is 10 / (2 × L). The local Salesforce runs in the same process, so the unthrottled figure includes its work too."), &["added latency per call", "conversations/s", "bound", "share of bound"], "rrrr")?;
    writeln!(out, "| 0 ms | {unthrottled:.0} | n/a | n/a |")?;
    let bound = bound(ADDED_LATENCY_MS);
    writeln!(
        out,
        "| {ADDED_LATENCY_MS} ms | {throttled:.1} | {bound:.0} | {:.0}% |\n",
        100.0 * throttled / bound
    )
}

fn latency(out: &mut String, own_us: &Spread, whole_ms: &Spread) -> Result {
    table(
        out,
        "Webhook latency (warm)",
        "",
        &["measure", "p50", "p99"],
        "lrr",
    )?;
    writeln!(out, "| handler's own work: token check, validation, size (sample event, 20,000 runs) | {:.1} µs | {:.1} µs |", own_us.p50, own_us.p99)?;
    writeln!(out, "| whole handler including SendMessage to the local emulator (300 runs; the emulator's round trip dominates) | {:.2} ms | {:.2} ms |\n", whole_ms.p50, whole_ms.p99)
}

fn cold_start(out: &mut String, cold: &ColdStart) -> Result {
    table(out, "Cold start", &format!("Release binaries (x86_64 here) run behind a local Lambda Runtime API; a cold start is Lambda's init duration: process spawned to its first request for work (`/next`). Each of {COLD_RUNS} rounds runs every measure once, so that all see the machine alike (1-minute load average when they began: {}); the figures are medians. The webhook's secret is read from moto through a relay that notes when the requests arrive and the answers leave. Nothing in the webhook was changed for this: each row is the release binary seen from outside, except the SDK configuration and TLS set-up, timed around the same library calls in a fresh process of the bench.", cold.load_average), &["webhook phase", "ms", "how it is measured"], "lrl")?;
    writeln!(out, "| process start: exec, Tokio runtime, logging and metrics set-up | {:.2} | the webhook started without its settings: spawn to exit |", cold.process_start)?;
    writeln!(out, "| SDK configuration load (`load_sdk_config`): region, credentials from the environment, profile settings | {:.2} | timed around the call in a fresh process with the webhook's environment, before the row below |", cold.sdk_config)?;
    writeln!(out, "| TLS/HTTP client set-up: Amazon Trust Services' five roots, rustls configuration, HTTPS connector | {:.2} | the first SDK client built in a fresh process (the SDK does this once per process, when its first client is built: in the webhook, the secret store's) |", cold.tls_setup)?;
    writeln!(out, "| first request: the rest of the secret store client, credentials, endpoint, signing, connect | {:.2} | spawn to the first request byte at the relay ({:.2} ms) less the three rows above |", cold.first_request_rest(), cold.to_first_request)?;
    writeln!(out, "| secret read: GetSecretValue for AWSCURRENT and AWSPREVIOUS, concurrent, answered by moto | {:.2} | at the relay: first request byte in to last answer byte out |", cold.secret_round_trip)?;
    writeln!(out, "| after the secret: token parsing, SQS client, first `/next` | {:.2} | last answer byte out to the Runtime API's first `/next` |", cold.after_secret)?;
    writeln!(
        out,
        "| **webhook cold start** | **{:.2}** | spawn to first `/next` |",
        cold.webhook_init
    )?;
    writeln!(
        out,
        "| webhook cold start less the secret round trip | {:.2} | per run, then the median |",
        cold.webhook_init_less_secret
    )?;
    writeln!(
        out,
        "| bare `lambda_runtime` echo function, cold start | {:.2} | spawn to first `/next` |\n",
        cold.echo_init
    )?;
    writeln!(out, "The phases are medians of separate measurements, so they add up to the whole only roughly. Spawn to first answer, which adds the first invocation (for the webhook, a SendMessage to moto): echo {:.2} ms, webhook {:.2} ms. On loopback the secret round trip is moto's time; in AWS it is Secrets Manager's.\n", cold.echo_answer, cold.webhook_answer)?;
    write!(out, "In Lambda, in the commercial regions and GovCloud, the SDK trusts only the five roots of Amazon Trust Services, which AWS endpoints chain to (`src/aws/trust.rs`). With its default trust, the platform's certificate store, the same set-up takes {:.2} ms here, reading every place OpenSSL would look (a bundle and `/etc/ssl/certs`, {} entries; on `provided.al2023` the bundle and a file per root)", cold.platform_tls, cold.store_entries)?;
    match (&cold.bundle, cold.bundle_tls) {
        (Some(path), Some(t)) => writeln!(out, ", or {t:.2} ms reading one bundle (`SSL_CERT_FILE={path}`, as the template sets the runtime's for the Salesforce client).\n"),
        _ => writeln!(out, ".\n"),
    }
}

fn memory(out: &mut String, m: &Memory) -> Result {
    table(out, "Memory", "", &["measure", "value"], "lr")?;
    writeln!(
        out,
        "| webhook peak resident memory, 1,000-message event | {:.1} MB |",
        m.webhook_kb as f64 / 1024.0
    )?;
    writeln!(
        out,
        "| worker peak resident memory, batch with a 1,000-message conversation | {:.1} MB |\n",
        m.worker_kb as f64 / 1024.0
    )
}

fn sizes(out: &mut String, s: &Sizes, configured: &str) -> Result {
    table(
        out,
        "Binary sizes",
        &format!(
            "Release profile: `opt-level = {}`, LTO, one codegen unit, stripped. MB = 10^6 bytes.",
            level_name(configured)
        ),
        &["binary", "x86_64", "arm64 (cargo lambda)"],
        "lrr",
    )?;
    for (name, b) in [("webhook", &s.webhook), ("worker", &s.worker)] {
        let (x86, arm) = (or_not_built(b.x86_64), or_not_built(b.arm64));
        writeln!(out, "| {name} | {x86} | {arm} |")?;
    }
    writeln!(out)
}

fn levels(out: &mut String, levels: &[Level], configured: &str) -> Result {
    table(out, "Optimisation levels", "The same sources built at each `opt-level` (everything else as in the release profile) and measured by the bench built alongside: the arm64 sizes, the webhook's own work, the worker's unthrottled throughput and the cold starts as above. The bench and the local Salesforce are built at the same level, so the throughput column moves with both. Levels are measured one after another: from run to run the cold-start columns move by a few tenths of a millisecond.", &["opt-level", "webhook arm64", "worker arm64", "webhook own work p50", "worker conversations/s", "webhook cold start", "less secret round trip", "echo cold start"], "lrrrrrrr")?;
    for l in levels {
        let chosen = if l.level == configured {
            " (release profile)"
        } else {
            ""
        };
        let s = &l.speed;
        writeln!(
            out,
            "| {}{chosen} | {} | {} | {:.1} µs | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms |",
            level_name(&l.level),
            or_not_built(l.webhook),
            or_not_built(l.worker),
            s.own_us.p50,
            s.worker_rate,
            s.cold.webhook_init,
            s.cold.webhook_init_less_secret,
            s.cold.echo_init
        )?;
    }
    let small: Vec<String> = levels
        .iter()
        .filter(|l| under_size_goal(l.webhook, l.worker))
        .map(|l| format!("`{}`", level_name(&l.level)))
        .collect();
    let small = if small.is_empty() {
        "none of these levels".to_owned()
    } else {
        small.join(", ")
    };
    writeln!(
        out,
        "\nBoth arm64 binaries under {SIZE_GOAL_TEXT} at: {small}.\n"
    )
}

/// A section: its heading, an introduction (none when empty), then the head
/// of a table whose columns `align` marks `l`eft or `r`ight.
fn table(out: &mut String, heading: &str, intro: &str, columns: &[&str], align: &str) -> Result {
    writeln!(out, "## {heading}\n")?;
    if !intro.is_empty() {
        writeln!(out, "{intro}\n")?;
    }
    writeln!(out, "| {} |", columns.join(" | "))?;
    let rule: Vec<&str> = align
        .chars()
        .map(|a| if a == 'r' { "---:" } else { "---" })
        .collect();
    writeln!(out, "| {} |", rule.join(" | "))
}

/// MB as 10^6 bytes, the unit of the size goal.
fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn or_not_built(bytes: Option<u64>) -> String {
    bytes.map(mb).unwrap_or_else(|| "not built".into())
}

/// An `opt-level` as Cargo.toml spells it: numbers bare, letters quoted.
fn level_name(level: &str) -> String {
    if level.parse::<u32>().is_ok() {
        level.to_owned()
    } else {
        format!("\"{level}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_heads_its_section() {
        let mut out = String::new();
        table(&mut out, "Memory", "", &["measure", "value"], "lr").unwrap();
        assert_eq!(out, "## Memory\n\n| measure | value |\n| --- | ---: |\n");
        let mut out = String::new();
        table(&mut out, "Goals", "Why.", &["a"], "r").unwrap();
        assert_eq!(out, "## Goals\n\nWhy.\n\n| a |\n| ---: |\n");
    }

    #[test]
    fn levels_as_in_cargo_toml_and_megabytes_of_a_million_bytes() {
        assert_eq!(level_name("3"), "3");
        assert_eq!(level_name("s"), "\"s\"");
        assert_eq!(mb(7_214_000), "7.21 MB");
        assert_eq!(or_not_built(None), "not built");
    }

    #[test]
    fn goals_without_arm64_and_cold_start_without_a_bundle() {
        let cold: ColdStart = serde_json::from_value(serde_json::json!({
            "echo_init": 2.0, "echo_answer": 3.0, "webhook_init": 16.0,
            "webhook_init_less_secret": 5.0, "webhook_answer": 20.0,
            "process_start": 4.0, "tls_setup": 0.5, "sdk_config": 0.25,
            "to_first_request": 5.0, "secret_round_trip": 9.0, "after_secret": 1.0,
            "platform_tls": 8.0, "store_entries": 3, "bundle": null,
            "bundle_tls": null, "load_average": "1.00"
        }))
        .unwrap();
        let g = Goals {
            arm64: None,
            sizes_met: false,
            cold_ratio: 2.5,
            cold_met: true,
        };
        let mut out = String::new();
        goals(&mut out, &g, &cold, "s").unwrap();
        assert!(out.contains("| each arm64 binary under 10 MB | arm64 binaries not built (`make bench` builds them) | not measured |\n"));
        assert!(out.contains("| 5.00 ms = 2.50× echo's 2.00 ms (x86_64) | **met** |\n"));

        let mut out = String::new();
        cold_start(&mut out, &cold).unwrap();
        assert!(out.contains("| first request: the rest of the secret store client, credentials, endpoint, signing, connect | 0.25 | spawn to the first request byte at the relay (5.00 ms) less the three rows above |\n"));
        assert!(out.ends_with("a file per root).\n\n"), "no bundle: {out}");
    }
}
