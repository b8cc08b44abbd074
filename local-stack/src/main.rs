//! `make local`: the pipeline on loopback, no AWS or Salesforce account needed.
//!
//! Starts a moto server, creates the queue, dead-letter queue and secrets as
//! `template.yaml` does, starts the local Salesforce seeded with the users of
//! the product's example, serves the real webhook handler over HTTP the way
//! API Gateway (HTTP API, payload 2.0) calls it, and feeds the real worker
//! handler from the queue the way Lambda's SQS poller does (batches of 10,
//! failed records left to come back after the visibility timeout). Then it
//! prints `make check-salesforce`'s checklist against the local Salesforce,
//! posts the sample event twice and prints the one Case that results.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, Context};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use std::sync::Arc;

use local_salesforce::LocalSalesforce;
use proof::Moto;
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::config::SalesforceSettings;
use witiop_salesforce::links::Links;
use witiop_salesforce::salesforce::{client::http_client, SalesforceClient};
use witiop_salesforce::settings::SettingsSource;
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};
use witiop_salesforce::worker::{
    BatchConfig, ExchangeSettings, MediaAccess, RetrySchedule, Worker, WorkerSettings,
    DEFAULT_MAX_FILE_BYTES,
};

const MOTO_PORT: u16 = 4566;
const WEBHOOK_PORT: u16 = 9000;
const WEBHOOK_TOKEN: &str = "local-webhook-token";
const WITIOP_SECRET: &str = "witiop-local/witiop";
const SALESFORCE_SECRET: &str = "witiop-local/salesforce";
const TOKEN_SECRET: &str = "witiop-local/salesforce-token";
const SALESFORCE_PORT: u16 = 8900;
const CUSTOMER_USER: &str = "witiop.customer@acme.example";
const WEBHOOK_PATH: &str = "/witiop/conversation-closed";
const LINKS_PATH: &str = "/witiop/cases/{conversation_id}";
const LINK_KEY: &str = "local-link-key-0123456789abcdef0123456789";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    witiop_salesforce::telemetry::init();
    let exit_after_demo = std::env::args().any(|a| a == "--exit");

    let moto = Moto::start_on(MOTO_PORT).await?;
    let sdk = moto.sdk.clone();
    // The queue, DLQ and secrets of `template.yaml`, with local values.
    let (queue_url, dlq_url) =
        proof::pipeline::fifo_queues(&moto, "witiop-conversations", 720).await?;
    let witiop = serde_json::json!({
        "webhook_token": WEBHOOK_TOKEN,
        "api_token": "local-media-token",
        "link_key": LINK_KEY,
    });
    moto.secret(WITIOP_SECRET, &witiop.to_string()).await?;
    println!("moto (SQS, Secrets Manager) on {}", moto.endpoint);
    println!("queue {queue_url}\ndead-letter queue {dlq_url}");

    let tokens = WebhookTokens::load(SecretStore::new(&sdk), WITIOP_SECRET.into()).await?;
    let webhook: &'static Webhook = Box::leak(Box::new(proof::pipeline::webhook(
        aws_sdk_sqs::Client::new(&sdk),
        tokens,
        &queue_url,
        WITIOP_SECRET,
        1_048_576,
    )));
    let url = format!("http://127.0.0.1:{WEBHOOK_PORT}{WEBHOOK_PATH}");

    let sf = LocalSalesforce::start(SALESFORCE_PORT)
        .await
        .context("starting the local Salesforce")?;
    sf.set_audit_fields(true);
    sf.seed_example_users();
    // The set-up step of the README that adds the integration's Origin.
    sf.set_picklist(
        "Case",
        "Origin",
        &["Phone", "Email", "Web", "WhatsApp"],
        false,
    );
    println!(
        "local Salesforce on {} (audit fields enabled; users agent.demo and WitiOp Customer)",
        sf.url
    );
    let salesforce_secret = sf.secret(serde_json::json!({
        "set_audit_fields": true,
        "add_attachments": false,
        "customer_comment_username": CUSTOMER_USER,
    }));
    moto.secret(SALESFORCE_SECRET, &salesforce_secret.to_string())
        .await?;
    moto.secret(TOKEN_SECRET, "{}").await?;
    print_checklist(&salesforce_secret).await;
    // The figures printed below are the pipeline's alone.
    sf.reset_counters();

    // The worker, built as its Lambda main builds it: from the secrets.
    let store = SecretStore::new(&sdk);
    let settings = SalesforceSettings::parse(
        SALESFORCE_SECRET,
        &store
            .current(SALESFORCE_SECRET)
            .await?
            .context("no value")?,
    )?;
    let http = http_client();
    let client = SalesforceClient::new(
        http.clone(),
        Arc::new(settings.connection),
        store,
        TOKEN_SECRET.into(),
    );
    let client = Arc::new(client);
    // As the links Lambda: both secrets re-read every minute.
    let links = Arc::new(
        Links::new(
            client.clone(),
            settings.policy.case_external_id_field.clone(),
            Some(LINK_KEY.to_owned().into()),
        )
        .with_settings_source(SettingsSource {
            store: SecretStore::new(&sdk),
            secret_id: SALESFORCE_SECRET.into(),
            witiop_secret_id: Some(WITIOP_SECRET.into()),
            token_secret_id: TOKEN_SECRET.into(),
            interval: Duration::from_secs(60),
        }),
    );
    let worker: &'static Worker = Box::leak(Box::new(Worker::new(WorkerSettings {
        salesforce: ExchangeSettings {
            client,
            policy: settings.policy,
            media: MediaAccess::default(),
            source: None,
        },
        batch: BatchConfig {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            dlq_url: dlq_url.clone(),
            concurrency: 4,
            retry: RetrySchedule {
                queue_url: Some(queue_url.clone()),
                base: Duration::from_secs(5),
                cap: Duration::from_secs(60),
            },
        },
        max_file_bytes: DEFAULT_MAX_FILE_BYTES,
    })));
    // One HTTP API, two routes, as in the template.
    let app = axum::Router::new()
        .route(WEBHOOK_PATH, any(serve_webhook))
        .with_state(webhook)
        .merge(proof::pipeline::links_route(LINKS_PATH, links));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", WEBHOOK_PORT)).await?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("webhook on {url}, case links on http://127.0.0.1:{WEBHOOK_PORT}/witiop/cases/…");
    let poller_sqs = aws_sdk_sqs::Client::new(&sdk);
    let poller_queue = queue_url.clone();
    tokio::spawn(async move { poll(poller_sqs, poller_queue, worker).await });
    println!("worker polling the queue like Lambda's SQS trigger (batches of 10)\n");

    let sample = std::fs::read_to_string("events/conversation-closed.json")
        .context("events/conversation-closed.json")?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut calls = Vec::new();
    let mut case_url = None;
    for attempt in ["first delivery", "duplicate delivery (WitiOp retried)"] {
        let r = client
            .post(&url)
            .bearer_auth(WEBHOOK_TOKEN)
            .header("content-type", "application/json")
            .body(sample.clone())
            .send()
            .await?;
        let status = r.status().as_u16();
        let answer = r.text().await?;
        println!("POST sample event, {attempt}: {status} {answer}");
        if case_url.is_none() {
            case_url = serde_json::from_str::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v["case_url"].as_str().map(str::to_owned));
        }
        wait_until_drained(&moto, &queue_url).await?;
        calls.push(sf.counters().api_calls);
    }
    println!();
    print_cases(&sf);
    let dlq = moto.depth(&dlq_url).await?;
    println!(
        "\nCases: {}  Comments: {}  Contacts: {}  Dead-letter queue: {dlq} message(s)",
        sf.records("Case").len(),
        sf.records("CaseComment").len(),
        sf.records("Contact").len()
    );
    println!(
        "Salesforce API calls: {} for the first delivery, {} for the duplicate; logins: {}",
        calls[0],
        calls[1] - calls[0],
        sf.counters().logins
    );

    if let Some(link) = &case_url {
        // The throttle allows one Salesforce call per link every 2 s.
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let opened = client.get(link).send().await?;
        println!(
            "\nThe agent's link {link}\n  opens with {} Location: {}",
            opened.status().as_u16(),
            opened
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)")
        );
        println!("  curl -i '{link}'");
    }

    println!("\ntry:\n  curl -i -H 'Authorization: Bearer {WEBHOOK_TOKEN}' -H 'Content-Type: application/json' \\\n       --data @events/conversation-closed.json {url}");
    println!("  curl -s {}/__control/dump | python3 -m json.tool", sf.url);
    if exit_after_demo {
        return Ok(());
    }
    println!("\nCtrl-C stops everything.");
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// What Lambda's SQS event source does: receive up to 10, invoke, delete
/// what the function did not report as failed (with the message attributes
/// and the system attributes Lambda passes on: group, receive count).
async fn poll(sqs: aws_sdk_sqs::Client, queue_url: String, worker: &'static Worker) {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(r) => r.messages.unwrap_or_default(),
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        // A failed delete leaves its message to come back, as in Lambda.
        let _ = proof::pipeline::deliver(
            worker,
            &sqs,
            &queue_url,
            &messages,
            Duration::from_secs(120),
        )
        .await;
    }
}

