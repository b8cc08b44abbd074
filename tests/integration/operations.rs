//! Operating procedures, run against moto and the local Salesforce:
//! a broken password parks conversations in the DLQ with the reason, fixing
//! the secret and redriving yields each Case exactly once; the webhook token
//! and the Salesforce login flow can be rotated without a redeploy.

use std::time::Duration;

use crate::helpers::{
    bearing, event_file, operator_on, salesforce_secret, sample_event, Stack, WITIOP,
};
use serde_json::json;
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::webhook::{handle_webhook, WebhookTokens};

const SF_SECRET: &str = "salesforce";

/// The stack with the worker's retries at one second, reading the
/// Salesforce secret `SF_SECRET` again after a refused login.
async fn ops() -> Stack {
    crate::helpers::stack()
        .retry(Duration::from_secs(1), Duration::from_secs(1))
        .settings_in_secret(SF_SECRET)
        .start()
        .await
}

fn conversation(id: u64) -> String {
    let mut e = sample_event();
    e["conversation"]["id"] = json!(id);
    e.as_object_mut().unwrap().remove("event_id");
    e.to_string()
}

impl Stack {
    async fn send(&self, body: &str) {
        self.moto
            .sqs()
            .send_message()
            .queue_url(&self.queue)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// One pass of Lambda's SQS poller; returns how many it received.
    async fn poll_once(&self) -> usize {
        self.poll().await.0
    }

    /// Queues conversation `id` and runs the worker once: one Case for it.
    async fn one_case_for(&self, id: u64) {
        self.send(&conversation(id)).await;
        self.poll_once().await;
        assert_eq!(self.cases_with(id), 1);
    }

    fn cases_with(&self, conversation: u64) -> usize {
        let suffix = format!("[{conversation}]");
        self.sf
            .records("Case")
            .iter()
            .filter(|c| c["Subject"].as_str().unwrap().ends_with(&suffix))
            .count()
    }

    /// Replaces the Salesforce secret: a new `AWSCURRENT` value.
    async fn put_settings(&self, secret: &serde_json::Value) {
        self.moto
            .put_secret(SF_SECRET, &secret.to_string())
            .await
            .unwrap();
    }

    /// How many conversations are parked (waiting or in flight).
    async fn parked(&self) -> u64 {
        self.moto.depth(&self.dlq).await.unwrap()
    }
}

#[tokio::test]
async fn an_expired_password_waits_in_the_queue_without_locking_the_user_out() {
    let o = ops().await;
    o.one_case_for(1).await;

    // Someone changes the API user's password in Salesforce; sessions end.
    o.sf.set_password(local_salesforce::API_USERNAME, "changed-password");
    o.sf.expire_tokens();
    for id in 2..=4 {
        o.send(&conversation(id)).await;
    }
    o.poll_once().await;
    assert_eq!(o.cases_with(2), 0);
    assert_eq!(
        o.sf.counters().failed_logins,
        1,
        "the batch stopped at the first refused login"
    );
    // Nothing is parked: the conversations wait for the fix.
    assert_eq!(o.parked().await, 0);
    // Deliveries within the minute do not try the refused password again.
    o.release_all().await;
    o.poll_once().await;
    assert_eq!(o.sf.counters().failed_logins, 1, "no lockout");

    // The admin puts the new password in the secret: no redeploy, no redrive.
    o.put_settings(&salesforce_secret(
        &o.sf.url,
        json!({"password": "changed-password"}),
    ))
    .await;
    o.release_all().await;
    o.poll_once().await;
    assert_eq!(
        (o.cases_with(2), o.cases_with(3), o.cases_with(4)),
        (1, 1, 1)
    );

    // Redelivering or redriving adds nothing.
    o.send(&conversation(2)).await;
    o.poll_once().await;
    o.redrive_finds_nothing().await;
    assert_eq!(o.cases_with(2), 1);
    assert_eq!(o.sf.records("CaseComment").len(), 12);
}

#[tokio::test]
async fn a_parked_conversation_is_listed_with_its_reason_and_redriven_once() {
    let o = ops().await;
    // Audit fields asked for, but the org does not allow them: configuration.
    let audited = salesforce_secret(
        &o.sf.url,
        json!({"set_audit_fields": true, "customer_comment_username": "nobody@acme.example"}),
    );
    o.put_settings(&audited).await;
    o.sf.expire_tokens();
    o.send(&conversation(5)).await;
    // The worker picks the change up on its next re-read.
    o.poll_once().await;
    o.release_all().await;
    o.poll_once().await;
    // `make dlq` lists it with its reason, and deletes nothing.
    o.operator("dlq", &[]).await.succeeds().says(&[
        "1 conversation(s) seen in the dead-letter queue",
        "- conversation 5 | configuration |",
        "Everything was seen.",
    ]);
    assert_eq!(o.parked().await, 1);
    // The admin turns audit fields off and redrives.
    o.put_settings(&salesforce_secret(&o.sf.url, json!({})))
        .await;
    o.operator("redrive", &[("REASON", "configuration")])
        .await
        .succeeds()
        .says(&[
            "moved conversation 5 (configuration,",
            "Done: 1 moved back (parked for configuration)",
        ]);
    o.poll_once().await;
    o.release_all().await;
    o.poll_once().await;
    assert_eq!(o.cases_with(5), 1);
    o.redrive_finds_nothing().await;
}

impl Stack {
    /// Waits out the worker's backoff (one second in these tests).
    async fn release_all(&self) {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }

