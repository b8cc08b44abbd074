//! Validation of the close event: every rule, every bound.
use super::*;
use serde_json::json;

fn sample() -> Value {
    serde_json::from_str(include_str!("../../events/conversation-closed.json")).unwrap()
}

fn closed(v: &Value) -> CloseEvent {
    match parse_body(v.to_string().as_bytes()).unwrap() {
        ParsedBody::Closed(e) => *e,
        other => panic!("not closed: {other:?}"),
    }
}

#[test]
fn sample_event_parses() {
    let e = closed(&sample());
    assert_eq!(e.conversation.id.as_str(), "1793");
    assert_eq!(e.conversation.customer.number, "+393331234567");
    assert_eq!(e.conversation.customer.name.as_deref(), Some("Maria C."));
    assert_eq!(e.conversation.agent.email, "agent.demo@acme.example");
    assert_eq!(e.conversation.messages.len(), 3);
    assert_eq!(e.conversation.messages[2].attachments.len(), 1);
    assert_eq!(
        e.conversation.profile[0],
        ("category".into(), "Billing".into())
    );
}

/// Each row: a mutation of the sample and the field the error must name.
#[test]
fn violations_name_their_field() {
    type Mutate = fn(&mut Value);
    let cases: Vec<(Mutate, &str)> = vec![
        (|v| v["event_id"] = json!("a".repeat(129)), "event_id"),
        (|v| v["event_id"] = json!("evt\u{fffe}"), "event_id"),
        (|v| v["event_id"] = json!("with space"), "event_id"),
        (
            |v| v["conversation"]["id"] = json!("9".repeat(65)),
            "conversation.id",
        ),
        // SQS refuses these in the conversation_id attribute.
        (
            |v| v["conversation"]["id"] = json!("1793\u{fffe}"),
            "conversation.id",
        ),
        (
            |v| v["conversation"]["id"] = json!("\u{ffff}"),
            "conversation.id",
        ),
        (
            |v| v["conversation"]["customer"]["number"] = json!("+39 333 123 4567\u{fffe}"),
            "conversation.customer.number",
        ),
        (
            |v| {
                v["conversation"]["customer"]["number"] = json!("+39 333 123 4567 0000000000000000")
            },
            "conversation.customer.number",
        ),
        (
            |v| v["conversation"]["customer"]["number"] = json!("+39 12"),
            "conversation.customer.number",
        ),
        (
            |v| {
                v["conversation"]["agent"]["email"] =
                    json!(format!("{}@acme.example", "a".repeat(250)))
            },
            "conversation.agent.email",
        ),
        (
            |v| v["conversation"]["messages"][0]["id"] = json!("m".repeat(257)),
            "conversation.messages[0].id",
        ),
        (
            |v| {
                v["conversation"]["messages"][2]["attachments"][0]["url"] =
                    json!(format!("https://app.witiop.example/{}", "a".repeat(2048)))
            },
            "conversation.messages[2].attachments[0].url",
        ),
        (
            |v| {
                v["conversation"]["messages"][2]["attachments"][0]["file_name"] =
                    json!("f".repeat(256))
            },
            "conversation.messages[2].attachments[0].file_name",
        ),
        (
            |v| {
                v["conversation"]["customer"]
                    .as_object_mut()
                    .unwrap()
                    .clear()
            },
            "conversation.customer.number",
        ),
        (
            |v| v["conversation"]["customer"]["number"] = json!(393331234567u64),
            "conversation.customer.number",
        ),
        (
            |v| v["conversation"]["customer"]["number"] = json!("  "),
            "conversation.customer.number",
        ),
        (
            |v| v["conversation"]["customer"]["number"] = json!("abc"),
            "conversation.customer.number",
        ),
        (
            |v| {
                v["conversation"].as_object_mut().unwrap().remove("id");
            },
            "conversation.id",
        ),
        (|v| v["conversation"]["id"] = json!(""), "conversation.id"),
        (|v| v["conversation"]["id"] = json!(1.5), "conversation.id"),
        (|v| v["conversation"]["id"] = json!(true), "conversation.id"),
        (
            |v| v["conversation"]["agent"]["email"] = json!("nobody"),
            "conversation.agent.email",
        ),
        (
            |v| {
                v["conversation"].as_object_mut().unwrap().remove("agent");
            },
            "conversation.agent",
        ),
        (
            |v| v["conversation"]["messages"] = json!({}),
            "conversation.messages",
        ),
        (
            |v| {
                v["conversation"]
                    .as_object_mut()
                    .unwrap()
                    .remove("messages");
            },
            "conversation.messages",
        ),
        (
            |v| v["conversation"]["messages"][1]["sent_at"] = json!("yesterday"),
            "conversation.messages[1].sent_at",
        ),
        (
            |v| v["conversation"]["messages"][1]["sent_at"] = json!("2026-11-24T09:59:01"),
            "conversation.messages[1].sent_at",
        ),
        (
            |v| v["conversation"]["messages"][0]["sender"] = json!("bot"),
            "conversation.messages[0].sender",
        ),
        (
            |v| v["conversation"]["messages"][0]["text"] = json!(5),
            "conversation.messages[0].text",
        ),
        (
            |v| v["conversation"]["messages"][2]["attachments"][0]["url"] = json!("invoice.pdf"),
            "conversation.messages[2].attachments[0].url",
        ),
        (
            |v| v["conversation"]["messages"][2]["attachments"][0]["size"] = json!(-1),
            "conversation.messages[2].attachments[0].size",
        ),
        (
            |v| v["conversation"]["profile"]["category"] = json!(["a"]),
            "conversation.profile.category",
        ),
        (
            |v| v["conversation"]["closed_at"] = json!("2026-13-01T00:00:00Z"),
            "conversation.closed_at",
        ),
        (|v| v["occurred_at"] = json!(12), "occurred_at"),
        (
            |v| {
                v.as_object_mut().unwrap().remove("type");
            },
            "type",
        ),
        (|v| v["conversation"] = json!("1793"), "conversation"),
    ];
    for (mutate, field) in cases {
        let mut v = sample();
        mutate(&mut v);
        let err = parse_body(v.to_string().as_bytes()).expect_err(field);
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn lenient_where_the_contract_is() {
    let mut v = sample();
    v["conversation"]["id"] = json!("A-17");
    v["conversation"]["customer"]["name"] = Value::Null;
    v["conversation"]["profile"] = json!({"score": 5, "vip": true, "gone": null});
    v["conversation"]["messages"][0]["text"] = Value::Null;
    v["conversation"]["messages"][0]["future_field"] = json!({"x": 1});
    v.as_object_mut().unwrap().remove("event_id");
    let e = closed(&v);
    assert_eq!(e.conversation.id.as_str(), "A-17");
    assert_eq!(e.conversation.customer.name, None);
    assert_eq!(
        e.conversation.profile,
        vec![("score".into(), "5".into()), ("vip".into(), "true".into())]
    );
}

#[test]
fn other_types_are_ignored_and_garbage_refused() {
    assert_eq!(
        parse_body(br#"{"type":"conversation.opened"}"#).unwrap(),
        ParsedBody::Ignored {
            event_type: "conversation.opened".into()
        }
    );
    assert_eq!(parse_body(b"{not json").unwrap_err().field, "");
    assert_eq!(parse_body(b"[]").unwrap_err().field, "");
    assert_eq!(parse_body(b"").unwrap_err().field, "");
}

/// The Description lists the profile as the agent filled it in, whatever
/// order a JSON map would sort its keys into.
#[test]
fn the_profile_keeps_the_order_of_the_body() {
    let body = include_str!("../../events/conversation-closed.json").replace(
        r#""profile": {"#,
        r#""profile": {"zeta": "last letter", "alpha": "first letter", "mid": 3, "zeta": "again","#,
    );
    assert_ne!(body, include_str!("../../events/conversation-closed.json"));
    let ParsedBody::Closed(e) = parse_body(body.as_bytes()).unwrap() else {
        panic!("not closed")
    };
    let keys: Vec<&str> = e
        .conversation
        .profile
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(&keys[..3], ["zeta", "alpha", "mid"], "{keys:?}");
    assert_eq!(e.conversation.profile[0].1, "again");
    // The sample's own keys are not in alphabetical order either.
    assert_eq!(&keys[3..], ["category", "outcome", "notes"]);
}

#[test]
fn credentials_in_an_attachment_link_are_never_shown() {
    for (url, shown) in [
        (
            "https://u:p@media.example/a.pdf",
            "https://media.example/a.pdf",
        ),
        (
            "https://u@media.example/a.pdf",
            "https://media.example/a.pdf",
        ),
        (
            "https://:p@media.example/a.pdf",
            "https://media.example/a.pdf",
        ),
        // Without credentials the link is shown exactly as sent, so a
        // re-delivery writes the very same comment.
        (
            "https://media.example/a%20b.pdf?x=1",
            "https://media.example/a%20b.pdf?x=1",
        ),
        ("HTTPS://Media.Example/a.pdf", "HTTPS://Media.Example/a.pdf"),
    ] {
        assert_eq!(AttachmentUrl::parse(url).unwrap().shown(), shown, "{url}");
    }
    for refused in [
        "not a url",
        "ftp://media.example/a",
        "mailto:a@b.example",
        "",
    ] {
        assert!(AttachmentUrl::parse(refused).is_none(), "{refused}");
    }
}
