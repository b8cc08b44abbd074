//! The agent's link to the Case, through the HTTP API event shape, against
//! moto and the local Salesforce: the webhook hands out the link, the page
//! waits until the worker has made the Case, then redirects to it.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{event_file, salesforce_client, salesforce_secret, Moto};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use local_salesforce::LocalSalesforce;
use secrecy::SecretString;
use serde_json::{json, Value};
use witiop_salesforce::config::WebhookEnv;
use witiop_salesforce::links::{handle_link, signing, Links};
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};
use witiop_salesforce::worker::{MediaAccess, Worker};

const TOKENS: &str = "salesforce-token";
const KEY: &str = "a-link-key-of-at-least-thirty-two-chars";
const TOKEN: &str = "links-webhook-token";

struct Stack {
    moto: Moto,
    sf: LocalSalesforce,
    worker: Worker,
    links: Links,
    webhook: Webhook,
    queue: String,
}

async fn stack(key: Option<&str>) -> Stack {
    let moto = crate::helpers::moto().await;
    moto.secret(TOKENS, "{}").await.unwrap();
    let (queue, dlq) = moto.queues("conversations", 30, 5).await.unwrap();
    let sf = LocalSalesforce::start(0).await.unwrap();
    sf.seed_example_users();
    let secret = salesforce_secret(&sf.url, json!({}));
    let worker = Worker::new(
        Arc::new(salesforce_client(&moto, &secret, TOKENS)),
        crate::helpers::case_policy(&secret),
        moto.sqs(),
        dlq,
        MediaAccess::default(),
        4,
    );
    // Its own client, sharing the token cache like the deployed function.
    let links = Links::new(
        Arc::new(salesforce_client(&moto, &secret, TOKENS)),
        None,
        key.map(|k| SecretString::from(k.to_owned())),
    );
    let mut tokens = WebhookTokens::for_tests(vec![TOKEN.into()]);
    if let Some(k) = key {
        tokens = tokens.with_link_key(k);
    }
    let webhook = Webhook {
        sqs: moto.sqs(),
        tokens,
        env: WebhookEnv {
            queue_url: queue.clone(),
            witiop_secret_id: "witiop".into(),
            max_message_bytes: 262_144,
        },
    };
    Stack {
        moto,
        sf,
        worker,
        links,
        webhook,
        queue,
    }
}

/// The HTTP API's event for a GET of `url` (as the webhook built it).
fn get(url: &str) -> ApiGatewayV2httpRequest {
    let mut r: ApiGatewayV2httpRequest =
        serde_json::from_str(&event_file("links-request.json")).unwrap();
    let parsed = reqwest::Url::parse(url).unwrap();
    r.raw_path = Some(parsed.path().to_owned());
    r.raw_query_string = parsed.query().map(str::to_owned);
    r.query_string_parameters = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect::<std::collections::HashMap<_, _>>()
        .into();
    let id = parsed.path().rsplit('/').next().unwrap().to_owned();
    r.path_parameters = [("conversation_id".to_owned(), id)].into_iter().collect();
    r
}

fn text(r: &ApiGatewayV2httpResponse) -> String {
    match &r.body {
        Some(Body::Text(t)) => t.clone(),
        _ => String::new(),
    }
}

impl Stack {
    /// Posts the sample event to the webhook; returns its `case_url`.
    async fn post(&self, body: &str) -> Option<String> {
        let mut r: ApiGatewayV2httpRequest =
            serde_json::from_str(&event_file("webhook-request.json")).unwrap();
        r.body = Some(body.to_owned());
        r.headers
            .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        let answer = handle_webhook(&self.webhook, r).await;
        assert_eq!(answer.status_code, 202, "{}", text(&answer));
        let v: Value = serde_json::from_str(&text(&answer)).unwrap();
        v.get("case_url").and_then(Value::as_str).map(str::to_owned)
    }

    /// The worker takes what the queue holds.
    async fn work(&self) {
        let (_, failed) = crate::helpers::poll(&self.worker, &self.moto, &self.queue).await;
        assert!(failed.is_empty(), "{failed:?}");
    }

    async fn open(&self, url: &str) -> ApiGatewayV2httpResponse {
        handle_link(&self.links, get(url)).await
    }
}

