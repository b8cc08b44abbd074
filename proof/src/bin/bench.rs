//! `make bench`: measures economy, throughput, latency, cold start, memory and
//! binary size in one run, and writes `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use local_salesforce::LocalSalesforce;
use proof::{aws_env, release_binary, root, Function, Moto, RuntimeApi};
use serde_json::{json, Value};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::config::{SalesforceSettings, WebhookEnv};
use witiop_salesforce::salesforce::client::http_client;
use witiop_salesforce::salesforce::SalesforceClient;
use witiop_salesforce::webhook::{handle_webhook, prepare, Webhook, WebhookTokens};
use witiop_salesforce::worker::{handle_batch, Worker};

const WEBHOOK_TOKEN: &str = "bench-webhook-token-0123456789";
/// The worker's default records in flight per instance (`RECORD_CONCURRENCY`).
const CONCURRENCY: usize = 10;

fn sample() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("events/conversation-closed.json")).expect("sample"),
    )
    .expect("json")
}

fn conversation(id: u64, number: &str, messages: usize, media: Option<&str>) -> Value {
    let mut e = sample();
    e["conversation"]["id"] = json!(id);
    e["conversation"]["customer"]["number"] = json!(number);
    let list: Vec<Value> = (0..messages)
        .map(|i| {
            let mut m = json!({
                "id": format!("m{i}"),
                "sender": if i % 2 == 0 { "customer" } else { "agent" },
                "sent_at": format!("2026-11-24T{:02}:{:02}:{:02}Z", 8 + i / 3600, (i / 60) % 60, i % 60),
                "text": format!("message {i} of the conversation, with a little text 😀"),
            });
            if let (Some(url), true) = (media, i % 10 == 9) {
                m["attachments"] = json!([{"url": format!("{url}/media/{i}.pdf"), "file_name": format!("file-{i}.pdf"), "content_type": "application/pdf"}]);
            }
            m
        })
        .collect();
    e["conversation"]["messages"] = json!(list);
    e
}

fn batch(bodies: &[String]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (i, b) in bodies.iter().enumerate() {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("bench-{i}"));
        m.body = Some(b.clone());
        event.records.push(m);
    }
    event
}

struct Stack {
    _moto: Moto,
    sf: LocalSalesforce,
    worker: Worker,
}

async fn stack(add_attachments: bool) -> anyhow::Result<Stack> {
    let moto = Moto::start().await?;
    let (_, dlq) = moto.queues("bench", 720, 5).await?;
    moto.secret("salesforce-token", "{}").await?;
    let sf = LocalSalesforce::start(0).await?;
    sf.seed_example_users();
    let secret = sf.secret(json!({"add_attachments": add_attachments}));
    let settings = SalesforceSettings::parse("salesforce", &secret.to_string())?;
    let client = SalesforceClient::new(
        http_client(),
        Arc::new(settings.connection),
        SecretStore::new(&moto.sdk),
        "salesforce-token".into(),
    );
    let worker = Worker::new(
        Arc::new(client),
        settings.policy,
        moto.sqs(),
        dlq,
        media_access(),
        CONCURRENCY,
    );
    // Warm the token, then count from zero.
    worker
        .salesforce()
        .query::<Value>("SELECT Id FROM User LIMIT 1")
        .await?;
    sf.reset_counters();
    Ok(Stack {
        _moto: moto,
        sf,
        worker,
    })
}

/// The media server below, listed as WitiOp's media host.
fn media_access() -> witiop_salesforce::worker::MediaAccess {
    let host = MEDIA_HOST.get().map_or("127.0.0.1", String::as_str);
    witiop_salesforce::worker::MediaAccess {
        api_token: Some("media-token".to_owned().into()),
        hosts: witiop_salesforce::config::MediaHost::parse_entry(host).map(|h| vec![h]),
    }
}

