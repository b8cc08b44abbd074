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
    progress("Salesforce API calls per conversation (1 to 5,000 messages, with and without files)");
    let media = media_server().await?;
    table(out, "Salesforce API calls per conversation", "A new conversation, warm token, against the local Salesforce's call counter (a Composite counts as one call, as in Salesforce). \"Naive\" is the 5 + N calls of one request per record. With attachments, every tenth message carries one file.", &["messages", "calls", "with attachments (files)", "naive"], "rrrr")?;
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
        progress(&format!("calls: {n} messages -> {plain} / {with_files}"));
    }
    writeln!(out)?;
    Ok(())
}

/// Conversations per second of one worker instance with `latency_ms` added
/// to every Salesforce call.
async fn worker_rate(latency_ms: u64, batches: u64) -> anyhow::Result<f64> {
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

/// Batches of the unthrottled throughput run.
const FAST_BATCHES: u64 = 40;

async fn throughput(out: &mut String, unthrottled: f64) -> anyhow::Result<()> {
    progress("worker throughput with 50 ms per Salesforce call (15 batches)");
    let throttled = worker_rate(50, 15).await?;
    progress(&format!("throughput at 50 ms: {throttled:.1}/s"));
    table(out, "Worker throughput (one instance)", &format!("Batches of 10 conversations (5 messages each, distinct customers), processed one batch after another as one Lambda instance does, `RECORD_CONCURRENCY` = {CONCURRENCY}. Each conversation needs 2 sequential calls, so with latency L per call the bound is {CONCURRENCY} / (2 × L). The local Salesforce runs in the same process, so the unthrottled figure includes its work too."), &["added latency per call", "conversations/s", "bound", "share of bound"], "rrrr")?;
    writeln!(out, "| 0 ms | {unthrottled:.0} | n/a | n/a |")?;
    let bound = CONCURRENCY as f64 / (2.0 * 50.0 / 1000.0);
    writeln!(
        out,
        "| 50 ms | {throttled:.1} | {bound:.0} | {:.0}% |\n",
        100.0 * throttled / bound
    )?;
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// Everything an optimisation level changes, measured by one build: the full
/// run takes its own, and runs itself built at the other levels for theirs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Speed {
    /// Webhook handler's own work (token, validation, size), µs.
    own_p50_us: f64,
    own_p99_us: f64,
    /// Worker conversations/s with no added latency.
    worker_rate: f64,
    cold: ColdStart,
}

async fn speed() -> anyhow::Result<Speed> {
    progress(&format!(
        "worker throughput with no added latency ({FAST_BATCHES} batches of 10)"
    ));
    let worker_rate = worker_rate(0, FAST_BATCHES).await?;
    progress(&format!("throughput at 0 ms: {worker_rate:.0}/s"));
    let (own_p50_us, own_p99_us) = webhook_own_work().await?;
    let cold = cold_starts(COLD_RUNS).await?;
    Ok(Speed {
        own_p50_us,
        own_p99_us,
        worker_rate,
        cold,
    })
}

/// Queue and DLQ named `name`, and the WitiOp secret holding the token.
async fn queues_and_token(moto: &Moto, name: &str) -> anyhow::Result<(String, String)> {
    let queues = moto.queues(name, 720, 5).await?;
    moto.secret("witiop", &token_secret()).await?;
    Ok(queues)
}

fn token_secret() -> String {
    json!({"webhook_token": WEBHOOK_TOKEN}).to_string()
}

async fn webhook_fixture(moto: &Moto) -> anyhow::Result<(Webhook, ApiGatewayV2httpRequest)> {
    let (queue, _) = queues_and_token(moto, "hook").await?;
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
    Ok((webhook, request))
}

/// p50 and p99 of the handler's own work, µs.
async fn webhook_own_work() -> anyhow::Result<(f64, f64)> {
    progress("webhook handler's own work (20,000 runs)");
    let moto = Moto::start().await?;
    let (webhook, request) = webhook_fixture(&moto).await?;
    let mut own = Vec::new();
    for _ in 0..20_000 {
        let t = Instant::now();
        let prepared = prepare(&webhook, &request).await;
        own.push(t.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(prepared.is_ok(), "the sample must pass");
    }
    own.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&own, 0.5), percentile(&own, 0.99));
    progress(&format!(
        "webhook own work p50 {p50:.1} µs, p99 {p99:.1} µs"
    ));
    Ok((p50, p99))
}

