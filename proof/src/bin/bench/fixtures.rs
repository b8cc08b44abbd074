//! What several measurements share: the sample conversation and its
//! variants, SQS batches of them, a worker against moto and the local
//! Salesforce, a stand-in for WitiOp's media host, and the webhook's token.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use local_salesforce::LocalSalesforce;
use proof::{root, Moto};
use serde_json::{json, Value};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::config::SalesforceSettings;
use witiop_salesforce::salesforce::client::http_client;
use witiop_salesforce::salesforce::SalesforceClient;
use witiop_salesforce::worker::{
    BatchConfig, ExchangeSettings, RetrySchedule, Worker, WorkerSettings, DEFAULT_MAX_FILE_BYTES,
};

pub const WEBHOOK_TOKEN: &str = "bench-webhook-token-0123456789";
/// The worker's default records in flight per instance (`RECORD_CONCURRENCY`).
pub const CONCURRENCY: usize = 10;

fn sample() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(root().join("events/conversation-closed.json")).expect("sample"),
    )
    .expect("json")
}

/// The sample close event as conversation `id` of customer `number`, with
/// `messages` messages; with `media`, every tenth carries a file from there.
pub fn conversation(id: u64, number: &str, messages: usize, media: Option<&str>) -> Value {
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

pub fn batch(bodies: &[String]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (i, b) in bodies.iter().enumerate() {
        let mut m = SqsMessage::default();
        m.message_id = Some(format!("bench-{i}"));
        m.body = Some(b.clone());
        event.records.push(m);
    }
    event
}

pub struct Stack {
    _moto: Moto,
    pub sf: LocalSalesforce,
    pub worker: Worker,
}

pub async fn stack(add_attachments: bool) -> anyhow::Result<Stack> {
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
    let worker = Worker::new(WorkerSettings {
        salesforce: ExchangeSettings {
            client: Arc::new(client),
            policy: settings.policy,
            media: media_access(),
            source: None,
        },
        batch: BatchConfig {
            sqs: moto.sqs(),
            dlq_url: dlq,
            concurrency: CONCURRENCY,
            retry: RetrySchedule::default(),
        },
        max_file_bytes: DEFAULT_MAX_FILE_BYTES,
    });
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
pub async fn media_server() -> anyhow::Result<String> {
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

/// Queue and DLQ named `name`, and the WitiOp secret holding the token.
pub async fn queues_and_token(moto: &Moto, name: &str) -> anyhow::Result<(String, String)> {
    let queues = moto.queues(name, 720, 5).await?;
    moto.secret("witiop", &token_secret()).await?;
    Ok(queues)
}

pub fn token_secret() -> String {
    json!({"webhook_token": WEBHOOK_TOKEN}).to_string()
}

/// The sample webhook request (API Gateway HTTP API, payload 2.0) as the
/// Runtime API hands it to the function, bearing the token.
pub fn authorised_request() -> anyhow::Result<Value> {
    let mut request: Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("events/webhook-request.json"),
    )?)?;
    request["headers"]["authorization"] = json!(format!("Bearer {WEBHOOK_TOKEN}"));
    Ok(request)
}
