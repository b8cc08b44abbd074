//! The operator commands of `ops/` (`make outputs`, `smoke`, `status`,
//! `pause`, `resume`, `check-salesforce`, `dlq`, `redrive`), run as an
//! operator runs them: POSIX `sh`, the AWS CLI (installed into `.venv` from
//! requirements-dev.txt), curl and python3, against moto (a CloudFormation
//! stack with FIFO queues, a Lambda function and its SQS trigger; secrets;
//! alarms), the local Salesforce and the real webhook handler on loopback.
//!
//! moto does not implement StartMessageMoveTask: it answers a bare HTTP 500.
//! The fallback to per-message moves is tested against that answer; the move
//! task itself, and the refusals that must never lead to a fallback (access
//! denied, throttling), against a small SQS stand-in in front of moto that
//! answers those two operations as SQS does and passes everything else on.
//! The Rust `ops` functions are run against the same endpoints.
//!
//! Every process started here gets loopback endpoints, dummy credentials, a
//! private HOME and a proxy on a closed loopback port, so that nothing can
//! reach beyond 127.0.0.1 even by mistake.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use local_salesforce::LocalSalesforce;
use proof::Moto;
use serde_json::{json, Value};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::ops::{self, Redrive};

const STACK: &str = "witiop-test";
const WEBHOOK_TOKEN: &str = "webhook-token-abc123XYZ";
/// The webhook URL in the stack's outputs.
const WEBHOOK_URL: &str =
    "https://abc.execute-api.eu-west-1.amazonaws.com/witiop/conversation-closed";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The AWS CLI of the project's virtualenv, else the one on PATH.
fn aws_cli() -> String {
    let venv = root().join(".venv/bin/aws");
    if venv.exists() {
        venv.display().to_string()
    } else {
        "aws".to_owned()
    }
}

/// What a command printed and how it ended.
struct Run {
    ok: bool,
    out: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ok={}\n{}", self.ok, self.out)
    }
}

/// Checks of a [`Run`], chained: each panics with the whole run if it fails.
impl Run {
    #[track_caller]
    fn succeeds(&self) -> &Self {
        assert!(self.ok, "{self:?}");
        self
    }

    #[track_caller]
    fn fails(&self) -> &Self {
        assert!(!self.ok, "{self:?}");
        self
    }

    /// Every one of `expected` is in the output.
    #[track_caller]
    fn says(&self, expected: &[&str]) -> &Self {
        for e in expected {
            assert!(self.out.contains(e), "{e} in {self:?}");
        }
        self
    }

    /// None of `unexpected` is in the output.
    #[track_caller]
    fn never_says(&self, unexpected: &[&str]) -> &Self {
        for u in unexpected {
            assert!(!self.out.contains(u), "{u} printed: {self:?}");
        }
        self
    }
}