    /// `make redrive` again: nothing is left to move.
    async fn redrive_finds_nothing(&self) {
        self.operator("redrive", &[])
            .await
            .succeeds()
            .says(&["Nothing to redrive"]);
    }
}

#[tokio::test]
async fn moving_from_the_password_flow_to_client_credentials_needs_no_redeploy() {
    let o = ops().await;
    o.one_case_for(10).await;

    // Salesforce retires the password flow; the admin switches the secret.
    o.sf.set_password_flow(false);
    o.sf.expire_tokens();
    let cc = json!({
        "auth_flow": "client_credentials",
        "login_url": o.sf.url,
        "consumer_key": local_salesforce::CONSUMER_KEY,
        "consumer_secret": local_salesforce::CONSUMER_SECRET,
    });
    o.put_settings(&cc).await;
    o.send(&conversation(11)).await;
    o.poll_once().await;
    assert_eq!(
        o.cases_with(11),
        1,
        "the refused login made the worker re-read the secret"
    );
    assert_eq!(o.parked().await, 0);
}

#[tokio::test]
async fn messages_that_exhaust_max_receive_count_are_listed_too() {
    let o = ops().await;
    // A queue that gives up after one receive, like the template's after five.
    let (queue, dlq) = o.moto.queues("fragile", 30, 1).await.unwrap();
    let sqs = o.moto.sqs();
    sqs.send_message()
        .queue_url(&queue)
        .message_body(conversation(20))
        .send()
        .await
        .unwrap();
    let first = sqs
        .receive_message()
        .queue_url(&queue)
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    assert_eq!(first.messages.unwrap_or_default().len(), 1);
    let _ = sqs
        .receive_message()
        .queue_url(&queue)
        .send()
        .await
        .unwrap();
    operator_on(&o.moto, &queue, &dlq, "dlq", &[])
        .await
        .succeeds()
        .says(&[
            "1 conversation(s) seen in the dead-letter queue",
            "| max_receive_count |",
            "failed on every delivery",
        ]);
}

/// The token a rotation makes current (`None`: the first, no rotation),
/// then the webhook's expected answer to each of some tokens.
type Rotation = (Option<&'static str>, &'static [(&'static str, i64)]);

#[tokio::test]
async fn webhook_token_rotation_takes_effect_in_a_warm_instance() {
    let o = ops().await;
    let value = |token: &str| json!({ "webhook_token": token }).to_string();
    o.moto
        .secret(WITIOP, &value("old-webhook-token-1"))
        .await
        .unwrap();
    let tokens = WebhookTokens::load(SecretStore::new(&o.moto.sdk), WITIOP.into())
        .await
        .unwrap()
        .with_refresh_interval(Duration::ZERO);
    let webhook = crate::helpers::webhook(&o.moto, &o.queue, tokens);
    let body = event_file("conversation-closed.json");
    // Each rotation makes the new token AWSCURRENT and the one before it
    // AWSPREVIOUS: both are accepted, an older one no longer.
    let rotations: [Rotation; 3] = [
        (None, &[("old-webhook-token-1", 202)]),
        (
            Some("new-webhook-token-2"),
            &[("new-webhook-token-2", 202), ("old-webhook-token-1", 202)],
        ),
        (
            Some("third-webhook-token-3"),
            &[("third-webhook-token-3", 202), ("old-webhook-token-1", 401)],
        ),
    ];
    for (rotated_to, answers) in rotations {
        if let Some(token) = rotated_to {
            o.moto.put_secret(WITIOP, &value(token)).await.unwrap();
        }
        for &(token, status) in answers {
            let answer = handle_webhook(&webhook, bearing(token, &body)).await;
            assert_eq!(
                answer.status_code, status,
                "{token} after rotating to {rotated_to:?}"
            );
        }
    }
}
