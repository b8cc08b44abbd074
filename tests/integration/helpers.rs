//! Test harness: a real `moto` server per test, reached over HTTP.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

#[allow(unused_imports)]
pub use proof::{free_port, Moto};

/// A moto server on a free port for one test.
pub async fn moto() -> Moto {
    Moto::start()
        .await
        .expect("moto_server must be installed (make test creates .venv with it)")
}

/// Reads a file of `events/`.
pub fn event_file(name: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("events")
            .join(name),
    )
    .unwrap()
}

/// The Salesforce secret for a local Salesforce at `url`, with `extra` keys merged in.
pub fn salesforce_secret(url: &str, extra: serde_json::Value) -> serde_json::Value {
    local_salesforce::secret_for(url, extra)
}

/// The Case policy of a Salesforce secret.
pub fn case_policy(secret: &serde_json::Value) -> witiop_salesforce::config::CasePolicy {
    witiop_salesforce::config::SalesforceSettings::parse("salesforce", &secret.to_string())
        .expect("valid settings")
        .policy
}

/// A client of the local Salesforce whose token cache is `token_secret` in moto.
pub fn salesforce_client(
    moto: &Moto,
    secret: &serde_json::Value,
    token_secret: &str,
) -> witiop_salesforce::salesforce::SalesforceClient {
    let settings =
        witiop_salesforce::config::SalesforceSettings::parse("salesforce", &secret.to_string())
            .expect("valid settings");
    witiop_salesforce::salesforce::SalesforceClient::new(
        witiop_salesforce::salesforce::client::http_client(),
        std::sync::Arc::new(settings.connection),
        witiop_salesforce::aws::SecretStore::new(&moto.sdk),
        token_secret.to_owned(),
    )
    .with_retry(witiop_salesforce::salesforce::RetryPolicy {
        attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    })
}
