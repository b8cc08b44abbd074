//! Operating procedures, run against moto and the local Salesforce:
//! a broken password parks conversations in the DLQ with the reason, fixing
//! the secret and redriving yields each Case exactly once; the webhook token
//! and the Salesforce login flow can be rotated without a redeploy.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{event_file, salesforce_client, salesforce_secret, Moto};
use local_salesforce::LocalSalesforce;
use serde_json::{json, Value};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::ops::{list_dead_letters, redrive, Redrive};
use witiop_salesforce::worker::{RetrySchedule, SettingsSource, Worker};

const SF_SECRET: &str = "salesforce";
const TOKENS: &str = "salesforce-token";

struct Ops {
    moto: Moto,
    sf: LocalSalesforce,
    queue: String,
    dlq: String,
    worker: Worker,
}

async fn ops() -> Ops {
    let moto = crate::helpers::moto().await;
    let (queue, dlq) = moto.queues("conversations", 30, 5).await.unwrap();
    let sf = LocalSalesforce::start(0).await.unwrap();
    sf.seed_example_users();
    let secret = salesforce_secret(&sf.url, json!({}));
    moto.secret(SF_SECRET, &secret.to_string()).await.unwrap();
    moto.secret(TOKENS, "{}").await.unwrap();
    let worker = Worker::new(
        Arc::new(salesforce_client(&moto, &secret, TOKENS)),
        crate::helpers::case_policy(&secret),
        moto.sqs(),
        dlq.clone(),
        witiop_salesforce::worker::MediaAccess::default(),
        4,
    )
    .with_retry_schedule(RetrySchedule {
        queue_url: Some(queue.clone()),
        base: Duration::from_secs(1),
        cap: Duration::from_secs(1),
    })
    .with_settings_source(SettingsSource {
        store: SecretStore::new(&moto.sdk),
        secret_id: SF_SECRET.into(),
        witiop_secret_id: None,
        token_secret_id: TOKENS.into(),
        interval: Duration::ZERO,
    });
    Ops {
        moto,
        sf,
        queue,
        dlq,
        worker,
    }
}

fn conversation(id: u64) -> String {
    let mut e: Value = serde_json::from_str(&event_file("conversation-closed.json")).unwrap();
    e["conversation"]["id"] = json!(id);
    e.as_object_mut().unwrap().remove("event_id");
    e.to_string()
}

impl Ops {
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
        crate::helpers::poll(&self.worker, &self.moto, &self.queue)
            .await
            .0
    }

    fn cases_with(&self, conversation: u64) -> usize {
        let suffix = format!("[{conversation}]");
        self.sf
            .records("Case")
            .iter()
            .filter(|c| c["Subject"].as_str().unwrap().ends_with(&suffix))
            .count()
    }
}

#[tokio::test]
async fn an_expired_password_waits_in_the_queue_without_locking_the_user_out() {
    let o = ops().await;
    o.send(&conversation(1)).await;
    o.poll_once().await;
    assert_eq!(o.cases_with(1), 1);

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
    assert!(list_dead_letters(&o.moto.sqs(), &o.dlq)
        .await
        .unwrap()
        .is_empty());
    // Deliveries within the minute do not try the refused password again.
    o.release_all().await;
    o.poll_once().await;
    assert_eq!(o.sf.counters().failed_logins, 1, "no lockout");

    // The admin puts the new password in the secret: no redeploy, no redrive.
    let fixed = salesforce_secret(&o.sf.url, json!({"password": "changed-password"}));
    o.moto
        .put_secret(SF_SECRET, &fixed.to_string())
        .await
        .unwrap();
    o.release_all().await;
    o.poll_once().await;
    assert_eq!(
        (o.cases_with(2), o.cases_with(3), o.cases_with(4)),
        (1, 1, 1)
    );

    // Redelivering or redriving adds nothing.
    o.send(&conversation(2)).await;
    o.poll_once().await;
    assert_eq!(o.redrive_again().await, 0);
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
    o.moto
        .put_secret(SF_SECRET, &audited.to_string())
        .await
        .unwrap();
    o.sf.expire_tokens();
    o.send(&conversation(5)).await;
    // The worker picks the change up on its next re-read.
    o.poll_once().await;
    o.release_all().await;
    o.poll_once().await;
    let parked = list_dead_letters(&o.moto.sqs(), &o.dlq).await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].conversation_id, "5");
    assert_eq!(parked[0].error_code, "configuration");
    // Listing deleted nothing.
    assert_eq!(
        list_dead_letters(&o.moto.sqs(), &o.dlq)
            .await
            .unwrap()
            .len(),
        1
    );
    // The admin turns audit fields off and redrives.
    let plain = salesforce_secret(&o.sf.url, json!({}));
    o.moto
        .put_secret(SF_SECRET, &plain.to_string())
        .await
        .unwrap();
    let how = redrive(&o.moto.sqs(), &o.dlq, &o.queue).await.unwrap();
    assert_eq!(
        how,
        Redrive::Copied { moved: 1 },
        "moto has no StartMessageMoveTask: the copy path runs"
    );
    o.poll_once().await;
    o.release_all().await;
    o.poll_once().await;
    assert_eq!(o.cases_with(5), 1);
    assert_eq!(o.redrive_again().await, 0);
}

