//! `make rollback` (`ops/rollback`), run as an operator runs it: POSIX `sh`,
//! the AWS CLI (installed into `.venv` from requirements-dev.txt) and
//! python3, against moto: a CloudFormation stack with the three functions,
//! their versions published and their `live` aliases made with the Lambda
//! API, as SAM's AutoPublishAlias leaves them.
//!
//! moto's CodeDeploy lists applications, deployment groups and deployments
//! but cannot stop one (StopDeployment is not implemented): the test of a
//! release still going out checks what must hold whatever CodeDeploy
//! answers, that no alias is moved under it and the operator is told what
//! to do; stopping with rollback itself is CodeDeploy's documented call.
//!
//! Every process started here gets loopback endpoints, dummy credentials, a
//! private HOME and a proxy on a closed loopback port, so that nothing can
//! reach beyond 127.0.0.1 even by mistake.

use std::path::PathBuf;

use proof::operator::{aws_cli, run, Run};
use proof::Moto;
use serde_json::Value;

const STACK: &str = "witiop-rollback";
const FUNCTIONS: [&str; 3] = ["WebhookFunction", "WorkerFunction", "LinksFunction"];

/// The functions as the real stack has them, named by CloudFormation.
const STACK_TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  FunctionRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: "sts:AssumeRole"}]
  WebhookFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt FunctionRole.Arn
      Code: {ZipFile: "def handler(event, context): return {}"}
  WorkerFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt FunctionRole.Arn
      Code: {ZipFile: "def handler(event, context): return {}"}
  LinksFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: index.handler
      Role: !GetAtt FunctionRole.Arn
      Code: {ZipFile: "def handler(event, context): return {}"}
"#;

struct Ops {
    moto: Moto,
    home: PathBuf,
}