/// A private folder for one test (HOME, TMPDIR, templates).
fn scratch() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("ops-commands-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A command with only loopback in reach.
fn command(program: &str, endpoint: &str, home: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(program);
    let path = format!(
        "{}:{}",
        root().join(".venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    c.env_clear()
        .current_dir(root())
        .env("PATH", path)
        .env("HOME", home)
        .env("TMPDIR", home)
        .env("AWS_CONFIG_FILE", home.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.join("no-aws-credentials"),
        )
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_CLI", aws_cli());
    for proxy in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
        c.env(proxy, "http://127.0.0.1:9");
    }
    for no_proxy in ["NO_PROXY", "no_proxy"] {
        c.env(no_proxy, "127.0.0.1,localhost");
    }
    c
}

struct Ops {
    moto: Moto,
    home: PathBuf,
    /// The stack's queues (a Lambda trigger reads `queue`).
    queue: String,
    dlq: String,
}

impl Ops {
    /// moto with the stand-in stack: what the scripts read of the real one.
    async fn start() -> Self {
        let moto = Moto::start()
            .await
            .expect("moto_server must be installed (make test creates .venv with it)");
        let home = scratch();
        moto.secret(
            "witiop",
            &json!({"webhook_token": WEBHOOK_TOKEN, "api_token": ""}).to_string(),
        )
        .await
        .unwrap();
        moto.secret("salesforce", "{}").await.unwrap();
        let template = home.join("stack.yaml");
        std::fs::write(&template, STACK_TEMPLATE).unwrap();
        let mut o = Self {
            moto,
            home,
            queue: String::new(),
            dlq: String::new(),
        };
        let created = o
            .aws(&[
                "cloudformation",
                "create-stack",
                "--stack-name",
                STACK,
                "--template-body",
                &format!("file://{}", template.display()),
                "--parameters",
                &format!("ParameterKey=WebhookUrl,ParameterValue={WEBHOOK_URL}"),
                "ParameterKey=WitiopSecretArn,ParameterValue=witiop",
                "ParameterKey=SalesforceSecretArn,ParameterValue=salesforce",
            ])
            .await;
        created.succeeds();
        let sqs = o.moto.sqs();
        let url = |name: &'static str| {
            let sqs = sqs.clone();
            async move {
                sqs.get_queue_url()
                    .queue_name(format!("{STACK}-{name}"))
                    .send()
                    .await
                    .unwrap()
                    .queue_url
                    .unwrap()
            }
        };
        o.queue = url("queue.fifo").await;
        o.dlq = url("dlq.fifo").await;
        o
    }

    /// The AWS CLI against moto (test set-up and checks).
    async fn aws(&self, args: &[&str]) -> Run {
        let mut c = command(&aws_cli(), &self.moto.endpoint, &self.home);
        c.args([
            "--endpoint-url",
            &self.moto.endpoint,
            "--region",
            "eu-west-1",
        ])
        .args(args);
        run(c).await
    }

    /// `sh ops/<script> args…` with `env` added.
    async fn ops(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.ops_at(&self.moto.endpoint, script, args, env).await
    }

    async fn ops_at(
        &self,
        endpoint: &str,
        script: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        let mut c = command("sh", endpoint, &self.home);
        c.arg(format!("ops/{script}"))
            .args(args)
            .env("STACK", STACK);
        for (k, v) in env {
            c.env(k, v);
        }
        run(c).await
    }

    /// Queues no trigger reads, `conversations.fifo` and its DLQ, with
    /// `parked` (conversation, customer group) parked in the DLQ.
    async fn parking(&self, parked: &[(u32, &str)]) -> Parking {
        let sqs = self.moto.sqs();
        let (queue, dlq) = fifo_pair(&sqs, "conversations").await;
        let p = Parking { sqs, queue, dlq };
        for &(conversation, group) in parked {
            p.park(conversation, group).await;
        }
        p
    }

    /// `sh ops/redrive` from `p`'s DLQ to its queue, against SQS at
    /// `endpoint`, with `env` added.
    async fn redrive(&self, endpoint: &str, p: &Parking, env: &[(&str, &str)]) -> Run {
        let mut all = vec![("QUEUE_URL", p.queue.as_str()), ("DLQ_URL", p.dlq.as_str())];
        all.extend_from_slice(env);
        self.ops_at(endpoint, "redrive", &[], &all).await
    }

    async fn trigger_state(&self) -> String {
        let arn = queue_arn(&self.moto.sqs(), &self.queue).await;
        let r = self
            .aws(&[
                "lambda",
                "list-event-source-mappings",
                "--event-source-arn",
                &arn,
            ])
            .await;
        let v: Value = serde_json::from_str(&r.out).unwrap();
        v["EventSourceMappings"][0]["State"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

async fn run(mut c: tokio::process::Command) -> Run {
    let out = c.output().await.expect("the command starts");
    Run {
        ok: out.status.success(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// What the scripts read of the real stack, as moto's CloudFormation can
/// make it: the FIFO queues (named: moto needs a name ending in .fifo), the
/// worker function and its SQS trigger, and the outputs. moto's
/// CloudFormation creates no secret or alarm, so the secrets' ids come in as
/// parameters and the alarms are made with the CloudWatch API, named as
/// CloudFormation names them (`<stack>-<logical id>-<suffix>`).
const STACK_TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  WebhookUrl: {Type: String}
  WitiopSecretArn: {Type: String}
  SalesforceSecretArn: {Type: String}
Resources:
  ConversationDeadLetterQueue:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      QueueName: !Sub "${AWS::StackName}-dlq.fifo"
  ConversationQueue:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      QueueName: !Sub "${AWS::StackName}-queue.fifo"
      VisibilityTimeout: 720
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt ConversationDeadLetterQueue.Arn
        maxReceiveCount: 5
  WorkerRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: "sts:AssumeRole"}]
  WorkerFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt WorkerRole.Arn
      Code: {ZipFile: "def handler(event, context): return {}"}
  WorkerFunctionConversations:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt ConversationQueue.Arn
      FunctionName: !Ref WorkerFunction
      BatchSize: 10
Outputs:
  WebhookUrl: {Value: !Ref WebhookUrl}
  QueueUrl: {Value: !Ref ConversationQueue}
  DeadLetterQueueUrl: {Value: !Ref ConversationDeadLetterQueue}
  WitiopSecretArn: {Value: !Ref WitiopSecretArn}
  SalesforceSecretArn: {Value: !Ref SalesforceSecretArn}
"#;

/// The attributes `names` of the queue at `url`.
async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    names: &[QueueAttributeName],
) -> HashMap<QueueAttributeName, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(names.to_vec()))
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let arn = QueueAttributeName::QueueArn;
    queue_attributes(sqs, url, std::slice::from_ref(&arn))
        .await
        .remove(&arn)
        .unwrap()
}

/// See [`Ops::parking`].
struct Parking {
    sqs: aws_sdk_sqs::Client,
    queue: String,
    dlq: String,
}

impl Parking {
    async fn park(&self, conversation: u32, group: &str) {
        park(&self.sqs, &self.dlq, conversation, group).await;
    }

    /// (waiting, in flight) of the DLQ, then of the queue.
    async fn depths(&self) -> ((u64, u64), (u64, u64)) {
        (
            depth(&self.sqs, &self.dlq).await,
            depth(&self.sqs, &self.queue).await,
        )
    }
}

/// An SQS client of the endpoint at `endpoint`.
async fn sqs_at(endpoint: &str) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&witiop_salesforce::aws::local_sdk_config(endpoint).await)
}

/// A FIFO queue and its FIFO DLQ, with no trigger reading them.
async fn fifo_pair(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let create = |n: String, attrs: Vec<(QueueAttributeName, String)>| async move {
        let mut r = sqs
            .create_queue()
            .queue_name(n)
            .attributes(QueueAttributeName::FifoQueue, "true");
        for (k, v) in attrs {
            r = r.attributes(k, v);
        }
        r.send().await.unwrap().queue_url.unwrap()
    };
    let dlq = create(format!("{name}-dlq.fifo"), vec![]).await;
    let arn = queue_arn(sqs, &dlq).await;
    let policy = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":5}}"#);
    let queue = create(
        format!("{name}.fifo"),
        vec![(QueueAttributeName::RedrivePolicy, policy)],
    )
    .await;
    (queue, dlq)
}

fn string_attribute(value: &str) -> aws_sdk_sqs::types::MessageAttributeValue {
    aws_sdk_sqs::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

/// Parks a conversation in a DLQ as the worker does (src/queue.rs names).
async fn park(sqs: &aws_sdk_sqs::Client, dlq: &str, conversation: u32, group: &str) {
    sqs.send_message()
        .queue_url(dlq)
        .message_body(json!({"conversation": {"id": conversation}}).to_string())
        .message_group_id(group)
        .message_deduplication_id(format!("park-{conversation}"))
        .message_attributes(
            "conversation_id",
            string_attribute(&conversation.to_string()),
        )
        .message_attributes("error_code", string_attribute("configuration"))
        .message_attributes(
            "error_message",
            string_attribute(&format!(
                "Case.Origin: bad value for conversation {conversation}"
            )),
        )
        .message_attributes("failed_at", string_attribute("2026-11-26T03:00:00Z"))
        .send()
        .await
        .unwrap();
}

/// (waiting, in flight) of the queue at `url`.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    let names = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ];
    let a = queue_attributes(sqs, url, &names).await;
    let n = |k: &QueueAttributeName| a[k].parse().unwrap();
    (n(&names[0]), n(&names[1]))
}

