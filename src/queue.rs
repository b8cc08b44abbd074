//! The SQS message attributes the functions and the operator tools share:
//! written by the webhook and by the worker's dead-letter parking, read back
//! by `ops`. One definition each, so a renamed attribute cannot go unread.

use aws_sdk_sqs::types::MessageAttributeValue;

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
