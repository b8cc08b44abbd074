//! `make reconcile SINCE=…`: the webhook's "queued" log lines (CloudWatch
//! Logs in moto) against the Cases of the local Salesforce.

use std::time::{SystemTime, UNIX_EPOCH};

use local_salesforce::LocalSalesforce;
use serde_json::{json, Value};

use crate::harness::{Ops, STACK};
use crate::salesforce::SECRETS;

/// The webhook's line for a request, as src/webhook/mod.rs logs it through
/// src/telemetry.rs (flattened JSON, the invocation's span).
fn webhook_line(outcome: &str, status: u16, conversation: &str, message_id: &str) -> String {
    json!({
        "level": "INFO",
        "outcome": outcome,
        "status": status,
        "conversation_id": conversation,
        "message_id": message_id,
        "latency_ms": 4.2,
        "message": "webhook request",
        "span": {"requestId": "8f5e2b7c-0000-4000-8000-000000000000", "name": "Lambda runtime invoke"},
    })
    .to_string()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

impl Ops {
    /// A stack output of the stand-in stack.
    async fn stack_output(&self, key: &str) -> String {
        let r = self
            .aws(&["cloudformation", "describe-stacks", "--stack-name", STACK])
            .await;
        let v: Value = serde_json::from_str(&r.out).unwrap();
        v["Stacks"][0]["Outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["OutputKey"] == key)
            .unwrap()["OutputValue"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Writes `lines` (minutes ago, line) into the webhook's log group.
    async fn webhook_logged(&self, lines: &[(i64, String)]) {
        let group = format!(
            "/aws/lambda/{}",
            self.stack_output("WebhookFunctionName").await
        );
        self.aws(&["logs", "create-log-group", "--log-group-name", &group])
            .await
            .succeeds();
        let stream = "2026/11/26/[$LATEST]0123456789abcdef";
        self.aws(&[
            "logs",
            "create-log-stream",
            "--log-group-name",
            &group,
            "--log-stream-name",
            stream,
        ])
        .await
        .succeeds();
        let now = now_ms();
        let mut events: Vec<Value> = lines
            .iter()
            .map(|(ago, line)| json!({"timestamp": now - ago * 60_000, "message": line}))
            .collect();
        events.sort_by_key(|e| e["timestamp"].as_i64());
        let input = self.home.0.join("events.json");
        std::fs::write(
            &input,
            json!({"logGroupName": group, "logStreamName": stream, "logEvents": events})
                .to_string(),
        )
        .unwrap();
        self.aws(&[
            "logs",
            "put-log-events",
            "--cli-input-json",
            &format!("file://{}", input.display()),
        ])
        .await
        .succeeds();
    }
}

#[tokio::test]
async fn reconcile_lists_each_accepted_conversation_without_a_case() {
    let o = Ops::start().await;
    let sf = LocalSalesforce::start(0).await.unwrap();
    o.webhook_logged(&[
        (120, webhook_line("queued", 202, "1793", "m-1793")),
        (110, webhook_line("queued", 202, "1794", "m-1794")),
        (100, webhook_line("queued", 202, "1795", "m-1795")),
        // WitiOp sent it again: one conversation, accepted twice.
        (90, webhook_line("queued", 202, "1795", "m-1795-again")),
        // `_` is a LIKE wildcard: the Case of 1234 is not this one's.
        (80, webhook_line("queued", 202, "12_4", "m-12_4")),
        // Not accepted: no Case is owed.
        (70, webhook_line("unauthorized", 401, "", "")),
        (60, webhook_line("invalid_event", 400, "1797", "")),
        (50, webhook_line("ignored", 202, "", "")),
        (40, "START RequestId: 8f5e2b7c Version: $LATEST".to_owned()),
        // Before SINCE.
        (600, webhook_line("queued", 202, "1796", "m-1796")),
    ])
    .await;
    // The worker's Cases: Subject `<number> [<conversation id>]`.
    sf.add_external_id("Case", "WitiOp_Conversation_Id__c");
    for (subject, external) in [
        ("+393331234567 [1793]", None),
        ("+393339999999 [1234]", Some("1795")),
        ("+393330000000 [1796]", None),
    ] {
        let mut case = json!({"Subject": subject});
        if let Some(id) = external {
            case["WitiOp_Conversation_Id__c"] = json!(id);
        }
        sf.insert("Case", case).unwrap();
    }

    // Keyed by Subject, as a worker without case_external_id_field keys them.
    o.moto
        .put_secret("salesforce", &sf.secret(json!({})).to_string())
        .await
        .unwrap();
    o.ops("reconcile", &[], &[("SINCE", "3h")])
        .await
        .fails()
        .says(&[
            "The webhook accepted 5 event(s) for 4 conversation(s) between",
            "by Subject ending in [<conversation id>]",
            "Accepted, but no Case:",
            "- conversation 1794 | accepted ",
            " UTC | message m-1794\n",
            "| message m-1795 | accepted 2x",
            "- conversation 12_4 |",
            "4 conversation(s) accepted between",
            ": 1 with a Case, 3 without.",
            "For one that is neither, ask WitiOp to send the",
        ])
        .never_says(&["conversation 1793 |", "1796", "1797", "m-1795-again"])
        .never_says(&SECRETS);

    // Keyed by the External ID field: 1795's Case is found there, 1793's
    // (Subject only) is not.
    let external = sf.secret(json!({"case_external_id_field": "WitiOp_Conversation_Id__c"}));
    o.moto
        .put_secret("salesforce", &external.to_string())
        .await
        .unwrap();
    o.ops("reconcile", &[], &[("SINCE", "3h")])
        .await
        .fails()
        .says(&[
            "by Case.WitiOp_Conversation_Id__c",
            "- conversation 1793 |",
            "- conversation 1794 |",
            ": 1 with a Case, 3 without.",
        ])
        .never_says(&["- conversation 1795 |"]);

    // A span with only 1796, whose Case exists.
    o.moto
        .put_secret("salesforce", &sf.secret(json!({})).to_string())
        .await
        .unwrap();
    let since = chrono::Utc::now() - chrono::Duration::hours(11);
    let until = chrono::Utc::now() - chrono::Duration::hours(9);
    o.ops(
        "reconcile",
        &[],
        &[
            ("SINCE", &since.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            ("UNTIL", &until.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        ],
    )
    .await
    .succeeds()
    .says(&[
        "The webhook accepted 1 event(s) for 1 conversation(s)",
        "1 with a Case, 0 without.",
        "Every accepted conversation has its Case.",
    ]);
}

#[tokio::test]
async fn reconcile_needs_a_time_it_can_read() {
    let o = Ops::start().await;
    o.ops("reconcile", &[], &[])
        .await
        .fails()
        .says(&["since when? make reconcile SINCE=24h"]);
    o.ops("reconcile", &[], &[("SINCE", "yesterday")])
        .await
        .fails()
        .says(&["SINCE='yesterday' is not a time"]);
    // No log group yet: said, with what to set.
    o.ops("reconcile", &[], &[("SINCE", "1h")])
        .await
        .fails()
        .says(&["could not read the log group /aws/lambda/"]);
}
