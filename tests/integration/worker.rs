//! The worker end to end: SQS batches against moto and the local Salesforce.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::{event_file, sample_event as sample, Stack};
use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::Message;
use local_salesforce::Fault;
use serde_json::{json, Map, Value};
use witiop_salesforce::worker::handle_batch;

const CUSTOMER_USER: &str = "witiop.customer@acme.example";

pub(crate) async fn stack(settings: Value) -> Stack {
    crate::helpers::stack().settings(settings).start().await
}

/// The batch Lambda hands the worker for messages `msg-0`, `msg-1`, …
/// with these bodies.
pub(crate) fn batch(bodies: &[String]) -> SqsEvent {
    let messages: Vec<Message> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            Message::builder()
                .message_id(format!("msg-{i}"))
                .body(body)
                .build()
        })
        .collect();
    proof::pipeline::lambda_sqs_event(&messages)
}

impl Stack {
    /// Runs one batch; returns the message ids reported as failed.
    pub(crate) async fn run(&self, bodies: &[String]) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        handle_batch(&self.worker, batch(bodies), deadline)
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    /// Logs in and resets the counters, so a test sees only warm-token calls.
    pub(crate) async fn warm(&self) {
        let _ = self
            .worker
            .salesforce()
            .query::<Value>("SELECT Id FROM User LIMIT 1")
            .await
            .unwrap();
        self.sf.reset_counters();
    }

    pub(crate) fn cases(&self) -> Vec<Map<String, Value>> {
        self.sf.records("Case")
    }

    pub(crate) fn comments(&self) -> Vec<Map<String, Value>> {
        self.sf.records("CaseComment")
    }

    /// A client logged in as the example's agent, not the API user.
    async fn agent_client(&self) -> witiop_salesforce::salesforce::SalesforceClient {
        let username = "agent.demo@acme.example.crm";
        self.sf
            .allow_login(&self.users.agent, username, "agent-password");
        self.moto.secret("agent-tokens", "{}").await.unwrap();
        let secret = crate::helpers::salesforce_secret(
            &self.sf.url,
            json!({"username": username, "password": "agent-password"}),
        );
        crate::helpers::salesforce_client(&self.moto, &secret, "agent-tokens")
    }
}

#[tokio::test]
async fn the_sample_conversation_becomes_one_case_in_two_calls() {
    let s = stack(json!({})).await;
    s.warm().await;
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    assert_eq!(
        s.sf.counters().api_calls,
        2,
        "one composite of reads, one of writes"
    );

    let cases = s.cases();
    assert_eq!(cases.len(), 1);
    let case = &cases[0];
    assert_eq!(case["Subject"], "+393331234567 [1793]");
    assert_eq!(case["OwnerId"], json!(s.users.agent));
    assert_eq!(case["Origin"], "WhatsApp");
    assert!(case["Description"]
        .as_str()
        .unwrap()
        .contains("Category: Billing"));
    let contacts = s.sf.records("Contact");
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["Name"], "Maria C.");
    assert_eq!(contacts[0]["MobilePhone"], "+393331234567");
    assert_eq!(case["ContactId"], contacts[0]["Id"]);

    let comments = s.comments();
    assert_eq!(comments.len(), 3);
    assert!(comments.iter().all(|c| c["ParentId"] == case["Id"]));
    assert_eq!(
        comments[0]["CommentBody"],
        "Maria C. (customer) · 2026-11-24 09:58:10 UTC\nHello, I was charged twice"
    );
    assert!(comments[1]["CommentBody"]
        .as_str()
        .unwrap()
        .starts_with("agent.demo (agent) · 2026-11-24 09:59:01 UTC\n"));
    assert!(comments[2]["CommentBody"]
        .as_str()
        .unwrap()
        .contains("invoice.pdf: https://app.witiop.example/media/8f2c/invoice.pdf"));
}

#[tokio::test]
async fn audit_fields_post_as_agent_and_customer_users_at_message_time() {
    let s =
        stack(json!({"set_audit_fields": true, "customer_comment_username": CUSTOMER_USER})).await;
    s.sf.set_audit_fields(true);
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    let comments = s.comments();
    assert_eq!(comments.len(), 3);
    assert_eq!(comments[0]["CreatedById"], json!(s.users.customer));
    assert_eq!(comments[0]["CreatedDate"], "2026-11-24T09:58:10.000+0000");
    assert_eq!(comments[0]["CommentBody"], "Hello, I was charged twice");
    assert_eq!(comments[1]["CreatedById"], json!(s.users.agent));
    assert_eq!(comments[1]["CreatedDate"], "2026-11-24T09:59:01.250+0000");
}

