//! The WitiOp "conversation closed" event (contract v1) and its validation.
//!
//! WitiOp publishes no schema, so validation is written out by hand over a
//! `serde_json::Value` rather than derived: every violation must name the
//! offending field path (`conversation.messages[2].sent_at`) so that the
//! person wiring WitiOp sees exactly what to fix, and unknown fields must be
//! ignored for forward compatibility. The webhook validates before queueing
//! and the worker parses the queued body with the same code, so a message in
//! the queue is known to be processable as far as its shape goes.

use chrono::{DateTime, FixedOffset};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::queue::{DeduplicationId, SqsText};

/// The only event type that is turned into a Case; others are acknowledged and dropped.
pub const CLOSED_TYPE: &str = "conversation.closed";

/// Bounds of machine identifiers (docs/event.md, "Bounds"): values
/// outside them are refused with a 400 so that nothing downstream (SQS
/// attributes and deduplication ids, SOQL, Salesforce fields) refuses them
/// later. Text a person wrote has no bound of its own.
const MAX_CONVERSATION_ID_CHARS: usize = 64;
const MAX_EVENT_ID_CHARS: usize = 128;
const MAX_NUMBER_CHARS: usize = 32;
const MIN_NUMBER_DIGITS: usize = 5;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_MESSAGE_ID_CHARS: usize = 256;
const MAX_URL_CHARS: usize = 2048;
const MAX_FILE_NAME_CHARS: usize = 255;

/// A validation failure, naming the field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct InvalidEvent {
    /// Dotted path with array indexes, `""` for the body as a whole.
    pub field: String,
    pub message: String,
}

impl InvalidEvent {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What the body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsedBody {
    /// A `conversation.closed` event, fully validated.
    Closed(Box<CloseEvent>),
    /// A well-formed event of another type: acknowledged, never queued.
    Ignored { event_type: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct CloseEvent {
    pub event_id: Option<EventId>,
    pub occurred_at: Option<DateTime<FixedOffset>>,
    pub conversation: Conversation,
}

/// WitiOp's `event_id`: letters, digits and `-_.:`, at most 128, so that
/// it is at once an SQS message attribute and a FIFO deduplication id.
/// Both are made when it is parsed, so neither can be refused later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId {
    attribute: SqsText,
    deduplication: DeduplicationId,
}

impl EventId {
    pub fn as_str(&self) -> &str {
        self.attribute.as_str()
    }

    /// The `event_id` message attribute's value.
    pub fn as_attribute(&self) -> &SqsText {
        &self.attribute
    }

    /// The FIFO deduplication id it stands for.
    pub fn deduplication_id(&self) -> &DeduplicationId {
        &self.deduplication
    }
}

/// WitiOp ids are numeric today; the contract treats them as opaque strings.
/// It becomes the `conversation_id` message attribute, so it holds only
/// characters SQS accepts there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConversationId(SqsText);

impl ConversationId {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The `conversation_id` message attribute's value.
    pub fn as_attribute(&self) -> &SqsText {
        &self.0
    }
}

impl std::fmt::Display for ConversationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub id: ConversationId,
    pub channel: Option<String>,
    pub opened_at: Option<DateTime<FixedOffset>>,
    pub closed_at: Option<DateTime<FixedOffset>>,
    pub agent: Agent,
    pub customer: Customer,
    /// The agent's profiling at close, in payload order.
    pub profile: Vec<(String, String)>,
    /// In payload order; the worker sorts them by `sent_at`.
    pub messages: Vec<Message>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub email: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// As received; the worker normalises it.
    pub number: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    Customer,
    Agent,
    System,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Option<String>,
    pub sender: Sender,
    pub sent_at: DateTime<FixedOffset>,
    pub text: Option<String>,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub url: AttachmentUrl,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub size: Option<u64>,
}

/// Parses and validates a request body.
pub fn parse_body(body: &[u8]) -> Result<ParsedBody, InvalidEvent> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| InvalidEvent::new("", format!("body is not valid JSON: {e}")))?;
    // A `Value`'s objects are sorted by key unless serde_json is built with a
    // feature that any crate in the build may turn on; the profile's order
    // is read from the body itself, so it never depends on the build.
    let order = serde_json::from_slice::<ProfileOrder>(body).unwrap_or_default();
    parse_value(&value, &order.keys())
}