async fn webhook_latency(out: &mut String, speed: &Speed) -> anyhow::Result<()> {
    progress("whole webhook handler with SendMessage to moto (300 runs)");
    let moto = Moto::start().await?;
    let (webhook, request) = webhook_fixture(&moto).await?;
    let mut full = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let r = handle_webhook(&webhook, request.clone()).await;
        full.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(r.status_code == 202, "queued");
    }
    full.sort_by(f64::total_cmp);
    table(
        out,
        "Webhook latency (warm)",
        "",
        &["measure", "p50", "p99"],
        "lrr",
    )?;
    writeln!(out, "| handler's own work: token check, validation, size (sample event, 20,000 runs) | {:.1} µs | {:.1} µs |", speed.own_p50_us, speed.own_p99_us)?;
    writeln!(out, "| whole handler including SendMessage to the local emulator (300 runs; the emulator's round trip dominates) | {:.2} ms | {:.2} ms |\n", percentile(&full, 0.5), percentile(&full, 0.99))?;
    progress(&format!(
        "whole handler p50 {:.2} ms",
        percentile(&full, 0.5)
    ));
    Ok(())
}

/// Cold starts measured per binary; medians.
const COLD_RUNS: usize = 21;

/// The webhook's cold start phase by phase, and the echo function's, in ms
/// (medians of [`COLD_RUNS`] runs each).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ColdStart {
    /// Echo: spawn to its first `/next` (Lambda's init duration).
    echo_init: f64,
    /// Echo: spawn to its first answer.
    echo_answer: f64,
    /// Webhook: spawn to its first `/next`.
    webhook_init: f64,
    /// Webhook: spawn to its first `/next` less the secret round trip, per run.
    webhook_init_less_secret: f64,
    /// Webhook: spawn to its first answer (one SendMessage more).
    webhook_answer: f64,
    /// Webhook started without its settings: spawn to exit.
    process_start: f64,
    /// The first SDK client built in a fresh process: the SDK builds its
    /// HTTPS connector then (root certificates, rustls configuration).
    tls_setup: f64,
    /// `load_sdk_config()` just before, in the same process.
    sdk_config: f64,
    /// Webhook: spawn to the first request byte at the Secrets Manager endpoint.
    to_first_request: f64,
    /// First request byte in to last answer byte out at the endpoint: both
    /// GetSecretValue calls (AWSCURRENT and AWSPREVIOUS, concurrent).
    secret_round_trip: f64,
    /// Last answer byte of the secret read to the first `/next`.
    after_secret: f64,
    /// The same set-up with the SDK's default trust, the platform's store:
    /// every place OpenSSL would look.
    platform_tls: f64,
    /// This machine's certificate bundle, and the set-up with the platform's
    /// store read from it alone (`SSL_CERT_FILE`).
    bundle: Option<String>,
    bundle_tls: Option<f64>,
    /// The machine's 1-minute load average when the rounds began.
    load_average: String,
}