#[tokio::test]
async fn audit_fields_without_the_org_permission_park_the_event_with_its_reason() {
    let s =
        stack(json!({"set_audit_fields": true, "customer_comment_username": CUSTOMER_USER})).await;
    let body = sample().to_string();
    assert!(
        s.run(std::slice::from_ref(&body)).await.is_empty(),
        "parked, so deleted from the queue"
    );
    assert!(
        s.cases().is_empty() && s.sf.records("Contact").is_empty(),
        "allOrNone left nothing behind"
    );
    let parked = s.moto.receive(&s.dlq).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].body(), Some(body.as_str()));
    let attrs = parked[0].message_attributes().unwrap();
    assert_eq!(
        attrs["error_code"].string_value(),
        Some("INVALID_FIELD_FOR_INSERT_UPDATE")
    );
    assert_eq!(attrs["conversation_id"].string_value(), Some("1793"));
    assert!(attrs["error_message"]
        .string_value()
        .unwrap()
        .contains("Set Audit Fields upon Record Creation"));
}

#[tokio::test]
async fn redelivery_adds_nothing_and_costs_one_call() {
    let s = stack(json!({})).await;
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    s.sf.reset_counters();
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    assert_eq!(s.cases().len(), 1);
    assert_eq!(s.comments().len(), 3);
    assert_eq!(s.sf.records("Contact").len(), 1);
    assert_eq!(s.sf.counters().api_calls, 1);
}

#[tokio::test]
async fn an_existing_contact_is_found_whatever_its_formatting() {
    for stored in [
        "+39 333 123 4567",
        "0039 333 1234567",
        "393331234567",
        "333-123-4567",
    ] {
        let s = stack(json!({})).await;
        let id =
            s.sf.insert(
                "Contact",
                json!({"LastName": "Rossi", "MobilePhone": stored}),
            )
            .unwrap();
        s.sf.insert(
            "Contact",
            json!({"LastName": "Other", "Phone": "+39 333 765 4567"}),
        )
        .unwrap();
        assert!(s.run(&[sample().to_string()]).await.is_empty());
        assert_eq!(s.cases()[0]["ContactId"], json!(id), "{stored}");
        assert_eq!(
            s.sf.records("Contact").len(),
            2,
            "no new contact for {stored}"
        );
    }
}

#[tokio::test]
async fn an_agent_without_a_user_falls_back_to_the_default_owner() {
    let s = stack(json!({"default_owner_username": CUSTOMER_USER})).await;
    let mut event = sample();
    event["conversation"]["agent"]["email"] = json!("someone.new@acme.example");
    assert!(s.run(&[event.to_string()]).await.is_empty());
    assert_eq!(s.cases()[0]["OwnerId"], json!(s.users.customer));

    let s =
        stack(json!({"set_audit_fields": true, "customer_comment_username": CUSTOMER_USER})).await;
    s.sf.set_audit_fields(true);
    assert!(s.run(&[event.to_string()]).await.is_empty());
    assert_eq!(
        s.cases()[0]["OwnerId"],
        json!(s.sf.api_user_id),
        "no default: the API user"
    );
    let agent_comment = &s.comments()[1];
    assert!(agent_comment["CommentBody"]
        .as_str()
        .unwrap()
        .starts_with("agent.demo (agent) · "));
    assert_eq!(agent_comment["CreatedById"], json!(s.sf.api_user_id));
}

#[tokio::test]
async fn zero_messages_and_a_very_long_message() {
    let s = stack(json!({})).await;
    let mut empty = sample();
    empty["conversation"]["id"] = json!(1);
    empty["conversation"]["messages"] = json!([]);
    let mut long = sample();
    long["conversation"]["id"] = json!(2);
    let text: String = "Grazie 🙏 per l'attesa.\n".repeat(450);
    assert!(text.chars().count() >= 10_000);
    long["conversation"]["messages"] =
        json!([{"sender": "customer", "sent_at": "2026-11-24T10:00:00Z", "text": text}]);
    assert!(s
        .run(&[empty.to_string(), long.to_string()])
        .await
        .is_empty());
    assert_eq!(s.cases().len(), 2);
    let comments = s.comments();
    assert!(comments.len() >= 3);
    let mut rebuilt = String::new();
    for c in &comments {
        let body = c["CommentBody"].as_str().unwrap();
        assert!(body.len() <= 4000);
        rebuilt.push_str(body.split_once('\n').unwrap().1);
    }
    assert_eq!(rebuilt, text, "split at character boundaries, nothing lost");
}