/// The profile's keys in the order the body gives them; every other value
/// is skipped without being built.
#[derive(Default, serde::Deserialize)]
struct ProfileOrder {
    #[serde(default)]
    conversation: Option<ProfileHolder>,
}

#[derive(serde::Deserialize)]
struct ProfileHolder {
    #[serde(default)]
    profile: Option<KeysInOrder>,
}

impl ProfileOrder {
    fn keys(self) -> Vec<String> {
        self.conversation
            .and_then(|c| c.profile)
            .map(|k| k.0)
            .unwrap_or_default()
    }
}

/// An object's keys in document order (any other JSON value: none).
struct KeysInOrder(Vec<String>);

impl<'de> serde::Deserialize<'de> for KeysInOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = KeysInOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<KeysInOrder, A::Error> {
                let mut keys = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    keys.push(key);
                }
                Ok(KeysInOrder(keys))
            }
        }
        d.deserialize_map(Keys)
    }
}

/// Validates an already-decoded body; `profile_order` lists the profile's
/// keys as the body gave them (keys it does not name come after, sorted).
fn parse_value(value: &Value, profile_order: &[String]) -> Result<ParsedBody, InvalidEvent> {
    let root = object(value, "")?;
    let event_type = required_str(root, "", "type")?;
    if event_type != CLOSED_TYPE {
        return Ok(ParsedBody::Ignored {
            event_type: event_type.to_owned(),
        });
    }
    let event_id = optional_str(root, "", "event_id")?
        .filter(|s| !s.is_empty())
        .map(parse_event_id)
        .transpose()?;
    let occurred_at = optional_time(root, "", "occurred_at")?;
    let conversation = parse_conversation(required(root, "", "conversation")?, profile_order)?;
    Ok(ParsedBody::Closed(Box::new(CloseEvent {
        event_id,
        occurred_at,
        conversation,
    })))
}

fn parse_event_id(id: &str) -> Result<EventId, InvalidEvent> {
    let refused = || {
        InvalidEvent::new(
            "event_id",
            format!("at most {MAX_EVENT_ID_CHARS} letters, digits and -_.: characters"),
        )
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:".contains(c);
    if id.len() > MAX_EVENT_ID_CHARS || !id.chars().all(allowed) {
        return Err(refused());
    }
    Ok(EventId {
        attribute: SqsText::parse(id).map_err(|_| refused())?,
        deduplication: DeduplicationId::parse(id).map_err(|_| refused())?,
    })
}

fn parse_conversation(
    value: &Value,
    profile_order: &[String],
) -> Result<Conversation, InvalidEvent> {
    const P: &str = "conversation";
    let obj = object(value, P)?;
    let id = parse_conversation_id(required(obj, P, "id")?)?;
    let channel = optional_str(obj, P, "channel")?.map(str::to_owned);
    let opened_at = optional_time(obj, P, "opened_at")?;
    let closed_at = optional_time(obj, P, "closed_at")?;

    let agent_obj = object(required(obj, P, "agent")?, "conversation.agent")?;
    let email = required_str(agent_obj, "conversation.agent", "email")?.trim();
    bounded(email, MAX_EMAIL_CHARS, "conversation.agent.email")?;
    if !is_plausible_email(email) {
        return Err(InvalidEvent::new(
            "conversation.agent.email",
            "not an email address",
        ));
    }
    let agent = Agent {
        email: email.to_owned(),
        name: optional_nonblank(agent_obj, "conversation.agent", "name")?,
    };

    let customer_obj = object(required(obj, P, "customer")?, "conversation.customer")?;
    let number = required_str(customer_obj, "conversation.customer", "number")?.trim();
    bounded(number, MAX_NUMBER_CHARS, "conversation.customer.number")?;
    // Its key is the FIFO message group id (digits, valid whatever the
    // spelling), but a number SQS could not carry as text is no number.
    if let Some(c) = number
        .chars()
        .find(|c| c.is_control() || !crate::queue::is_sqs_char(*c))
    {
        return Err(InvalidEvent::new(
            "conversation.customer.number",
            format!(
                "contains a character a phone number cannot hold (U+{:04X})",
                c as u32
            ),
        ));
    }
    if number.chars().filter(char::is_ascii_digit).count() < MIN_NUMBER_DIGITS {
        return Err(InvalidEvent::new(
            "conversation.customer.number",
            format!("holds fewer than {MIN_NUMBER_DIGITS} digits"),
        ));
    }
    let customer = Customer {
        number: number.to_owned(),
        name: optional_nonblank(customer_obj, "conversation.customer", "name")?,
    };

    let profile = match obj.get("profile") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => parse_profile(v, profile_order)?,
    };

    let messages_value = required(obj, P, "messages")?;
    let Value::Array(items) = messages_value else {
        return Err(InvalidEvent::new(
            "conversation.messages",
            "must be an array",
        ));
    };
    let messages = items
        .iter()
        .enumerate()
        .map(|(i, m)| parse_message(m, &format!("conversation.messages[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Conversation {
        id,
        channel,
        opened_at,
        closed_at,
        agent,
        customer,
        profile,
        messages,
    })
}

fn parse_conversation_id(value: &Value) -> Result<ConversationId, InvalidEvent> {
    const F: &str = "conversation.id";
    let id = match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        Value::Null => return Err(InvalidEvent::new(F, "missing")),
        _ => {
            return Err(InvalidEvent::new(
                F,
                "must be an integer or a non-empty string",
            ))
        }
    };
    if id.is_empty() {
        return Err(InvalidEvent::new(F, "must not be empty"));
    }
    if id.chars().count() > MAX_CONVERSATION_ID_CHARS {
        return Err(InvalidEvent::new(
            F,
            format!("longer than {MAX_CONVERSATION_ID_CHARS} characters"),
        ));
    }
    if id.chars().any(char::is_control) {
        return Err(InvalidEvent::new(F, "contains control characters"));
    }
    SqsText::parse(&id)
        .map(ConversationId)
        .map_err(|e| InvalidEvent::new(F, e.to_string()))
}

