//! Table tests of every product rule: no network, no emulator.

use super::comments::{split_text, COMMENT_MAX_BYTES};
use super::contact::split_name;
use super::*;
use crate::config::{Authorship, CasePolicy};
use crate::event::{parse_body, ParsedBody};

fn sample() -> Conversation {
    match parse_body(include_bytes!("../../events/conversation-closed.json")).unwrap() {
        ParsedBody::Closed(e) => e.conversation,
        _ => unreachable!(),
    }
}

fn num(c: &Conversation) -> CustomerNumber {
    CustomerNumber::parse(&c.customer.number)
}

fn linked(_: usize, _: usize) -> AttachmentFate {
    AttachmentFate::Linked
}

#[test]
fn subject_description_contact() {
    let mut c = sample();
    assert_eq!(subject(&c, &num(&c)), "+393331234567 [1793]");
    c.customer.number = "0039 333 123 4567".into();
    assert_eq!(subject(&c, &num(&c)), "+393331234567 [1793]");
    c.customer.number = "12-34".into();
    assert_eq!(subject(&c, &num(&c)), "12-34 [1793]");
    let d = description(&sample(), &num(&sample()));
    // In the order the agent's profiling gave them, which is not alphabetical.
    assert!(
        d.contains("Profile at close:\nCategory: Billing\nOutcome: Resolved\nNotes: Refund sent"),
        "{d}"
    );
    assert!(
        d.contains("Opened: 2026-11-24 09:58:10 UTC")
            && d.contains("Closed: 2026-11-24 10:15:40 UTC"),
        "{d}"
    );
    assert_eq!(
        new_contact(&sample(), &num(&sample())),
        json!({"FirstName": "Maria", "LastName": "C.", "MobilePhone": "+393331234567", "Phone": "+393331234567"})
    );
    let mut anonymous = sample();
    anonymous.customer.name = None;
    assert_eq!(
        new_contact(&anonymous, &num(&anonymous))["LastName"],
        "+393331234567"
    );
    assert!(new_contact(&anonymous, &num(&anonymous))
        .get("FirstName")
        .is_none());
}

#[test]
fn names_split_sensibly() {
    let cases = [
        ("Maria C.", (Some("Maria"), "C.")),
        ("Cher", (None, "Cher")),
        ("  Anna   Maria De Luca ", (Some("Anna"), "Maria De Luca")),
        ("李 小龙", (Some("李"), "小龙")),
    ];
    for (input, (first, last)) in cases {
        assert_eq!(
            split_name(input),
            (first.map(str::to_owned), last.to_owned()),
            "{input}"
        );
    }
}

#[test]
fn comments_with_and_without_audit_fields() {
    let c = sample();
    let plain = plan_comments(&c, &num(&c), &Authors::default(), &linked);
    assert_eq!(plain.len(), 3);
    assert_eq!(
        plain[0].body,
        "Maria C. (customer) · 2026-11-24 09:58:10 UTC\nHello, I was charged twice"
    );
    assert_eq!(
        plain[1].body,
        "agent.demo (agent) · 2026-11-24 09:59:01 UTC\nHi Maria, could you send the invoice?"
    );
    assert!(
        plain[2]
            .body
            .ends_with("\n📎 invoice.pdf: https://app.witiop.example/media/8f2c/invoice.pdf"),
        "{}",
        plain[2].body
    );
    assert!(plain
        .iter()
        .all(|p| p.created_by.is_none() && p.created_date.is_none()));

    let authors = Authors::AuditFields {
        agent_user_id: Some("005A".into()),
        customer_user_id: "005C".into(),
    };
    let audited = plan_comments(&c, &num(&c), &authors, &linked);
    assert_eq!(audited[0].body, "Hello, I was charged twice");
    assert_eq!(audited[0].created_by.as_deref(), Some("005C"));
    assert_eq!(
        audited[0].created_date.as_deref(),
        Some("2026-11-24T09:58:10.000Z")
    );
    assert_eq!(audited[1].created_by.as_deref(), Some("005A"));
    assert_eq!(
        audited[1].created_date.as_deref(),
        Some("2026-11-24T09:59:01.250Z")
    );
    assert_eq!(
        audited[2].body,
        "📎 invoice.pdf: https://app.witiop.example/media/8f2c/invoice.pdf"
    );

    let no_agent_user = Authors::AuditFields {
        agent_user_id: None,
        customer_user_id: "005C".into(),
    };
    let c2 = plan_comments(&c, &num(&c), &no_agent_user, &linked);
    assert!(c2[1]
        .body
        .starts_with("agent.demo (agent) · 2026-11-24 09:59:01 UTC\n"));
    assert_eq!(c2[1].created_by, None);
    assert!(c2[1].created_date.is_some());
}

#[test]
fn order_is_by_time_then_payload() {
    let mut c = sample();
    c.messages.swap(0, 2);
    let t = c.messages[1].sent_at;
    c.messages[0].sent_at = t;
    c.messages[0].text = Some("first in payload".into());
    c.messages[1].text = Some("second in payload".into());
    let bodies: Vec<String> = plan_comments(&c, &num(&c), &Authors::default(), &linked)
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert!(
        bodies[1].contains("first in payload") && bodies[2].contains("second in payload"),
        "{bodies:?}"
    );
}