/// The environment the webhook gets in the cold-start runs.
#[derive(Clone)]
struct ColdEnv {
    env: Vec<(&'static str, String)>,
    request: Value,
}

async fn cold_starts(runs: usize) -> anyhow::Result<ColdStart> {
    let moto = Moto::start().await?;
    let (queue, _) = queues_and_token(&moto, "cold").await?;
    // A second version, so that AWSPREVIOUS exists as after a rotation.
    moto.put_secret("witiop", &token_secret()).await?;
    let relay = proof::Relay::start(moto.endpoint.trim_start_matches("http://")).await?;
    let mut env = aws_env(&relay.endpoint);
    env.extend([
        ("QUEUE_URL", queue),
        ("MAX_MESSAGE_BYTES", "1048576".to_owned()),
        ("WITIOP_SECRET_ID", "witiop".to_owned()),
        ("RUST_LOG", "error".to_owned()),
    ]);
    let mut request: Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("events/webhook-request.json"),
    )?)?;
    request["headers"]["authorization"] = json!(format!("Bearer {WEBHOOK_TOKEN}"));
    // As deployed: the template sets `SSL_CERT_FILE` to the runtime's bundle
    // (for the Salesforce client); here, to this machine's.
    let bundle = cert_bundle();
    if let Some(path) = &bundle {
        env.push(("SSL_CERT_FILE", path.clone()));
    }
    let cold = ColdEnv { env, request };
    let platform_env: Vec<(&str, String)> = cold
        .env
        .iter()
        .filter(|(k, _)| *k != "SSL_CERT_FILE")
        .cloned()
        .collect();

    let echo = release_binary("echo");
    let webhook = release_binary("webhook");
    // Without its settings the webhook stops at its first check.
    let bare_env = aws_env(&relay.endpoint);

    // Every measure once per round, so that all see the machine alike.
    let load = load_average();
    progress(&format!(
        "cold starts: {runs} rounds of echo, webhook, webhook without settings, SDK probes (load average {load})"
    ));
    let (mut echo_init, mut echo_answer) = (Vec::new(), Vec::new());
    let mut w = WebhookRuns::default();
    let mut process_start = Vec::new();
    let (mut tls_setup, mut sdk_config) = (Vec::new(), Vec::new());
    let (mut platform_tls, mut bundle_tls) = (Vec::new(), Vec::new());
    for round in 0..runs {
        let api = RuntimeApi::start().await?;
        let mut f = Function::start(&echo, &api, &cold.env, None)?;
        let polled = api.wait_first_poll(Duration::from_secs(30)).await;
        let answer = api
            .invoke(json!({"ping": 1}), Duration::from_secs(30))
            .await;
        let answered = Instant::now();
        f.kill().await;
        let polled = polled.context("the echo function never asked for work")?;
        anyhow::ensure!(answer.is_ok(), "echo failed: {answer:?}");
        echo_init.push(ms(polled - f.started));
        echo_answer.push(ms(answered - f.started));

        webhook_run(&webhook, &cold, &relay, &mut w).await?;

        let (elapsed, status, stderr) =
            Function::run_to_exit(&webhook, &bare_env, Duration::from_secs(30)).await?;
        anyhow::ensure!(
            !status.success(),
            "the webhook started without QUEUE_URL and did not fail"
        );
        anyhow::ensure!(
            relay.take().first_request.is_none(),
            "the webhook without its settings reached AWS"
        );
        if round == 0 {
            progress(&format!(
                "  without settings it stops with: {}",
                stderr.lines().next().unwrap_or("(nothing on stderr)")
            ));
        }
        process_start.push(ms(elapsed));

        let split = probe(PROBE_SPLIT, &cold.env).await?;
        tls_setup.push(split[0]);
        sdk_config.push(split[1]);
        platform_tls.push(probe(PROBE_PLATFORM, &platform_env).await?[0]);
        if bundle.is_some() {
            bundle_tls.push(probe(PROBE_PLATFORM, &cold.env).await?[0]);
        }
        if (round + 1) % 5 == 0 {
            progress(&format!("  {} of {runs} rounds", round + 1));
        }
    }

    let cold = ColdStart {
        echo_init: median(&echo_init),
        echo_answer: median(&echo_answer),
        webhook_init: median(&w.init),
        webhook_init_less_secret: median(&w.init_less_secret),
        webhook_answer: median(&w.answer),
        process_start: median(&process_start),
        tls_setup: median(&tls_setup),
        sdk_config: median(&sdk_config),
        to_first_request: median(&w.to_first_request),
        secret_round_trip: median(&w.round_trip),
        after_secret: median(&w.after),
        platform_tls: median(&platform_tls),
        bundle_tls: bundle.as_ref().map(|_| median(&bundle_tls)),
        bundle,
        load_average: load,
    };
    progress(&format!(
        "cold start: echo {:.2} ms, webhook {:.2} ms ({:.2} ms less the secret round trip of {:.2} ms)",
        cold.echo_init, cold.webhook_init, cold.webhook_init_less_secret, cold.secret_round_trip
    ));
    Ok(cold)
}

