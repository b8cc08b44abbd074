//! Warm webhook latency: the handler's own work (token, validation, size),
//! and the whole handler with its SendMessage to moto.

use std::time::Instant;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use proof::{root, Moto};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::config::WebhookEnv;
use witiop_salesforce::webhook::{handle_webhook, prepare, Webhook, WebhookTokens};

use crate::fixtures::{queues_and_token, WEBHOOK_TOKEN};
use crate::progress;
use crate::stats::percentile;

/// Runs of the handler's own work.
const OWN_RUNS: usize = 20_000;
/// Runs of the whole handler.
const WHOLE_RUNS: usize = 300;

/// p50 and p99 of one measure.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Spread {
    pub p50: f64,
    pub p99: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Self {
        values.sort_by(f64::total_cmp);
        Spread {
            p50: percentile(&values, 0.5),
            p99: percentile(&values, 0.99),
        }
    }
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

/// The handler's own work, µs.
pub async fn webhook_own_work() -> anyhow::Result<Spread> {
    progress("webhook handler's own work (20,000 runs)");
    let moto = Moto::start().await?;
    let (webhook, request) = webhook_fixture(&moto).await?;
    let mut own = Vec::new();
    for _ in 0..OWN_RUNS {
        let t = Instant::now();
        let prepared = prepare(&webhook, &request).await;
        own.push(t.elapsed().as_secs_f64() * 1e6);
        anyhow::ensure!(prepared.is_ok(), "the sample must pass");
    }
    let own = Spread::of(own);
    progress(&format!(
        "webhook own work p50 {:.1} µs, p99 {:.1} µs",
        own.p50, own.p99
    ));
    Ok(own)
}

/// The whole handler including SendMessage to moto, ms.
pub async fn webhook_whole() -> anyhow::Result<Spread> {
    progress("whole webhook handler with SendMessage to moto (300 runs)");
    let moto = Moto::start().await?;
    let (webhook, request) = webhook_fixture(&moto).await?;
    let mut full = Vec::new();
    for _ in 0..WHOLE_RUNS {
        let t = Instant::now();
        let r = handle_webhook(&webhook, request.clone()).await;
        full.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(r.status_code == 202, "queued");
    }
    let full = Spread::of(full);
    progress(&format!("whole handler p50 {:.2} ms", full.p50));
    Ok(full)
}