async fn wait_until_drained(moto: &Moto, queue_url: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if moto.depth(queue_url).await? == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the queue did not drain within 30 s")
}

fn print_cases(sf: &LocalSalesforce) {
    let users = sf.records("User");
    let contacts = sf.records("Contact");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    let user_name = |id: &serde_json::Value| {
        users
            .iter()
            .find(|u| u["Id"] == *id)
            .map(|u| format!("{} <{}>", text(&u["Name"]), text(&u["Email"])))
            .unwrap_or_else(|| text(id))
    };
    for case in sf.records("Case") {
        println!(
            "Case {}  Subject: {}",
            text(&case["CaseNumber"]),
            text(&case["Subject"])
        );
        println!("  Owner:   {}", user_name(&case["OwnerId"]));
        if let Some(c) = contacts.iter().find(|c| c["Id"] == case["ContactId"]) {
            println!(
                "  Contact: {} ({})",
                text(&c["Name"]),
                text(&c["MobilePhone"])
            );
        }
        println!("  Origin:  {}", text(&case["Origin"]));
        for line in text(&case["Description"]).lines() {
            println!("  | {line}");
        }
        let comments: Vec<_> = sf
            .records("CaseComment")
            .into_iter()
            .filter(|c| c["ParentId"] == case["Id"])
            .collect();
        println!("  Comments ({}):", comments.len());
        for c in comments {
            println!(
                "    {}  by {}",
                text(&c["CreatedDate"]),
                user_name(&c["CreatedById"])
            );
            for line in text(&c["CommentBody"]).lines() {
                println!("      {line}");
            }
        }
    }
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
    event.request_context.domain_name = Some(format!("127.0.0.1:{WEBHOOK_PORT}"));
    event.request_context.stage = Some("$default".to_owned());
    match String::from_utf8(body.to_vec()) {
        Ok(text) => event.body = Some(text),
        Err(_) => {
            use base64::Engine as _;
            event.body = Some(base64::engine::general_purpose::STANDARD.encode(&body));
            event.is_base64_encoded = true;
        }
    }
    proof::pipeline::into_http(handle_webhook(webhook, event).await)
}

/// `make check-salesforce`'s checklist against the local Salesforce: the
/// same `ops/preflight.py`, given the local secret in a private file rather
/// than through the AWS CLI (which `make local` does not need). A missing
/// python3 or a failed step is said and the run goes on: the checklist
/// informs, the pipeline below is the demonstration.
async fn print_checklist(secret: &serde_json::Value) {
    let path =
        std::env::temp_dir().join(format!("witiop-local-secret-{}.json", std::process::id()));
    let written = {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(secret.to_string().as_bytes()))
    };
    let ran = match written {
        Ok(()) => {
            tokio::process::Command::new("python3")
                .arg("ops/preflight.py")
                .arg(&path)
                .output()
                .await
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&path);
    println!("\nmake check-salesforce against the local Salesforce:");
    match ran {
        Ok(out) => {
            print!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            if !out.status.success() {
                println!("(the checklist found steps to fix; the run goes on)");
            }
        }
        Err(e) => println!("(not run: python3 ops/preflight.py: {e})"),
    }
    println!();
}
