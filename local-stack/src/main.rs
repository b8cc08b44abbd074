//! `make local`: the pipeline on loopback, no AWS or Salesforce account needed.
//!
//! Starts a moto server, creates the queue, dead-letter queue and secrets as
//! `template.yaml` does, and serves the real webhook handler over HTTP the way
//! API Gateway (HTTP API, payload 2.0) would call it.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_sdk_sqs::types::QueueAttributeName;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use witiop_salesforce::aws::{local_sdk_config, SecretStore};
use witiop_salesforce::config::WebhookEnv;
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};

const MOTO_PORT: u16 = 4566;
const WEBHOOK_PORT: u16 = 9000;
const WEBHOOK_TOKEN: &str = "local-webhook-token";
const WITIOP_SECRET: &str = "witiop-local/witiop";
const WEBHOOK_PATH: &str = "/witiop/conversation-closed";

struct Stack {
    queue_url: String,
    dlq_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    witiop_salesforce::telemetry::init();
    let exit_after_demo = std::env::args().any(|a| a == "--exit");

    let moto_bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
    let _moto = tokio::process::Command::new(&moto_bin)
        .args(["-H", "127.0.0.1", "-p", &MOTO_PORT.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {moto_bin}"))?;
    let endpoint = format!("http://127.0.0.1:{MOTO_PORT}");
    wait_for(&format!("{endpoint}/moto-api/")).await?;
    let sdk = local_sdk_config(&endpoint).await;
    let stack = create_resources(&sdk).await?;
    println!("moto (SQS, Secrets Manager) on {endpoint}");
    println!(
        "queue {}\ndead-letter queue {}",
        stack.queue_url, stack.dlq_url
    );

    let tokens = WebhookTokens::load(SecretStore::new(&sdk), WITIOP_SECRET.into()).await?;
    let webhook: &'static Webhook = Box::leak(Box::new(Webhook {
        sqs: aws_sdk_sqs::Client::new(&sdk),
        tokens,
        env: WebhookEnv {
            queue_url: stack.queue_url.clone(),
            witiop_secret_id: WITIOP_SECRET.into(),
            max_message_bytes: 1_048_576,
        },
    }));
    let app = axum::Router::new()
        .route(WEBHOOK_PATH, any(serve_webhook))
        .with_state(webhook);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", WEBHOOK_PORT)).await?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://127.0.0.1:{WEBHOOK_PORT}{WEBHOOK_PATH}");
    println!("webhook on {url}\n");
    println!("try:\n  curl -i -H 'Authorization: Bearer {WEBHOOK_TOKEN}' -H 'Content-Type: application/json' \\\n       --data @events/conversation-closed.json {url}");

    if exit_after_demo {
        return Ok(());
    }
    println!("\nCtrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn wait_for(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client.get(url).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{url} did not answer; is port {MOTO_PORT} free?")
}

/// The queue, DLQ and secrets of `template.yaml`, with local values.
async fn create_resources(sdk: &aws_config::SdkConfig) -> anyhow::Result<Stack> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let dlq_url = sqs
        .create_queue()
        .queue_name("witiop-conversations-dlq")
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .attributes(QueueAttributeName::MaximumMessageSize, "1048576")
        .send()
        .await?
        .queue_url
        .context("no DLQ URL")?;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .context("no DLQ ARN")?;
    let queue_url = sqs
        .create_queue()
        .queue_name("witiop-conversations")
        .attributes(QueueAttributeName::VisibilityTimeout, "720")
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .attributes(QueueAttributeName::MaximumMessageSize, "1048576")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":5}}"#),
        )
        .send()
        .await?
        .queue_url
        .context("no queue URL")?;

    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let witiop =
        serde_json::json!({"webhook_token": WEBHOOK_TOKEN, "api_token": "local-media-token"});
    secrets
        .create_secret()
        .name(WITIOP_SECRET)
        .secret_string(witiop.to_string())
        .send()
        .await?;
    Ok(Stack { queue_url, dlq_url })
}

/// Translates an HTTP request into the event API Gateway sends a Lambda.
async fn serve_webhook(
    State(webhook): State<&'static Webhook>,
    Query(query): Query<HashMap<String, String>>,
    request: http::Request<axum::body::Body>,
) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 10 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return (http::StatusCode::PAYLOAD_TOO_LARGE, "body over 10 MB").into_response(),
    };
    let mut event = ApiGatewayV2httpRequest::default();
    event.raw_path = Some(parts.uri.path().to_owned());
    event.raw_query_string = parts.uri.query().map(str::to_owned);
    event.query_string_parameters = query.into_iter().collect::<HashMap<_, _>>().into();
    event.headers = parts.headers;
    event.request_context.http.method = parts.method;
    event.request_context.http.path = Some(parts.uri.path().to_owned());
    match String::from_utf8(body.to_vec()) {
        Ok(text) => event.body = Some(text),
        Err(_) => {
            use base64::Engine as _;
            event.body = Some(base64::engine::general_purpose::STANDARD.encode(&body));
            event.is_base64_encoded = true;
        }
    }
    into_http(handle_webhook(webhook, event).await)
}

fn into_http(r: ApiGatewayV2httpResponse) -> Response {
    let status = http::StatusCode::from_u16(r.status_code as u16)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let body = match r.body {
        Some(Body::Text(t)) => t.into_bytes(),
        Some(Body::Binary(b)) => b,
        _ => Vec::new(),
    };
    let mut response = (status, body).into_response();
    response.headers_mut().extend(r.headers);
    response
}
