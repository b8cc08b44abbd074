//! A batch as the unit of Salesforce I/O (`src/worker/bulk.rs`): one read
//! and one atomic write for every new Case that fits, the per-conversation
//! path for the rest, exactly once throughout.

use local_salesforce::Fault;
use serde_json::{json, Value};

use crate::helpers::sample_event as sample;
use crate::worker::{assignment_rule_and_trigger, batch, of_customers, stack};

/// `n` conversations of one customer, from conversation `first` on.
fn of_one_customer(first: u64, n: u64, number: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut e = sample();
            e["conversation"]["id"] = json!(first + i);
            e["conversation"]["customer"]["number"] = json!(number);
            e.to_string()
        })
        .collect()
}

#[tokio::test]
async fn ten_new_conversations_cost_two_calls() {
    let s = stack(json!({})).await;
    s.warm().await;
    assert!(s.run(&of_customers(7000, 10)).await.is_empty());
    assert_eq!(s.sf.counters().api_calls, 2, "one read, one write");
    assert_eq!(s.cases().len(), 10);
    assert_eq!(s.comments().len(), 30);
    assert_eq!(s.sf.records("Contact").len(), 10);
    for case in s.cases() {
        assert_eq!(case["OwnerId"], json!(s.users.agent));
        let subject = case["Subject"].as_str().unwrap();
        let mine = s
            .comments()
            .iter()
            .filter(|c| c["ParentId"] == case["Id"])
            .count();
        assert_eq!(mine, 3, "{subject}");
    }
}

/// The assignment rule runs on every Case saved without
/// `Sforce-Auto-Assign: FALSE`, and the standard duplicate rule alerts on a
/// Contact like another: the shared write carries both headers on each
/// subrequest, where Composite documents them.
#[tokio::test]
async fn the_shared_write_keeps_every_case_with_its_agent() {
    let s = stack(json!({})).await;
    let queue = assignment_rule_and_trigger(&s);
    s.sf.set_contact_duplicate_rule(true);
    s.warm().await;
    assert!(s.run(&of_customers(7100, 10)).await.is_empty());
    assert_eq!(s.sf.counters().api_calls, 2);
    for case in s.cases() {
        assert_eq!(case["OwnerId"], json!(s.users.agent), "{case:?}");
        assert_ne!(case["OwnerId"], json!(queue));
    }
}

