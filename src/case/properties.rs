//! Property tests of the planner: any event the webhook accepts plans only
//! writes within Salesforce's limits, and the texts concatenate back.
use proptest::prelude::*;
use serde_json::json;

use super::comments::{attachment_line, ordered_messages, split_text, COMMENT_MAX_BYTES};
use super::*;
use crate::config::{Authorship, CasePolicy};
use crate::event::Conversation;
use crate::phone::CustomerNumber;
use crate::text::utf16_len;

fn num(c: &Conversation) -> CustomerNumber {
    CustomerNumber::parse(&c.customer.number)
}

fn linked(_: usize, _: usize) -> AttachmentFate {
    AttachmentFate::Linked
}

fn policy() -> CasePolicy {
    CasePolicy {
        case_origin: Some("WhatsApp".into()),
        ..CasePolicy::default()
    }
}

/// Text a person may write: any characters, `@{`, quotes, control characters.
fn person_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(&format!("\\PC{{0,{max}}}")).unwrap(),
        proptest::string::string_regex(&format!(
            "[a-z😀é @{{}}\"'\\n\\t\\u{{0}}-\\u{{1f}}]{{0,{max}}}"
        ))
        .unwrap(),
    ]
}

fn conversation() -> impl Strategy<Value = Conversation> {
    let attachment = (
        proptest::string::string_regex("[a-z/._-]{0,300}").unwrap(),
        proptest::option::of(person_text(255)),
    );
    let message = (
        any::<bool>(),
        proptest::option::of(person_text(9_000)),
        proptest::collection::vec(attachment, 0..40),
        0i64..5,
    );
    (
        proptest::option::of(person_text(5_000)),
        proptest::option::of(person_text(500)),
        proptest::collection::vec(message, 0..6),
        proptest::collection::vec(("[a-z_]{1,20}", person_text(2_000)), 0..4),
    )
        .prop_map(|(customer, agent, messages, profile)| {
            let messages: Vec<Value> = messages
                .into_iter()
                .enumerate()
                .map(|(i, (agent_sent, text, attachments, second))| {
                    json!({
                        "id": format!("m{i}"),
                        "sender": if agent_sent { "agent" } else { "customer" },
                        "text": text,
                        "sent_at": format!("2026-11-24T10:00:0{second}Z"),
                        "attachments": attachments.into_iter().map(|(path, name)| json!({
                            "url": format!("https://app.witiop.example/{path}"),
                            "file_name": name,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let mut body = json!({
                "type": "conversation.closed",
                "conversation": {
                    "id": "1793",
                    "customer": {"number": "+393331234567", "name": customer},
                    "agent": {"email": "agent@acme.example", "name": agent},
                    "messages": messages,
                    "profile": profile.into_iter().map(|(k, v)| (k, json!(v))).collect::<serde_json::Map<String, Value>>(),
                }
            });
            strip_nulls(&mut body);
            match crate::event::parse_body(body.to_string().as_bytes()) {
                Ok(crate::event::ParsedBody::Closed(e)) => e.conversation,
                other => panic!("the generator made an invalid event: {other:?}"),
            }
        })
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

proptest! {
    #[test]
    fn splitting_keeps_every_byte_within_the_limit(s in "\\PC{0,3000}", max in 4usize..600) {
        let pieces = split_text(&s, max);
        prop_assert!(pieces.iter().all(|p| p.len() <= max));
        prop_assert_eq!(pieces.concat(), s);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the webhook accepts, every planned write fits
    /// Salesforce's limits and the texts concatenate back.
    #[test]
    fn every_planned_write_fits_and_nothing_is_lost(c in conversation(), audit in any::<bool>()) {
        let number = num(&c);
        let policy = CasePolicy {
            authorship: if audit {
                Authorship::AuditFields { customer_username: "customer@acme.example".into() }
            } else {
                Authorship::ApiUser
            },
            ..policy()
        };
        let found = Found {
            agent_user: Some("005AGENT".into()),
            customer_user: audit.then(|| "005CUSTOMER".into()),
            ..Found::default()
        };
        let subject = subject(&c, &number);
        let closing = Closing { conversation: &c, number: &number, subject: &subject };
        let writes = plan_case_writes(closing, &found, &policy, &linked).unwrap();
        let CasePlan::Create(new_case) = &writes.case else { unreachable!() };
        let ContactPlan::Create(contact) = &new_case.contact else { unreachable!() };
        let len = |v: &Value| utf16_len(v.as_str().unwrap_or(""));
        prop_assert!(contact.get("FirstName").map_or(0, len) <= 40);
        prop_assert!((1..=80).contains(&len(&contact["LastName"])));
        prop_assert!(len(&contact["Phone"]) <= 40);
        prop_assert!(len(&new_case.fields["Subject"]) <= 255);
        prop_assert!(len(&new_case.fields["Description"]) <= 32_000);
        for comment in &writes.comments {
            prop_assert!(!comment.body.is_empty());
            prop_assert!(comment.body.len() <= COMMENT_MAX_BYTES, "{} bytes", comment.body.len());
        }
        if audit {
            // Without headers, the bodies are exactly the messages' texts.
            let rebuilt: String = writes.comments.iter().map(|cm| {
                let body = cm.body.as_str();
                match body.split_once('\n') {
                    Some((first, rest)) if first.starts_with("(part ") => rest.to_owned(),
                    _ => body.to_owned(),
                }
            }).collect();
            let expected: String = ordered_messages(&c).into_iter().map(|(_, m)| {
                let text = m.text.clone().unwrap_or_default();
                let lines: String = m.attachments.iter()
                    .map(|a| attachment_line(a, &AttachmentFate::Linked))
                    .collect();
                match (text.is_empty(), lines.is_empty()) {
                    (true, true) => "(empty message)".to_owned(),
                    (true, false) => lines.trim_start_matches('\n').to_owned(),
                    _ => text + &lines,
                }
            }).collect();
            prop_assert_eq!(rebuilt, expected);
        }
    }
}