/// One cold start of the webhook through the relay; its phases, ms, go to `w`.
async fn webhook_run(
    webhook: &Path,
    cold: &ColdEnv,
    relay: &proof::Relay,
    w: &mut WebhookRuns,
) -> anyhow::Result<()> {
    relay.take();
    let api = RuntimeApi::start().await?;
    let (mut f, mut lines) = Function::start_capturing(webhook, &api, &cold.env)?;
    let polled = api.wait_first_poll(Duration::from_secs(30)).await;
    let answer = api
        .invoke(cold.request.clone(), Duration::from_secs(30))
        .await;
    let answered = Instant::now();
    f.kill().await;
    let seen = relay.take();
    let mut log = Vec::new();
    while let Ok((_, line)) = lines.try_recv() {
        log.push(line);
    }
    let polled =
        polled.with_context(|| format!("the webhook never asked for work; it wrote: {log:?}"))?;
    anyhow::ensure!(
        answer.as_ref().is_ok_and(|v| v["statusCode"] == 202),
        "webhook cold start answered {answer:?}; it wrote: {log:?}"
    );
    let first = seen
        .first_request
        .context("the webhook's secret read never reached the relay")?;
    let last = seen
        .last_answer_before(polled)
        .context("no answer to the secret read before the first /next")?;
    w.init.push(ms(polled - f.started));
    w.answer.push(ms(answered - f.started));
    w.to_first_request.push(ms(first - f.started));
    w.round_trip.push(ms(last - first));
    w.init_less_secret
        .push(ms(polled - f.started) - ms(last - first));
    w.after.push(ms(polled - last));
    Ok(())
}

/// The 1-minute load average, as the kernel reports it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// The system's certificate bundle, where the common distributions put it.
fn cert_bundle() -> Option<String> {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file())
    .map(str::to_owned)
}

