//! The SQS message attributes the functions and the operator commands share:
//! written by the webhook and by the worker's dead-letter parking, read back
//! by the scripts of `ops/` (`make dlq`, `dlq-delete`, `redrive REASON=`).
//! One definition each here; the scripts' copies are held to these by the
//! test below, so a renamed attribute cannot go unread.
//!
//! Every value that goes into an attribute, a message group id or a
//! deduplication id is a type here that is valid when made: SQS refuses a
//! bad one on every attempt, so an event carrying one would be answered 503
//! forever instead of 400 once.

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

/// Text SQS accepts as a message body or a `String` attribute value:
/// not empty, and only the characters SendMessage lists, "#x9 | #xA | #xD |
/// #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"
/// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html);
/// an attribute's value "has the same restrictions on the content as the
/// message body" and must not be empty
/// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html).
/// A value outside that alphabet is refused by SQS on every attempt, so it
/// is refused here, where the sender can still be told which field it was.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SqsText(String);

/// A value SQS would refuse, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqsValueError {
    #[error("must not be empty")]
    Empty,
    #[error("contains a character SQS does not accept (U+{0:04X})")]
    Character(u32),
    #[error("longer than {0} characters")]
    TooLong(usize),
}

/// Whether SQS accepts `c` in a message body or a `String` attribute.
pub fn is_sqs_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

impl SqsText {
    pub fn parse(value: &str) -> Result<Self, SqsValueError> {
        if value.is_empty() {
            return Err(SqsValueError::Empty);
        }
        match value.chars().find(|c| !is_sqs_char(*c)) {
            Some(c) => Err(SqsValueError::Character(c as u32)),
            None => Ok(Self(value.to_owned())),
        }
    }