fn long_conversation(n: usize) -> Value {
    let mut e = sample();
    let messages: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("m{i}"), "sender": if i % 2 == 0 {"customer"} else {"agent"},
                        "sent_at": format!("2026-11-24T10:{:02}:{:02}Z", (i / 60) % 60, i % 60), "text": format!("message {i}")}))
        .collect();
    e["conversation"]["messages"] = json!(messages);
    e
}

#[tokio::test]
async fn fifteen_hundred_messages_in_three_calls_and_resumed_after_a_failure() {
    let s = stack(json!({})).await;
    s.warm().await;
    let event = long_conversation(1500).to_string();
    assert!(s.run(std::slice::from_ref(&event)).await.is_empty());
    assert_eq!(s.comments().len(), 1500);
    assert_eq!(s.sf.counters().api_calls, 3);

    // A failure after the first write: the second run writes only the rest.
    let s = stack(json!({})).await;
    s.sf.inject_after(2, Fault::LimitExceeded, 1);
    assert_eq!(s.run(std::slice::from_ref(&event)).await, vec!["msg-0"]);
    assert_eq!(s.comments().len(), 1000);
    assert!(s.run(std::slice::from_ref(&event)).await.is_empty());
    assert_eq!(s.cases().len(), 1);
    let bodies: Vec<String> = s
        .comments()
        .iter()
        .map(|c| c["CommentBody"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies.len(), 1500);
    let unique: std::collections::HashSet<&String> = bodies.iter().collect();
    assert_eq!(unique.len(), 1500, "no duplicate comment");
}

#[tokio::test]
async fn a_failure_between_reads_and_write_leaves_nothing_then_succeeds_once() {
    let s = stack(json!({})).await;
    s.warm().await;
    s.sf.inject_after(1, Fault::LimitExceeded, 1);
    assert_eq!(s.run(&[sample().to_string()]).await, vec!["msg-0"]);
    assert!(s.cases().is_empty() && s.comments().is_empty());
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    assert_eq!(
        (
            s.cases().len(),
            s.comments().len(),
            s.sf.records("Contact").len()
        ),
        (1, 3, 1)
    );
}

#[tokio::test]
async fn poison_records_are_parked_and_good_ones_processed() {
    let s = stack(json!({})).await;
    let mut other = sample();
    other["conversation"]["id"] = json!(1794);
    let bodies = vec![
        sample().to_string(),
        "{\"type\":\"conversation.closed\",\"conversation\":".to_owned(),
        other.to_string(),
        json!({"type": "conversation.assigned"}).to_string(),
    ];
    assert!(s.run(&bodies).await.is_empty());
    assert_eq!(s.cases().len(), 2);
    let parked = s.moto.receive(&s.dlq).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].body(), Some(bodies[1].as_str()));
    let attrs = parked[0].message_attributes().unwrap();
    assert_eq!(attrs["error_code"].string_value(), Some("invalid_event"));
    assert_eq!(attrs["original_message_id"].string_value(), Some("msg-1"));
}

#[tokio::test]
async fn duplicates_in_one_batch_make_one_case() {
    let s = stack(json!({})).await;
    let body = sample().to_string();
    let mut later = sample();
    later["conversation"]["id"] = json!(1800);
    assert!(s
        .run(&[body.clone(), later.to_string(), body.clone(), body])
        .await
        .is_empty());
    assert_eq!((s.cases().len(), s.comments().len()), (2, 6));
    assert_eq!(
        s.sf.records("Contact").len(),
        1,
        "one customer, one Contact"
    );
}

/// `n` conversations from `first` on, each of another customer, so that
/// their records run concurrently.
/// An active Case assignment rule routing to a queue user, and a
/// CaseComment trigger that updates the comment's Case (which runs the rule
/// again unless the comment's own request says not to); the queue's id.
pub(crate) fn assignment_rule_and_trigger(s: &Stack) -> String {
    let queue_owner = s.sf.add_user(
        "support.queue@acme.example",
        "support.queue@acme.example",
        "Support",
        "Queue",
        true,
    );
    s.sf.set_case_assignment_rule(Some(queue_owner.clone()));
    s.sf.set_case_comment_trigger(true);
    queue_owner
}

pub(crate) fn of_customers(first: u64, n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut e = sample();
            e["conversation"]["id"] = json!(first + i);
            e["conversation"]["customer"]["number"] = json!(format!("+39333123450{i}"));
            e.to_string()
        })
        .collect()
}

