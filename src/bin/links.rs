//! The links Lambda: a signed link → the Case in Salesforce.

use std::sync::Arc;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use witiop_salesforce::aws::{load_sdk_config, SecretStore};
use witiop_salesforce::config::{LinksEnv, SalesforceSettings, WitiopSecret};
use witiop_salesforce::links::{handle_link, Links};
use witiop_salesforce::salesforce::{client::http_client, SalesforceClient};

#[tokio::main]
async fn main() -> Result<(), Error> {
    witiop_salesforce::telemetry::init();
    let metrics = witiop_salesforce::telemetry::init_metrics("links")?;
    let env = LinksEnv::from_env()?;
    let sdk = load_sdk_config().await;
    let store = SecretStore::new(&sdk);
    let (salesforce, witiop) = tokio::join!(
        store.current(&env.salesforce_secret_id),
        store.current(&env.witiop_secret_id)
    );
    let missing = |id: &str| Error::from(format!("secret {id} has no value"));
    let settings = SalesforceSettings::parse(
        &env.salesforce_secret_id,
        &salesforce?.ok_or_else(|| missing(&env.salesforce_secret_id))?,
    )?;
    let witiop = WitiopSecret::parse(
        &env.witiop_secret_id,
        &witiop?.ok_or_else(|| missing(&env.witiop_secret_id))?,
    )?;
    let client = SalesforceClient::new(
        http_client(),
        Arc::new(settings.connection),
        store,
        env.salesforce_token_secret_id,
    );
    let links = Links::new(
        Arc::new(client),
        settings.policy.case_external_id_field,
        witiop.link_key,
    );
    let links = &links;
    metrics_cloudwatch_embedded::lambda::service::run(
        metrics,
        service_fn(move |event: LambdaEvent<_>| async move {
            Ok::<_, Error>(handle_link(links, event.payload).await)
        }),
    )
    .await
}