    /// `value` with every character SQS refuses replaced by U+FFFD (and
    /// `-` for nothing): for text we produce ourselves and must not lose a
    /// message over, such as a Salesforce error message in a parking note.
    pub fn lossy(value: &str) -> Self {
        if value.is_empty() {
            return Self("-".to_owned());
        }
        Self(
            value
                .chars()
                .map(|c| if is_sqs_char(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A `String` message attribute.
pub fn string_attribute(value: &SqsText) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value.as_str())
        .build()
        .expect("the data type is set")
}

/// The most characters of a FIFO message group or deduplication id.
pub const MAX_FIFO_ID_CHARS: usize = 128;

/// Whether SQS accepts `c` in a message group or deduplication id:
/// "alphanumeric characters (a-z, A-Z, 0-9) and punctuation
/// (!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~)", at most 128 of them
/// (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html).
pub fn is_fifo_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c.is_ascii_punctuation()
}

fn fifo_id(value: &str) -> Result<String, SqsValueError> {
    if value.is_empty() {
        return Err(SqsValueError::Empty);
    }
    if let Some(c) = value.chars().find(|c| !is_fifo_id_char(*c)) {
        return Err(SqsValueError::Character(c as u32));
    }
    if value.chars().count() > MAX_FIFO_ID_CHARS {
        return Err(SqsValueError::TooLong(MAX_FIFO_ID_CHARS));
    }
    Ok(value.to_owned())
}

/// A FIFO message group id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupId(String);

impl GroupId {
    /// One customer, one FIFO message group: the customer's key
    /// ([`CustomerKey`]), the same the worker groups a batch by and the
    /// Contact match reads the number as. A key is digits or a hex digest,
    /// at most 128 characters: a valid group id by construction.
    pub fn for_customer(number: &str) -> Self {
        Self(CustomerKey::of(number).into_string())
    }

    /// The group of a parked message whose customer is unknown (a body
    /// that does not parse).
    pub fn unparsed() -> Self {
        Self("unparsed".to_owned())
    }

    /// A group id read back from SQS or made by an operator tool.
    pub fn parse(value: &str) -> Result<Self, SqsValueError> {
        fifo_id(value).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A FIFO message deduplication id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeduplicationId(String);

impl DeduplicationId {
    /// The event's deduplication id, as the contract has it
    /// (README, "The event contract"; `event_id`): WitiOp's `event_id`; else
    /// the conversation id and its `closed_at`; else, without `closed_at`,
    /// a hash of the whole body as sent to SQS, in canonical form (keys
    /// sorted, no spaces), so a WitiOp retry of one event is one message
    /// while a second close of one conversation with more messages is
    /// another. A retry within SQS's five-minute deduplication window never
    /// reaches the worker.
    pub fn of_event(event: &CloseEvent, body: &SqsText) -> Result<Self, serde_json::Error> {
        Ok(match (&event.event_id, event.conversation.closed_at) {
            (Some(id), _) => id.deduplication_id().clone(),
            (None, Some(closed)) => Self(hex_sha256(
                format!("{}\n{}", event.conversation.id, closed.to_rfc3339()).as_bytes(),
            )),
            (None, None) => {
                let value: serde_json::Value = serde_json::from_str(body.as_str())?;
                Self(hex_sha256(canonical_json(&value).as_bytes()))
            }
        })
    }

    /// A deduplication id for a body with nothing better to go by.
    pub fn of_body(body: &str) -> Self {
        Self(hex_sha256(body.as_bytes()))
    }

    /// A deduplication id read back from SQS (a message id) or made by an
    /// operator tool.
    pub fn parse(value: &str) -> Result<Self, SqsValueError> {
        fifo_id(value).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// `value` as JSON with every object's keys sorted and no whitespace, the
/// same text whatever order or spacing the sender used, and whatever
/// `serde_json` features the build enables (`preserve_order` would keep
/// the sender's order).
pub fn canonical_json(value: &serde_json::Value) -> String {
    use serde_json::Value;
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (key, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(v, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
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
    use super::*;

    #[test]
    fn sqs_text_is_the_documented_alphabet() {
        for ok in [
            "a",
            "1793",
            "tab\there",
            "line\nbreak\r",
            "\u{D7FF}",
            "\u{E000}",
            "\u{FFFD}",
            "\u{10000}",
            "\u{10FFFF}",
            "é😀",
        ] {
            assert!(SqsText::parse(ok).is_ok(), "{ok:?}");
        }
        for (bad, code) in [
            ("a\u{FFFE}", 0xFFFE),
            ("\u{FFFF}", 0xFFFF),
            ("x\u{0}", 0),
            ("\u{1F}", 0x1F),
            ("\u{B}", 0xB),
        ] {
            assert_eq!(
                SqsText::parse(bad),
                Err(SqsValueError::Character(code)),
                "{bad:?}"
            );
        }
        assert_eq!(SqsText::parse(""), Err(SqsValueError::Empty));
        assert_eq!(SqsText::lossy("a\u{FFFE}b").as_str(), "a\u{FFFD}b");
        assert_eq!(SqsText::lossy("").as_str(), "-");
    }

    #[test]
    fn fifo_ids_are_the_documented_alphabet() {
        assert!(GroupId::parse("393331234567").is_ok());
        assert!(DeduplicationId::parse("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~aZ9").is_ok());
        assert_eq!(GroupId::parse(""), Err(SqsValueError::Empty));
        assert_eq!(GroupId::parse("a b"), Err(SqsValueError::Character(0x20)));
        assert_eq!(
            DeduplicationId::parse("é"),
            Err(SqsValueError::Character(0xE9))
        );
        assert_eq!(
            DeduplicationId::parse(&"a".repeat(129)),
            Err(SqsValueError::TooLong(128))
        );
        assert!(DeduplicationId::parse(&"a".repeat(128)).is_ok());
        // Every customer key is a valid group id, even a hashed one.
        for number in [
            "+393331234567",
            "00 39 333",
            "\u{FFFE}12345",
            &"9".repeat(200),
        ] {
            let g = GroupId::for_customer(number);
            assert_eq!(GroupId::parse(g.as_str()), Ok(g.clone()), "{number:?}");
        }
        let d = DeduplicationId::of_body("{}");
        assert_eq!(DeduplicationId::parse(d.as_str()), Ok(d.clone()));
    }

    #[test]
    fn canonical_json_ignores_order_and_spacing_only() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b": [1, {"y": "\ufffe", "x": null}], "a": "é"}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":"é","b":[1,{"x":null,"y":"\ufffe"}]}"#).unwrap();
        assert_eq!(canonical_json(&a), canonical_json(&b));
        assert_eq!(
            canonical_json(&a),
            "{\"a\":\"é\",\"b\":[1,{\"x\":null,\"y\":\"\u{FFFE}\"}]}"
        );
        let c: serde_json::Value =
            serde_json::from_str(r#"{"a":"é","b":[{"x":null,"y":"\ufffe"},1]}"#).unwrap();
        assert_ne!(
            canonical_json(&a),
            canonical_json(&c),
            "array order is content"
        );
    }

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