#[derive(Default)]
struct WebhookRuns {
    init: Vec<f64>,
    answer: Vec<f64>,
    to_first_request: Vec<f64>,
    round_trip: Vec<f64>,
    init_less_secret: Vec<f64>,
    after: Vec<f64>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The bench runs itself with this argument and a mode to time the SDK's
/// set-up in a fresh process, with the webhook's environment; it prints ms.
const PROBE: &str = "--probe-sdk";
/// As the webhook starts in Lambda: `load_sdk_config()`, then its first
/// client, when the SDK builds its HTTPS connector (root certificates,
/// rustls configuration); prints the client's time, then the configuration's.
const PROBE_SPLIT: &str = "split";
/// A client with the SDK's default trust, the platform's certificate store.
const PROBE_PLATFORM: &str = "platform";

async fn probe(mode: &str, env: &[(&str, String)]) -> anyhow::Result<Vec<f64>> {
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .args([PROBE, mode])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        // As Lambda sets it, and the webhook's SDK configuration reads it.
        .env("AWS_LAMBDA_FUNCTION_NAME", "proof")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "SDK probe {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .split_whitespace()
        .map(|v| v.parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("SDK probe {mode} printed {stdout:?}"))
}

async fn run_probe(mode: Option<&str>) -> anyhow::Result<()> {
    witiop_salesforce::telemetry::init();
    let figures = match mode {
        Some(PROBE_SPLIT) => {
            let t = Instant::now();
            let sdk = witiop_salesforce::aws::load_sdk_config().await;
            let config = t.elapsed();
            let t = Instant::now();
            let store = witiop_salesforce::aws::SecretStore::new(&sdk);
            let client = t.elapsed();
            std::hint::black_box((&sdk, &store));
            vec![client, config]
        }
        Some(PROBE_PLATFORM) => {
            let t = Instant::now();
            let config = aws_sdk_secretsmanager::Config::builder()
                .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
                .region(aws_sdk_secretsmanager::config::Region::new("eu-west-1"))
                .build();
            let client = aws_sdk_secretsmanager::Client::from_conf(config);
            let elapsed = t.elapsed();
            std::hint::black_box(&client);
            vec![elapsed]
        }
        other => anyhow::bail!("{PROBE} needs {PROBE_SPLIT} or {PROBE_PLATFORM}, not {other:?}"),
    };
    let figures: Vec<String> = figures.iter().map(|d| format!("{:.4}", ms(*d))).collect();
    println!("{}", figures.join(" "));
    Ok(())
}

async fn processes(out: &mut String, cold: &ColdStart) -> anyhow::Result<()> {
    progress("peak memory: webhook on a 1,000-message event, worker on a batch holding it");
    let moto = Moto::start().await?;
    let (queue, dlq) = queues_and_token(&moto, "proc").await?;
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
    progress(&format!(
        "peak memory: webhook {webhook_rss} kB, worker {worker_rss} kB"
    ));

    table(out, "Cold start", &format!("Release binaries (x86_64 here) run behind a local Lambda Runtime API; a cold start is Lambda's init duration: process spawned to its first request for work (`/next`). Each of {COLD_RUNS} rounds runs every measure once, so that all see the machine alike (1-minute load average when they began: {}); the figures are medians. The webhook's secret is read from moto through a relay that notes when the requests arrive and the answers leave. Nothing in the webhook was changed for this: each row is the release binary seen from outside, except the SDK configuration and TLS set-up, timed around the same library calls in a fresh process of the bench.", cold.load_average), &["webhook phase", "ms", "how it is measured"], "lrl")?;
    let rest = cold.to_first_request - cold.process_start - cold.tls_setup - cold.sdk_config;
    writeln!(out, "| process start: exec, Tokio runtime, logging and metrics set-up | {:.2} | the webhook started without its settings: spawn to exit |", cold.process_start)?;
    writeln!(out, "| SDK configuration load (`load_sdk_config`): region, credentials from the environment, profile settings | {:.2} | timed around the call in a fresh process with the webhook's environment, before the row below |", cold.sdk_config)?;
    writeln!(out, "| TLS/HTTP client set-up: Amazon Trust Services' five roots, rustls configuration, HTTPS connector | {:.2} | the first SDK client built in a fresh process (the SDK does this once per process, when its first client is built: in the webhook, the secret store's) |", cold.tls_setup)?;
    writeln!(out, "| first request: the rest of the secret store client, credentials, endpoint, signing, connect | {rest:.2} | spawn to the first request byte at the relay ({:.2} ms) less the three rows above |", cold.to_first_request)?;
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
    let entries = std::fs::read_dir("/etc/ssl/certs")
        .map(|d| d.count())
        .unwrap_or(0);
    write!(out, "In Lambda, in the commercial regions and GovCloud, the SDK trusts only the five roots of Amazon Trust Services, which AWS endpoints chain to (`src/aws/trust.rs`). With its default trust, the platform's certificate store, the same set-up takes {:.2} ms here, reading every place OpenSSL would look (a bundle and `/etc/ssl/certs`, {entries} entries; on `provided.al2023` the bundle and a file per root)", cold.platform_tls)?;
    match (&cold.bundle, cold.bundle_tls) {
        (Some(path), Some(t)) => writeln!(out, ", or {t:.2} ms reading one bundle (`SSL_CERT_FILE={path}`, as the template sets the runtime's for the Salesforce client).\n")?,
        _ => writeln!(out, ".\n")?,
    }

    table(out, "Memory", "", &["measure", "value"], "lr")?;
    writeln!(
        out,
        "| webhook peak resident memory, 1,000-message event | {:.1} MB |",
        webhook_rss as f64 / 1024.0
    )?;
    writeln!(
        out,
        "| worker peak resident memory, batch with a 1,000-message conversation | {:.1} MB |\n",
        worker_rss as f64 / 1024.0
    )?;
    Ok(())
}

/// MB as 10^6 bytes, the unit of the size goal.
fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn size_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// The goal of each arm64 binary, in bytes.
const SIZE_GOAL: u64 = 10_000_000;
const SIZE_GOAL_TEXT: &str = "10 MB";
/// The goal of the webhook's cold start less its secret round trip, in
/// multiples of the echo function's.
const COLD_GOAL: f64 = 3.0;

/// `opt-level` of `[profile.release]` in the workspace's Cargo.toml, as cargo
/// takes it (`CARGO_PROFILE_RELEASE_OPT_LEVEL` wins).
fn configured_opt_level() -> String {
    if let Ok(level) = std::env::var("CARGO_PROFILE_RELEASE_OPT_LEVEL") {
        return level;
    }
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap_or_default();
    let mut in_release = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_release = line == "[profile.release]";
        } else if in_release {
            if let Some(value) = line.strip_prefix("opt-level") {
                let value = value.trim_start().trim_start_matches('=');
                let value = value.split('#').next().unwrap_or("").trim();
                return value.trim_matches('"').to_owned();
            }
        }
    }
    "3".to_owned()
}

/// One optimisation level's build and figures.
struct Level {
    level: String,
    webhook: Option<u64>,
    worker: Option<u64>,
    speed: Option<Speed>,
}