/// `127.0.0.1:PORT` of the media server, once started.
static MEDIA_HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A stand-in for WitiOp's media host: any `/media/*` is a 20 KB file.
async fn media_server() -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/media/{name}",
        axum::routing::get(|| async { vec![7u8; 20_000] }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let _ = MEDIA_HOST.set(listener.local_addr()?.to_string());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

async fn calls_per_conversation(out: &mut String) -> anyhow::Result<()> {
    let media = media_server().await?;
    writeln!(out, "## Salesforce API calls per conversation\n")?;
    writeln!(out, "A new conversation, warm token, against the local Salesforce's call counter (a Composite counts as one call, as in Salesforce). \"Naive\" is the 5 + N calls of one request per record. With attachments, every tenth message carries one file.\n")?;
    writeln!(
        out,
        "| messages | calls | with attachments (files) | naive |"
    )?;
    writeln!(out, "| ---: | ---: | ---: | ---: |")?;
    for n in [1usize, 10, 300, 1000, 5000] {
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
        writeln!(
            out,
            "| {n} | {plain} | {with_files} ({files}) | {} |",
            5 + n
        )?;
        eprintln!("calls: {n} messages -> {plain} / {with_files}");
    }
    writeln!(out)?;
    Ok(())
}

async fn throughput(out: &mut String) -> anyhow::Result<()> {
    writeln!(out, "## Worker throughput (one instance)\n")?;
    writeln!(out, "Batches of 10 conversations (5 messages each, distinct customers), processed one batch after another as one Lambda instance does, `RECORD_CONCURRENCY` = {CONCURRENCY}. Each conversation needs 2 sequential calls, so with latency L per call the bound is {CONCURRENCY} / (2 × L).\n")?;
    writeln!(
        out,
        "| added latency per call | conversations/s | bound | share of bound |"
    )?;
    writeln!(out, "| ---: | ---: | ---: | ---: |")?;
    for (latency_ms, batches) in [(0u64, 40u64), (50, 15)] {
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
        let rate = (batches * 10) as f64 / started.elapsed().as_secs_f64();
        if latency_ms == 0 {
            writeln!(out, "| 0 ms | {rate:.0} | n/a | n/a |")?;
        } else {
            let bound = CONCURRENCY as f64 / (2.0 * latency_ms as f64 / 1000.0);
            writeln!(
                out,
                "| {latency_ms} ms | {rate:.1} | {bound:.0} | {:.0}% |",
                100.0 * rate / bound
            )?;
        }
        eprintln!("throughput at {latency_ms} ms: {rate:.1}/s");
    }
    writeln!(out)?;
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn webhook_latency(out: &mut String) -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    let (queue, _) = moto.queues("hook", 720, 5).await?;
    moto.secret(
        "witiop",
        &json!({"webhook_token": WEBHOOK_TOKEN}).to_string(),
    )
    .await?;
    let tokens = WebhookTokens::load(SecretStore::new(&moto.sdk), "witiop".into()).await?;
    let webhook = Webhook {
        sqs: moto.sqs(),
        tokens,
        env: WebhookEnv {
            queue_url: queue,
            witiop_secret_id: "witiop".into(),
            max_message_bytes: 1_048_576,
        },
    };
    let mut request: ApiGatewayV2httpRequest = serde_json::from_str(&std::fs::read_to_string(
        root().join("events/webhook-request.json"),
    )?)?;
    request
        .headers
        .insert("authorization", format!("Bearer {WEBHOOK_TOKEN}").parse()?);

    let mut own = Vec::new();
    for _ in 0..20_000 {
        let t = Instant::now();
        let prepared = prepare(&webhook, &request).await;
        own.push(t.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(prepared.is_ok(), "the sample must pass");
    }
    own.sort_by(f64::total_cmp);
    let mut full = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let r = handle_webhook(&webhook, request.clone()).await;
        full.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(r.status_code == 202, "queued");
    }
    full.sort_by(f64::total_cmp);
    writeln!(out, "## Webhook latency (warm)\n")?;
    writeln!(out, "| measure | p50 | p99 |")?;
    writeln!(out, "| --- | ---: | ---: |")?;
    writeln!(out, "| handler's own work: token check, validation, size (sample event, 20,000 runs) | {:.1} µs | {:.1} µs |", percentile(&own, 0.5), percentile(&own, 0.99))?;
    writeln!(out, "| whole handler including SendMessage to the local emulator (300 runs; the emulator's round trip dominates) | {:.2} ms | {:.2} ms |\n", percentile(&full, 0.5), percentile(&full, 0.99))?;
    eprintln!("webhook p50 {:.1} µs", percentile(&own, 0.5));
    Ok(())
}

/// Process start to first answer through the Runtime API; median of runs.
async fn cold_start(
    binary: &Path,
    env: &[(&str, String)],
    payload: &Value,
    runs: usize,
) -> anyhow::Result<f64> {
    let mut times = Vec::new();
    for _ in 0..runs {
        let api = RuntimeApi::start().await?;
        let mut f = Function::start(binary, &api, env, None)?;
        let answer = api.invoke(payload.clone(), Duration::from_secs(30)).await;
        times.push(f.started.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(answer.is_ok(), "{} failed: {:?}", binary.display(), answer);
        f.kill().await;
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

async fn processes(out: &mut String) -> anyhow::Result<()> {
    proof::build_release(&["webhook", "worker", "echo"]).context("release build")?;
    let moto = Moto::start().await?;
    let (queue, dlq) = moto.queues("proc", 720, 5).await?;
    moto.secret(
        "witiop",
        &json!({"webhook_token": WEBHOOK_TOKEN}).to_string(),
    )
    .await?;
    let sf = LocalSalesforce::start(0).await?;
    sf.seed_example_users();
    let secret = sf.secret(json!({}));
    moto.secret("salesforce", &secret.to_string()).await?;
    moto.secret("salesforce-token", "{}").await?;
    let mut env = aws_env(&moto.endpoint);
    env.extend([
        ("QUEUE_URL", queue.clone()),
        ("MAX_MESSAGE_BYTES", "1048576".to_owned()),
        ("WITIOP_SECRET_ID", "witiop".to_owned()),
        ("SALESFORCE_SECRET_ID", "salesforce".to_owned()),
        ("SALESFORCE_TOKEN_SECRET_ID", "salesforce-token".to_owned()),
        ("DLQ_URL", dlq),
        ("RUST_LOG", "error".to_owned()),
    ]);
    let mut request: Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("events/webhook-request.json"),
    )?)?;
    request["headers"]["authorization"] = json!(format!("Bearer {WEBHOOK_TOKEN}"));

    let echo = cold_start(&release_binary("echo"), &env, &json!({"ping": 1}), 9).await?;
    let webhook = cold_start(&release_binary("webhook"), &env, &request, 9).await?;

    // Peak memory on a 1,000-message conversation.
    let big = conversation(77, "+393331234567", 1000, None).to_string();
    let mut big_request = request.clone();
    big_request["body"] = json!(big);
    let api = RuntimeApi::start().await?;
    let mut hook = Function::start(&release_binary("webhook"), &api, &env, None)?;
    let r = api.invoke(big_request, Duration::from_secs(30)).await;
    anyhow::ensure!(
        r.as_ref().is_ok_and(|v| v["statusCode"] == 202),
        "webhook big event: {r:?}"
    );
    let webhook_rss = hook.peak_rss_kb().unwrap_or(0);
    hook.kill().await;

    let api = RuntimeApi::start().await?;
    let mut worker = Function::start(&release_binary("worker"), &api, &env, None)?;
    let messages = moto
        .sqs()
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await?
        .messages
        .unwrap_or_default();
    let event = proof::sqs_event(&messages, "arn:aws:sqs:eu-west-1:123456789012:proc");
    let r = api.invoke(event, Duration::from_secs(120)).await;
    anyhow::ensure!(r.is_ok(), "worker batch: {r:?}");
    anyhow::ensure!(
        sf.records("CaseComment").len() >= 1000,
        "the 1,000 comments were written"
    );
    let worker_rss = worker.peak_rss_kb().unwrap_or(0);
    worker.kill().await;

    writeln!(out, "## Cold start and memory\n")?;
    writeln!(out, "Release binaries run behind a local Lambda Runtime API (x86_64 here). Cold start is process start to the first answer, median of 9; the webhook's includes reading its secret from the emulator.\n")?;
    writeln!(out, "| measure | value |")?;
    writeln!(out, "| --- | ---: |")?;
    writeln!(
        out,
        "| minimal `lambda_runtime` echo function, cold start | {echo:.1} ms |"
    )?;
    writeln!(
        out,
        "| webhook cold start | {webhook:.1} ms ({:.2}× the echo function) |",
        webhook / echo
    )?;
    writeln!(
        out,
        "| webhook peak resident memory, 1,000-message event | {:.1} MB |",
        webhook_rss as f64 / 1024.0
    )?;
    writeln!(
        out,
        "| worker peak resident memory, batch with a 1,000-message conversation | {:.1} MB |",
        worker_rss as f64 / 1024.0
    )?;
    writeln!(out)?;
    eprintln!("cold start echo {echo:.1} ms, webhook {webhook:.1} ms; rss {webhook_rss} / {worker_rss} kB");

    writeln!(
        out,
        "## Binary sizes (release: LTO, one codegen unit, stripped)\n"
    )?;
    writeln!(out, "| binary | x86_64 | arm64 (cargo lambda) |")?;
    writeln!(out, "| --- | ---: | ---: |")?;
    for name in ["webhook", "worker"] {
        let size = |p: std::path::PathBuf| {
            std::fs::metadata(p)
                .map(|m| format!("{:.1} MB", m.len() as f64 / 1_048_576.0))
                .unwrap_or_else(|_| "not built".into())
        };
        writeln!(
            out,
            "| {name} | {} | {} |",
            size(release_binary(name)),
            size(root().join(format!("target/lambda/{name}/bootstrap")))
        )?;
    }
    writeln!(out)?;
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1_048_576.0))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut out = String::new();
    writeln!(out, "# Benchmarks\n")?;
    writeln!(out, "Written by `make bench` on {} ({}). Everything runs on loopback: moto for SQS and Secrets Manager, the local Salesforce for the REST API.\n", chrono::Utc::now().format("%Y-%m-%d"), machine())?;
    calls_per_conversation(&mut out).await?;
    throughput(&mut out).await?;
    webhook_latency(&mut out).await?;
    processes(&mut out).await?;
    let path = root().join("docs/benchmarks.md");
    std::fs::write(&path, &out)?;
    println!("{out}");
    eprintln!("wrote {}", path.display());
    Ok(())
}
