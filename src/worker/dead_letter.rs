//! Parking: a record that can never succeed goes to the DLQ at once, body
//! intact, with its reason in message attributes (`crate::queue`) that the
//! operator commands read back: `make dlq` lists them, `make redrive
//! REASON=<error_code>` moves back only the conversations parked for it.

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::error::DisplayErrorContext;

use super::batch::Disposition;
use super::error::RecordError;
use super::BatchConfig;
use crate::event::CloseEvent;
use crate::queue::{self, string_attribute, DeduplicationId, GroupId, SqsText};
use crate::text::truncate_chars;

/// SQS attribute values are bounded by the message size; advice is short.
const MAX_ADVICE_CHARS: usize = 1000;

impl BatchConfig {
    /// Sends `message` to the DLQ with the reason; if even that fails, it
    /// stays in the queue for another attempt.
    pub(crate) async fn park(
        &self,
        message: &SqsMessage,
        event: Option<&CloseEvent>,
        error: &RecordError,
    ) -> Disposition {
        let message_id = message.message_id.as_deref().unwrap_or("");
        // Read back from SQS, the attribute is text SQS already accepted.
        let conversation_id = event
            .map(|e| e.conversation.id.as_attribute().clone())
            .or_else(|| {
                message
                    .message_attributes
                    .get(queue::CONVERSATION_ID)
                    .and_then(|a| a.string_value.as_deref())
                    .and_then(|v| SqsText::parse(v).ok())
            });
        let advice = error.advice();
        // Salesforce's words may hold anything: what SQS would refuse is
        // replaced rather than losing the parking over it.
        let note = SqsText::lossy(&truncate_chars(&advice, MAX_ADVICE_CHARS));
        let original = SqsText::parse(message_id).unwrap_or_else(|_| SqsText::lossy("unknown"));
        let mut request = self
            .sqs
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(message.body.clone().unwrap_or_default())
            .message_attributes(
                queue::ERROR_CODE,
                string_attribute(&SqsText::lossy(&error.code())),
            )
            .message_attributes(queue::ERROR_MESSAGE, string_attribute(&note))
            .message_attributes(
                queue::FAILED_AT,
                string_attribute(&SqsText::lossy(&chrono::Utc::now().to_rfc3339())),
            )
            .message_attributes(queue::ORIGINAL_MESSAGE_ID, string_attribute(&original));
        if let Some(id) = &conversation_id {
            request = request.message_attributes(queue::CONVERSATION_ID, string_attribute(id));
        }
        if let Some(id) = event.and_then(|e| e.event_id.as_ref()) {
            request =
                request.message_attributes(queue::EVENT_ID, string_attribute(id.as_attribute()));
        }
        if self.dlq_url.ends_with(".fifo") {
            // The customer's group is kept, so a redrive restores its order.
            // The delivery's own message id deduplicates: a crash between
            // parking and deleting parks once, while the same event parked
            // again after a redrive is a new message.
            let group = message
                .attributes
                .get("MessageGroupId")
                .and_then(|g| GroupId::parse(g).ok())
                .or_else(|| event.map(|e| GroupId::for_customer(&e.conversation.customer.number)))
                .unwrap_or_else(GroupId::unparsed);
            let deduplication = DeduplicationId::parse(message_id).unwrap_or_else(|_| {
                DeduplicationId::of_body(message.body.as_deref().unwrap_or(""))
            });
            request = request
                .message_group_id(group.into_string())
                .message_deduplication_id(deduplication.into_string());
        }
        let conversation_id = conversation_id.as_ref().map_or("", SqsText::as_str);
        match request.send().await {
            Ok(_) => {
                tracing::error!(
                    message_id,
                    conversation_id,
                    outcome = "dead_lettered",
                    error_code = error.code(),
                    error = advice,
                    "conversation moved to the dead-letter queue: fix the cause, then redrive"
                );
                metrics::counter!("conversations_dead_lettered", "code" => error.metric_code())
                    .increment(1);
                Disposition::Parked
            }
            Err(e) => {
                tracing::error!(message_id, conversation_id, unexpected = true, error = %DisplayErrorContext(&e), "could not move the record to the DLQ; it stays in the queue");
                // The DLQ should always take a record: a fault, not a wait.
                Disposition::Unexpected
            }
        }
    }
}