fn parse_profile(value: &Value, order: &[String]) -> Result<Vec<(String, String)>, InvalidEvent> {
    let obj = object(value, "conversation.profile")?;
    let mut out = Vec::with_capacity(obj.len());
    for (key, v) in obj {
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            // Scalars are kept as text rather than refused: a profile is free-form
            // and refusing it would lose the whole conversation over a detail.
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(InvalidEvent::new(
                    format!("conversation.profile.{key}"),
                    "must be a string",
                ))
            }
        };
        out.push((key.clone(), text));
    }
    // A key given twice keeps its first place (and, as in any JSON object
    // read here, its last value).
    let mut place = std::collections::HashMap::with_capacity(order.len());
    for (i, key) in order.iter().enumerate() {
        place.entry(key.as_str()).or_insert(i);
    }
    out.sort_by_key(|(key, _)| place.get(key.as_str()).copied().unwrap_or(usize::MAX));
    Ok(out)
}

fn parse_message(value: &Value, path: &str) -> Result<Message, InvalidEvent> {
    let obj = object(value, path)?;
    let id = optional_str(obj, path, "id")?.map(str::to_owned);
    if let Some(id) = &id {
        bounded(id, MAX_MESSAGE_ID_CHARS, &format!("{path}.id"))?;
    }
    let sender = match required_str(obj, path, "sender")? {
        "customer" => Sender::Customer,
        "agent" => Sender::Agent,
        "system" => Sender::System,
        _ => {
            return Err(InvalidEvent::new(
                format!("{path}.sender"),
                "must be \"customer\", \"agent\" or \"system\"",
            ))
        }
    };
    let sent_at = parse_time(
        required_str(obj, path, "sent_at")?,
        &format!("{path}.sent_at"),
    )?;
    let text = optional_str(obj, path, "text")?.map(str::to_owned);
    let attachments = match obj.get("attachments") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, a)| parse_attachment(a, &format!("{path}.attachments[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(InvalidEvent::new(
                format!("{path}.attachments"),
                "must be an array",
            ))
        }
    };
    Ok(Message {
        id,
        sender,
        sent_at,
        text,
        attachments,
    })
}

