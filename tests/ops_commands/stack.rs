//! `make outputs`, `smoke`, `status`, `pause` and `resume` on the stand-in
//! stack, and the scripts' shell.

use std::sync::Arc;

use axum::response::IntoResponse;
use http::StatusCode;
use proof::operator::{self, Scratch};
use proof::Moto;
use serde_json::json;
use witiop_salesforce::aws::SecretStore;

use crate::harness::{depth, fifo_pair, park, Ops, STACK, WEBHOOK_TOKEN};

#[tokio::test]
async fn the_scripts_are_posix_shell() {
    for script in [
        "outputs",
        "smoke",
        "status",
        "trigger",
        "check-salesforce",
        "dlq",
        "dlq-delete",
        "redrive",
        "reconcile",
        "lib.sh",
    ] {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg(proof::root().join("ops").join(script))
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
    }
}

#[tokio::test]
async fn outputs_lists_the_stack_and_the_complete_webhook_url() {
    let o = Ops::start().await;
    let account = format!("AWS account {}", o.moto.account_id());
    o.ops("outputs", &[], &[]).await.succeeds().says(&[
        &account,
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
    let moto = Moto::isolated().await.unwrap();
    let (events, _) = fifo_pair(&moto.sqs(), "events").await;
    // The webhook's secret must exist before it starts; Ops creates the rest.
    moto.secret(
        "witiop",
        &json!({"webhook_token": WEBHOOK_TOKEN}).to_string(),
    )
    .await
    .unwrap();
    let url = serve_webhook(&moto, &events).await;
    let home = Scratch::new();
    let smoke = |env: Vec<(&'static str, String)>| {
        let mut c = operator::command("sh", &moto.endpoint, &home.0);
        c.envs(moto.account_env().iter().map(|(k, v)| (*k, v.as_str())));
        c.arg("ops/smoke").env("WEBHOOK_URL", &url);
        for (k, v) in env {
            c.env(k, v);
        }
        operator::run(c)
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
