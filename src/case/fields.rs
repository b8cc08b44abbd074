//! The Case's own text fields: Subject and Description, and the date
//! formats Salesforce and people read.

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

use crate::event::Conversation;
use crate::phone::CustomerNumber;
use crate::text::truncate_utf16;

/// Field lengths, in UTF-16 code units as Salesforce counts them.
const SUBJECT_MAX: usize = 255;
const DESCRIPTION_MAX: usize = 32_000;

/// `<number> [<conversation id>]`, the number in E.164 when it parses.
pub fn subject(conversation: &Conversation, number: &CustomerNumber) -> String {
    subject_of(number, conversation.id.as_str())
}

/// The same from the two values alone: the links function finds a Case by
/// it, so both must build it here, truncation included.
pub fn subject_of(number: &CustomerNumber, conversation_id: &str) -> String {
    let number = number.display();
    truncate_utf16(&format!("{number} [{conversation_id}]"), SUBJECT_MAX).to_owned()
}

/// The profiling at close and the conversation's times.
pub fn description(conversation: &Conversation, number: &CustomerNumber) -> String {
    let c = conversation;
    let mut lines = vec![format!("WhatsApp conversation {} closed in WitiOp.", c.id)];
    if let Some(t) = c.opened_at {
        lines.push(format!("Opened: {}", utc_text(t)));
    }
    if let Some(t) = c.closed_at {
        lines.push(format!("Closed: {}", utc_text(t)));
    }
    let agent = match &c.agent.name {
        Some(n) => format!("{n} <{}>", c.agent.email),
        None => c.agent.email.clone(),
    };
    lines.push(format!("Agent: {agent}"));
    let number = number.display();
    lines.push(match &c.customer.name {
        Some(n) => format!("Customer: {n} ({number})"),
        None => format!("Customer: {number}"),
    });
    lines.push(format!("Messages: {}", c.messages.len()));
    if !c.profile.is_empty() {
        lines.push(String::new());
        lines.push("Profile at close:".to_owned());
        for (k, v) in &c.profile {
            lines.push(format!("{}: {v}", capitalise(k)));
        }
    }
    truncate_utf16(&lines.join("\n"), DESCRIPTION_MAX).to_owned()
}

/// Salesforce's dateTime format, in UTC with milliseconds.
pub fn salesforce_datetime(t: DateTime<FixedOffset>) -> String {
    t.with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn utc_text(t: DateTime<FixedOffset>) -> String {
    t.with_timezone(&Utc)
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string()
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
