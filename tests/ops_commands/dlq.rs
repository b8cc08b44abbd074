//! `make dlq` (listing, nothing deleted) and `make dlq-delete ID=…`.

use crate::harness::{attribute, depth, drain, fifo_pair, park, Ops};

#[tokio::test]
async fn dlq_lists_every_reason_and_says_when_it_saw_everything() {
    let o = Ops::start().await;
    let sqs = o.moto.sqs();
    let first = park(&sqs, &o.dlq, 1793, "393331234567").await;
    park(&sqs, &o.dlq, 1794, "393339999999").await;
    o.ops("dlq", &[], &[("DLQ_WAIT", "2")]).await.succeeds().says(&[
        "SQS reports 2 waiting and 0 in flight.",
        "2 conversation(s) seen in the dead-letter queue",
        "- conversation 1793 | configuration | failed at 2026-11-26T03:00:00Z | received 1x | customer group 393331234567",
        // The id make dlq-delete takes, and the one the webhook logged.
        &format!("| message {first} (queued as queued-1793)"),
        "  Case.Origin: bad value for conversation 1793",
        "- conversation 1794 |",
        "By reason (make redrive REASON=<reason> moves back only those): configuration 2",
        "Everything was seen.",
    ]);
    // Nothing deleted, nothing left hidden.
    assert_eq!(depth(&sqs, &o.dlq).await, (2, 0));

    // An empty queue.
    let (_, empty) = fifo_pair(&sqs, "empty").await;
    o.ops(
        "dlq",
        &[],
        &[("DLQ_URL", empty.as_str()), ("DLQ_WAIT", "1")],
    )
    .await
    .succeeds()
    .says(&["0 conversation(s) seen", "Everything was seen."]);
}

#[tokio::test]
async fn dlq_says_plainly_when_it_did_not_see_everything() {
    let o = Ops::start().await;
    let sqs = o.moto.sqs();
    // Twelve parked for one customer: FIFO hands out the first ten only
    // while they are hidden; and one hidden by another reader.
    for c in 1..=12 {
        park(&sqs, &o.dlq, c, "393331234567").await;
    }
    park(&sqs, &o.dlq, 100, "393330000000").await;
    let taken = sqs
        .receive_message()
        .queue_url(&o.dlq)
        .max_number_of_messages(10)
        .visibility_timeout(300)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(taken.len(), 10, "the first ten of the first group");
    o.ops("dlq", &[], &[("DLQ_WAIT", "2")])
        .await
        .succeeds()
        .says(&[
            "SQS reports 3 waiting and 10 in flight.",
            "1 conversation(s) seen",
            "- conversation 100 |",
            "NOT everything was seen: 1 seen, about 12 not.",
            "10 were in flight",
            "FIFO",
            "Nothing was deleted.",
        ]);
    assert_eq!(depth(&sqs, &o.dlq).await, (3, 10));

    // Once the other reader lets go: ten of the first customer and the
    // other; two are behind the first ten.
    for m in &taken {
        sqs.change_message_visibility()
            .queue_url(&o.dlq)
            .receipt_handle(m.receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    o.ops("dlq", &[], &[("DLQ_WAIT", "2")])
        .await
        .says(&["NOT everything was seen: 11 seen, about 2 not."]);
}

#[tokio::test]
async fn dlq_delete_deletes_that_message_and_nothing_else() {
    let o = Ops::start().await;
    let sqs = o.moto.sqs();
    // The one to delete is behind two of the same customer: reaching it
    // means holding them, and giving them back.
    park(&sqs, &o.dlq, 1, "393331111111").await;
    park(&sqs, &o.dlq, 2, "393331111111").await;
    let third = park(&sqs, &o.dlq, 3, "393331111111").await;
    park(&sqs, &o.dlq, 100, "393332222222").await;

    // No id: refused before anything is read.
    o.ops("dlq-delete", &[""], &[])
        .await
        .fails()
        .says(&["make dlq-delete ID=<message id>"]);
    // An id that is not there: said, nothing deleted, a failure.
    o.ops("dlq-delete", &["no-such-message"], &[("DLQ_WAIT", "1")])
        .await
        .fails()
        .says(&[
            "Message no-such-message is not in the dead-letter queue (4 other(s) seen)",
            "nothing was deleted",
        ]);
    assert_eq!(depth(&sqs, &o.dlq).await, (4, 0), "all visible again");

    o.ops("dlq-delete", &[&third], &[("DLQ_WAIT", "1")])
        .await
        .succeeds()
        .says(&[
            "Found it:",
            // Received once by the search for an id that is not there.
            &format!("- conversation 3 | configuration | failed at 2026-11-26T03:00:00Z | received 2x | customer group 393331111111 | message {third}"),
            "Deleted",
        ]);
    let left = drain(&sqs, &o.dlq).await;
    let mut conversations: Vec<_> = left
        .iter()
        .map(|m| attribute(m, "conversation_id"))
        .collect();
    conversations.sort();
    assert_eq!(conversations, ["1", "100", "2"]);

    // Gone: a second delete finds nothing.
    for m in &left {
        sqs.change_message_visibility()
            .queue_url(&o.dlq)
            .receipt_handle(m.receipt_handle().unwrap())
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    o.ops("dlq-delete", &[&third], &[("DLQ_WAIT", "1")])
        .await
        .fails()
        .says(&["is not in the dead-letter queue (3 other(s) seen)"]);
    assert_eq!(depth(&sqs, &o.dlq).await, (3, 0));
}