#[test]
fn long_text_is_split_in_order_without_loss() {
    let mut c = sample();
    let long: String = "ab😀\n".repeat(3000) + "é";
    c.messages[0].text = Some(long.clone());
    c.messages.truncate(1);
    let comments = plan_comments(&c, &num(&c), &Authors::default(), &linked);
    assert!(comments.len() > 1);
    let mut rebuilt = String::new();
    for (i, cm) in comments.iter().enumerate() {
        assert!(cm.body.len() <= COMMENT_MAX_BYTES);
        let (first, rest) = cm.body.split_once('\n').unwrap();
        assert!(
            first.ends_with(&format!("(part {}/{})", i + 1, comments.len())),
            "{first}"
        );
        rebuilt.push_str(rest);
    }
    assert_eq!(rebuilt, long);
}

#[test]
fn split_text_table() {
    assert_eq!(split_text("", 10), vec![""]);
    assert_eq!(split_text("abc", 10), vec!["abc"]);
    assert_eq!(split_text("😀😀😀", 5), vec!["😀", "😀", "😀"]);
    assert_eq!(split_text("aaaa bbbb cc", 11), vec!["aaaa bbbb ", "cc"]);
    assert_eq!(split_text("aaaaaaaaaaaa", 5), vec!["aaaaa", "aaaaa", "aa"]);
    for piece in split_text(&"é".repeat(1001), 4000) {
        assert!(piece.len() <= 4000);
    }
}

#[test]
fn missing_comments_is_a_multiset_difference() {
    let d = |b: &str| CommentDraft {
        body: b.into(),
        created_by: None,
        created_date: None,
    };
    let planned = vec![
        d("ok"),
        d("ok"),
        d("hello"),
        d("file\n📎 a.pdf (attached to this Case's Files)"),
    ];
    let existing = vec![
        "ok".to_owned(),
        "file\n📎 a.pdf could not be attached (404): http://x".to_owned(),
    ];
    let missing: Vec<String> = missing_comments(planned, &existing)
        .into_iter()
        .map(|c| c.body)
        .collect();
    assert_eq!(missing, vec!["ok", "hello"]);
}

fn policy() -> CasePolicy {
    CasePolicy {
        case_origin: Some("WhatsApp".into()),
        ..CasePolicy::default()
    }
}

fn plan(found: &Found, policy: &CasePolicy) -> Result<CaseWrites, PlanError> {
    let c = sample();
    let number = num(&c);
    let subject = subject(&c, &number);
    let closing = Closing {
        conversation: &c,
        number: &number,
        subject: &subject,
    };
    plan_case_writes(closing, found, policy, &linked)
}

fn new_case(writes: &CaseWrites) -> &NewCase {
    match &writes.case {
        CasePlan::Create(n) => n,
        other => panic!("expected a new Case, got {other:?}"),
    }
}

#[test]
fn owner_falls_back_from_agent_to_default_to_api_user() {
    let cases = [
        (Some("005AGENT"), Some("005DEFAULT"), Some("005AGENT")),
        (None, Some("005DEFAULT"), Some("005DEFAULT")),
        (None, None, None),
    ];
    for (agent, default, expected) in cases {
        let found = Found {
            agent_user: agent.map(UserId::from),
            default_owner: default.map(UserId::from),
            ..Found::default()
        };
        let writes = plan(&found, &policy()).unwrap();
        assert_eq!(
            new_case(&writes)
                .fields
                .get("OwnerId")
                .and_then(Value::as_str),
            expected,
            "agent {agent:?}, default {default:?}"
        );
    }
}

/// A new Contact is owned as its Case is (the agent can open the customer:
/// a Contact linked to no Account is private to its owner), unless the
/// admin chose the API user; it goes under `contact_account_id` when set.
#[test]
fn a_new_contact_is_owned_like_its_case_and_filed_under_the_account() {
    use crate::config::ContactOwner;
    let account = "001000000000001AAA";
    // (agent, default owner, contact_owner, account) → (Contact's OwnerId, AccountId)
    let cases = [
        (
            Some("005AGENT"),
            None,
            ContactOwner::CaseOwner,
            None,
            Some("005AGENT"),
            None,
        ),
        (
            None,
            Some("005DEFAULT"),
            ContactOwner::CaseOwner,
            None,
            Some("005DEFAULT"),
            None,
        ),
        (
            None,
            None,
            ContactOwner::CaseOwner,
            Some(account),
            None,
            Some(account),
        ),
        (
            Some("005AGENT"),
            None,
            ContactOwner::ApiUser,
            Some(account),
            None,
            Some(account),
        ),
    ];
    for (agent, default, owner, account, expected_owner, expected_account) in cases {
        let found = Found {
            agent_user: agent.map(UserId::from),
            default_owner: default.map(UserId::from),
            ..Found::default()
        };
        let policy = CasePolicy {
            contact_owner: owner,
            contact_account_id: account.map(str::to_owned),
            ..policy()
        };
        let writes = plan(&found, &policy).unwrap();
        let ContactPlan::Create(contact) = &new_case(&writes).contact else {
            panic!("expected a new Contact")
        };
        assert_eq!(
            contact.get("OwnerId").and_then(Value::as_str),
            expected_owner,
            "{owner:?} {agent:?} {default:?}"
        );
        assert_eq!(
            contact.get("AccountId").and_then(Value::as_str),
            expected_account
        );
    }
}