fn location(r: &ApiGatewayV2httpResponse) -> String {
    r.headers
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_link_waits_for_the_case_then_opens_it() {
    let s = stack(Some(KEY)).await;
    let url = s
        .post(&event_file("conversation-closed.json"))
        .await
        .expect("case_url in the webhook's answer");
    assert!(
        url.starts_with("https://abcdef1234.execute-api.eu-west-1.amazonaws.com/witiop/cases/1793?n=393331234567&sig="),
        "{url}"
    );

    // Before the worker: the page that refreshes.
    let page = s.open(&url).await;
    assert_eq!(page.status_code, 200);
    let html = text(&page);
    assert!(html.contains("http-equiv=\"refresh\""), "{html}");
    assert!(html.contains("<html lang=\"en\">") && html.contains("conversation 1793"));
    assert_eq!(
        page.headers.get("referrer-policy").unwrap(),
        "no-referrer",
        "the signed URL never leaks as a referrer"
    );
    // Opened again at once: the throttle answers without a Salesforce call.
    s.sf.reset_counters();
    assert_eq!(s.open(&url).await.status_code, 200);
    assert_eq!(s.sf.counters().api_calls, 0, "one call per link per 2 s");

    s.work().await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let case_id = s.sf.records("Case")[0]["Id"].as_str().unwrap().to_owned();
    let found = s.open(&url).await;
    assert_eq!(found.status_code, 302);
    assert_eq!(
        location(&found),
        format!("{}/lightning/r/Case/{case_id}/view", s.sf.url)
    );
    // Reopened: remembered, no API call.
    s.sf.reset_counters();
    assert_eq!(s.open(&url).await.status_code, 302);
    assert_eq!(s.sf.counters().api_calls, 0);
}

#[tokio::test]
async fn a_tampered_or_borrowed_signature_is_a_bare_404() {
    let s = stack(Some(KEY)).await;
    let url = s
        .post(&event_file("conversation-closed.json"))
        .await
        .unwrap();
    s.work().await;
    let tampered = url.replace("sig=", "sig=A");
    let answer = s.open(&tampered).await;
    assert_eq!(answer.status_code, 404);
    assert_eq!(text(&answer), "Not Found");
    // Conversation 1794's signature on conversation 1793's path.
    let key = SecretString::from(KEY.to_owned());
    let other = signing::sign(&key, "1794", "393331234567");
    let borrowed = format!("https://x.example/witiop/cases/1793?n=393331234567&sig={other}");
    assert_eq!(s.open(&borrowed).await.status_code, 404);
    let unsigned = "https://x.example/witiop/cases/1793?n=393331234567";
    assert_eq!(s.open(unsigned).await.status_code, 404);
    assert_eq!(s.sf.counters().api_calls, 2, "only the worker's two calls");
}

#[tokio::test]
async fn an_expired_token_costs_one_login_then_the_redirect() {
    let s = stack(Some(KEY)).await;
    let url = s
        .post(&event_file("conversation-closed.json"))
        .await
        .unwrap();
    s.work().await;
    s.sf.expire_tokens();
    let logins = s.sf.counters().logins;
    let answer = s.open(&url).await;
    assert_eq!(answer.status_code, 302, "{}", text(&answer));
    assert_eq!(s.sf.counters().logins, logins + 1);
}

#[tokio::test]
async fn without_a_link_key_there_is_no_link_and_no_route() {
    let s = stack(None).await;
    assert_eq!(s.post(&event_file("conversation-closed.json")).await, None);
    let key = SecretString::from(KEY.to_owned());
    let sig = signing::sign(&key, "1793", "393331234567");
    let url = format!("https://x.example/witiop/cases/1793?n=393331234567&sig={sig}");
    assert_eq!(s.open(&url).await.status_code, 404);
}

#[tokio::test]
async fn after_two_minutes_the_page_stops_refreshing() {
    let s = stack(Some(KEY)).await;
    let url = s
        .post(&event_file("conversation-closed.json"))
        .await
        .unwrap();
    let long_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 121;
    let page = s.open(&format!("{url}&since={long_ago}")).await;
    let html = text(&page);
    assert!(!html.contains("http-equiv"), "{html}");
    assert!(html.contains("will appear there when it is ready"));
}
