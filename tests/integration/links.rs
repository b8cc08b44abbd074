//! The agent's link to the Case, through the HTTP API event shape, against
//! moto and the local Salesforce: the webhook hands out the link, the page
//! waits until the worker has made the Case, then redirects to it.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{bearing, event_file, salesforce_client, Stack, TOKENS};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use secrecy::SecretString;
use serde_json::Value;
use witiop_salesforce::links::{handle_link, signing, Links};
use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};

const KEY: &str = "a-link-key-of-at-least-thirty-two-chars";
const TOKEN: &str = "links-webhook-token";

/// The stack with the links function and a webhook that hands out links
/// when it has the link key `key`.
struct Linked {
    stack: Stack,
    links: Links,
    webhook: Webhook,
}

async fn linked(key: Option<&str>) -> Linked {
    let stack = crate::helpers::stack().start().await;
    // Its own client, sharing the token cache like the deployed function.
    let links = Links::new(
        Arc::new(salesforce_client(&stack.moto, &stack.secret, TOKENS)),
        None,
        key.map(|k| SecretString::from(k.to_owned())),
    );
    let mut tokens = WebhookTokens::for_tests(vec![TOKEN.into()]);
    if let Some(k) = key {
        tokens = tokens.with_link_key(k);
    }
    let webhook = crate::helpers::webhook(&stack.moto, &stack.queue, tokens);
    Linked {
        stack,
        links,
        webhook,
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

/// A link to conversation 1793 (number 393331234567) signed with `KEY`
/// for `signed_for`.
fn link_signed_for(signed_for: &str) -> String {
    let sig = signing::sign(
        &SecretString::from(KEY.to_owned()),
        signed_for,
        "393331234567",
    );
    format!("https://x.example/witiop/cases/1793?n=393331234567&sig={sig}")
}

impl Linked {
    /// Posts the sample event to the webhook; returns its `case_url`.
    async fn post(&self) -> Option<String> {
        let request = bearing(TOKEN, &event_file("conversation-closed.json"));
        let answer = handle_webhook(&self.webhook, request).await;
        assert_eq!(answer.status_code, 202, "{}", text(&answer));
        let v: Value = serde_json::from_str(&text(&answer)).unwrap();
        v.get("case_url").and_then(Value::as_str).map(str::to_owned)
    }

    /// Posts the sample event; returns the link the webhook handed out.
    async fn link(&self) -> String {
        self.post().await.expect("case_url in the webhook's answer")
    }

    /// The worker takes what the queue holds.
    async fn work(&self) {
        let (_, failed) = self.stack.poll().await;
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
    let l = linked(Some(KEY)).await;
    let sf = &l.stack.sf;
    let url = l.link().await;
    assert!(
        url.starts_with("https://abcdef1234.execute-api.eu-west-1.amazonaws.com/witiop/cases/1793?n=393331234567&sig="),
        "{url}"
    );

    // Before the worker: the page that refreshes.
    let page = l.open(&url).await;
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
    sf.reset_counters();
    assert_eq!(l.open(&url).await.status_code, 200);
    assert_eq!(sf.counters().api_calls, 0, "one call per link per 2 s");

    l.work().await;
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let case_id = sf.records("Case")[0]["Id"].as_str().unwrap().to_owned();
    let found = l.open(&url).await;
    assert_eq!(found.status_code, 302);
    assert_eq!(
        location(&found),
        format!("{}/lightning/r/Case/{case_id}/view", sf.url)
    );
    // Reopened: remembered, no API call.
    sf.reset_counters();
    assert_eq!(l.open(&url).await.status_code, 302);
    assert_eq!(sf.counters().api_calls, 0);
}

#[tokio::test]
async fn a_tampered_or_borrowed_signature_is_a_bare_404() {
    let l = linked(Some(KEY)).await;
    let url = l.link().await;
    l.work().await;
    let tampered = url.replace("sig=", "sig=A");
    let answer = l.open(&tampered).await;
    assert_eq!(answer.status_code, 404);
    assert_eq!(text(&answer), "Not Found");
    // Conversation 1794's signature on conversation 1793's path.
    assert_eq!(l.open(&link_signed_for("1794")).await.status_code, 404);
    let unsigned = "https://x.example/witiop/cases/1793?n=393331234567";
    assert_eq!(l.open(unsigned).await.status_code, 404);
    assert_eq!(
        l.stack.sf.counters().api_calls,
        2,
        "only the worker's two calls"
    );
}

#[tokio::test]
async fn an_expired_token_costs_one_login_then_the_redirect() {
    let l = linked(Some(KEY)).await;
    let url = l.link().await;
    l.work().await;
    l.stack.sf.expire_tokens();
    let logins = l.stack.sf.counters().logins;
    let answer = l.open(&url).await;
    assert_eq!(answer.status_code, 302, "{}", text(&answer));
    assert_eq!(l.stack.sf.counters().logins, logins + 1);
}

#[tokio::test]
async fn without_a_link_key_there_is_no_link_and_no_route() {
    let l = linked(None).await;
    assert_eq!(l.post().await, None);
    assert_eq!(l.open(&link_signed_for("1793")).await.status_code, 404);
}

#[tokio::test]
async fn after_two_minutes_the_page_stops_refreshing() {
    let l = linked(Some(KEY)).await;
    let url = l.link().await;
    let long_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 121;
    let page = l.open(&format!("{url}&since={long_ago}")).await;
    let html = text(&page);
    assert!(!html.contains("http-equiv"), "{html}");
    assert!(html.contains("will appear there when it is ready"));
}