#[tokio::test]
async fn token_expiry_mid_batch_costs_one_login() {
    let s = stack(json!({})).await;
    s.warm().await;
    s.sf.expire_tokens();
    assert!(s.run(&of_customers(5000, 6)).await.is_empty());
    assert_eq!(s.cases().len(), 6);
    assert_eq!(s.sf.counters().logins, 1);
}

#[tokio::test]
async fn limit_exceeded_defers_the_batch_without_hot_retries() {
    let s = stack(json!({})).await;
    s.warm().await;
    s.sf.inject(Fault::LimitExceeded, 1);
    let mut worker_failures = s.run(&of_customers(6000, 3)).await;
    worker_failures.sort();
    // The record that met the limit and those not started yet return to SQS;
    // records already under way may finish.
    assert!(!worker_failures.is_empty());
    assert_eq!(s.sf.counters().faults_served, 1);
    assert!(
        s.moto.receive(&s.dlq).await.unwrap().is_empty(),
        "a limit is not a reason for the DLQ"
    );
}

#[tokio::test]
async fn external_id_with_audit_fields_inserts_and_a_racing_twin_continues_with_its_case() {
    let settings = json!({
        "case_external_id_field": "WitiOp_Conversation_Id__c",
        "set_audit_fields": true,
        "customer_comment_username": CUSTOMER_USER,
    });
    let s = stack(settings).await;
    s.sf.add_external_id("Case", "WitiOp_Conversation_Id__c");
    s.sf.set_audit_fields(true);
    // Audit fields are refused in an upsert: the Case must be inserted.
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    let cases = s.cases();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["WitiOp_Conversation_Id__c"], "1793");
    assert!(cases[0]["CreatedDate"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-24T09:58:10"));
    assert_eq!(s.comments().len(), 3);

    // Two instances process duplicates of a new conversation at the same
    // moment: both read "no Case", one insert wins, the other is told
    // DUPLICATE_VALUE and continues with the winner's Case.
    let twin = crate::helpers::worker(&s.moto, &s.secret, &s.dlq, 4);
    let mut other = sample();
    other["conversation"]["id"] = json!(1800);
    s.sf.set_latency(Duration::from_millis(150));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (a, b) = tokio::join!(
        handle_batch(&s.worker, batch(&[other.to_string()]), deadline),
        handle_batch(&twin, batch(&[other.to_string()]), deadline)
    );
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    let twins: Vec<_> = s
        .cases()
        .into_iter()
        .filter(|c| c["WitiOp_Conversation_Id__c"] == "1800")
        .collect();
    assert_eq!(twins.len(), 1, "one Case for the racing duplicates");
    let comments = s
        .comments()
        .into_iter()
        .filter(|c| c["ParentId"] == twins[0]["Id"])
        .count();
    assert_eq!(comments, 3, "every comment once");

    // The same race where the API user cannot see the winner's Case:
    // Salesforce names neither the field nor the record (`<unknown>`), and
    // the loser still continues with the Case its re-read finds.
    s.sf.set_clashing_records_hidden(true);
    let mut third = sample();
    third["conversation"]["id"] = json!(1801);
    let (a, b) = tokio::join!(
        handle_batch(&s.worker, batch(&[third.to_string()]), deadline),
        handle_batch(&twin, batch(&[third.to_string()]), deadline)
    );
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    let thirds = s
        .cases()
        .into_iter()
        .filter(|c| c["WitiOp_Conversation_Id__c"] == "1801")
        .count();
    assert_eq!(thirds, 1);
    let parked = s.moto.receive(&s.dlq).await.unwrap();
    assert!(
        parked.is_empty(),
        "{:?}",
        parked
            .iter()
            .map(|m| m.message_attributes())
            .collect::<Vec<_>>()
    );
}

/// An active assignment rule, and a CaseComment trigger that updates the
/// comment's Case (which runs the rule again unless the comment's own
/// request says not to): every Case stays with its agent, whether its
/// comments travel with it or in later calls.
#[tokio::test]
async fn an_assignment_rule_does_not_take_the_case_from_the_agent() {
    let s = stack(json!({})).await;
    assignment_rule_and_trigger(&s);
    let mut long = sample();
    long["conversation"]["id"] = json!(1801);
    let message = long["conversation"]["messages"][0].clone();
    long["conversation"]["messages"] = Value::Array(vec![message; 1_050]);
    assert!(s
        .run(&[sample().to_string(), long.to_string()])
        .await
        .is_empty());
    assert_eq!(s.comments().len(), 3 + 1_050);
    for case in s.cases() {
        assert_eq!(
            case["OwnerId"],
            s.users.agent.as_str(),
            "{}",
            case["Subject"]
        );
    }
}

/// The agent who owns the Case (not an administrator) can open its Contact:
/// a Contact linked to no Account is private to its owner, so the worker
/// gives it the Case's owner; with `contact_account_id` it is filed under
/// that Account instead of staying private. Read as the agent, through the
/// agent's own login.
#[tokio::test]
async fn the_agent_can_open_the_contact_of_their_case() {
    let s = stack(json!({})).await;
    let as_agent = s.agent_client().await;
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    let case = &s.cases()[0];
    assert_eq!(case["OwnerId"], s.users.agent.as_str());
    let contact_id = case["ContactId"].as_str().unwrap();
    let soql =
        format!("SELECT Id, Name, OwnerId, AccountId FROM Contact WHERE Id = '{contact_id}'");
    let seen: Vec<Value> = as_agent.query(&soql).await.unwrap();
    assert_eq!(seen.len(), 1, "the agent sees the customer of their Case");
    assert_eq!(seen[0]["OwnerId"], s.users.agent.as_str());

    // As before the setting: owned by the API user, the Contact is hidden
    // from the agent; filed under an Account, it is not.
    let org = stack(json!({"contact_owner": "api_user"})).await;
    let agent = org.agent_client().await;
    let contact_seen_by_agent = |case: usize| {
        let contact = org.cases()[case]["ContactId"].as_str().unwrap().to_owned();
        let agent = &agent;
        async move {
            let soql = format!("SELECT Id FROM Contact WHERE Id = '{contact}'");
            agent.query::<Value>(&soql).await.unwrap().len()
        }
    };
    assert!(org.run(&[sample().to_string()]).await.is_empty());
    assert_eq!(contact_seen_by_agent(0).await, 0, "private to the API user");
    let account = org
        .sf
        .insert("Account", json!({"Name": "WhatsApp customers"}))
        .unwrap();
    let mut secret = org.secret.clone();
    secret["contact_account_id"] = json!(account);
    let filed = crate::helpers::worker(&org.moto, &secret, &org.dlq, 4);
    let mut other = sample();
    other["conversation"]["id"] = json!(1900);
    other["conversation"]["customer"]["number"] = json!("+447911123461");
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = handle_batch(&filed, batch(&[other.to_string()]), deadline).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(org.sf.records("Contact")[1]["AccountId"], account.as_str());
    assert_eq!(contact_seen_by_agent(1).await, 1, "filed under the Account");
}

/// The admin's own Case fields: a restricted picklist, text with
/// placeholders and a number are set; a value the org would refuse (not in
/// the restricted picklist) is left out and the Case is still created. The
/// org's describe is read once for the settings, not per conversation.
#[tokio::test]
async fn case_fields_fit_the_org_they_land_in() {
    let s = crate::helpers::stack()
        .settings(json!({"case_fields": {
            "Priority": "High",
            "WhatsApp_Topic__c": "{profile.category} from {customer.number}",
            "Score__c": 4.5,
            "Channel__c": "Carrier pigeon",
        }}))
        .before_users(|sf| {
            use local_salesforce::CustomField;
            assert!(sf.add_custom_field("Case", "WhatsApp_Topic__c", CustomField::Text(80)));
            assert!(sf.add_custom_field("Case", "Score__c", CustomField::Number));
            assert!(sf.add_custom_field("Case", "Channel__c", CustomField::Picklist(40)));
            sf.restrict_picklist("Case", "Priority", &["High", "Medium", "Low"]);
            sf.restrict_picklist("Case", "Channel__c", &["WhatsApp", "Email"]);
        })
        .start()
        .await;
    s.warm().await;
    let mut second = sample();
    second["conversation"]["id"] = json!(1802);
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    let first_calls = s.sf.counters().api_calls;
    assert!(s.run(&[second.to_string()]).await.is_empty());
    let second_calls = s.sf.counters().api_calls - first_calls;
    assert_eq!(
        first_calls,
        second_calls + 1,
        "one describe, on the first conversation only"
    );
    assert_eq!(second_calls, 2);
    for case in s.cases() {
        assert_eq!(case["Priority"], "High");
        assert_eq!(case["WhatsApp_Topic__c"], "Billing from +393331234567");
        assert_eq!(case["Score__c"], 4.5);
        assert!(
            case.get("Channel__c").is_none_or(Value::is_null),
            "left out: {case:?}"
        );
    }
    assert_eq!(s.cases().len(), 2);
}

/// One customer whose number WitiOp spells two ways, in one batch with
/// room for both at once: one key, so they run one after the other, and
/// one Contact.
#[tokio::test]
async fn two_spellings_of_one_number_are_one_customer() {
    let s = crate::helpers::stack().concurrency(4).start().await;
    let spelled = |id: u64, number: &str| {
        let mut e = sample();
        e["conversation"]["id"] = json!(id);
        e["conversation"]["customer"]["number"] = json!(number);
        e.to_string()
    };
    s.sf.set_latency(Duration::from_millis(50));
    let bodies = [
        spelled(2001, "+44 7911 123461"),
        spelled(2002, "+44 (0)7911 123461"),
    ];
    assert!(s.run(&bodies).await.is_empty());
    assert_eq!(
        s.sf.records("Contact").len(),
        1,
        "one customer, one Contact"
    );
    let mut subjects: Vec<String> = s
        .cases()
        .iter()
        .map(|c| c["Subject"].as_str().unwrap().to_owned())
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["+447911123461 [2001]", "+447911123461 [2002]"]);
}