impl Ops {
    /// Waits out the worker's backoff (one second in these tests).
    async fn release_all(&self) {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }

    async fn redrive_again(&self) -> usize {
        match redrive(&self.moto.sqs(), &self.dlq, &self.queue)
            .await
            .unwrap()
        {
            Redrive::Copied { moved } => moved,
            Redrive::MoveTask { .. } => unreachable!("moto"),
        }
    }
}

#[tokio::test]
async fn moving_from_the_password_flow_to_client_credentials_needs_no_redeploy() {
    let o = ops().await;
    o.send(&conversation(10)).await;
    o.poll_once().await;
    assert_eq!(o.cases_with(10), 1);

    // Salesforce retires the password flow; the admin switches the secret.
    o.sf.set_password_flow(false);
    o.sf.expire_tokens();
    let cc = json!({
        "auth_flow": "client_credentials",
        "login_url": o.sf.url,
        "consumer_key": local_salesforce::CONSUMER_KEY,
        "consumer_secret": local_salesforce::CONSUMER_SECRET,
    });
    o.moto.put_secret(SF_SECRET, &cc.to_string()).await.unwrap();
    o.send(&conversation(11)).await;
    o.poll_once().await;
    assert_eq!(
        o.cases_with(11),
        1,
        "the refused login made the worker re-read the secret"
    );
    assert!(list_dead_letters(&o.moto.sqs(), &o.dlq)
        .await
        .unwrap()
        .is_empty());
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
    let parked = list_dead_letters(&sqs, &dlq).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].error_code, "max_receive_count");
}

#[tokio::test]
async fn webhook_token_rotation_takes_effect_in_a_warm_instance() {
    use witiop_salesforce::config::WebhookEnv;
    use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};
    let o = ops().await;
    o.moto
        .secret(
            "witiop",
            &json!({"webhook_token": "old-webhook-token-1"}).to_string(),
        )
        .await
        .unwrap();
    let tokens = WebhookTokens::load(SecretStore::new(&o.moto.sdk), "witiop".into())
        .await
        .unwrap()
        .with_refresh_interval(Duration::ZERO);
    let webhook = Webhook {
        sqs: o.moto.sqs(),
        tokens,
        env: WebhookEnv {
            queue_url: o.queue.clone(),
            witiop_secret_id: "witiop".into(),
            max_message_bytes: 262_144,
        },
    };
    let request = |token: &str| {
        let mut r: aws_lambda_events::apigw::ApiGatewayV2httpRequest =
            serde_json::from_str(&event_file("webhook-request.json")).unwrap();
        r.headers
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        r
    };
    assert_eq!(
        handle_webhook(&webhook, request("old-webhook-token-1"))
            .await
            .status_code,
        202
    );
    // Rotation: the new token becomes AWSCURRENT, the old one AWSPREVIOUS.
    o.moto
        .put_secret(
            "witiop",
            &json!({"webhook_token": "new-webhook-token-2"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        handle_webhook(&webhook, request("new-webhook-token-2"))
            .await
            .status_code,
        202
    );
    assert_eq!(
        handle_webhook(&webhook, request("old-webhook-token-1"))
            .await
            .status_code,
        202,
        "both during the switch"
    );
    // A second rotation retires the first token.
    o.moto
        .put_secret(
            "witiop",
            &json!({"webhook_token": "third-webhook-token-3"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        handle_webhook(&webhook, request("third-webhook-token-3"))
            .await
            .status_code,
        202
    );
    assert_eq!(
        handle_webhook(&webhook, request("old-webhook-token-1"))
            .await
            .status_code,
        401
    );
}
