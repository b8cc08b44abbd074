//! The webhook Lambda: WitiOp close event → SQS.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use witiop_salesforce::aws::{load_sdk_config, SecretStore};
use witiop_salesforce::config::WebhookEnv;
use witiop_salesforce::startup;
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = startup::telemetry("webhook")?;
    let env = WebhookEnv::from_env()?;
    let sdk = load_sdk_config().await;
    let tokens = WebhookTokens::load(SecretStore::new(&sdk), env.witiop_secret_id.clone()).await?;
    let webhook = Webhook {
        sqs: aws_sdk_sqs::Client::new(&sdk),
        tokens,
        env,
    };
    let webhook = &webhook;
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |event: LambdaEvent<_>| async move {
            Ok::<_, Error>(handle_webhook(webhook, event.payload).await)
        }),
    )
    .await
}
