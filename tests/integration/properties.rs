//! Property tests: no panic on any input, escaping round-trips through the
//! local Salesforce's SOQL parser, splitting never breaks a character or loses
//! a byte. `PROPTEST_CASES` raises the case count for a longer run.

use local_salesforce::soql::{self, Expr, Literal};
use proptest::prelude::*;
use serde_json::json;
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
        serde_json::from_str(include_str!("../../events/webhook-request.json")).unwrap();
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
            Just(include_str!("../../events/conversation-closed.json").to_owned()),
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

/// With SQS up (moto, a FIFO queue), no event a caller can send makes the
/// webhook answer 5xx: each field of the sample replaced by hostile text
/// (huge, control characters, U+FFFE, `@{`, quotes) is queued or refused
/// with a 4xx naming why.
#[test]
fn with_sqs_up_hostile_fields_never_answer_5xx() {
    use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
    use aws_sdk_sqs::types::QueueAttributeName;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::Value;
    use witiop_salesforce::config::WebhookEnv;
    use witiop_salesforce::webhook::{handle_webhook, Webhook, WebhookTokens};

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_moto, webhook) = rt.block_on(async {
        let moto = crate::helpers::moto().await;
        let queue = moto
            .sqs()
            .create_queue()
            .queue_name("hostile.fifo")
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::MaximumMessageSize, "1048576")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let webhook = Webhook {
            sqs: moto.sqs(),
            tokens: WebhookTokens::for_tests(vec!["property-token-0123456789".into()])
                .with_link_key("property-link-key-0123456789abcdef0123"),
            env: WebhookEnv {
                queue_url: queue,
                witiop_secret_id: "w".into(),
                max_message_bytes: 1_048_576,
            },
        };
        (moto, webhook)
    });
    let template: ApiGatewayV2httpRequest =
        serde_json::from_str(include_str!("../../events/webhook-request.json")).unwrap();
    let sample: Value =
        serde_json::from_str(include_str!("../../events/conversation-closed.json")).unwrap();
    let fields: &[&[&str]] = &[
        &["event_id"],
        &["conversation", "id"],
        &["conversation", "customer", "number"],
        &["conversation", "customer", "name"],
        &["conversation", "agent", "email"],
        &["conversation", "agent", "name"],
        &["conversation", "profile", "notes"],
        &["conversation", "closed_at"],
    ];
    let hostile = prop_oneof![
        "\\PC{0,200}",
        "[@{}\"'\\\\\\u{0}-\\u{1f}\\u{fffe}\\u{ffff}a-z0-9+ ]{0,100}",
        (1usize..200_000).prop_map(|n| "x".repeat(n)),
        Just("\u{fffe}".to_owned()),
        Just("@{contact.id}".to_owned()),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    runner
        .run(
            &(0..fields.len(), hostile, 0usize..3),
            |(field, value, message)| {
                let mut event = sample.clone();
                let path = fields[field];
                let mut slot = &mut event;
                for key in &path[..path.len() - 1] {
                    slot = &mut slot[*key];
                }
                slot[path[path.len() - 1]] = json!(value);
                event["conversation"]["messages"][message]["text"] = json!(value);
                let mut r = template.clone();
                r.body = Some(event.to_string());
                r.headers.insert(
                    "authorization",
                    "Bearer property-token-0123456789".parse().unwrap(),
                );
                let status = rt.block_on(handle_webhook(&webhook, r)).status_code;
                prop_assert!(
                    matches!(status, 202 | 400 | 413),
                    "status {status} for {path:?}"
                );
                Ok(())
            },
        )
        .unwrap();
}
