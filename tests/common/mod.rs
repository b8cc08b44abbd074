//! Test harness: a real `moto` server per test, reached over HTTP.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use aws_config::SdkConfig;
use tokio::process::{Child, Command};

/// A moto server on a free loopback port, killed when dropped.
pub struct Moto {
    pub endpoint: String,
    pub sdk: SdkConfig,
    _child: Child,
}

fn moto_binary() -> PathBuf {
    if let Ok(path) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/moto_server");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("moto_server")
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Moto {
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("moto_server must be installed (make test creates .venv with it)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{endpoint}/moto-api/"))
                .send()
                .await
                .is_ok()
            {
                let sdk = witiop_salesforce::aws::local_sdk_config(&endpoint).await;
                return Self {
                    endpoint,
                    sdk,
                    _child: child,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("moto_server did not start on {endpoint}");
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk)
    }

    /// A queue with a DLQ and the template's redrive policy; returns (queue, dlq) URLs.
    pub async fn create_queues(&self, name: &str, max_receive_count: u32) -> (String, String) {
        let sqs = self.sqs();
        let dlq = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
            .clone();
        let policy = format!(
            r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":{max_receive_count}}}"#
        );
        let queue = sqs
            .create_queue()
            .queue_name(name)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
                policy,
            )
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                "30",
            )
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        (queue, dlq)
    }

    pub async fn create_secret(&self, name: &str, value: &str) {
        self.secrets()
            .create_secret()
            .name(name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }

    pub async fn put_secret(&self, name: &str, value: &str) {
        self.secrets()
            .put_secret_value()
            .secret_id(name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }

    /// Receives up to 10 messages with all their attributes.
    pub async fn receive(&self, queue_url: &str) -> Vec<aws_sdk_sqs::types::Message> {
        self.sqs()
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    }
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
    let mut secret = serde_json::json!({
        "login_url": url,
        "consumer_key": local_salesforce::CONSUMER_KEY,
        "consumer_secret": local_salesforce::CONSUMER_SECRET,
        "username": local_salesforce::API_USERNAME,
        "password": local_salesforce::API_PASSWORD,
        "security_token": local_salesforce::SECURITY_TOKEN,
        "api_version": "62.0",
    });
    if let (Some(base), Some(extra)) = (secret.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    secret
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
        std::sync::Arc::new(settings),
        witiop_salesforce::aws::SecretStore::new(&moto.sdk),
        token_secret.to_owned(),
    )
    .with_retry(witiop_salesforce::salesforce::RetryPolicy {
        attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    })
}
