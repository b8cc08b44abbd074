//! The agent's link to the Case, through the HTTP API event shape, against
//! moto and the local Salesforce: the webhook hands out the link, the page
//! waits until the worker has made the Case, then redirects to it.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{bearing, event_file, salesforce_client, Stack, TOKENS, WITIOP};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use local_salesforce::LocalSalesforce;
use secrecy::SecretString;
use serde_json::{json, Value};
use witiop_salesforce::aws::SecretStore;
use witiop_salesforce::links::signing::{self, Link};
use witiop_salesforce::links::{handle_link, CallBudget, LinkLimits, Links, THROTTLE};
use witiop_salesforce::settings::SettingsSource;
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
    linked_with(key, LinkLimits::default()).await
}

/// A Case made after a link was first opened is found at the next refresh
/// after the throttle, rather than after the deployed negative cache.
fn eager() -> LinkLimits {
    LinkLimits {
        missing_for: THROTTLE,
        ..LinkLimits::default()
    }
}

async fn linked_with(key: Option<&str>, limits: LinkLimits) -> Linked {
    let stack = crate::helpers::stack().start().await;
    // Its own client, sharing the token cache like the deployed function.
    let links = Links::new(
        Arc::new(salesforce_client(&stack.moto, &stack.secret, TOKENS)),
        None,
        key.map(|k| SecretString::from(k.to_owned())),
    )
    .with_limits(limits);
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

/// Epoch seconds `offset` from now.
fn epoch(offset: i64) -> u64 {
    signing::epoch_seconds().saturating_add_signed(offset)
}

/// A link to conversation `id` (number 393331234567) expiring at
/// `expires`, signed with `key` as if it were conversation `signed_for`'s.
fn forged(key: &str, id: &str, signed_for: &str, expires: u64) -> String {
    let signed = Link {
        conversation_id: signed_for,
        digits: "393331234567",
        expires,
    };
    let sig = signing::sign(&SecretString::from(key.to_owned()), signed);
    let path = signing::path_and_query(
        Link {
            conversation_id: id,
            ..signed
        },
        &sig,
    );
    format!("https://x.example{path}")
}

/// A valid link to conversation `id`, signed with `key`, for an hour.
fn signed(key: &str, id: &str) -> String {
    forged(key, id, id, epoch(3600))
}

/// A link to conversation 1793 signed with `KEY` for `signed_for`.
fn link_signed_for(signed_for: &str) -> String {
    forged(KEY, "1793", signed_for, epoch(3600))
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
        let (_, failed) = Box::pin(self.stack.poll()).await;
        assert!(failed.is_empty(), "{failed:?}");
    }

    async fn open(&self, url: &str) -> ApiGatewayV2httpResponse {
        // Boxed: debug builds' futures are large, and tests await many.
        Box::pin(handle_link(&self.links, get(url))).await
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
    let l = linked_with(Some(KEY), eager()).await;
    let sf = &l.stack.sf;
    let url = l.link().await;
    assert!(
        url.starts_with("https://abcdef1234.execute-api.eu-west-1.amazonaws.com/witiop/cases/1793?n=393331234567&exp="),
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
    // A link of the release before expiries: signed, but with no `exp`.
    let without_expiry = url
        .split('&')
        .filter(|p| !p.starts_with("exp="))
        .collect::<Vec<_>>()
        .join("&");
    assert!(!without_expiry.contains("exp="), "{without_expiry}");
    assert_eq!(l.open(&without_expiry).await.status_code, 404);
    // The expiry moved: the signature no longer matches.
    let exp = url
        .split("&exp=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let later = exp.parse::<u64>().unwrap() + 86_400;
    let extended = url.replace(&format!("exp={exp}"), &format!("exp={later}"));
    assert_eq!(l.open(&extended).await.status_code, 404);
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

// --- The secrets re-read, expiry and the Salesforce budget -----------------

/// The Salesforce secret's id in moto.
const SALESFORCE: &str = "salesforce";
/// How often the warm instance re-reads its secrets here (60 s deployed).
const INTERVAL: Duration = Duration::from_millis(300);

fn witiop_secret(link_key: &str) -> String {
    json!({ "webhook_token": TOKEN, "link_key": link_key }).to_string()
}

/// A links instance that re-reads both secrets from moto every
/// [`INTERVAL`], as the deployed function does every minute.
async fn rereading(stack: &Stack, link_key: &str) -> Links {
    stack
        .moto
        .secret(SALESFORCE, &stack.secret.to_string())
        .await
        .unwrap();
    stack
        .moto
        .secret(WITIOP, &witiop_secret(link_key))
        .await
        .unwrap();
    Links::new(
        Arc::new(salesforce_client(&stack.moto, &stack.secret, TOKENS)),
        None,
        Some(SecretString::from(link_key.to_owned())),
    )
    .with_settings_source(SettingsSource {
        store: SecretStore::new(&stack.moto.sdk),
        secret_id: SALESFORCE.into(),
        witiop_secret_id: Some(WITIOP.into()),
        token_secret_id: TOKENS.into(),
        interval: INTERVAL,
    })
}

async fn status(links: &Links, url: &str) -> i64 {
    Box::pin(handle_link(links, get(url))).await.status_code
}

#[tokio::test]
async fn a_rotated_link_key_reaches_a_warm_instance_and_a_twice_rotated_one_stops() {
    let stack = crate::helpers::stack().start().await;
    let keys = [
        "first-link-key-0123456789abcdef0123",
        "second-link-key-0123456789abcdef012",
        "third-link-key-0123456789abcdef0123",
    ];
    let links = rereading(&stack, keys[0]).await;
    // Conversation 1793 has no Case: a link that verifies gets the page.
    assert_eq!(status(&links, &signed(keys[0], "1793")).await, 200);
    assert_eq!(status(&links, &signed(keys[1], "1793")).await, 404);

    // Each rotation makes the new key AWSCURRENT and the one before it
    // AWSPREVIOUS; the same warm instance sees it after its interval.
    let rotate = |key: &'static str| {
        let moto = &stack.moto;
        async move {
            moto.put_secret(WITIOP, &witiop_secret(key)).await.unwrap();
            tokio::time::sleep(INTERVAL + Duration::from_millis(100)).await;
        }
    };
    rotate(keys[1]).await;
    assert_eq!(
        status(&links, &signed(keys[1], "1794")).await,
        200,
        "the webhook's new links open"
    );
    assert_eq!(
        status(&links, &signed(keys[0], "1795")).await,
        200,
        "links made before the rotation still open"
    );
    rotate(keys[2]).await;
    assert_eq!(status(&links, &signed(keys[2], "1796")).await, 200);
    assert_eq!(status(&links, &signed(keys[1], "1797")).await, 200);
    assert_eq!(
        status(&links, &signed(keys[0], "1798")).await,
        404,
        "a key rotated twice no longer opens anything"
    );
}

#[tokio::test]
async fn an_expired_link_is_a_bare_404_and_the_webhook_signs_for_sixty_days() {
    let l = linked(Some(KEY)).await;
    for expires in [epoch(-3600), epoch(-1), epoch(0)] {
        let answer = l.open(&forged(KEY, "1793", "1793", expires)).await;
        assert_eq!(answer.status_code, 404, "expiring at {expires}");
        assert_eq!(text(&answer), "Not Found");
    }
    assert_eq!(
        l.stack.sf.counters().api_calls,
        0,
        "refused before any call"
    );

    let before = signing::epoch_seconds();
    let url = l.link().await;
    let after = signing::epoch_seconds();
    let expires: u64 = get(&url)
        .query_string_parameters
        .first("exp")
        .unwrap()
        .parse()
        .unwrap();
    let lifetime = 60 * 24 * 3600;
    assert!(
        (before + lifetime..=after + lifetime).contains(&expires),
        "{url}"
    );
    assert_eq!(l.open(&url).await.status_code, 200);
}

#[tokio::test]
async fn a_missing_case_is_not_asked_for_again_for_a_while() {
    let l = linked(Some(KEY)).await;
    let sf = &l.stack.sf;
    let url = signed(KEY, "1793");
    assert_eq!(l.open(&url).await.status_code, 200);
    assert_eq!(sf.counters().api_calls, 1);
    // Past the per-link throttle, inside the negative cache.
    tokio::time::sleep(THROTTLE + Duration::from_millis(100)).await;
    assert_eq!(l.open(&url).await.status_code, 200);
    assert_eq!(sf.counters().api_calls, 1, "remembered as missing");
}

#[tokio::test]
async fn missing_cases_opened_in_a_loop_stay_within_the_budget() {
    let budget = CallBudget {
        capacity: 5,
        every: Duration::from_secs(3600),
    };
    let l = linked_with(
        Some(KEY),
        LinkLimits {
            budget,
            ..LinkLimits::default()
        },
    )
    .await;
    // 40 valid links to conversations without a Case, opened in a loop.
    let urls: Vec<String> = (0..40).map(|i| signed(KEY, &format!("gone-{i}"))).collect();
    for _ in 0..3 {
        for url in &urls {
            let page = l.open(url).await;
            assert_eq!(page.status_code, 200);
            assert!(text(&page).contains("http-equiv=\"refresh\""));
        }
    }
    assert_eq!(
        l.stack.sf.counters().api_calls,
        u64::from(budget.capacity),
        "120 opens, the bucket's 5 calls"
    );
}

#[tokio::test]
async fn a_hanging_salesforce_gives_the_waiting_page_in_bounded_time() {
    let l = linked(Some(KEY)).await;
    let sf: &LocalSalesforce = &l.stack.sf;
    // A session first, so that the hang meets the lookup itself.
    assert_eq!(l.open(&signed(KEY, "warm-up")).await.status_code, 200);
    sf.hang_for(Duration::from_secs(120), Duration::from_secs(120));
    let url = signed(KEY, "1793");
    // Far under the hang: only the lookup timeout (3 s) can end it.
    let page = tokio::time::timeout(Duration::from_secs(60), l.open(&url))
        .await
        .expect("answered while Salesforce still hangs");
    assert_eq!(page.status_code, 200);
    assert!(text(&page).contains("http-equiv=\"refresh\""));
    let hung = sf.counters().hung;
    assert!(hung >= 1, "the lookup met the hang");
    // Remembered as not found: the refresh does not wait on Salesforce again.
    tokio::time::sleep(THROTTLE + Duration::from_millis(100)).await;
    let again = tokio::time::timeout(Duration::from_secs(60), l.open(&url))
        .await
        .expect("answered");
    assert_eq!(again.status_code, 200);
    assert_eq!(sf.counters().hung, hung);
}
