//! `make redrive` and `make redrive REASON=…`: parked conversations moved
//! back one by one, in their customer's group, each once.

use aws_sdk_sqs::types::MessageSystemAttributeName;

use crate::harness::{attribute, depth, drain, group_of, Ops};

/// (conversation id, customer group) of messages, in the order received.
fn moved(messages: &[aws_sdk_sqs::types::Message]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| (attribute(m, "conversation_id"), group_of(m)))
        .collect()
}

#[tokio::test]
async fn redrive_moves_everything_back_in_each_customers_group_and_order() {
    let o = Ops::start().await;
    // Queues no trigger reads, so the moved messages stay to be looked at.
    let p = o.parking(&[]).await;
    let first = p.park(1, "393331111111").await;
    p.park(2, "393331111111").await;
    p.park(3, "393332222222").await;
    o.on(&p, "redrive", &[], &[]).await.succeeds().says(&[
        "The dead-letter queue reports 3 waiting and 0 in flight.",
        "every parked conversation, one by one",
        &format!("  moved conversation 1 (configuration, message {first})"),
        "  so far: 3 moved",
        "Done: 3 moved back, 0 left (parked again since the start).",
        "The dead-letter queue now reports 0 waiting and 0 in flight",
    ]);
    assert_eq!(depth(&p.sqs, &p.dlq).await, (0, 0));
    let back = drain(&p.sqs, &p.queue).await;
    let mut groups = moved(&back);
    // A customer's conversations keep their order within its group.
    let one: Vec<_> = groups
        .iter()
        .filter(|(_, g)| g == "393331111111")
        .map(|(c, _)| c.as_str())
        .collect();
    assert_eq!(one, ["1", "2"]);
    groups.sort();
    assert_eq!(
        groups,
        [
            ("1".to_owned(), "393331111111".to_owned()),
            ("2".to_owned(), "393331111111".to_owned()),
            ("3".to_owned(), "393332222222".to_owned())
        ]
    );
    for m in &back {
        // Body and attributes unchanged; the reason travels with it.
        assert_eq!(attribute(m, "error_code"), "configuration");
        let c = attribute(m, "conversation_id");
        assert_eq!(
            m.body().unwrap(),
            format!(r#"{{"conversation":{{"id":{c}}}}}"#)
        );
    }
    // The parked message's own id deduplicates the send.
    let dedup =
        back[0].attributes().unwrap()[&MessageSystemAttributeName::MessageDeduplicationId].clone();
    assert_eq!(dedup, first);

    o.on(&p, "redrive", &[], &[])
        .await
        .succeeds()
        .says(&["Nothing to redrive"]);
}

#[tokio::test]
async fn redrive_by_reason_moves_only_those_parked_for_it() {
    let o = Ops::start().await;
    let p = o.parking(&[]).await;
    // The third is behind the second in its customer's group: reaching it
    // means holding the second until the run ends.
    p.park_for(1, "393331111111", "INVALID_FIELD").await;
    p.park_for(2, "393331111111", "configuration").await;
    p.park_for(3, "393331111111", "INVALID_FIELD").await;
    p.park_for(4, "393332222222", "configuration").await;
    // Moved here by SQS after maxReceiveCount: no reason written.
    p.sqs
        .send_message()
        .queue_url(&p.dlq)
        .message_body(r#"{"conversation":{"id":5}}"#)
        .message_group_id("393333333333")
        .message_deduplication_id("exhausted-5")
        .send()
        .await
        .unwrap();

    o.on(&p, "redrive", &[], &[("REASON", "INVALID_FIELD")])
        .await
        .succeeds()
        .says(&[
            "the conversations parked for INVALID_FIELD, one by one",
            "  moved conversation 1 (INVALID_FIELD,",
            "  moved conversation 3 (INVALID_FIELD,",
            "Done: 2 moved back (parked for INVALID_FIELD), 3 skipped (another reason), 0 left",
        ])
        .never_says(&["moved conversation 2", "moved conversation 4"]);
    // The others are visible again, at once.
    assert_eq!(p.depths().await, ((3, 0), (2, 0)));
    assert_eq!(
        moved(&drain(&p.sqs, &p.queue).await),
        [
            ("1".to_owned(), "393331111111".to_owned()),
            ("3".to_owned(), "393331111111".to_owned())
        ]
    );

    o.on(&p, "redrive", &[], &[("REASON", "max_receive_count")])
        .await
        .succeeds()
        .says(&["Done: 1 moved back (parked for max_receive_count), 2 skipped"]);
    // A reason nobody was parked for: nothing moved, and said why.
    o.on(&p, "redrive", &[], &[("REASON", "invalid_field")])
        .await
        .succeeds()
        .says(&[
            "Done: 0 moved back (parked for invalid_field), 2 skipped",
            "No conversation is parked for invalid_field",
        ]);
    assert_eq!(depth(&p.sqs, &p.dlq).await, (2, 0));
    // Without a reason, the rest.
    o.on(&p, "redrive", &[], &[])
        .await
        .succeeds()
        .says(&["Done: 2 moved back"]);
    assert_eq!(depth(&p.sqs, &p.dlq).await, (0, 0));
}

#[tokio::test]
async fn a_move_repeated_after_a_crash_before_the_delete_reaches_the_queue_once() {
    let o = Ops::start().await;
    let p = o.parking(&[]).await;
    let parked = p.park(1, "393331111111").await;
    // A first run sent it, then died before deleting it from the DLQ.
    p.sqs
        .send_message()
        .queue_url(&p.queue)
        .message_body(r#"{"conversation":{"id":1}}"#)
        .message_group_id("393331111111")
        .message_deduplication_id(&parked)
        .send()
        .await
        .unwrap();
    o.on(&p, "redrive", &[], &[])
        .await
        .succeeds()
        .says(&["Done: 1 moved back"]);
    assert_eq!(
        p.depths().await,
        ((0, 0), (1, 0)),
        "SQS dropped the second send"
    );
}

#[tokio::test]
async fn a_failed_send_moves_nothing_and_hides_nothing() {
    let o = Ops::start().await;
    let p = o.parking(&[(1, "393331111111"), (2, "393332222222")]).await;
    let gone = p
        .queue
        .replace("conversations.fifo", "deleted-by-hand.fifo");
    o.ops(
        "redrive",
        &[],
        &[("QUEUE_URL", gone.as_str()), ("DLQ_URL", p.dlq.as_str())],
    )
    .await
    .fails()
    .says(&["failed: it stays in the dead-letter queue (0 moved before it"]);
    assert_eq!(p.depths().await, ((2, 0), (0, 0)), "both visible again");
}
