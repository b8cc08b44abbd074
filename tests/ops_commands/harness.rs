//! What every operator-command test starts from: moto with a stand-in of
//! the stack (what the scripts read of the real one), and the queue helpers
//! the checks use.

use std::collections::HashMap;

use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use proof::operator::{self, Run, Scratch};
use proof::Moto;
use serde_json::{json, Value};

pub const STACK: &str = "witiop-test";
pub const WEBHOOK_TOKEN: &str = "webhook-token-abc123XYZ";
/// The webhook URL in the stack's outputs.
pub const WEBHOOK_URL: &str =
    "https://abc.execute-api.eu-west-1.amazonaws.com/witiop/conversation-closed";

pub struct Ops {
    pub moto: Moto,
    pub home: Scratch,
    /// The stack's queues (a Lambda trigger reads `queue`).
    pub queue: String,
    pub dlq: String,
}

impl Ops {
    /// moto with the stand-in stack: what the scripts read of the real one.
    pub async fn start() -> Self {
        let moto = Moto::isolated()
            .await
            .expect("moto_server must be installed (make test creates .venv with it)");
        let home = Scratch::new();
        moto.secret(
            "witiop",
            &json!({"webhook_token": WEBHOOK_TOKEN, "api_token": ""}).to_string(),
        )
        .await
        .unwrap();
        moto.secret("salesforce", "{}").await.unwrap();
        let template = home.0.join("stack.yaml");
        std::fs::write(&template, STACK_TEMPLATE).unwrap();
        let mut o = Self {
            moto,
            home,
            queue: String::new(),
            dlq: String::new(),
        };
        o.aws(&[
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
        .await
        .succeeds();
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
    pub async fn aws(&self, args: &[&str]) -> Run {
        let mut c = operator::command(&operator::aws_cli(), &self.moto.endpoint, &self.home.0);
        c.envs(self.account());
        c.args([
            "--endpoint-url",
            &self.moto.endpoint,
            "--region",
            "eu-west-1",
        ])
        .args(args);
        operator::run(c).await
    }

    /// `sh ops/<script> args…` on the stand-in stack, with `env` added.
    pub async fn ops(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all: Vec<(&str, &str)> = vec![("STACK", STACK)];
        all.extend(self.account());
        all.extend_from_slice(env);
        operator::ops(&self.moto.endpoint, &self.home.0, script, args, &all).await
    }

    /// The environment that puts a process in this test's moto account.
    pub fn account(&self) -> impl Iterator<Item = (&str, &str)> {
        self.moto
            .account_env()
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
    }

    /// Queues no trigger reads, `conversations.fifo` and its DLQ, with
    /// `parked` (conversation, customer group) parked in the DLQ.
    pub async fn parking(&self, parked: &[(u32, &str)]) -> Parking {
        let sqs = self.moto.sqs();
        let (queue, dlq) = fifo_pair(&sqs, "conversations").await;
        let p = Parking { sqs, queue, dlq };
        for &(conversation, group) in parked {
            p.park(conversation, group).await;
        }
        p
    }

    /// `sh ops/<script>` on `p`'s queues, with `env` added.
    pub async fn on(&self, p: &Parking, script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all = vec![("QUEUE_URL", p.queue.as_str()), ("DLQ_URL", p.dlq.as_str())];
        all.extend_from_slice(env);
        self.ops(script, args, &all).await
    }

    pub async fn trigger_state(&self) -> String {
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

/// What the scripts read of the real stack, as moto's CloudFormation can
/// make it: the FIFO queues (named: moto needs a name ending in .fifo), the
/// worker function and its SQS trigger, and the outputs. moto's
/// CloudFormation creates no secret or alarm, so the secrets' ids come in as
/// parameters and the alarms are made with the CloudWatch API, named as
/// CloudFormation names them (`<stack>-<logical id>-<suffix>`).
pub const STACK_TEMPLATE: &str = r#"
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
  WebhookFunction:
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
  WebhookFunctionName: {Value: !Ref WebhookFunction}
"#;

/// The attributes `names` of the queue at `url`.
pub async fn queue_attributes(
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

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    let arn = QueueAttributeName::QueueArn;
    queue_attributes(sqs, url, std::slice::from_ref(&arn))
        .await
        .remove(&arn)
        .unwrap()
}

/// See [`Ops::parking`].
pub struct Parking {
    pub sqs: aws_sdk_sqs::Client,
    pub queue: String,
    pub dlq: String,
}

impl Parking {
    pub async fn park(&self, conversation: u32, group: &str) -> String {
        park(&self.sqs, &self.dlq, conversation, group).await
    }

    pub async fn park_for(&self, conversation: u32, group: &str, reason: &str) -> String {
        park_for(&self.sqs, &self.dlq, conversation, group, reason).await
    }

    /// (waiting, in flight) of the DLQ, then of the queue.
    pub async fn depths(&self) -> ((u64, u64), (u64, u64)) {
        (
            depth(&self.sqs, &self.dlq).await,
            depth(&self.sqs, &self.queue).await,
        )
    }
}

/// A FIFO queue and its FIFO DLQ, with no trigger reading them.
pub async fn fifo_pair(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
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

/// Parks a conversation in a DLQ as the worker does (src/queue.rs names),
/// for a configuration error; its message id in the DLQ.
pub async fn park(sqs: &aws_sdk_sqs::Client, dlq: &str, conversation: u32, group: &str) -> String {
    park_for(sqs, dlq, conversation, group, "configuration").await
}

/// The same, for `reason`.
pub async fn park_for(
    sqs: &aws_sdk_sqs::Client,
    dlq: &str,
    conversation: u32,
    group: &str,
    reason: &str,
) -> String {
    sqs.send_message()
        .queue_url(dlq)
        .message_body(json!({"conversation": {"id": conversation}}).to_string())
        .message_group_id(group)
        .message_deduplication_id(format!("park-{conversation}"))
        .message_attributes(
            "conversation_id",
            string_attribute(&conversation.to_string()),
        )
        .message_attributes("error_code", string_attribute(reason))
        .message_attributes(
            "error_message",
            string_attribute(&format!(
                "Case.Origin: bad value for conversation {conversation}"
            )),
        )
        .message_attributes("failed_at", string_attribute("2026-11-26T03:00:00Z"))
        .message_attributes(
            "original_message_id",
            string_attribute(&format!("queued-{conversation}")),
        )
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap()
}

/// (waiting, in flight) of the queue at `url`.
pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    let names = [
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ];
    let a = queue_attributes(sqs, url, &names).await;
    let n = |k: &QueueAttributeName| a[k].parse().unwrap();
    (n(&names[0]), n(&names[1]))
}

/// Everything in a queue (short polls, each message hidden 60 s).
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
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

pub fn group_of(m: &aws_sdk_sqs::types::Message) -> String {
    m.attributes().unwrap()[&MessageSystemAttributeName::MessageGroupId].clone()
}

pub fn attribute(m: &aws_sdk_sqs::types::Message, name: &str) -> String {
    m.message_attributes().unwrap()[name]
        .string_value()
        .unwrap()
        .to_owned()
}
