//! Property tests: no panic on any input, escaping round-trips through the
//! local Salesforce's SOQL parser, splitting never breaks a character or loses
//! a byte. `PROPTEST_CASES` raises the case count for a longer run.

use local_salesforce::soql::{self, Expr, Literal};
use proptest::prelude::*;
use serde_json::json;
use witiop_salesforce::case::split_text;
use witiop_salesforce::event::parse_body;
use witiop_salesforce::salesforce::escape::{soql_like_literal, soql_literal};

fn where_clause(literal: &str) -> Expr {
    soql::parse(&format!(
        "SELECT Id FROM Contact WHERE LastName = {literal}"
    ))
    .expect("an escaped literal always parses")
    .filter
    .expect("a filter")
}

proptest! {
    #[test]
    fn parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse_body(&bytes);
    }

    #[test]
    fn parser_never_panics_on_near_valid_events(
        id in prop_oneof![any::<i64>().prop_map(|n| json!(n)), ".*".prop_map(|s| json!(s)), Just(json!(null)), Just(json!(1.5))],
        number in prop_oneof![".*".prop_map(|s| json!(s)), Just(json!(null)), any::<u64>().prop_map(|n| json!(n))],
        sent_at in prop_oneof![".*".prop_map(|s| json!(s)), Just(json!("2026-11-24T09:58:10Z")), Just(json!(7))],
        text in prop_oneof![".*".prop_map(|s| json!(s)), Just(json!(null)), Just(json!([]))],
        sender in prop_oneof![Just("customer"), Just("agent"), Just("system"), Just("bot")],
    ) {
        let event = json!({
            "type": "conversation.closed",
            "conversation": {
                "id": id, "agent": {"email": "a@b.c"}, "customer": {"number": number},
                "messages": [{"sender": sender, "sent_at": sent_at, "text": text}]
            }
        });
        let _ = parse_body(event.to_string().as_bytes());
    }

    #[test]
    fn soql_literals_round_trip(s in "\\PC*") {
        match where_clause(&soql_literal(&s)) {
            Expr::Cmp { value: Literal::Str(parsed), .. } => prop_assert_eq!(parsed, s),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn soql_literals_round_trip_with_control_characters(s in proptest::collection::vec(any::<char>(), 0..64)) {
        let s: String = s.into_iter().collect();
        match where_clause(&soql_literal(&s)) {
            Expr::Cmp { value: Literal::Str(parsed), .. } => prop_assert_eq!(parsed, s),
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    #[test]
    fn like_literals_match_exactly_themselves(s in "[a-z%_\\\\' ]{0,20}", extra in "[a-z]{1,3}") {
        let q = soql::parse(&format!("SELECT Id FROM Contact WHERE LastName LIKE {}", soql_like_literal(&s))).unwrap();
        let filter = q.filter.unwrap();
        let same = s.clone();
        prop_assert!(filter.matches(&|_| json!(same.clone())));
        let longer = format!("{s}{extra}");
        prop_assert!(!filter.matches(&|_| json!(longer.clone())));
    }

    #[test]
    fn splitting_keeps_every_byte_within_the_limit(s in "\\PC{0,3000}", max in 4usize..600) {
        let pieces = split_text(&s, max);
        prop_assert!(pieces.iter().all(|p| p.len() <= max));
        prop_assert_eq!(pieces.concat(), s);
    }
}

/// The webhook handler on arbitrary bodies and headers: never a panic, never
/// a 2xx for something it did not queue, never a 5xx but the queue's 503.
#[test]
fn webhook_handler_answers_every_input_explicitly() {
    use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
    use proptest::test_runner::{Config, TestRunner};
    use witiop_salesforce::config::WebhookEnv;
    use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};

    let rt = tokio::runtime::Runtime::new().unwrap();
    // No moto here: the token store and SQS point at a closed port, so a valid
    // event can only end in 503, which is what the property allows.
    let webhook = rt.block_on(async {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let sdk =
            witiop_salesforce::aws::local_sdk_config(&format!("http://127.0.0.1:{port}")).await;
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
                .build(),
        );
        let tokens = WebhookTokens::for_tests(vec!["property-token-0123456789".into()]);
        Webhook {
            sqs,
            tokens,
            env: WebhookEnv {
                queue_url: "http://127.0.0.1:9/q".into(),
                witiop_secret_id: "w".into(),
                max_message_bytes: 4096,
            },
        }
    });
    let template: ApiGatewayV2httpRequest =
        serde_json::from_str(include_str!("../events/webhook-request.json")).unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 128,
        ..Config::default()
    });
    let strategy = (
        prop_oneof![
            Just("Bearer property-token-0123456789".to_owned()),
            ".{0,40}"
        ],
        prop_oneof![
            Just(include_str!("../events/conversation-closed.json").to_owned()),
            "\\PC{0,300}"
        ],
        any::<bool>(),
        prop_oneof![Just(http::Method::POST), Just(http::Method::GET)],
    );
    runner
        .run(&strategy, |(auth, body, base64, method)| {
            let mut r = template.clone();
            r.headers.remove("authorization");
            if let Ok(v) = http::HeaderValue::from_str(&auth) {
                r.headers.insert("authorization", v);
            }
            r.body = Some(body);
            r.is_base64_encoded = base64;
            r.request_context.http.method = method;
            let response = rt.block_on(handle_webhook(&webhook, r));
            let status = response.status_code;
            prop_assert!(
                matches!(status, 202 | 400 | 401 | 405 | 413 | 503),
                "status {status}"
            );
            if status == 202 {
                let text = match &response.body {
                    Some(aws_lambda_events::encodings::Body::Text(t)) => t.clone(),
                    _ => String::new(),
                };
                prop_assert!(
                    text.contains("\"ignored\""),
                    "202 without a queue must be an ignored type: {text}"
                );
            }
            Ok(())
        })
        .unwrap();
}