#[test]
fn contact_is_reused_or_created_named_after_the_customer() {
    let found = Found {
        contact: Some("003EXISTING".into()),
        ..Found::default()
    };
    assert_eq!(
        new_case(&plan(&found, &policy()).unwrap()).contact,
        ContactPlan::Existing("003EXISTING".into())
    );
    let created = plan(&Found::default(), &policy()).unwrap();
    assert_eq!(
        new_case(&created).contact,
        ContactPlan::Create(json!({
            "FirstName": "Maria", "LastName": "C.",
            "MobilePhone": "+393331234567", "Phone": "+393331234567"
        }))
    );
}

#[test]
fn case_fields_follow_the_policy() {
    let writes = plan(&Found::default(), &policy()).unwrap();
    let case = new_case(&writes);
    assert_eq!(case.fields["Subject"], "+393331234567 [1793]");
    assert_eq!(case.fields["Origin"], "WhatsApp");
    assert!(case.fields["Description"]
        .as_str()
        .unwrap()
        .starts_with("WhatsApp conversation 1793 closed in WitiOp."));
    assert!(!case.fields.contains_key("CreatedDate"));
    assert!(!case.fields.contains_key("ContactId"));

    let no_origin = CasePolicy {
        case_origin: None,
        case_external_id_field: Some("WitiOp_Conversation_Id__c".into()),
        ..policy()
    };
    let writes = plan(&Found::default(), &no_origin).unwrap();
    let case = new_case(&writes);
    assert!(!case.fields.contains_key("Origin"));
    assert_eq!(case.fields["WitiOp_Conversation_Id__c"], "1793");

    let audited = CasePolicy {
        authorship: Authorship::AuditFields {
            customer_username: "customer@acme.example".into(),
        },
        ..policy()
    };
    let found = Found {
        customer_user: Some("005CUSTOMER".into()),
        ..Found::default()
    };
    let writes = plan(&found, &audited).unwrap();
    assert_eq!(
        new_case(&writes).fields["CreatedDate"],
        "2026-11-24T09:58:10.000Z"
    );
}

#[test]
fn audit_fields_need_the_customer_user() {
    let audited = CasePolicy {
        authorship: Authorship::AuditFields {
            customer_username: "customer@acme.example".into(),
        },
        ..policy()
    };
    assert_eq!(
        plan(&Found::default(), &audited),
        Err(PlanError::CustomerUserMissing(
            "customer@acme.example".into()
        ))
    );
}

#[test]
fn an_existing_case_gets_only_the_missing_comments() {
    let c = sample();
    let all = plan_comments(&c, &num(&c), &Authors::default(), &linked);
    let found = Found {
        case: Some(ExistingCase {
            id: "500EXISTING".into(),
            case_number: Some("00001001".into()),
        }),
        comments: vec![all[0].body.clone(), all[2].body.clone()],
        ..Found::default()
    };
    let writes = plan(&found, &policy()).unwrap();
    assert_eq!(
        writes.case,
        CasePlan::Existing(ExistingCase {
            id: "500EXISTING".into(),
            case_number: Some("00001001".into())
        })
    );
    assert_eq!(writes.comments, vec![all[1].clone()]);
}

#[test]
fn attachment_lines_report_each_fate() {
    let c = sample();
    let line = |fate: AttachmentFate| {
        let comments = plan_comments(&c, &num(&c), &Authors::default(), &move |_, _| fate.clone());
        comments[2].body.lines().last().unwrap().to_owned()
    };
    assert_eq!(
        line(AttachmentFate::Linked),
        "📎 invoice.pdf: https://app.witiop.example/media/8f2c/invoice.pdf"
    );
    assert_eq!(
        line(AttachmentFate::NotFetched("not on a WitiOp media host".into())),
        "📎 invoice.pdf is not copied to Salesforce (not on a WitiOp media host): https://app.witiop.example/media/8f2c/invoice.pdf"
    );
}

#[test]
fn the_customers_contact_is_chosen_by_number_oldest_first() {
    let c = sample();
    let candidate = |id: &str, phone: Option<&str>, mobile: Option<&str>| ContactCandidate {
        id: id.into(),
        phone: phone.map(str::to_owned),
        mobile_phone: mobile.map(str::to_owned),
    };
    let rows = vec![
        candidate("003A", Some("+39 333 999 4567"), None),
        candidate("003B", None, Some("333-123-4567")),
        candidate("003C", Some("0039 333 1234567"), None),
        candidate("003B", None, Some("333-123-4567")),
    ];
    assert_eq!(choose_contact(&num(&c), &rows), (Some("003B".into()), 2));
    assert_eq!(choose_contact(&num(&c), &rows[..1]), (None, 0));
}