impl Drop for Ops {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

impl Ops {
    async fn start() -> Self {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let home = std::env::temp_dir().join(format!("ops-rollback-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        let moto = Moto::isolated()
            .await
            .expect("moto_server must be installed (make test creates .venv with it)");
        let o = Self { moto, home };
        let template = o.home.join("stack.yaml");
        std::fs::write(&template, STACK_TEMPLATE).unwrap();
        let created = o
            .aws(&[
                "cloudformation",
                "create-stack",
                "--stack-name",
                STACK,
                "--template-body",
                &format!("file://{}", template.display()),
            ])
            .await;
        assert!(created.ok, "{created:?}");
        o
    }

    /// `program` with only loopback in reach, acting in this test's account.
    fn command(&self, program: &str) -> tokio::process::Command {
        let mut c = proof::operator::command(program, &self.moto.endpoint, &self.home);
        for (k, v) in self.moto.account_env() {
            c.env(k, v);
        }
        c
    }

    /// The AWS CLI against moto (set-up and checks), its answer as JSON.
    async fn aws(&self, args: &[&str]) -> Run {
        let mut c = self.command(&aws_cli());
        c.args([
            "--endpoint-url",
            &self.moto.endpoint,
            "--region",
            "eu-west-1",
            "--output",
            "json",
        ])
        .args(args);
        run(c).await
    }

    /// `sh ops/rollback` on the stack.
    async fn rollback(&self) -> Run {
        let mut c = self.command("sh");
        c.arg("ops/rollback").env("STACK", STACK);
        run(c).await
    }

    /// The function CloudFormation made for `logical_id`.
    async fn function(&self, logical_id: &str) -> String {
        let r = self
            .aws(&[
                "cloudformation",
                "describe-stack-resource",
                "--stack-name",
                STACK,
                "--logical-resource-id",
                logical_id,
            ])
            .await;
        r.json()["StackResourceDetail"]["PhysicalResourceId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `releases` deploys of `logical_id`, each publishing a version, with
    /// `live` created at the first and moved to each new one.
    async fn release(&self, logical_id: &str, releases: u32) -> String {
        let function = self.function(logical_id).await;
        for n in 1..=releases {
            let description = format!("release {n}");
            let changed = self
                .aws(&[
                    "lambda",
                    "update-function-configuration",
                    "--function-name",
                    &function,
                    "--description",
                    &description,
                ])
                .await;
            assert!(changed.ok, "{changed:?}");
            let published = self
                .aws(&["lambda", "publish-version", "--function-name", &function])
                .await;
            assert_eq!(published.json()["Version"], n.to_string(), "{published:?}");
            let verb = if n == 1 {
                "create-alias"
            } else {
                "update-alias"
            };
            let alias = self
                .aws(&[
                    "lambda",
                    verb,
                    "--function-name",
                    &function,
                    "--name",
                    "live",
                    "--function-version",
                    &n.to_string(),
                ])
                .await;
            assert!(alias.ok, "{alias:?}");
        }
        function
    }

    /// The version `live` serves and the weights of its routing.
    async fn live(&self, function: &str) -> (String, Value) {
        let alias = self
            .aws(&[
                "lambda",
                "get-alias",
                "--function-name",
                function,
                "--name",
                "live",
            ])
            .await
            .json();
        let weights = alias["RoutingConfig"]["AdditionalVersionWeights"].clone();
        (
            alias["FunctionVersion"].as_str().unwrap().to_owned(),
            if weights.is_null() {
                serde_json::json!({})
            } else {
                weights
            },
        )
    }

    async fn version_of(&self, function: &str) -> String {
        self.live(function).await.0
    }
}

#[test]
fn the_script_is_posix_shell() {
    let out = std::process::Command::new("sh")
        .arg("-n")
        .arg(proof::root().join("ops/rollback"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn each_live_alias_steps_back_to_the_version_before() {
    let o = Ops::start().await;
    let webhook = o.release("WebhookFunction", 3).await;
    let worker = o.release("WorkerFunction", 2).await;
    // Deployed before releases were versioned: no alias.
    let links = o.function("LinksFunction").await;

    let first = o.rollback().await;
    assert!(first.ok, "{first:?}");
    first.says(&[
        &format!("{webhook}: live 3 -> 2"),
        &format!("{worker}: live 2 -> 1"),
        &format!("{links}: no alias live"),
        "Rolled back 2 function(s)",
    ]);
    assert_eq!(o.version_of(&webhook).await, "2");
    assert_eq!(o.version_of(&worker).await, "1");

    // Once more: one more step for the webhook; the worker has none left.
    let second = o.rollback().await;
    assert!(second.ok, "{second:?}");
    second.says(&[
        &format!("{webhook}: live 2 -> 1"),
        &format!("{worker}: live serves version 1, the first published"),
    ]);
    assert_eq!(o.version_of(&webhook).await, "1");
    assert_eq!(o.version_of(&worker).await, "1");
}

#[tokio::test]
async fn a_function_the_last_release_left_alone_stays_where_it_is() {
    let o = Ops::start().await;
    let webhook = o.release("WebhookFunction", 2).await;
    // A later deploy that changed only the worker: SAM published no new
    // webhook version, so the webhook's version before is an older release.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let worker = o.release("WorkerFunction", 2).await;

    let mut c = o.command("sh");
    c.arg("ops/rollback")
        .env("STACK", STACK)
        .env("ROLLBACK_RELEASE_WINDOW", "1");
    let run = run(c).await;
    assert!(run.ok, "{run:?}");
    run.says(&[
        &format!("{worker}: live 2 -> 1"),
        &format!("{webhook}: live serves version 2, which the last release did not change"),
        "Rolled back 1 function(s)",
    ]);
    assert_eq!(o.version_of(&webhook).await, "2");
    assert_eq!(o.version_of(&worker).await, "1");
}

#[tokio::test]
async fn a_traffic_shift_left_half_way_goes_back_entirely_to_the_version_before() {
    let o = Ops::start().await;
    let webhook = o.release("WebhookFunction", 2).await;
    for logical_id in &FUNCTIONS[1..] {
        o.release(logical_id, 1).await;
    }
    // Version 3 published and given a tenth of the calls, as a canary does.
    o.aws(&[
        "lambda",
        "update-function-configuration",
        "--function-name",
        &webhook,
        "--description",
        "release 3",
    ])
    .await;
    o.aws(&["lambda", "publish-version", "--function-name", &webhook])
        .await;
    let shifted = o
        .aws(&[
            "lambda",
            "update-alias",
            "--function-name",
            &webhook,
            "--name",
            "live",
            "--routing-config",
            r#"{"AdditionalVersionWeights": {"3": 0.1}}"#,
        ])
        .await;
    assert!(shifted.ok, "{shifted:?}");
    assert_eq!(o.live(&webhook).await.1, serde_json::json!({"3": 0.1}));

    let r = o.rollback().await;
    assert!(r.ok, "{r:?}");
    r.says(&["putting it all back on version 2"]);
    assert_eq!(
        o.live(&webhook).await,
        ("2".to_owned(), serde_json::json!({}))
    );
}

#[tokio::test]
async fn a_release_still_going_out_is_never_undone_alias_by_alias() {
    let o = Ops::start().await;
    let mut functions = Vec::new();
    for logical_id in FUNCTIONS {
        functions.push(o.release(logical_id, 2).await);
    }
    // The canary's deployment, under the application SAM names after the stack.
    let application = format!("{STACK}-ServerlessDeploymentApplication-1A2B3C");
    for args in [
        vec![
            "deploy",
            "create-application",
            "--application-name",
            &application,
            "--compute-platform",
            "Lambda",
        ],
        vec![
            "deploy",
            "create-deployment-group",
            "--application-name",
            &application,
            "--deployment-group-name",
            "webhook",
            "--service-role-arn",
            "arn:aws:iam::123456789012:role/codedeploy",
            "--deployment-config-name",
            "CodeDeployDefault.LambdaCanary10Percent15Minutes",
        ],
        vec![
            "deploy",
            "create-deployment",
            "--application-name",
            &application,
            "--deployment-group-name",
            "webhook",
            "--revision",
            r#"{"revisionType": "AppSpecContent", "appSpecContent": {"content": "{}"}}"#,
        ],
    ] {
        let r = o.aws(&args).await;
        assert!(r.ok, "{r:?}");
    }

    let r = o.rollback().await;
    r.says(&["A release is still going out", "Stopping it with rollback"]);
    // Stopped (CodeDeploy rolls back, then CloudFormation) or, where it
    // cannot be stopped, refused with what to do: never an alias moved.
    if r.ok {
        r.says(&["No alias was changed here"]);
    } else {
        r.says(&["no alias was changed", "Stop and roll back deployment"]);
    }
    for function in &functions {
        assert_eq!(o.version_of(function).await, "2", "{function}: {r:?}");
    }
}
