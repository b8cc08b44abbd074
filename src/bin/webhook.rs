//! The webhook Lambda: WitiOp close event → SQS.

use lambda_runtime::Error;
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
    startup::serve_http(metrics, |request| handle_webhook(&webhook, request)).await
}
