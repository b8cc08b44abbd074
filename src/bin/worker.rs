//! The worker Lambda: SQS batch of close events → Salesforce Cases.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use witiop_salesforce::aws::{load_sdk_config, SecretStore};
use witiop_salesforce::config::{SalesforceSettings, WitiopSecret, WorkerEnv};
use witiop_salesforce::salesforce::{client::http_client, SalesforceClient};
use witiop_salesforce::worker::{
    handle_batch, BatchFailed, MediaAccess, RetrySchedule, SettingsSource, Worker,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    witiop_salesforce::telemetry::init();
    let metrics = witiop_salesforce::telemetry::init_metrics("worker")?;
    let env = WorkerEnv::from_env()?;
    let sdk = load_sdk_config().await;
    let store = SecretStore::new(&sdk);
    let read = |id: String| {
        let store = store.clone();
        async move {
            store
                .current(&id)
                .await?
                .ok_or_else(|| Error::from(format!("secret {id} has no value")))
        }
    };
    // A misconfiguration fails the cold start, where the log and the
    // worker-errors alarm show it, rather than every conversation.
    let (salesforce_text, witiop_text) = tokio::join!(
        read(env.salesforce_secret_id.clone()),
        read(env.witiop_secret_id.clone())
    );
    let settings = SalesforceSettings::parse(&env.salesforce_secret_id, &salesforce_text?)?;
    let witiop = WitiopSecret::parse(&env.witiop_secret_id, &witiop_text?)?;
    let http = http_client();
    let salesforce = SalesforceClient::new(
        http.clone(),
        Arc::new(settings.connection),
        store.clone(),
        env.salesforce_token_secret_id.clone(),
    );
    let worker = Worker::new(
        Arc::new(salesforce),
        settings.policy,
        aws_sdk_sqs::Client::new(&sdk),
        env.dlq_url.clone(),
        MediaAccess::from_secret(&witiop),
        env.record_concurrency,
    )
    .with_max_file_bytes(env.max_attachment_bytes)
    .with_retry_schedule(RetrySchedule {
        queue_url: env.queue_url.clone(),
        base: Duration::from_secs(env.retry_base_seconds),
        cap: Duration::from_secs(env.retry_cap_seconds),
    })
    .with_settings_source(SettingsSource {
        store,
        secret_id: env.salesforce_secret_id.clone(),
        witiop_secret_id: Some(env.witiop_secret_id.clone()),
        token_secret_id: env.salesforce_token_secret_id.clone(),
        interval: Duration::from_secs(env.settings_refresh_seconds),
    });
    let worker = &worker;
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |event: LambdaEvent<SqsEvent>| async move {
            let records = event.payload.records.len();
            let response =
                handle_batch(worker, event.payload, deadline(event.context.deadline)).await;
            if records > 0 && response.batch_item_failures.len() == records {
                // Nothing succeeded: fail the invocation so it shows in the error metric.
                return Err(BatchFailed { records });
            }
            Ok::<_, BatchFailed>(response)
        }),
    )
    .await
}

/// The invocation's deadline (epoch milliseconds) as an `Instant`.
fn deadline(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}