#[tokio::test]
async fn a_customers_conversations_share_one_new_contact_in_order() {
    let s = stack(json!({})).await;
    s.warm().await;
    let mut bodies = of_one_customer(7200, 3, "+39 333 765 4321");
    bodies.extend(of_customers(7300, 2));
    assert!(s.run(&bodies).await.is_empty());
    assert_eq!(s.sf.counters().api_calls, 2);
    let contacts = s.sf.records("Contact");
    assert_eq!(
        contacts.len(),
        3,
        "one for the customer of three, two others"
    );
    let theirs: Vec<Value> = s
        .cases()
        .iter()
        .filter(|c| c["Subject"].as_str().unwrap().starts_with("+393337654321"))
        .map(|c| c["ContactId"].clone())
        .collect();
    assert_eq!(theirs.len(), 3);
    assert!(theirs.iter().all(|c| *c == theirs[0]));
    // Created in the order SQS delivered them.
    let order: Vec<String> = s
        .cases()
        .iter()
        .filter_map(|c| c["Subject"].as_str())
        .filter(|s| s.starts_with("+393337654321"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        order,
        [
            "+393337654321 [7200]",
            "+393337654321 [7201]",
            "+393337654321 [7202]"
        ]
    );
}

/// A second close of one conversation (one message more) in the same batch:
/// the first joins the shared write, the second finds its Case and adds only
/// the message it lacks.
#[tokio::test]
async fn a_second_close_in_the_same_batch_makes_no_second_case() {
    let s = stack(json!({"case_external_id_field": "WitiOp_Conversation_Id__c"})).await;
    s.sf.add_external_id("Case", "WitiOp_Conversation_Id__c");
    s.warm().await;
    let first = sample();
    let mut second = sample();
    let mut extra = second["conversation"]["messages"][0].clone();
    extra["text"] = json!("One more thing");
    extra["sent_at"] = json!("2026-11-24T10:30:00Z");
    second["conversation"]["messages"]
        .as_array_mut()
        .unwrap()
        .push(extra);
    second["event_id"] = json!("evt-second-close");
    let mut bodies = vec![first.to_string()];
    bodies.extend(of_customers(7400, 2));
    bodies.push(second.to_string());
    assert!(s.run(&bodies).await.is_empty());
    assert_eq!(s.cases().len(), 3);
    assert_eq!(s.comments().len(), 4 + 3 + 3);
}

/// A crash after the shared write and before SQS deleted the records: the
/// whole batch comes back, and nothing is written twice.
#[tokio::test]
async fn a_redelivered_batch_adds_nothing() {
    let s = stack(json!({})).await;
    let bodies = of_customers(7500, 6);
    assert!(s.run(&bodies).await.is_empty());
    let before = (
        s.cases().len(),
        s.comments().len(),
        s.sf.records("Contact").len(),
    );
    assert_eq!(before, (6, 18, 6));
    assert!(s.run(&bodies).await.is_empty());
    assert_eq!(
        (
            s.cases().len(),
            s.comments().len(),
            s.sf.records("Contact").len()
        ),
        before
    );
}

/// A message holding `@{` cannot travel in a Composite: its conversation
/// goes its own way, the others still share one write, and the text reaches
/// Salesforce as written.
#[tokio::test]
async fn text_that_looks_like_a_reference_goes_its_own_way() {
    let s = stack(json!({})).await;
    s.warm().await;
    let mut bodies = of_customers(7600, 3);
    let mut marked: Value = serde_json::from_str(&bodies[1]).unwrap();
    marked["conversation"]["messages"][0]["text"] = json!("my code is @{case.id}");
    bodies[1] = marked.to_string();
    assert!(s.run(&bodies).await.is_empty());
    assert_eq!(s.cases().len(), 3);
    assert!(s.comments().iter().any(|c| c["CommentBody"]
        .as_str()
        .unwrap()
        .contains("my code is @{case.id}")));
    assert_eq!(s.comments().len(), 9);
}

/// The shared write refused as a whole (here every attempt meets a locked
/// row): it leaves nothing behind, and each conversation is then written on
/// its own in the same invocation.
#[tokio::test]
async fn a_refused_shared_write_leaves_nothing_and_each_conversation_goes_alone() {
    let s = stack(json!({})).await;
    s.warm().await;
    // The read passes; every attempt of the shared write is refused.
    s.sf.inject_after(1, Fault::RowLock, 4);
    assert!(s.run(&of_customers(7700, 4)).await.is_empty());
    assert_eq!(
        s.sf.counters().faults_served,
        4,
        "the shared write was refused"
    );
    assert_eq!(s.cases().len(), 4);
    assert_eq!(s.comments().len(), 12);
    assert_eq!(s.sf.records("Contact").len(), 4);
}

/// The org's API allowance spent at the shared read: the batch stops there
/// and waits, as it would after one conversation met the limit.
#[tokio::test]
async fn a_spent_allowance_at_the_shared_read_stops_the_batch() {
    let s = stack(json!({})).await;
    s.warm().await;
    s.sf.inject(Fault::LimitExceeded, 1);
    let failed = s.run(&of_customers(7800, 4)).await;
    assert_eq!(failed.len(), 4, "every record waits: {failed:?}");
    assert_eq!(
        s.sf.counters().faults_served,
        1,
        "no call after the refusal"
    );
    assert!(s.cases().is_empty());
}

/// Two instances hand the same batch to their shared writes at the same
/// moment (a standard queue, or a redrive racing a late delivery): both
/// read "no Case", the first write wins, the second is refused on the
/// Unique External ID as a whole, and its conversations then find the
/// winner's Cases on their own paths. Nothing twice.
#[tokio::test]
async fn two_instances_racing_on_one_batch_write_everything_once() {
    let s = stack(json!({"case_external_id_field": "WitiOp_Conversation_Id__c"})).await;
    s.sf.add_external_id("Case", "WitiOp_Conversation_Id__c");
    let twin = crate::helpers::worker(&s.moto, &s.secret, &s.dlq, 4);
    s.sf.set_latency(std::time::Duration::from_millis(100));
    let bodies = of_customers(7900, 4);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let (a, b) = tokio::join!(
        witiop_salesforce::worker::handle_batch(&s.worker, batch(&bodies), deadline),
        witiop_salesforce::worker::handle_batch(&twin, batch(&bodies), deadline)
    );
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    assert_eq!(s.cases().len(), 4);
    assert_eq!(s.comments().len(), 12);
    assert_eq!(
        s.sf.records("Contact").len(),
        4,
        "the loser's Contacts rolled back"
    );
}

/// Hostile values in one batch: quotes and backslashes in ids that land in
/// the shared read's `IN` lists, `@{` in an id (so in a Subject) and in a
/// customer's name, a 64-character id of four-byte characters, a bell and
/// quotes in a message. Each becomes its Case, byte for byte, and a
/// redelivery of the batch finds every one of them again.
#[tokio::test]
async fn hostile_values_in_a_batch_are_written_as_sent_and_found_again() {
    let s = stack(json!({})).await;
    let long_id: String = "𝄞".repeat(64);
    let ids = [
        "it's \"quoted\"".to_owned(),
        "back\\slash %_*".to_owned(),
        "code @{case0.id}".to_owned(),
        long_id.clone(),
    ];
    let bodies: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut e = sample();
            e["conversation"]["id"] = json!(id);
            e["conversation"]["customer"]["number"] = json!(format!("+39333123460{i}"));
            if i == 0 {
                e["conversation"]["customer"]["name"] = json!("O'Brien \"@{contact0.id}\"");
                e["conversation"]["messages"][0]["text"] = json!("ring \u{7} \"twice\" 'now'");
            }
            e.to_string()
        })
        .collect();
    assert!(s.run(&bodies).await.is_empty());
    let subjects: Vec<String> = s
        .cases()
        .iter()
        .map(|c| c["Subject"].as_str().unwrap().to_owned())
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let subject = format!("+39333123460{i} [{id}]");
        assert!(subjects.contains(&subject), "{subject} in {subjects:?}");
    }
    assert!(s.comments().iter().any(|c| c["CommentBody"]
        .as_str()
        .unwrap()
        .ends_with("\nring \u{7} \"twice\" 'now'")));
    assert!(s.sf.records("Contact").iter().any(|c| c["LastName"]
        .as_str()
        .unwrap_or("")
        .contains("@{contact0.id}")));
    let before = (
        s.cases().len(),
        s.comments().len(),
        s.sf.records("Contact").len(),
    );
    assert_eq!(before, (4, 12, 4));
    assert!(s.run(&bodies).await.is_empty());
    assert_eq!(
        (
            s.cases().len(),
            s.comments().len(),
            s.sf.records("Contact").len()
        ),
        before,
        "the redelivery found every Case"
    );
}
