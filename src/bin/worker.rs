//! The worker Lambda: SQS batch of close events → Salesforce Cases.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use witiop_salesforce::config::WorkerEnv;
use witiop_salesforce::salesforce::SalesforceClient;
use witiop_salesforce::startup;
use witiop_salesforce::worker::{
    process_batch, MediaAccess, RetrySchedule, SettingsSource, Worker,
};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = startup::telemetry("worker")?;
    let env = WorkerEnv::from_env()?;
    let ids = env.secrets;
    let start = startup::salesforce(&ids).await?;
    let salesforce = SalesforceClient::new(
        start.http,
        Arc::new(start.settings.connection),
        start.store.clone(),
        ids.salesforce_token.clone(),
    );
    let worker = Worker::new(
        Arc::new(salesforce),
        start.settings.policy,
        aws_sdk_sqs::Client::new(&start.sdk),
        env.dlq_url,
        MediaAccess::from_secret(&start.witiop),
        env.record_concurrency,
    )
    .with_max_file_bytes(env.max_attachment_bytes)
    .with_retry_schedule(RetrySchedule {
        queue_url: env.queue_url,
        base: Duration::from_secs(env.retry_base_seconds),
        cap: Duration::from_secs(env.retry_cap_seconds),
    })
    .with_settings_source(SettingsSource {
        store: start.store,
        secret_id: ids.salesforce,
        witiop_secret_id: Some(ids.witiop),
        token_secret_id: ids.salesforce_token,
        interval: Duration::from_secs(env.settings_refresh_seconds),
    });
    let worker = &worker;
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |event: LambdaEvent<SqsEvent>| async move {
            // Fails the invocation only when the batch says the worker is
            // broken, never for an expected wait (src/worker/health.rs).
            process_batch(worker, event.payload, deadline(event.context.deadline))
                .await
                .into_result()
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