/// Builds the release binaries (x86_64, and arm64 with cargo lambda) at
/// `level` in their own folder under the target folder, runs the bench built
/// there in its speed mode, and collects the figures.
fn other_level(level: &str) -> anyhow::Result<Level> {
    let dir = proof::target_dir().join(format!("opt-level-{level}"));
    progress(&format!(
        "opt-level {level}: release build in {} (minutes the first time, then incremental)",
        dir.display()
    ));
    let cargo = |args: &[&str]| -> anyhow::Result<bool> {
        Ok(std::process::Command::new("cargo")
            .current_dir(root())
            .env("CARGO_TARGET_DIR", &dir)
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", level)
            .args(args)
            .status()?
            .success())
    };
    anyhow::ensure!(
        cargo(&[
            "build",
            "--release",
            "--quiet",
            "--workspace",
            "--bin",
            "webhook",
            "--bin",
            "worker",
            "--bin",
            "echo",
            "--bin",
            "bench",
        ])?,
        "release build at opt-level {level} failed"
    );
    progress(&format!("opt-level {level}: arm64 build with cargo lambda"));
    let arm = cargo(&[
        "lambda",
        "build",
        "--release",
        "--arm64",
        "--quiet",
        "--bin",
        "webhook",
        "--bin",
        "worker",
    ])
    .unwrap_or(false);
    if !arm {
        progress(&format!(
            "opt-level {level}: no arm64 build (cargo lambda missing or failed; make bench puts it on PATH)"
        ));
    }
    let arm_size = |name: &str| {
        arm.then(|| size_of(&dir.join("lambda").join(name).join("bootstrap")))
            .flatten()
    };
    progress(&format!("opt-level {level}: speed and cold start"));
    let out = std::process::Command::new(dir.join("release/bench"))
        .arg(SPEED)
        .env("CARGO_TARGET_DIR", &dir)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "the bench at opt-level {level} failed"
    );
    let speed: Speed = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("the bench at opt-level {level} printed no figures"))?;
    Ok(Level {
        level: level.to_owned(),
        webhook: arm_size("webhook"),
        worker: arm_size("worker"),
        speed: Some(speed),
    })
}

/// Levels compared: `BENCH_OPT_LEVELS` (default `3 s z`; empty for none).
fn levels_to_compare() -> Vec<String> {
    std::env::var("BENCH_OPT_LEVELS")
        .unwrap_or_else(|_| "3 s z".to_owned())
        .split([' ', ','])
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_matches('"').to_owned())
        .collect()
}

fn level_name(level: &str) -> String {
    if level.parse::<u32>().is_ok() {
        level.to_owned()
    } else {
        format!("\"{level}\"")
    }
}

fn sizes_and_levels(out: &mut String, configured: &str, levels: &[Level]) -> anyhow::Result<()> {
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
    for name in ["webhook", "worker"] {
        let show = |s: Option<u64>| s.map(mb).unwrap_or_else(|| "not built".into());
        writeln!(
            out,
            "| {name} | {} | {} |",
            show(size_of(&release_binary(name))),
            show(size_of(&proof::lambda_binary(name)))
        )?;
    }
    writeln!(out)?;
    if levels.len() < 2 {
        return Ok(());
    }
    table(out, "Optimisation levels", "The same sources built at each `opt-level` (everything else as in the release profile) and measured by the bench built alongside: the arm64 sizes, the webhook's own work, the worker's unthrottled throughput and the cold starts as above. The bench and the local Salesforce are built at the same level, so the throughput column moves with both. Levels are measured one after another: from run to run the cold-start columns move by a few tenths of a millisecond.", &["opt-level", "webhook arm64", "worker arm64", "webhook own work p50", "worker conversations/s", "webhook cold start", "less secret round trip", "echo cold start"], "lrrrrrrr")?;
    for l in levels {
        let size = |s: Option<u64>| s.map(mb).unwrap_or_else(|| "not built".into());
        let chosen = if l.level == configured {
            " (release profile)"
        } else {
            ""
        };
        match &l.speed {
            Some(s) => writeln!(
                out,
                "| {}{chosen} | {} | {} | {:.1} µs | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms |",
                level_name(&l.level),
                size(l.webhook),
                size(l.worker),
                s.own_p50_us,
                s.worker_rate,
                s.cold.webhook_init,
                s.cold.webhook_init_less_secret,
                s.cold.echo_init
            )?,
            None => writeln!(
                out,
                "| {}{chosen} | {} | {} | n/a | n/a | n/a | n/a | n/a |",
                level_name(&l.level),
                size(l.webhook),
                size(l.worker)
            )?,
        }
    }
    let small: Vec<String> = levels
        .iter()
        .filter(|l| {
            l.webhook.is_some_and(|s| s < SIZE_GOAL) && l.worker.is_some_and(|s| s < SIZE_GOAL)
        })
        .map(|l| format!("`{}`", level_name(&l.level)))
        .collect();
    writeln!(
        out,
        "\nBoth arm64 binaries under {SIZE_GOAL_TEXT} at: {}.\n",
        if small.is_empty() {
            "none of these levels".to_owned()
        } else {
            small.join(", ")
        }
    )?;
    Ok(())
}

