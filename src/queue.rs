//! The SQS message attributes the functions and the operator commands share:
//! written by the webhook and by the worker's dead-letter parking, read back
//! by the scripts of `ops/` (`make dlq`, `dlq-delete`, `redrive REASON=`).
//! One definition each here; the scripts' copies are held to these by the
//! test below, so a renamed attribute cannot go unread.

use aws_sdk_sqs::types::MessageAttributeValue;

use crate::event::CloseEvent;
use crate::phone::CustomerKey;

/// The conversation a message carries (webhook, kept through parking).
pub const CONVERSATION_ID: &str = "conversation_id";
/// WitiOp's `event_id`, when the event has one.
pub const EVENT_ID: &str = "event_id";
/// Why the worker parked a message: a Salesforce or worker error code.
pub const ERROR_CODE: &str = "error_code";
/// The same in words an admin can act on.
pub const ERROR_MESSAGE: &str = "error_message";
/// When the worker parked it (RFC 3339).
pub const FAILED_AT: &str = "failed_at";
/// The message id it had in the main queue.
pub const ORIGINAL_MESSAGE_ID: &str = "original_message_id";

/// A `String` message attribute.
pub fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("the data type is set")
}

/// One customer, one FIFO message group: the customer's key
/// ([`CustomerKey`](crate::phone::CustomerKey)), the same the worker groups
/// a batch by and the Contact match reads the number as.
pub fn message_group_id(number: &str) -> String {
    CustomerKey::of(number).into_string()
}

/// WitiOp's `event_id` (validated to SQS's alphabet and length), else a hash
/// of the conversation id and its closing time: a WitiOp retry within SQS's
/// five-minute deduplication window never reaches the worker.
pub fn deduplication_id(event: &CloseEvent) -> String {
    match &event.event_id {
        Some(id) => id.clone(),
        None => {
            let closed = event
                .conversation
                .closed_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_default();
            hex_sha256(format!("{}\n{closed}", event.conversation.id).as_bytes())
        }
    }
}

/// A deduplication id for a body with nothing better to go by.
pub fn deduplication_id_of(body: &str) -> String {
    hex_sha256(body.as_bytes())
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    /// The operator scripts run without a Rust toolchain, so they carry the
    /// attribute names themselves (`ops/parked.py`): the same, or this fails.
    #[test]
    fn the_operator_scripts_read_the_attributes_written_here() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/ops/parked.py");
        let script = std::fs::read_to_string(path).expect("ops/parked.py");
        for (python, value) in [
            ("CONVERSATION_ID", super::CONVERSATION_ID),
            ("ERROR_CODE", super::ERROR_CODE),
            ("ERROR_MESSAGE", super::ERROR_MESSAGE),
            ("FAILED_AT", super::FAILED_AT),
            ("ORIGINAL_MESSAGE_ID", super::ORIGINAL_MESSAGE_ID),
        ] {
            let line = format!("{python} = \"{value}\"\n");
            assert!(script.contains(&line), "ops/parked.py lacks {line:?}");
        }
    }
}