/// An attachment's absolute `http(s)` URL, parsed once when the event is
/// read. The text WitiOp sent is kept beside it: comments show the link as
/// sent (a re-delivery must write the very same body, and [`Url`]'s own
/// rendering normalises it), while every decision reads the parsed [`Url`].
///
/// [`Url`]: reqwest::Url
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentUrl {
    url: reqwest::Url,
    as_sent: String,
}

impl AttachmentUrl {
    /// An absolute `http` or `https` URL, trimmed.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let url = reqwest::Url::parse(text).ok()?;
        matches!(url.scheme(), "http" | "https").then(|| Self {
            url,
            as_sent: text.to_owned(),
        })
    }

    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The link as WitiOp sent it.
    pub fn as_str(&self) -> &str {
        &self.as_sent
    }

    /// The link as everyone who can see the Case may read it: a user name
    /// or password in it (never used to fetch) is left out.
    pub fn shown(&self) -> String {
        if self.url.username().is_empty() && self.url.password().is_none() {
            return self.as_sent.clone();
        }
        let mut u = self.url.clone();
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.to_string()
    }

    /// The last segment of the path, if any: a file's name when none is given.
    pub fn last_segment(&self) -> Option<&str> {
        self.url
            .path_segments()?
            .next_back()
            .filter(|s| !s.is_empty())
    }
}

impl std::fmt::Display for AttachmentUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_sent)
    }
}

fn parse_attachment(value: &Value, path: &str) -> Result<Attachment, InvalidEvent> {
    let obj = object(value, path)?;
    let url = required_str(obj, path, "url")?.trim();
    bounded(url, MAX_URL_CHARS, &format!("{path}.url"))?;
    let url = AttachmentUrl::parse(url).ok_or_else(|| {
        InvalidEvent::new(format!("{path}.url"), "must be an absolute http(s) URL")
    })?;
    let size = match obj.get("size") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.is_u64() => n.as_u64(),
        Some(_) => {
            return Err(InvalidEvent::new(
                format!("{path}.size"),
                "must be a non-negative integer",
            ))
        }
    };
    let file_name = optional_nonblank(obj, path, "file_name")?;
    if let Some(name) = &file_name {
        bounded(name, MAX_FILE_NAME_CHARS, &format!("{path}.file_name"))?;
    }
    Ok(Attachment {
        url,
        file_name,
        content_type: optional_nonblank(obj, path, "content_type")?,
        size,
    })
}

/// A machine identifier within its bound (docs/event.md, "Bounds").
fn bounded(value: &str, max_chars: usize, field: &str) -> Result<(), InvalidEvent> {
    if value.chars().count() > max_chars {
        return Err(InvalidEvent::new(
            field,
            format!("longer than {max_chars} characters"),
        ));
    }
    Ok(())
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, InvalidEvent> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Err(InvalidEvent::new(path, "missing")),
        _ => Err(InvalidEvent::new(path, "must be an object")),
    }
}

fn required<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a Value, InvalidEvent> {
    match obj.get(key) {
        None | Some(Value::Null) => Err(InvalidEvent::new(join(path, key), "missing")),
        Some(v) => Ok(v),
    }
}

fn required_str<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<&'a str, InvalidEvent> {
    match required(obj, path, key)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::String(_) => Err(InvalidEvent::new(join(path, key), "must not be empty")),
        _ => Err(InvalidEvent::new(join(path, key), "must be a string")),
    }
}

fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a str>, InvalidEvent> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(InvalidEvent::new(join(path, key), "must be a string")),
    }
}

fn optional_nonblank(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<String>, InvalidEvent> {
    Ok(optional_str(obj, path, key)?
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned))
}

fn optional_time(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<DateTime<FixedOffset>>, InvalidEvent> {
    optional_str(obj, path, key)?
        .map(|s| parse_time(s, &join(path, key)))
        .transpose()
}

fn parse_time(text: &str, field: &str) -> Result<DateTime<FixedOffset>, InvalidEvent> {
    let t = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| InvalidEvent::new(field, "not an RFC 3339 timestamp with offset"))?;
    // Salesforce audit dates start at 1970; anything earlier is a sender bug.
    if t.timestamp() < 0 {
        return Err(InvalidEvent::new(field, "before 1970-01-01"));
    }
    Ok(t)
}

fn is_plausible_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests;
