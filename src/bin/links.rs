//! The links Lambda: a signed link → the Case in Salesforce.

use std::sync::Arc;

use lambda_runtime::Error;
use witiop_salesforce::config::SecretIds;
use witiop_salesforce::links::{handle_link, Links};
use witiop_salesforce::salesforce::SalesforceClient;
use witiop_salesforce::startup;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let metrics = startup::telemetry("links")?;
    let ids = SecretIds::from_env()?;
    let start = startup::salesforce(&ids).await?;
    let client = SalesforceClient::new(
        start.http,
        Arc::new(start.settings.connection),
        start.store,
        ids.salesforce_token,
    );
    let links = Links::new(
        Arc::new(client),
        start.settings.policy.case_external_id_field,
        start.witiop.link_key,
    );
    startup::serve_http(metrics, |request| handle_link(&links, request)).await
}
