//! Peak resident memory of the release binaries behind a local Lambda
//! Runtime API: the webhook on a 1,000-message event, then the worker on the
//! batch that holds it.

use std::time::Duration;

use local_salesforce::LocalSalesforce;
use proof::{aws_env, release_binary, Function, Moto, RuntimeApi};
use serde_json::json;

use crate::fixtures::{authorised_request, conversation, queues_and_token};
use crate::progress;

/// Peak resident memory of each function, kB (0 where the kernel did not say).
pub struct Memory {
    pub webhook_kb: u64,
    pub worker_kb: u64,
}

pub async fn peak_memory() -> anyhow::Result<Memory> {
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

    let big = conversation(77, "+393331234567", 1000, None).to_string();
    let mut big_request = authorised_request()?;
    big_request["body"] = json!(big);
    let api = RuntimeApi::start().await?;
    let mut hook = Function::start(&release_binary("webhook"), &api, &env, None)?;
    let r = api.invoke(big_request, Duration::from_secs(30)).await;
    anyhow::ensure!(
        r.as_ref().is_ok_and(|v| v["statusCode"] == 202),
        "webhook big event: {r:?}"
    );
    let webhook_kb = hook.peak_rss_kb().unwrap_or(0);
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
    let worker_kb = worker.peak_rss_kb().unwrap_or(0);
    worker.kill().await;
    progress(&format!(
        "peak memory: webhook {webhook_kb} kB, worker {worker_kb} kB"
    ));
    Ok(Memory {
        webhook_kb,
        worker_kb,
    })
}
