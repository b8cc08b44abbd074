//! Shared by every test module: a real `moto` server (an account per test), reached over
//! HTTP, the local Salesforce with its secret and client, the stack the
//! modules build from them (queues, worker, webhook), and Lambda's SQS poller.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use local_salesforce::{ExampleUsers, LocalSalesforce};
use serde_json::{json, Value};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::salesforce::SalesforceClient;
use witiop_salesforce::webhook::{Webhook, WebhookTokens};
use witiop_salesforce::worker::{
    BatchConfig, ExchangeSettings, MediaAccess, RetrySchedule, SettingsSource, Worker,
    WorkerSettings, DEFAULT_MAX_FILE_BYTES,
};

#[allow(unused_imports)]
pub use proof::{free_port, Moto};

/// The secret that caches the Salesforce token.
pub const TOKENS: &str = "salesforce-token";
/// The WitiOp secret (webhook tokens, link key).
pub const WITIOP: &str = "witiop";

/// An AWS account of its own for one test, on the test binary's one moto server.
pub async fn moto() -> Moto {
    Moto::isolated()
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

/// The sample `conversation.closed` event, as a value to change.
pub fn sample_event() -> Value {
    serde_json::from_str(&event_file("conversation-closed.json")).unwrap()
}

/// The sample webhook request, carrying the sample event.
pub fn webhook_request() -> ApiGatewayV2httpRequest {
    serde_json::from_str(&event_file("webhook-request.json")).unwrap()
}

/// `r` with `body` in place of its own.
pub fn with_body(mut r: ApiGatewayV2httpRequest, body: &str) -> ApiGatewayV2httpRequest {
    r.body = Some(body.to_owned());
    r
}

/// `r` with `auth` as its `Authorization` header.
pub fn with_auth(mut r: ApiGatewayV2httpRequest, auth: &str) -> ApiGatewayV2httpRequest {
    r.headers
        .insert("authorization", http::HeaderValue::from_str(auth).unwrap());
    r
}

/// The sample webhook request with `body`, bearing `token`.
pub fn bearing(token: &str, body: &str) -> ApiGatewayV2httpRequest {
    with_auth(
        with_body(webhook_request(), body),
        &format!("Bearer {token}"),
    )
}

/// The webhook as deployed (256 KiB queue messages), queueing into `queue`.
pub fn webhook(moto: &Moto, queue: &str, tokens: WebhookTokens) -> Webhook {
    proof::pipeline::webhook(moto.sqs(), tokens, queue, WITIOP, 262_144)
}

/// The Salesforce secret for a local Salesforce at `url`, with `extra` keys merged in.
pub fn salesforce_secret(url: &str, extra: Value) -> Value {
    local_salesforce::secret_for(url, extra)
}

/// The Case policy of a Salesforce secret.
pub fn case_policy(secret: &Value) -> witiop_salesforce::config::CasePolicy {
    witiop_salesforce::config::SalesforceSettings::parse("salesforce", &secret.to_string())
        .expect("valid settings")
        .policy
}

/// A client of the local Salesforce whose token cache is `token_secret` in moto.
pub fn salesforce_client(moto: &Moto, secret: &Value, token_secret: &str) -> SalesforceClient {
    let settings =
        witiop_salesforce::config::SalesforceSettings::parse("salesforce", &secret.to_string())
            .expect("valid settings");
    SalesforceClient::new(
        witiop_salesforce::salesforce::client::http_client(),
        Arc::new(settings.connection),
        SecretStore::new(&moto.sdk),
        token_secret.to_owned(),
    )
    .with_retry(witiop_salesforce::salesforce::RetryPolicy {
        attempts: 4,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        ..Default::default()
    })
}

/// A worker on the local Salesforce of `secret`, parking into `dlq`, with
/// its own client sharing the token cache [`TOKENS`] and no media access.
pub fn worker(moto: &Moto, secret: &Value, dlq: &str, concurrency: usize) -> Worker {
    Worker::new(worker_settings(moto, secret, dlq, concurrency))
}

/// The settings of [`worker`]: no backoff, no re-read of the secrets.
pub fn worker_settings(
    moto: &Moto,
    secret: &Value,
    dlq: &str,
    concurrency: usize,
) -> WorkerSettings {
    WorkerSettings {
        salesforce: ExchangeSettings {
            client: Arc::new(salesforce_client(moto, secret, TOKENS)),
            policy: case_policy(secret),
            media: MediaAccess::default(),
            source: None,
        },
        batch: BatchConfig {
            sqs: moto.sqs(),
            dlq_url: dlq.to_owned(),
            concurrency,
            retry: RetrySchedule::default(),
        },
        max_file_bytes: DEFAULT_MAX_FILE_BYTES,
    }
}

/// moto holding an empty token cache, and the local Salesforce (no users
/// seeded) with the secret for it.
pub struct Org {
    pub moto: Moto,
    pub sf: LocalSalesforce,
    pub secret: Value,
}

/// An [`Org`] whose secret has `settings` merged in.
pub async fn org(settings: Value) -> Org {
    let moto = moto().await;
    moto.secret(TOKENS, "{}").await.unwrap();
    let sf = LocalSalesforce::start(0).await.unwrap();
    let secret = salesforce_secret(&sf.url, settings);
    Org { moto, sf, secret }
}

impl Org {
    /// A client of the local Salesforce with the org's secret and token cache.
    pub fn client(&self) -> SalesforceClient {
        salesforce_client(&self.moto, &self.secret, TOKENS)
    }
}

/// An [`Org`] seeded with the example users, the queue and its DLQ, and the
/// worker reading the queue.
pub struct Stack {
    pub moto: Moto,
    pub sf: LocalSalesforce,
    pub secret: Value,
    pub users: ExampleUsers,
    pub queue: String,
    pub dlq: String,
    pub worker: Worker,
}

/// How a [`Stack`] is built; [`stack`] starts from the defaults.
pub struct StackBuilder {
    settings: Value,
    fifo: bool,
    visibility: u32,
    concurrency: usize,
    retry: Option<(Duration, Duration)>,
    settings_secret: Option<&'static str>,
    before_users: Box<dyn FnOnce(&LocalSalesforce)>,
}

/// A stack with standard queues (30 s visibility, parked after 5
/// receives), Salesforce settings `{}` and a worker of concurrency 4
/// that leaves retries to the queue's visibility timeout.
pub fn stack() -> StackBuilder {
    StackBuilder {
        settings: json!({}),
        fifo: false,
        visibility: 30,
        concurrency: 4,
        retry: None,
        settings_secret: None,
        before_users: Box::new(|_| {}),
    }
}

impl StackBuilder {
    /// Keys merged into the Salesforce secret.
    pub fn settings(mut self, settings: Value) -> Self {
        self.settings = settings;
        self
    }

    /// FIFO queues as the template makes them, instead.
    pub fn fifo(mut self) -> Self {
        self.fifo = true;
        self
    }

    /// The queue's visibility timeout, in seconds (30 by default).
    pub fn visibility(mut self, seconds: u32) -> Self {
        self.visibility = seconds;
        self
    }

    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// The worker backs a failed record off from `base` up to `cap`.
    pub fn retry(mut self, base: Duration, cap: Duration) -> Self {
        self.retry = Some((base, cap));
        self
    }

    /// The Salesforce secret is stored as `id`, and the worker re-reads it
    /// after a refused login (at any interval).
    pub fn settings_in_secret(mut self, id: &'static str) -> Self {
        self.settings_secret = Some(id);
        self
    }

    /// Runs `before` on the local Salesforce before the example users exist.
    pub fn before_users(mut self, before: impl FnOnce(&LocalSalesforce) + 'static) -> Self {
        self.before_users = Box::new(before);
        self
    }

    pub async fn start(self) -> Stack {
        let Org { moto, sf, secret } = org(self.settings).await;
        let (queue, dlq) = if self.fifo {
            proof::pipeline::fifo_queues(&moto, "conversations", self.visibility)
                .await
                .unwrap()
        } else {
            moto.queues("conversations", self.visibility, 5)
                .await
                .unwrap()
        };
        (self.before_users)(&sf);
        let users = sf.seed_example_users();
        let mut settings = worker_settings(&moto, &secret, &dlq, self.concurrency);
        if let Some((base, cap)) = self.retry {
            settings.batch.retry = RetrySchedule {
                queue_url: Some(queue.clone()),
                base,
                cap,
            };
        }
        if let Some(id) = self.settings_secret {
            moto.secret(id, &secret.to_string()).await.unwrap();
            settings.salesforce.source = Some(SettingsSource {
                store: SecretStore::new(&moto.sdk),
                secret_id: id.into(),
                witiop_secret_id: None,
                token_secret_id: TOKENS.into(),
                interval: Duration::ZERO,
            });
        }
        let worker = Worker::new(settings);
        Stack {
            moto,
            sf,
            secret,
            users,
            queue,
            dlq,
            worker,
        }
    }
}

impl Stack {
    /// One pass of Lambda's SQS poller over the stack's queue.
    pub async fn poll(&self) -> (usize, Vec<String>) {
        poll(&self.worker, &self.moto, &self.queue).await
    }
}

/// One pass of Lambda's SQS poller: receive what is visible, invoke the
/// worker, delete what it did not report as failed. Returns the number
/// received and the failed message ids.
pub async fn poll(worker: &Worker, moto: &Moto, queue: &str) -> (usize, Vec<String>) {
    let messages = moto.receive(queue).await.unwrap();
    let failed = proof::pipeline::deliver(
        worker,
        &moto.sqs(),
        queue,
        &messages,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    (messages.len(), failed)
}

impl Stack {
    /// `sh ops/<script>` on this stack's queues, as an operator runs it
    /// (the AWS CLI against this moto), with `env` added.
    pub async fn operator(&self, script: &str, env: &[(&str, &str)]) -> proof::operator::Run {
        operator_on(&self.moto, &self.queue, &self.dlq, script, env).await
    }
}

/// `sh ops/<script>` on the queues `queue` and `dlq` of `moto`.
pub async fn operator_on(
    moto: &Moto,
    queue: &str,
    dlq: &str,
    script: &str,
    env: &[(&str, &str)],
) -> proof::operator::Run {
    let home = proof::operator::Scratch::new();
    let account = moto.account_env();
    let mut all = vec![("QUEUE_URL", queue), ("DLQ_URL", dlq), ("DLQ_WAIT", "1")];
    // The operator's credentials are this test's account's.
    all.extend(account.iter().map(|(k, v)| (*k, v.as_str())));
    all.extend_from_slice(env);
    proof::operator::ops(&moto.endpoint, &home.0, script, &[], &all).await
}