#[tokio::test]
async fn text_that_looks_like_a_reference_reaches_salesforce_byte_for_byte() {
    let s = stack(json!({})).await;
    let mut event = sample();
    event["conversation"]["customer"]["name"] = json!("Ann @{contact.id}");
    event["conversation"]["messages"][0]["text"] = json!("my code is @{x} and @{case.id}");
    event["conversation"]["profile"]["notes"] = json!("see @{existing.records[0].Id}");
    s.warm().await;
    assert!(s.run(&[event.to_string()]).await.is_empty(), "not parked");
    let contact = &s.sf.records("Contact")[0];
    assert_eq!(contact["LastName"], "@{contact.id}");
    let case = &s.cases()[0];
    assert!(case["Description"]
        .as_str()
        .unwrap()
        .contains("Notes: see @{existing.records[0].Id}"));
    let bodies: Vec<String> = s
        .comments()
        .iter()
        .map(|c| c["CommentBody"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        bodies
            .iter()
            .any(|b| b.ends_with("my code is @{x} and @{case.id}")),
        "{bodies:?}"
    );
    assert_eq!(bodies.len(), 3);
    // Redelivered: nothing added.
    assert!(s.run(&[event.to_string()]).await.is_empty());
    assert_eq!(s.comments().len(), 3);
    assert_eq!(s.sf.records("Contact").len(), 1);
}

#[tokio::test]
async fn a_conversation_without_references_keeps_the_two_call_economy() {
    let s = stack(json!({})).await;
    let mut event = sample();
    event["conversation"]["messages"][0]["text"] = json!("an @ sign and {braces} apart");
    s.warm().await;
    assert!(s.run(&[event.to_string()]).await.is_empty());
    assert_eq!(s.sf.counters().api_calls, 2);
}

#[tokio::test]
async fn a_duplicate_rule_on_contact_does_not_block_the_case() {
    let s = stack(json!({})).await;
    // Another Maria C., with another number: the rule matches on the name.
    s.sf.insert(
        "Contact",
        json!({"FirstName": "Maria", "LastName": "C.", "Phone": "+39 06 1234 5678"}),
    )
    .unwrap();
    s.sf.set_contact_duplicate_rule(true);
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    assert_eq!(s.cases().len(), 1);
    assert_eq!(s.sf.records("Contact").len(), 2);
}

#[tokio::test]
async fn a_restricted_origin_picklist_parks_with_advice() {
    let s = stack(json!({})).await;
    s.sf.restrict_picklist("Case", "Origin", &["Phone", "Email", "Web"]);
    assert!(s.run(&[sample().to_string()]).await.is_empty(), "parked");
    let parked = s.moto.receive(&s.dlq).await.unwrap();
    let attrs = parked[0].message_attributes().unwrap();
    assert_eq!(
        attrs["error_code"].string_value(),
        Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );
    assert!(attrs["error_message"]
        .string_value()
        .unwrap()
        .contains("case_origin"));
}

#[tokio::test]
async fn a_huge_display_name_still_makes_a_case() {
    let s = stack(json!({})).await;
    let mut event = sample();
    // 3,978 bytes of name, audit fields off: every comment starts with it.
    event["conversation"]["customer"]["name"] = json!(format!("Maria {}", "é".repeat(1986)));
    event["conversation"]["agent"]["name"] = json!("😀".repeat(1000));
    assert!(s.run(&[event.to_string()]).await.is_empty());
    let contact = &s.sf.records("Contact")[0];
    assert_eq!(contact["FirstName"], "Maria");
    assert_eq!(contact["LastName"].as_str().unwrap().chars().count(), 80);
    let case = &s.cases()[0];
    assert!(case["Description"]
        .as_str()
        .unwrap()
        .contains(&"é".repeat(1986)));
    assert!(s
        .comments()
        .iter()
        .all(|c| c["CommentBody"].as_str().unwrap().len() <= 4000));
}

/// A stand-in for a web server: serves `/media/8f2c/invoice.pdf` to the
/// holder of the media token, redirects `/media/moved.pdf` to `redirect_to`,
/// 404 for anything else; counts every request and every token it saw.
pub(crate) struct MediaServer {
    pub(crate) url: String,
    pub(crate) host: String,
    requests: Arc<std::sync::atomic::AtomicUsize>,
    tokens_seen: Arc<std::sync::atomic::AtomicUsize>,
}

pub(crate) async fn media_server(bytes: Vec<u8>, redirect_to: Option<String>) -> MediaServer {
    use axum::routing::get;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let requests = Arc::new(AtomicUsize::new(0));
    let tokens_seen = Arc::new(AtomicUsize::new(0));
    let (r, t) = (requests.clone(), tokens_seen.clone());
    let app = axum::Router::new().fallback(get(move |uri: http::Uri, headers: http::HeaderMap| {
        let bytes = bytes.clone();
        let redirect_to = redirect_to.clone();
        let (r, t) = (r.clone(), t.clone());
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            let token = headers.get("authorization").and_then(|v| v.to_str().ok());
            if token.is_some() {
                t.fetch_add(1, Ordering::SeqCst);
            }
            match (uri.path(), redirect_to) {
                ("/media/moved.pdf", Some(to)) => (
                    http::StatusCode::FOUND,
                    [(http::header::LOCATION, to)],
                    Vec::new(),
                ),
                ("/media/8f2c/invoice.pdf", _) if token == Some("Bearer media-token") => (
                    http::StatusCode::OK,
                    [(http::header::CONTENT_TYPE, "application/pdf".to_owned())],
                    bytes,
                ),
                _ => (
                    http::StatusCode::NOT_FOUND,
                    [(http::header::CONTENT_TYPE, "text/plain".to_owned())],
                    Vec::new(),
                ),
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    MediaServer {
        url: format!("http://{host}"),
        host,
        requests,
        tokens_seen,
    }
}

impl MediaServer {
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub(crate) fn tokens_seen(&self) -> usize {
        self.tokens_seen.load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub(crate) fn media_access(hosts: &[&str]) -> witiop_salesforce::worker::MediaAccess {
    witiop_salesforce::worker::MediaAccess {
        api_token: Some(secrecy::SecretString::from("media-token")),
        hosts: Some(
            hosts
                .iter()
                .map(|h| witiop_salesforce::config::MediaHost::parse_entry(h).unwrap())
                .collect(),
        ),
    }
}

#[tokio::test]
async fn attachments_are_copied_from_media_hosts_only_and_never_block_the_case() {
    let s = stack(json!({"add_attachments": true})).await;
    let pdf: Vec<u8> = (0..48_213u32).map(|i| (i * 7 % 256) as u8).collect();
    // A host the secret does not list, e.g. an attacker's.
    let attacker = media_server(Vec::new(), None).await;
    let media = media_server(
        pdf.clone(),
        Some(format!("{}/media/8f2c/invoice.pdf", attacker.url)),
    )
    .await;
    s.worker.set_media(media_access(&[&media.host]));
    let mut event = sample();
    event["conversation"]["messages"][2]["attachments"] = json!([
        {"url": format!("{}/media/8f2c/invoice.pdf", media.url), "file_name": "invoice.pdf"},
        {"url": format!("{}/media/8f2c/invoice.pdf?sig=abc", attacker.url), "file_name": "elsewhere.pdf"},
        {"url": format!("{}/media/moved.pdf", media.url), "file_name": "moved.pdf"},
    ]);
    event["conversation"]["messages"][1]["attachments"] =
        json!([{"url": format!("{}/media/gone/photo.jpg", media.url)}]);
    s.warm().await;
    assert!(s.run(&[event.to_string()]).await.is_empty());
    assert_eq!(
        s.sf.counters().api_calls,
        3,
        "two composites and one upload"
    );
    assert_eq!(
        attacker.requests(),
        0,
        "neither a listed URL nor a redirect reaches another host"
    );
    assert_eq!(attacker.tokens_seen(), 0);

    let case = &s.cases()[0];
    let files = s.sf.records("ContentVersion");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["FirstPublishLocationId"], case["Id"]);
    assert_eq!(files[0]["Title"], "invoice.pdf");
    assert_eq!(s.sf.blob(files[0]["Id"].as_str().unwrap()).unwrap(), pdf);
    let comments = s.comments();
    let body = comments[2]["CommentBody"].as_str().unwrap();
    assert!(
        body.contains(&format!(
            "📎 invoice.pdf: {}/media/8f2c/invoice.pdf",
            media.url
        )),
        "{body}"
    );
    assert!(
        body.contains("📎 elsewhere.pdf is not copied to Salesforce (not on a WitiOp media host)"),
        "{body}"
    );
    let missing = comments[1]["CommentBody"].as_str().unwrap();
    assert!(missing.contains("/media/gone/photo.jpg"), "{missing}");

    // Redelivered: the file is not uploaded twice.
    assert!(s.run(&[event.to_string()]).await.is_empty());
    assert_eq!(s.sf.records("ContentVersion").len(), 1);
    assert_eq!(s.comments().len(), 3);
    assert_eq!(attacker.requests(), 0);
}

#[tokio::test]
async fn without_media_hosts_nothing_is_downloaded() {
    let s = stack(json!({"add_attachments": true})).await;
    let media = media_server(vec![1, 2, 3], None).await;
    let mut event = sample();
    event["conversation"]["messages"][2]["attachments"][0]["url"] =
        json!(format!("{}/media/8f2c/invoice.pdf", media.url));
    assert!(s.run(&[event.to_string()]).await.is_empty());
    assert_eq!(media.requests(), 0);
    assert!(s.sf.records("ContentVersion").is_empty());
    assert!(s.comments()[2]["CommentBody"]
        .as_str()
        .unwrap()
        .ends_with("/media/8f2c/invoice.pdf"));
}

#[tokio::test]
async fn a_missing_customer_user_is_a_configuration_error_until_it_exists() {
    let s = stack(
        json!({"set_audit_fields": true, "customer_comment_username": "not.yet@acme.example"}),
    )
    .await;
    s.sf.set_audit_fields(true);
    assert!(s.run(&[sample().to_string()]).await.is_empty(), "parked");
    let parked = s.moto.receive(&s.dlq).await.unwrap();
    let attrs = parked[0].message_attributes().unwrap();
    assert_eq!(attrs["error_code"].string_value(), Some("configuration"));
    assert!(attrs["error_message"]
        .string_value()
        .unwrap()
        .contains("not.yet@acme.example"));
    assert!(s.cases().is_empty());

    // The admin creates the user; the same warm worker finds it on redrive.
    s.sf.add_user(
        "not.yet@acme.example",
        "not.yet@acme.example",
        "WitiOp",
        "Customer",
        true,
    );
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    assert_eq!((s.cases().len(), s.comments().len()), (1, 3));
}

#[tokio::test]
async fn the_sample_sqs_batch_event() {
    let s = stack(json!({})).await;
    let event: SqsEvent = serde_json::from_str(&event_file("sqs-batch.json")).unwrap();
    let response = handle_batch(&s.worker, event, Instant::now() + Duration::from_secs(60)).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(s.cases().len(), 1);
    let parked = s.moto.receive(&s.dlq).await.unwrap();
    assert_eq!(
        parked.len(),
        1,
        "the truncated record is parked with its reason"
    );
    assert_eq!(
        parked[0].message_attributes().unwrap()["original_message_id"].string_value(),
        Some("2e1424d4-f796-459a-8184-9c92662be6da")
    );
}

#[tokio::test]
async fn a_portal_user_with_the_agents_email_never_owns_the_case() {
    // Older than the agent's Standard user, so "the oldest" would pick it.
    let s = crate::helpers::stack()
        .before_users(|sf| {
            sf.add_user_of_type(
                "agent.portal@acme.example",
                "agent.demo@acme.example",
                "Agent",
                "Portal",
                true,
                "PowerCustomerSuccess",
            );
        })
        .start()
        .await;
    assert!(s.run(&[sample().to_string()]).await.is_empty());
    assert_eq!(s.cases()[0]["OwnerId"], s.users.agent.as_str());
}
