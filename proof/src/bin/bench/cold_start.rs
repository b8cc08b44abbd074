//! Cold starts of the release binaries behind a local Lambda Runtime API:
//! the bare echo function, the webhook phase by phase (its secret read timed
//! at a relay in front of moto), the webhook without its settings, and the
//! SDK's set-up in probes. Every measure runs once per round, so that all see
//! the machine alike.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use proof::{aws_env, release_binary, Function, Moto, RuntimeApi};
use serde_json::{json, Value};

use crate::fixtures::{authorised_request, queues_and_token, token_secret};
use crate::probe::{probe, PROBE_PLATFORM, PROBE_SPLIT};
use crate::progress;
use crate::stats::{median, ms};

/// Cold starts measured per binary; medians.
pub const COLD_RUNS: usize = 21;

/// The webhook's cold start phase by phase, and the echo function's, in ms
/// (medians of [`COLD_RUNS`] runs each).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ColdStart {
    /// Echo: spawn to its first `/next` (Lambda's init duration).
    pub echo_init: f64,
    /// Echo: spawn to its first answer.
    pub echo_answer: f64,
    /// Webhook: spawn to its first `/next`.
    pub webhook_init: f64,
    /// Webhook: spawn to its first `/next` less the secret round trip, per run.
    pub webhook_init_less_secret: f64,
    /// Webhook: spawn to its first answer (one SendMessage more).
    pub webhook_answer: f64,
    /// Webhook started without its settings: spawn to exit.
    pub process_start: f64,
    /// The first SDK client built in a fresh process: the SDK builds its
    /// HTTPS connector then (root certificates, rustls configuration).
    pub tls_setup: f64,
    /// `load_sdk_config()` just before, in the same process.
    pub sdk_config: f64,
    /// Webhook: spawn to the first request byte at the Secrets Manager endpoint.
    pub to_first_request: f64,
    /// First request byte in to last answer byte out at the endpoint: both
    /// GetSecretValue calls (AWSCURRENT and AWSPREVIOUS, concurrent).
    pub secret_round_trip: f64,
    /// Last answer byte of the secret read to the first `/next`.
    pub after_secret: f64,
    /// The same set-up with the SDK's default trust, the platform's store:
    /// every place OpenSSL would look.
    pub platform_tls: f64,
    /// Entries in `/etc/ssl/certs`, one of those places.
    pub store_entries: usize,
    /// This machine's certificate bundle, and the set-up with the platform's
    /// store read from it alone (`SSL_CERT_FILE`).
    pub bundle: Option<String>,
    pub bundle_tls: Option<f64>,
    /// The machine's 1-minute load average when the rounds began.
    pub load_average: String,
}

impl ColdStart {
    /// Spawn to the first request byte less the phases measured apart before
    /// it: the rest of the secret store client, signing, connect.
    pub fn first_request_rest(&self) -> f64 {
        self.to_first_request - self.process_start - self.tls_setup - self.sdk_config
    }
}

/// The environment the webhook gets in the cold-start runs.
#[derive(Clone)]
struct ColdEnv {
    env: Vec<(&'static str, String)>,
    request: Value,
}

pub async fn cold_starts(runs: usize) -> anyhow::Result<ColdStart> {
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
    let request = authorised_request()?;
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
        store_entries: std::fs::read_dir("/etc/ssl/certs")
            .map(|d| d.count())
            .unwrap_or(0),
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
