//! The links Lambda: a signed link → the Case in Salesforce.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::Error;
use witiop_salesforce::config::LinksEnv;
use witiop_salesforce::links::{handle_link, Links};
use witiop_salesforce::salesforce::SalesforceClient;
use witiop_salesforce::settings::SettingsSource;
use witiop_salesforce::startup;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = startup::telemetry("links")?;
    let env = LinksEnv::from_env()?;
    let ids = env.secrets;
    let start = startup::salesforce(&ids).await?;
    let client = SalesforceClient::new(
        start.http,
        Arc::new(start.settings.connection),
        start.store.clone(),
        ids.salesforce_token.clone(),
    );
    let links = Links::new(
        Arc::new(client),
        start.settings.policy.case_external_id_field,
        start.witiop.link_key,
    )
    .with_settings_source(SettingsSource {
        store: start.store,
        secret_id: ids.salesforce,
        witiop_secret_id: Some(ids.witiop),
        token_secret_id: ids.salesforce_token,
        interval: Duration::from_secs(env.settings_refresh_seconds),
    });
    startup::serve_http(metrics, |request| handle_link(&links, request)).await
}