/// Everything in a queue (short polls, each message hidden 60 s).
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

fn group_of(m: &aws_sdk_sqs::types::Message) -> String {
    m.attributes().unwrap()[&MessageSystemAttributeName::MessageGroupId].clone()
}

fn attribute(m: &aws_sdk_sqs::types::Message, name: &str) -> String {
    m.message_attributes().unwrap()[name]
        .string_value()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_scripts_are_posix_shell() {
    for script in [
        "outputs",
        "smoke",
        "status",
        "trigger",
        "check-salesforce",
        "dlq",
        "redrive",
        "lib.sh",
    ] {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg(root().join("ops").join(script))
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
    }
}

#[tokio::test]
async fn outputs_lists_the_stack_and_the_complete_webhook_url() {
    let o = Ops::start().await;
    o.ops("outputs", &[], &[]).await.succeeds().says(&[
        "AWS account 123456789012",
        "CREATE_COMPLETE",
        "QueueUrl",
        "witiop-test-queue.fifo",
        "DeadLetterQueueUrl",
        "CONTAINS THE WEBHOOK TOKEN",
        "https://abc.execute-api.eu-west-1.amazonaws.com/witiop/conversation-closed?token=webhook-token-abc123XYZ",
    ]);
    // A stack that is not there: said, and a failure.
    o.ops("outputs", &[], &[("STACK", "no-such-stack")])
        .await
        .fails()
        .says(&["no-such-stack"]);
}

/// The real webhook handler behind HTTP on loopback, as API Gateway calls it.
async fn serve_webhook(moto: &Moto, queue_url: &str) -> String {
    use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
    use witiop_salesforce::webhook::{handle_webhook, WebhookTokens};
    let tokens = WebhookTokens::load(SecretStore::new(&moto.sdk), "witiop".into())
        .await
        .unwrap();
    let webhook = Arc::new(proof::pipeline::webhook(
        moto.sqs(),
        tokens,
        queue_url,
        "witiop",
        1_048_576,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |request: http::Request<axum::body::Body>| {
        let webhook = webhook.clone();
        async move {
            let (parts, body) = request.into_parts();
            // API Gateway's routing: one route, anything else a 404.
            if parts.uri.path() != "/witiop/conversation-closed" {
                return (StatusCode::NOT_FOUND, r#"{"message":"Not Found"}"#).into_response();
            }
            let body = axum::body::to_bytes(body, 2 << 20).await.unwrap();
            let mut event = ApiGatewayV2httpRequest::default();
            event.raw_path = Some(parts.uri.path().to_owned());
            event.raw_query_string = parts.uri.query().map(str::to_owned);
            event.headers = parts.headers;
            event.request_context.http.method = parts.method;
            event.request_context.http.path = Some(parts.uri.path().to_owned());
            event.body = Some(String::from_utf8(body.to_vec()).unwrap());
            proof::pipeline::into_http(handle_webhook(&webhook, event).await)
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/witiop/conversation-closed")
}

#[tokio::test]
async fn smoke_proves_url_and_token_and_queues_nothing() {
    let moto = Moto::start().await.unwrap();
    let (events, _) = fifo_pair(&moto.sqs(), "events").await;
    // The webhook's secret must exist before it starts; Ops creates the rest.
    moto.secret(
        "witiop",
        &json!({"webhook_token": WEBHOOK_TOKEN}).to_string(),
    )
    .await
    .unwrap();
    let url = serve_webhook(&moto, &events).await;
    let home = scratch();
    let smoke = |env: Vec<(&'static str, String)>| {
        let mut c = command("sh", &moto.endpoint, &home);
        c.arg("ops/smoke").env("WEBHOOK_URL", &url);
        for (k, v) in env {
            c.env(k, v);
        }
        run(c)
    };
    smoke(vec![("WITIOP_SECRET_ID", "witiop".into())])
        .await
        .succeeds()
        .says(&["OK: 202 ignored", "?token=<webhook_token>"])
        // The token is never printed.
        .never_says(&[WEBHOOK_TOKEN]);
    assert_eq!(depth(&moto.sqs(), &events).await, (0, 0), "nothing queued");

    // A token the webhook does not trust: a 401, said plainly, a failure.
    moto.secret(
        "stale",
        &json!({"webhook_token": "not-the-webhook-token"}).to_string(),
    )
    .await
    .unwrap();
    smoke(vec![("WITIOP_SECRET_ID", "stale".into())])
        .await
        .fails()
        .says(&["HTTP 401", "refused the token"]);
    // A wrong path: the route is named.
    smoke(vec![
        ("WITIOP_SECRET_ID", "witiop".into()),
        ("WEBHOOK_URL", url.replace("conversation-closed", "closed")),
    ])
    .await
    .fails()
    .says(&["HTTP 404", "no such route"]);
    let _ = std::fs::remove_dir_all(home);
}

#[tokio::test]
async fn status_pause_and_resume() {
    let o = Ops::start().await;
    for alarm in [
        "DeadLetterQueueNotEmptyAlarm-1A2B3C",
        "WorkerErrorsAlarm-4D5E6F",
    ] {
        let name = format!("{STACK}-{alarm}");
        o.aws(&[
            "cloudwatch",
            "put-metric-alarm",
            "--alarm-name",
            &name,
            "--namespace",
            "AWS/SQS",
            "--metric-name",
            "ApproximateNumberOfMessagesVisible",
            "--statistic",
            "Maximum",
            "--period",
            "60",
            "--evaluation-periods",
            "1",
            "--threshold",
            "0",
            "--comparison-operator",
            "GreaterThanThreshold",
        ])
        .await
        .succeeds();
    }
    o.ops("status", &[], &[])
        .await
        .succeeds()
        .says(&["All clear.", ": Enabled ("]);

    // A parked conversation and a firing alarm need attention.
    park(&o.moto.sqs(), &o.dlq, 7, "393331234567").await;
    o.aws(&[
        "cloudwatch",
        "set-alarm-state",
        "--alarm-name",
        &format!("{STACK}-DeadLetterQueueNotEmptyAlarm-1A2B3C"),
        "--state-value",
        "ALARM",
        "--state-reason",
        "Threshold Crossed: 1 datapoint [1.0] was greater than the threshold (0.0).",
    ])
    .await
    .succeeds();
    o.ops("status", &[], &[]).await.succeeds().says(&[
        "!!witiop-test-DeadLetterQueueNotEmptyAlarm-1A2B3C  ALARM",
        "Threshold Crossed",
        "witiop-test-WorkerErrorsAlarm-4D5E6F",
        "dead-letter:   1 waiting, 0 in flight",
        "1 alarm(s) in ALARM",
        "1 conversation(s) in the dead-letter queue",
    ]);

    // Pause: the trigger is disabled, and says so; twice is harmless.
    o.ops("trigger", &["pause"], &[])
        .await
        .succeeds()
        .says(&["Enabled -> Disabled", "Paused"]);
    assert_eq!(o.trigger_state().await, "Disabled");
    o.ops("trigger", &["pause"], &[])
        .await
        .succeeds()
        .says(&["already Disabled"]);
    o.ops("status", &[], &[])
        .await
        .says(&["DISABLED, paused", "make resume"]);

    o.ops("trigger", &["resume"], &[])
        .await
        .succeeds()
        .says(&["Disabled -> Enabled", "Resumed"]);
    assert_eq!(o.trigger_state().await, "Enabled");

    // A queue no trigger reads: said, and a failure.
    let (lonely, _) = fifo_pair(&o.moto.sqs(), "lonely").await;
    o.ops("trigger", &["pause"], &[("QUEUE_URL", lonely.as_str())])
        .await
        .fails()
        .says(&["no Lambda trigger reads"]);
}

/// `make check-salesforce` with `secret` as the stack's Salesforce secret.
async fn check_salesforce(o: &Ops, secret: Value, args: &[&str]) -> Run {
    o.moto
        .put_secret("salesforce", &secret.to_string())
        .await
        .unwrap();
    o.ops("check-salesforce", args, &[]).await
}

/// The secrets a check must never print.
const SECRETS: [&str; 3] = [
    local_salesforce::API_PASSWORD,
    local_salesforce::SECURITY_TOKEN,
    local_salesforce::CONSUMER_SECRET,
];

/// An org set up as the README asks, and the secret that matches it.
fn set_up_org(sf: &LocalSalesforce) -> Value {
    sf.set_api_limit(15_000);
    sf.set_audit_fields(true);
    sf.seed_example_users();
    sf.set_picklist(
        "Case",
        "Origin",
        &["Phone", "Email", "Web", "WhatsApp"],
        true,
    );
    sf.restrict_picklist("Case", "Priority", &["High", "Medium", "Low"]);
    sf.add_external_id("Case", "WitiOp_Conversation_Id__c");
    let account = sf
        .insert("Account", json!({"Name": "WhatsApp customers"}))
        .unwrap();
    sf.secret(json!({
        "set_audit_fields": true,
        "customer_comment_username": local_salesforce::EXAMPLE_CUSTOMER_USERNAME,
        "default_owner_username": "agent.demo@acme.example.crm",
        "case_origin": "WhatsApp",
        "case_external_id_field": "WitiOp_Conversation_Id__c",
        "contact_account_id": account,
        "case_fields": {"Priority": "High", "Status": "Working"},
    }))
}

#[tokio::test]
async fn check_salesforce_passes_an_org_set_up_as_the_readme_asks() {
    let o = Ops::start().await;
    let sf = LocalSalesforce::start(0).await.unwrap();
    let secret = set_up_org(&sf);
    check_salesforce(&o, secret.clone(), &[])
        .await
        .succeeds()
        .says(&[
            "✓ login: password flow as witiop.api@acme.example; instance http://127.0.0.1",
            "✓ api_version: v62.0 is served",
            "✓ audit fields: the API user may set CreatedDate and CreatedById (through permission set",
            "✓ access Case: read and create",
            "✓ access CaseComment: read and create",
            "✓ access Contact: read and create",
            "✓ customer_comment_username: witiop.customer@acme.example is active, full licence",
            "✓ default_owner_username: agent.demo@acme.example.crm is active, full licence",
            "✓ case_origin: 'WhatsApp' is a Case Origin value",
            "✓ case_external_id_field: Case.WitiOp_Conversation_Id__c is a unique External ID text field",
            "✓ contact_account_id: Account 'WhatsApp customers'",
            "✓ case_fields.Priority: createable picklist, value accepted",
            "✓ case_fields.Status: createable picklist, value accepted",
            "✓ Case assignment rule: none active",
            "✓ Contact duplicate rules: none active",
            "✓ API usage: DailyApiRequests: 14,9",
            "0 to fix, 0 to read. Nothing was written.",
        ])
        .never_says(&SECRETS)
        .never_says(&["✗"]);

    // --json: the same checklist, alone on stdout, for machines.
    let run = check_salesforce(&o, secret, &["--json"]).await;
    run.succeeds();
    let json: Value = serde_json::Deserializer::from_str(&run.out)
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(json["ok"], true, "{json}");
    let checks = json["checks"].as_array().unwrap();
    assert!(checks.iter().all(|c| c["status"] == "pass"), "{json}");
    assert!(checks.iter().any(|c| c["check"] == "API usage"));

    // Client credentials, after the password flow's retirement.
    sf.set_password_flow(false);
    check_salesforce(
        &o,
        json!({
            "auth_flow": "client_credentials",
            "login_url": sf.url,
            "consumer_key": local_salesforce::CONSUMER_KEY,
            "consumer_secret": local_salesforce::CONSUMER_SECRET,
        }),
        &[],
    )
    .await
    .succeeds()
    .says(&["✓ login: client_credentials flow", "of 15,000 remaining"]);

    // Nothing was written: no record, no cached token.
    for object in ["Case", "Contact", "CaseComment"] {
        assert!(sf.records(object).is_empty(), "{object}");
    }
    assert_eq!(sf.records("Account").len(), 1);
}

#[tokio::test]
async fn check_salesforce_names_every_missed_step_and_what_to_do() {
    let o = Ops::start().await;
    let sf = LocalSalesforce::start(0).await.unwrap();
    let mut secret = set_up_org(&sf);
    // Every step of the set-up missed or undone.
    sf.set_audit_fields(false);
    sf.add_user("gone@acme.crm", "gone@acme.example", "Gone", "User", false);
    sf.add_user_of_type(
        "portal@acme.crm",
        "portal@acme.example",
        "Portal",
        "User",
        true,
        "PowerCustomerSuccess",
    );
    sf.set_object_readable("CaseComment", false);
    sf.set_object_readable("Contact", false);
    sf.set_case_assignment_rule(Some(sf.api_user_id.clone()));
    sf.set_contact_duplicate_rule(true);
    sf.use_api_calls(13_000);
    for (key, value) in [
        ("customer_comment_username", json!("gone@acme.crm")),
        ("default_owner_username", json!("portal@acme.crm")),
        ("case_origin", json!("Fax")),
        ("case_external_id_field", json!("Subject")),
        ("contact_account_id", json!("001Wt0000000zzz")),
        (
            "case_fields",
            json!({"Priority": "Urgent", "Subject": "x", "Nope__c": 1, "CaseNumber": "1"}),
        ),
    ] {
        secret[key] = value;
    }
    check_salesforce(&o, secret.clone(), &[])
        .await
        .fails()
        .says(&[
            "✓ login",
            "✗ audit fields: the API user lacks 'Set Audit Fields upon Record Creation'",
            "Setup > User Interface",
            "✓ access Case",
            "✗ access CaseComment: the API user cannot read it",
            "✗ access Contact: the API user cannot read it",
            "give the API user Read and Create on Contact",
            "✗ customer_comment_username: gone@acme.crm is inactive",
            "✗ default_owner_username: portal@acme.crm has a PowerCustomerSuccess licence",
            "✗ case_origin: 'Fax' is not among Case Origin's values (Phone, Email, Web, WhatsApp); the picklist is restricted",
            "Case Origin > Values: New, add 'Fax'",
            "✗ case_external_id_field: Case.Subject is not External ID, not Unique",
            "✗ contact_account_id: no Account 001Wt0000000zzz visible to the API user",
            "✗ case_fields.Priority: \"Urgent\": not one of the restricted picklist's values (High, Medium, Low)",
            "✗ case_fields.Subject: the worker sets this field itself",
            "✗ case_fields.Nope__c: Case has no field Nope__c the API user can see",
            "✗ case_fields.CaseNumber: Case.CaseNumber cannot be set on create by the API user",
            "! Case assignment rule: 'Standard Case Assignment' is active",
            "Sforce-Auto-Assign: FALSE",
            "! Contact duplicate rules: active: Standard_Contact_Duplicate_Rule",
            "! API usage: DailyApiRequests: 1,9",
            "over 80% used",
        ])
        .never_says(&SECRETS);

    // The customer user left out although audit fields are on; the access
    // to Case itself and to the setup objects (View Setup and
    // Configuration) taken away.
    sf.set_object_readable("Case", false);
    sf.set_object_readable("PermissionSetAssignment", false);
    let mut missing = secret.clone();
    missing
        .as_object_mut()
        .unwrap()
        .remove("customer_comment_username");
    check_salesforce(&o, missing, &[]).await.fails().says(&[
        "✗ customer_comment_username: missing, and set_audit_fields needs it",
        "✗ access Case: the API user cannot read it",
        "✗ case_origin: Case.Origin is not visible to the API user",
        "✗ audit fields: could not be read: the query answered HTTP 400 INVALID_TYPE",
        "View Setup and Configuration",
    ]);
    sf.set_object_readable("Case", true);

    // The allowance spent: every call refused, said as such.
    sf.limit_for(Duration::from_secs(60));
    check_salesforce(&o, secret.clone(), &[])
        .await
        .fails()
        .says(&["✗ API usage: every call is refused: REQUEST_LIMIT_EXCEEDED"]);

    // An API version the org does not serve.
    let mut old = set_up_org(&LocalSalesforce::start(0).await.unwrap());
    old["api_version"] = json!("99.0");
    check_salesforce(&o, old, &[]).await.fails().says(&[
        "✗ api_version: v99.0 is not served by this org (it serves v31.0 to v67.0)",
        "set api_version to \"67.0\"",
        "! audit fields: not checked",
    ]);
}

#[tokio::test]
async fn check_salesforce_says_why_a_login_is_refused() {
    let o = Ops::start().await;
    let sf = LocalSalesforce::start(0).await.unwrap();

    // The password flow refused (off in orgs created since Summer '23).
    sf.set_password_flow(false);
    check_salesforce(&o, sf.secret(json!({})), &[])
        .await
        .fails()
        .says(&[
            "✗ login: refused: HTTP 400 invalid_grant",
            "'Allow OAuth Username-Password Flows'",
            "External Client App",
            "! api_version: not checked: no session",
        ])
        .never_says(&SECRETS);

    // A wrong password is never printed.
    sf.set_password_flow(true);
    check_salesforce(&o, sf.secret(json!({"password": "wrong-secret"})), &[])
        .await
        .fails()
        .says(&["✗ login: refused: HTTP 400 invalid_grant", "security_token"])
        .never_says(&["wrong-secret"]);

    // Credentials never travel over plain http to a host that is not
    // loopback; an empty secret (as the stack creates it) is said.
    check_salesforce(
        &o,
        local_salesforce::secret_for("http://login.example.com", json!({})),
        &[],
    )
    .await
    .fails()
    .says(&["✗ login: login_url http://login.example.com is not https"]);
    check_salesforce(&o, json!({}), &[])
        .await
        .fails()
        .says(&["the Salesforce secret is empty"]);
    assert_eq!(sf.counters().logins, 0);

    // JWT bearer: openssl signs the assertion; the key is never printed,
    // and each refusal names what to fix.
    let jwt = |key: &str| sf.secret(json!({"auth_flow": "jwt_bearer", "private_key": key}));
    check_salesforce(&o, jwt("-----BEGIN PRIVATE KEY-----"), &[])
        .await
        .fails()
        .says(&["✗ login: private_key is not a PEM RSA private key"])
        .never_says(&["BEGIN PRIVATE KEY"]);
    sf.set_jwt_certificate(local_salesforce::test_keys::APP_CERTIFICATE)
        .unwrap();
    check_salesforce(&o, jwt(local_salesforce::test_keys::APP_PRIVATE_KEY), &[])
        .await
        .fails()
        .says(&[
            "user hasn't approved this consumer",
            "pre-authorise the API user",
        ]);
    check_salesforce(&o, jwt(local_salesforce::test_keys::OTHER_PRIVATE_KEY), &[])
        .await
        .fails()
        .says(&["invalid assertion", "not the one of private_key"])
        .never_says(&["PRIVATE KEY"]);
    sf.pre_authorise(local_salesforce::API_USERNAME);
    check_salesforce(&o, jwt(local_salesforce::test_keys::APP_PRIVATE_KEY), &[])
        .await
        .says(&[
            "✓ login: jwt_bearer flow as witiop.api@acme.example",
            "api_version",
        ])
        .never_says(&["PRIVATE KEY", "eyJ"]);
}

#[tokio::test]
async fn dlq_lists_every_reason_and_says_when_it_saw_everything() {
    let o = Ops::start().await;
    let sqs = o.moto.sqs();
    park(&sqs, &o.dlq, 1793, "393331234567").await;
    park(&sqs, &o.dlq, 1794, "393339999999").await;
    o.ops("dlq", &[], &[("DLQ_WAIT", "2")]).await.succeeds().says(&[
        "SQS reports 2 waiting and 0 in flight.",
        "2 conversation(s) seen in the dead-letter queue",
        "- conversation 1793 | configuration | failed at 2026-11-26T03:00:00Z | received 1x | customer group 393331234567",
        "  Case.Origin: bad value for conversation 1793",
        "- conversation 1794 |",
        "Everything was seen.",
    ]);
    // Nothing deleted, nothing left hidden.
    assert_eq!(depth(&sqs, &o.dlq).await, (2, 0));

    // An empty queue is long-polled before it is called empty.
    let (_, empty) = fifo_pair(&sqs, "empty").await;
    let started = std::time::Instant::now();
    o.ops(
        "dlq",
        &[],
        &[("DLQ_URL", empty.as_str()), ("DLQ_WAIT", "3")],
    )
    .await
    .succeeds()
    .says(&["0 conversation(s) seen", "Everything was seen."]);
    assert!(started.elapsed() >= Duration::from_secs(3), "long poll");
}

#[tokio::test]
async fn dlq_says_plainly_when_it_did_not_see_everything() {
    let o = Ops::start().await;
    let sqs = o.moto.sqs();
    // Twelve parked for one customer: FIFO hands out the first ten only
    // while they are hidden; and one hidden by another reader.
    for c in 1..=12 {
        park(&sqs, &o.dlq, c, "393331234567").await;
    }
    park(&sqs, &o.dlq, 100, "393330000000").await;
    let taken = sqs
        .receive_message()
        .queue_url(&o.dlq)
        .max_number_of_messages(10)
        .visibility_timeout(300)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(taken.len(), 10, "the first ten of the first group");
    o.ops("dlq", &[], &[("DLQ_WAIT", "2")])
        .await
        .succeeds()
        .says(&[
            "SQS reports 3 waiting and 10 in flight.",
            "1 conversation(s) seen",
            "- conversation 100 |",
            "NOT everything was seen: 1 seen, about 12 not.",
            "10 were in flight",
            "FIFO",
            "Nothing was deleted.",
        ]);
    assert_eq!(depth(&sqs, &o.dlq).await, (3, 10));

    // The Rust listing reconciles the same way.
    let survey = ops::survey_dead_letters(&sqs, &o.dlq, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!((survey.waiting, survey.in_flight), (3, 10));
    assert_eq!(survey.parked.len(), 1);
    assert!(!survey.complete());
    // Once the other reader lets go, ten of the first customer and the other.
    let handles: Vec<_> = taken.iter().map(|m| m.receipt_handle().unwrap()).collect();
    for h in handles {
        sqs.change_message_visibility()
            .queue_url(&o.dlq)
            .receipt_handle(h)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    let survey = ops::survey_dead_letters(&sqs, &o.dlq, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(survey.parked.len(), 11, "{survey:?}");
    assert!(!survey.complete(), "two are behind the first ten");
    o.ops("dlq", &[], &[("DLQ_WAIT", "2")])
        .await
        .says(&["NOT everything was seen: 11 seen, about 2 not."]);
}

#[tokio::test]
async fn redrive_on_moto_moves_one_by_one_in_the_customers_group() {
    let o = Ops::start().await;
    // Queues no trigger reads, so the moved messages stay to be looked at.
    let p = o
        .parking(&[
            (1, "393331111111"),
            (2, "393331111111"),
            (3, "393332222222"),
        ])
        .await;
    o.redrive(&o.moto.endpoint, &p, &[])
        .await
        .succeeds()
        .says(&[
            // moto answers StartMessageMoveTask with a bare 500 (not implemented).
            "StartMessageMoveTask is not available here (500)",
            "moved conversation 1 (message",
            "Done: 3 message(s) moved back one by one",
        ]);
    assert_eq!(depth(&p.sqs, &p.dlq).await, (0, 0));
    let moved = drain(&p.sqs, &p.queue).await;
    let mut seen: Vec<_> = moved
        .iter()
        .map(|m| (attribute(m, "conversation_id"), group_of(m)))
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("1".to_owned(), "393331111111".to_owned()),
            ("2".to_owned(), "393331111111".to_owned()),
            ("3".to_owned(), "393332222222".to_owned())
        ]
    );
    for m in &moved {
        assert_eq!(attribute(m, "error_code"), "configuration");
    }
    o.redrive(&o.moto.endpoint, &p, &[])
        .await
        .succeeds()
        .says(&["Nothing to redrive"]);
}

/// How the SQS stand-in answers StartMessageMoveTask.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Moves the messages and reports the task RUNNING once, then COMPLETED.
    Works,
    Unsupported,
    AccessDenied,
    Throttled,
    /// Unsupported, and every message sent back to the queue is parked again
    /// at once (a cause not fixed).
    Reparks,
}

struct Stand {
    sqs: aws_sdk_sqs::Client,
    moto: String,
    mode: Mode,
    task: Mutex<Option<(String, i64, u32)>>,
    starts: Mutex<u32>,
}

/// SQS on loopback: moto, with StartMessageMoveTask and ListMessageMoveTasks
/// answered as `mode` says.
async fn stand_in(moto: &Moto, mode: Mode) -> (String, Arc<Stand>) {
    let stand = Arc::new(Stand {
        sqs: moto.sqs(),
        moto: moto.endpoint.clone(),
        mode,
        task: Mutex::new(None),
        starts: Mutex::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let s = stand.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let s = s.clone();
        async move { answer(&s, headers, body).await }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), stand)
}

fn sqs_error(status: u16, code: &str, query_code: &str, message: &str) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        json!({"__type": code, "message": message}).to_string(),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(
        "content-type",
        "application/x-amz-json-1.0".parse().unwrap(),
    );
    h.insert(
        "x-amzn-query-error",
        format!("{query_code};Sender").parse().unwrap(),
    );
    r
}

fn sqs_json(v: Value) -> Response {
    let mut r = (StatusCode::OK, v.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.0".parse().unwrap(),
    );
    r
}

async fn answer(s: &Stand, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let refused = match s.mode {
        Mode::Works => None,
        Mode::Unsupported | Mode::Reparks => Some(sqs_error(
            400,
            "com.amazonaws.sqs#UnsupportedOperation",
            "AWS.SimpleQueueService.UnsupportedOperation",
            "Operation is not supported.",
        )),
        Mode::AccessDenied => Some(sqs_error(
            403,
            "com.amazon.coral.service#AccessDeniedException",
            "AccessDenied",
            "User: arn:aws:sts::123456789012:assumed-role/operator is not authorized to perform: sqs:startmessagemovetask",
        )),
        Mode::Throttled => Some(sqs_error(
            400,
            "com.amazonaws.sqs#RequestThrottled",
            "RequestThrottled",
            "Request is throttled.",
        )),
    };
    match target.as_str() {
        "AmazonSQS.StartMessageMoveTask" => {
            *s.starts.lock().unwrap() += 1;
            if let Some(r) = refused {
                return r;
            }
            let name = |arn: &str| arn.rsplit(':').next().unwrap().to_owned();
            let url = |n: String| async move {
                s.sqs
                    .get_queue_url()
                    .queue_name(n)
                    .send()
                    .await
                    .unwrap()
                    .queue_url
                    .unwrap()
            };
            let from = url(name(request["SourceArn"].as_str().unwrap())).await;
            let to = url(name(request["DestinationArn"].as_str().unwrap())).await;
            let mut moved = 0;
            for m in drain(&s.sqs, &from).await {
                s.sqs
                    .send_message()
                    .queue_url(&to)
                    .message_body(m.body().unwrap())
                    .set_message_attributes(m.message_attributes.clone())
                    .message_group_id(group_of(&m))
                    .message_deduplication_id(m.message_id().unwrap())
                    .send()
                    .await
                    .unwrap();
                s.sqs
                    .delete_message()
                    .queue_url(&from)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                moved += 1;
            }
            *s.task.lock().unwrap() = Some(("task-handle-1".into(), moved, 0));
            sqs_json(json!({"TaskHandle": "task-handle-1"}))
        }
        "AmazonSQS.ListMessageMoveTasks" => {
            if let Some(r) = refused {
                return r;
            }
            let mut task = s.task.lock().unwrap();
            let Some((handle, moved, polls)) = task.as_mut() else {
                return sqs_json(json!({"Results": []}));
            };
            *polls += 1;
            let result = if *polls == 1 {
                json!({"TaskHandle": handle, "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": 0,
                       "ApproximateNumberOfMessagesToMove": moved, "StartedTimestamp": 1_795_700_000_000_i64})
            } else {
                json!({"Status": "COMPLETED", "ApproximateNumberOfMessagesMoved": moved,
                       "ApproximateNumberOfMessagesToMove": moved, "StartedTimestamp": 1_795_700_000_000_i64})
            };
            sqs_json(json!({"Results": [result]}))
        }
        _ => {
            let reparked = s.mode == Mode::Reparks
                && target == "AmazonSQS.SendMessage"
                && !request["QueueUrl"].as_str().unwrap_or("").contains("-dlq");
            let r = forward(&s.moto, headers, body).await;
            if reparked {
                // The worker parks it again: a new message in the DLQ.
                let queue = request["QueueUrl"].as_str().unwrap();
                let dlq = queue.replace(".fifo", "-dlq.fifo");
                let id = request["MessageDeduplicationId"].as_str().unwrap();
                s.sqs
                    .send_message()
                    .queue_url(dlq)
                    .message_body(request["MessageBody"].as_str().unwrap())
                    .message_group_id(request["MessageGroupId"].as_str().unwrap())
                    .message_deduplication_id(format!("again-{id}"))
                    .send()
                    .await
                    .unwrap();
            }
            r
        }
    }
}

async fn forward(moto: &str, headers: HeaderMap, body: Bytes) -> Response {
    let mut headers = headers;
    headers.remove("host");
    headers.remove("content-length");
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{moto}/"))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let mut out = HashMap::new();
    for (k, v) in answer.headers() {
        if k == "content-type" || k.as_str().starts_with("x-amz") {
            out.insert(k.clone(), v.clone());
        }
    }
    let bytes = answer.bytes().await.unwrap();
    let mut r = (status, bytes).into_response();
    r.headers_mut().extend(out);
    r
}

#[tokio::test]
async fn redrive_follows_the_move_task_and_reports_its_progress() {
    let o = Ops::start().await;
    let p = o.parking(&[]).await;
    for c in 1..=3 {
        p.park(c, "393331111111").await;
    }
    let (endpoint, stand) = stand_in(&o.moto, Mode::Works).await;
    o.redrive(&endpoint, &p, &[("REDRIVE_POLL", "1")])
        .await
        .succeeds()
        .says(&[
            "Started (task task-handle-1).",
            "  RUNNING: 0 of 3 moved",
            "  COMPLETED: 3 of 3 moved",
            "Done: 3 message(s) moved back to the queue.",
        ])
        .never_says(&["one by one"]);
    assert_eq!(*stand.starts.lock().unwrap(), 1);
    assert_eq!(drain(&p.sqs, &p.queue).await.len(), 3);

    // The Rust redrive starts the task and reads its progress.
    for c in 4..=5 {
        p.park(c, "393331111111").await;
    }
    let via = sqs_at(&endpoint).await;
    let mut lines = Vec::new();
    let how = ops::redrive_reporting(&via, &p.dlq, &p.queue, &mut |l| lines.push(l))
        .await
        .unwrap();
    let Redrive::MoveTask {
        task_handle,
        source_arn,
    } = how
    else {
        panic!("{how:?}")
    };
    assert_eq!(task_handle, "task-handle-1");
    let (via, source_arn, task_handle) = (&via, &source_arn, &task_handle);
    let progress = || async move {
        ops::move_task_progress(via, source_arn, task_handle)
            .await
            .unwrap()
            .unwrap()
    };
    let first = progress().await;
    assert_eq!(
        (first.status.as_str(), first.finished()),
        ("RUNNING", false)
    );
    let last = progress().await;
    assert_eq!((last.status.as_str(), last.moved), ("COMPLETED", 2));
    assert!(lines[0].contains("2 waiting"), "{lines:?}");
}

#[tokio::test]
async fn redrive_never_falls_back_on_access_denied_or_throttling() {
    let o = Ops::start().await;
    let p = o.parking(&[(1, "393331111111")]).await;
    for (mode, said) in [
        (
            Mode::AccessDenied,
            "not allowed to start a move task (AccessDenied",
        ),
        (
            Mode::Throttled,
            "SQS throttled the request (RequestThrottled)",
        ),
    ] {
        let (endpoint, stand) = stand_in(&o.moto, mode).await;
        // Fewer retries of the throttled call, to keep the test short.
        o.redrive(&endpoint, &p, &[("AWS_MAX_ATTEMPTS", "2")])
            .await
            .fails()
            .says(&[said, "Nothing was moved."])
            .never_says(&["one by one"]);
        assert_eq!(p.depths().await, ((1, 0), (0, 0)), "{mode:?}");

        let via = sqs_at(&endpoint).await;
        let e = ops::redrive(&via, &p.dlq, &p.queue).await.unwrap_err();
        assert_eq!(e.operation, "StartMessageMoveTask", "{mode:?}");
        assert_eq!(depth(&p.sqs, &p.dlq).await, (1, 0), "{mode:?}");
        assert!(*stand.starts.lock().unwrap() >= 2, "{mode:?}");
    }
}

#[tokio::test]
async fn redrive_falls_back_where_the_service_says_unsupported() {
    let o = Ops::start().await;
    let p = o.parking(&[(1, "393331111111")]).await;
    let (endpoint, _) = stand_in(&o.moto, Mode::Unsupported).await;
    o.redrive(&endpoint, &p, &[]).await.succeeds().says(&[
        "not available here (AWS.SimpleQueueService.UnsupportedOperation): moving the messages one by one",
    ]);
    assert_eq!(drain(&p.sqs, &p.queue).await.len(), 1);

    // The Rust redrive too; and moto's own answer (a bare 500) is taken as
    // "unavailable" as well.
    for (conversation, via) in [(2, sqs_at(&endpoint).await), (3, p.sqs.clone())] {
        p.park(conversation, "393331111111").await;
        let how = ops::redrive(&via, &p.dlq, &p.queue).await.unwrap();
        assert_eq!(how, Redrive::Copied { moved: 1 }, "{conversation}");
    }
}

#[tokio::test]
async fn redrive_moves_each_parked_conversation_once_even_if_it_is_parked_again() {
    let o = Ops::start().await;
    let p = o.parking(&[(1, "393331111111"), (2, "393332222222")]).await;
    // SentTimestamp has millisecond resolution: the re-parked copies must be later.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (endpoint, _) = stand_in(&o.moto, Mode::Reparks).await;
    o.redrive(&endpoint, &p, &[]).await.succeeds().says(&[
        "Done: 2 message(s) moved back one by one",
        "2 message(s) parked again since the start were left",
    ]);
    assert_eq!(depth(&p.sqs, &p.dlq).await, (2, 0), "left visible");

    let via = sqs_at(&endpoint).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let how = ops::redrive(&via, &p.dlq, &p.queue).await.unwrap();
    assert_eq!(how, Redrive::Copied { moved: 2 });
    assert_eq!(depth(&p.sqs, &p.dlq).await, (2, 0));
}
