//! The worker Lambda: SQS batch of close events → Salesforce Cases.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use witiop_salesforce::config::WorkerEnv;
use witiop_salesforce::startup;
use witiop_salesforce::worker::{process_batch, Worker, WorkerSettings};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = startup::telemetry("worker")?;
    let env = WorkerEnv::from_env()?;
    let start = startup::salesforce(&env.secrets).await?;
    let worker = &Worker::new(WorkerSettings::from_env(env, start));
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