fn goals(out: &mut String, cold: &ColdStart, configured: &str) -> anyhow::Result<()> {
    let webhook = size_of(&proof::lambda_binary("webhook"));
    let worker = size_of(&proof::lambda_binary("worker"));
    let yes_no = |b: bool| if b { "**met**" } else { "**not met**" };
    table(out, "Goals", "", &["goal", "measured", ""], "lll")?;
    match (webhook, worker) {
        (Some(h), Some(k)) => writeln!(
            out,
            "| each arm64 binary under {} | webhook {}, worker {} (`opt-level = {}`) | {} |",
            SIZE_GOAL_TEXT,
            mb(h),
            mb(k),
            level_name(configured),
            yes_no(h < SIZE_GOAL && k < SIZE_GOAL)
        )?,
        _ => writeln!(
            out,
            "| each arm64 binary under {} | arm64 binaries not built (`make bench` builds them) | not measured |",
            SIZE_GOAL_TEXT
        )?,
    }
    let ratio = cold.webhook_init_less_secret / cold.echo_init;
    writeln!(
        out,
        "| webhook cold start less the secret round trip within {COLD_GOAL:.0}× the bare echo function's | {:.2} ms = {ratio:.2}× echo's {:.2} ms (x86_64) | {} |\n",
        cold.webhook_init_less_secret,
        cold.echo_init,
        yes_no(ratio <= COLD_GOAL)
    )?;
    writeln!(out, "Where the webhook's cold start goes is under [Cold start](#cold-start); sizes and speed at each optimisation level under [Optimisation levels](#optimisation-levels).")?;
    writeln!(out, "The largest step was the SDK's trust store: Amazon's five roots take {:.2} ms to set up, the platform's whole store {:.2} ms.", cold.tls_setup, cold.platform_tls)?;
    writeln!(out)?;
    Ok(())
}

/// A section: its heading, an introduction (none when empty), then the head
/// of a table whose columns `align` marks `l`eft or `r`ight.
fn table(
    out: &mut String,
    heading: &str,
    intro: &str,
    columns: &[&str],
    align: &str,
) -> std::fmt::Result {
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

fn progress(message: &str) {
    eprintln!("bench: {message}");
}

/// The argument of the speed mode: only what an optimisation level changes,
/// as one JSON object on stdout.
const SPEED: &str = "--speed";

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
    let configured = configured_opt_level();
    progress(&format!(
        "release build of webhook, worker and echo into {} (opt-level {configured})",
        proof::target_dir().display()
    ));
    proof::build_release(&["webhook", "worker", "echo"]).context("release build")?;

    let mut body = String::new();
    calls_per_conversation(&mut body).await?;
    let speed = speed().await?;
    throughput(&mut body, speed.worker_rate).await?;
    webhook_latency(&mut body, &speed).await?;
    processes(&mut body, &speed.cold).await?;

    let mut levels = Vec::new();
    for level in levels_to_compare() {
        if level == configured {
            levels.push(Level {
                level,
                webhook: size_of(&proof::lambda_binary("webhook")),
                worker: size_of(&proof::lambda_binary("worker")),
                speed: Some(speed.clone()),
            });
        } else {
            levels.push(other_level(&level)?);
        }
    }
    sizes_and_levels(&mut body, &configured, &levels)?;

    let mut out = String::new();
    writeln!(out, "# Benchmarks\n")?;
    writeln!(out, "Written by `make bench` on {} ({}). Everything runs on loopback: moto for SQS and Secrets Manager, the local Salesforce for the REST API.\n", chrono::Utc::now().format("%Y-%m-%d"), proof::report::machine())?;
    goals(&mut out, &speed.cold, &configured)?;
    out.push_str(&body);
    let path = root().join("docs/benchmarks.md");
    // The long soak's section is written by the soak: carried over as it is.
    let before = std::fs::read_to_string(&path).unwrap_or_default();
    if let Some(soak) = proof::report::section(&before, proof::report::SOAK_HEADING) {
        out = proof::report::replace_section(&out, proof::report::SOAK_HEADING, soak);
    }
    std::fs::write(&path, &out)?;
    println!("{out}");
    progress(&format!("wrote {}", path.display()));
    Ok(())
}
