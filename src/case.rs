//! The domain: what a closed conversation becomes in Salesforce. Pure, no I/O.
//!
//! Given the event and what the reads found (users, contact, an existing
//! Case and its comments), these functions decide every field the worker
//! writes: Subject, Description, the new Contact, and one CaseComment per
//! message (split when longer than Salesforce's 4,000-byte limit).

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::event::{Attachment, Conversation, Message, Sender};
use crate::phone::CustomerNumber;

/// CaseComment.CommentBody holds at most this many bytes.
pub const COMMENT_MAX_BYTES: usize = 4000;
const SUBJECT_MAX_CHARS: usize = 255;
const DESCRIPTION_MAX_CHARS: usize = 32_000;
const FIRST_NAME_MAX_CHARS: usize = 40;
const LAST_NAME_MAX_CHARS: usize = 80;
/// Attachment lines start with this; the duplicate check ignores what follows,
/// because an attachment's fate (uploaded or not) may differ between attempts.
const ATTACHMENT_MARK: &str = "\n📎 ";

/// `<number> [<conversation id>]`, the number in E.164 when it parses.
pub fn subject(conversation: &Conversation) -> String {
    let number = CustomerNumber::parse(&conversation.customer.number).display();
    truncate_chars(
        &format!("{number} [{}]", conversation.id),
        SUBJECT_MAX_CHARS,
    )
}

/// The profiling at close and the conversation's times.
pub fn description(conversation: &Conversation) -> String {
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
    let number = CustomerNumber::parse(&c.customer.number).display();
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
    truncate_chars(&lines.join("\n"), DESCRIPTION_MAX_CHARS)
}

/// Fields of the Contact created when none has the customer's number.
pub fn new_contact(conversation: &Conversation) -> Value {
    let number = CustomerNumber::parse(&conversation.customer.number).display();
    let (first, last) = match &conversation.customer.name {
        Some(name) => split_name(name),
        None => (None, number.clone()),
    };
    let mut fields = Map::new();
    if let Some(first) = first {
        fields.insert(
            "FirstName".into(),
            json!(truncate_chars(&first, FIRST_NAME_MAX_CHARS)),
        );
    }
    fields.insert(
        "LastName".into(),
        json!(truncate_chars(&last, LAST_NAME_MAX_CHARS)),
    );
    fields.insert("MobilePhone".into(), json!(number));
    fields.insert("Phone".into(), json!(number));
    Value::Object(fields)
}

/// "Maria C." → (Maria, C.); "Cher" → (None, Cher); "Anna Maria De Luca" →
/// (Anna, Maria De Luca): WitiOp names are free text, so the first word is
/// the given name and the rest, which Salesforce requires, the last name.
pub fn split_name(name: &str) -> (Option<String>, String) {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    match name.split_once(' ') {
        Some((first, rest)) => (Some(first.to_owned()), rest.to_owned()),
        None => (None, name),
    }
}

/// Who the comments are posted as, when audit fields are on.
#[derive(Debug, Clone, Default)]
pub struct Authors {
    pub set_audit_fields: bool,
    /// The agent's active User, if any.
    pub agent_user_id: Option<String>,
    /// The `customer_comment_username` User.
    pub customer_user_id: Option<String>,
}

/// What became of one attachment, as the comment reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentFate {
    /// Not uploaded by configuration: the comment carries the WitiOp link.
    Linked,
    /// Uploaded (or being uploaded) to the Case's Files.
    Uploaded,
    /// Could not be taken from WitiOp: the reason, and the link.
    NotUploaded(String),
}

/// A CaseComment to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentDraft {
    pub body: String,
    pub created_by: Option<String>,
    pub created_date: Option<String>,
}

impl CommentDraft {
    /// The CaseComment record for an sObject Collection, `parent` being an id
    /// or a composite reference.
    pub fn record(&self, parent: &str) -> Value {
        let mut r = json!({
            "attributes": {"type": "CaseComment"},
            "ParentId": parent,
            "CommentBody": self.body,
            "IsPublished": false,
        });
        if let Some(by) = &self.created_by {
            r["CreatedById"] = json!(by);
        }
        if let Some(date) = &self.created_date {
            r["CreatedDate"] = json!(date);
        }
        r
    }
}

/// Messages in conversation order: by `sent_at`, ties in payload order.
pub fn ordered_messages(conversation: &Conversation) -> Vec<(usize, &Message)> {
    let mut messages: Vec<(usize, &Message)> = conversation.messages.iter().enumerate().collect();
    // A stable sort keeps payload order for equal timestamps.
    messages.sort_by_key(|(_, m)| m.sent_at);
    messages
}

/// Every comment the conversation needs, in order. `fate(message index,
/// attachment index)` says what happened to each attachment.
pub fn plan_comments(
    conversation: &Conversation,
    authors: &Authors,
    fate: &dyn Fn(usize, usize) -> AttachmentFate,
) -> Vec<CommentDraft> {
    let mut out = Vec::new();
    for (index, message) in ordered_messages(conversation) {
        let (created_by, header_needed) = match (authors.set_audit_fields, message.sender) {
            (true, Sender::Agent) => (
                authors.agent_user_id.clone(),
                authors.agent_user_id.is_none(),
            ),
            (true, Sender::Customer) => (
                authors.customer_user_id.clone(),
                authors.customer_user_id.is_none(),
            ),
            // System messages are posted as the API user, so they say who wrote them.
            (true, Sender::System) => (None, true),
            (false, _) => (None, true),
        };
        let created_date = authors
            .set_audit_fields
            .then(|| salesforce_datetime(message.sent_at));
        let header = header_needed.then(|| header(conversation, message));
        let text = message.text.clone().unwrap_or_default();
        let attachments: String = message
            .attachments
            .iter()
            .enumerate()
            .map(|(i, a)| attachment_line(a, &fate(index, i)))
            .collect();
        let text = if text.is_empty() && attachments.is_empty() {
            "(empty message)".to_owned()
        } else {
            text
        };
        for body in compose_bodies(header.as_deref(), &text, &attachments) {
            out.push(CommentDraft {
                body,
                created_by: created_by.clone(),
                created_date: created_date.clone(),
            });
        }
    }
    out
}

/// The planned comments that `existing` bodies do not already cover, in
/// order. A body is matched once (a multiset), so two identical messages
/// need two comments.
pub fn missing_comments(planned: Vec<CommentDraft>, existing: &[String]) -> Vec<CommentDraft> {
    let mut pool: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for body in existing {
        *pool.entry(dedupe_key(body)).or_default() += 1;
    }
    planned
        .into_iter()
        .filter(|c| match pool.get_mut(dedupe_key(&c.body)) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .collect()
}

fn dedupe_key(body: &str) -> &str {
    if body.starts_with(&ATTACHMENT_MARK[1..]) {
        return "";
    }
    match body.find(ATTACHMENT_MARK) {
        Some(i) => &body[..i],
        None => body,
    }
}

fn header(conversation: &Conversation, message: &Message) -> String {
    let who = match message.sender {
        Sender::Agent => format!(
            "{} (agent)",
            conversation
                .agent
                .name
                .as_deref()
                .unwrap_or(&conversation.agent.email)
        ),
        Sender::Customer => match &conversation.customer.name {
            Some(n) => format!("{n} (customer)"),
            None => format!(
                "{} (customer)",
                CustomerNumber::parse(&conversation.customer.number).display()
            ),
        },
        Sender::System => "WitiOp (system)".to_owned(),
    };
    format!("{who} · {}", utc_text(message.sent_at))
}

fn attachment_line(a: &Attachment, fate: &AttachmentFate) -> String {
    let name = a
        .file_name
        .clone()
        .unwrap_or_else(|| file_name_from_url(&a.url));
    match fate {
        AttachmentFate::Linked => format!("{ATTACHMENT_MARK}{name}: {}", a.url),
        AttachmentFate::Uploaded => {
            format!("{ATTACHMENT_MARK}{name} (attached to this Case's Files)")
        }
        AttachmentFate::NotUploaded(reason) => {
            format!(
                "{ATTACHMENT_MARK}{name} could not be attached ({reason}): {}",
                a.url
            )
        }
    }
}

/// The last path segment of a URL, the name a file gets when WitiOp gives none.
pub fn file_name_from_url(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.path_segments()?.next_back().map(str::to_owned))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "attachment".to_owned())
}

/// One body, or several when the text does not fit: each part repeats the
/// header and says which part it is; attachments go with the last part.
fn compose_bodies(header: Option<&str>, text: &str, attachments: &str) -> Vec<String> {
    let single = join_body(header, None, text, attachments);
    if single.len() <= COMMENT_MAX_BYTES {
        return vec![single];
    }
    // Room for "(part 99999/99999)\n" whatever the count turns out to be.
    let overhead = header.map_or(0, |h| h.len() + 1) + 20;
    let room = COMMENT_MAX_BYTES - overhead;
    let mut chunks = split_text(text, room);
    let last_fits = chunks
        .last()
        .is_some_and(|c| c.len() + attachments.len() <= room);
    if !attachments.is_empty() && !last_fits {
        chunks.push("");
    }
    let total = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let part = format!("(part {}/{total})", i + 1);
            let extra = if i + 1 == total { attachments } else { "" };
            join_body(header, Some(&part), chunk, extra)
        })
        .collect()
}

fn join_body(header: Option<&str>, part: Option<&str>, text: &str, attachments: &str) -> String {
    let mut body = String::new();
    let first_line = match (header, part) {
        (Some(h), Some(p)) => Some(format!("{h} {p}")),
        (Some(h), None) => Some(h.to_owned()),
        (None, Some(p)) => Some(p.to_owned()),
        (None, None) => None,
    };
    if let Some(line) = first_line {
        body.push_str(&line);
        body.push('\n');
    }
    body.push_str(text);
    if body.is_empty() {
        // Nothing before the attachment lines: no leading line break.
        body.push_str(attachments.trim_start_matches('\n'));
    } else {
        body.push_str(attachments);
    }
    body
}

/// Splits `text` into pieces of at most `max_bytes` bytes, only at character
/// boundaries, preferring a line break or space near the end of each piece.
/// The pieces concatenate back to `text` exactly.
pub fn split_text(text: &str, max_bytes: usize) -> Vec<&str> {
    assert!(max_bytes >= 4, "a piece must hold any one character");
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max_bytes {
        let mut cut = max_bytes;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        // Prefer a natural break in the last quarter of the piece.
        let mut window_start = cut - cut / 4;
        while !rest.is_char_boundary(window_start) {
            window_start += 1;
        }
        if let Some(pos) = rest[window_start..cut].rfind(['\n', ' ']) {
            cut = window_start + pos + 1;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

/// Salesforce's dateTime format, in UTC with milliseconds.
pub fn salesforce_datetime(t: DateTime<FixedOffset>) -> String {
    t.with_timezone(&Utc)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn utc_text(t: DateTime<FixedOffset>) -> String {
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

fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{parse_body, ParsedBody};

    fn sample() -> Conversation {
        match parse_body(include_bytes!("../events/conversation-closed.json")).unwrap() {
            ParsedBody::Closed(e) => e.conversation,
            _ => unreachable!(),
        }
    }

    fn linked(_: usize, _: usize) -> AttachmentFate {
        AttachmentFate::Linked
    }

    #[test]
    fn subject_description_contact() {
        let mut c = sample();
        assert_eq!(subject(&c), "+393331234567 [1793]");
        c.customer.number = "0039 333 123 4567".into();
        assert_eq!(subject(&c), "+393331234567 [1793]");
        c.customer.number = "12-34".into();
        assert_eq!(subject(&c), "12-34 [1793]");
        let d = description(&sample());
        assert!(
            d.contains("Category: Billing")
                && d.contains("Outcome: Resolved")
                && d.contains("Notes: Refund sent"),
            "{d}"
        );
        assert!(
            d.contains("Opened: 2026-11-24 09:58:10 UTC")
                && d.contains("Closed: 2026-11-24 10:15:40 UTC"),
            "{d}"
        );
        assert_eq!(
            new_contact(&sample()),
            json!({"FirstName": "Maria", "LastName": "C.", "MobilePhone": "+393331234567", "Phone": "+393331234567"})
        );
        let mut anonymous = sample();
        anonymous.customer.name = None;
        assert_eq!(new_contact(&anonymous)["LastName"], "+393331234567");
        assert!(new_contact(&anonymous).get("FirstName").is_none());
    }

    #[test]
    fn names_split_sensibly() {
        let cases = [
            ("Maria C.", (Some("Maria"), "C.")),
            ("Cher", (None, "Cher")),
            ("  Anna   Maria De Luca ", (Some("Anna"), "Maria De Luca")),
            ("李 小龙", (Some("李"), "小龙")),
        ];
        for (input, (first, last)) in cases {
            assert_eq!(
                split_name(input),
                (first.map(str::to_owned), last.to_owned()),
                "{input}"
            );
        }
    }

    #[test]
    fn comments_with_and_without_audit_fields() {
        let c = sample();
        let plain = plan_comments(&c, &Authors::default(), &linked);
        assert_eq!(plain.len(), 3);
        assert_eq!(
            plain[0].body,
            "Maria C. (customer) · 2026-11-24 09:58:10 UTC\nHello, I was charged twice"
        );
        assert_eq!(
            plain[1].body,
            "agent.demo (agent) · 2026-11-24 09:59:01 UTC\nHi Maria, could you send the invoice?"
        );
        assert!(
            plain[2]
                .body
                .ends_with("\n📎 invoice.pdf: https://app.witiop.example/media/8f2c/invoice.pdf"),
            "{}",
            plain[2].body
        );
        assert!(plain
            .iter()
            .all(|p| p.created_by.is_none() && p.created_date.is_none()));

        let authors = Authors {
            set_audit_fields: true,
            agent_user_id: Some("005A".into()),
            customer_user_id: Some("005C".into()),
        };
        let audited = plan_comments(&c, &authors, &|_, _| AttachmentFate::Uploaded);
        assert_eq!(audited[0].body, "Hello, I was charged twice");
        assert_eq!(audited[0].created_by.as_deref(), Some("005C"));
        assert_eq!(
            audited[0].created_date.as_deref(),
            Some("2026-11-24T09:58:10.000Z")
        );
        assert_eq!(audited[1].created_by.as_deref(), Some("005A"));
        assert_eq!(
            audited[1].created_date.as_deref(),
            Some("2026-11-24T09:59:01.250Z")
        );
        assert_eq!(
            audited[2].body,
            "📎 invoice.pdf (attached to this Case's Files)"
        );

        let no_agent_user = Authors {
            agent_user_id: None,
            ..authors
        };
        let c2 = plan_comments(&c, &no_agent_user, &linked);
        assert!(c2[1]
            .body
            .starts_with("agent.demo (agent) · 2026-11-24 09:59:01 UTC\n"));
        assert_eq!(c2[1].created_by, None);
        assert!(c2[1].created_date.is_some());
    }

    #[test]
    fn order_is_by_time_then_payload() {
        let mut c = sample();
        c.messages.swap(0, 2);
        let t = c.messages[1].sent_at;
        c.messages[0].sent_at = t;
        c.messages[0].text = Some("first in payload".into());
        c.messages[1].text = Some("second in payload".into());
        let bodies: Vec<String> = plan_comments(&c, &Authors::default(), &linked)
            .into_iter()
            .map(|c| c.body)
            .collect();
        assert!(
            bodies[1].contains("first in payload") && bodies[2].contains("second in payload"),
            "{bodies:?}"
        );
    }

    #[test]
    fn long_text_is_split_in_order_without_loss() {
        let mut c = sample();
        let long: String = "ab😀\n".repeat(3000) + "é";
        c.messages[0].text = Some(long.clone());
        c.messages.truncate(1);
        let comments = plan_comments(&c, &Authors::default(), &linked);
        assert!(comments.len() > 1);
        let mut rebuilt = String::new();
        for (i, cm) in comments.iter().enumerate() {
            assert!(cm.body.len() <= COMMENT_MAX_BYTES);
            let (first, rest) = cm.body.split_once('\n').unwrap();
            assert!(
                first.ends_with(&format!("(part {}/{})", i + 1, comments.len())),
                "{first}"
            );
            rebuilt.push_str(rest);
        }
        assert_eq!(rebuilt, long);
    }

    #[test]
    fn split_text_table() {
        assert_eq!(split_text("", 10), vec![""]);
        assert_eq!(split_text("abc", 10), vec!["abc"]);
        assert_eq!(split_text("😀😀😀", 5), vec!["😀", "😀", "😀"]);
        assert_eq!(split_text("aaaa bbbb cc", 11), vec!["aaaa bbbb ", "cc"]);
        assert_eq!(split_text("aaaaaaaaaaaa", 5), vec!["aaaaa", "aaaaa", "aa"]);
        for piece in split_text(&"é".repeat(1001), 4000) {
            assert!(piece.len() <= 4000);
        }
    }

    #[test]
    fn missing_comments_is_a_multiset_difference() {
        let d = |b: &str| CommentDraft {
            body: b.into(),
            created_by: None,
            created_date: None,
        };
        let planned = vec![
            d("ok"),
            d("ok"),
            d("hello"),
            d("file\n📎 a.pdf (attached to this Case's Files)"),
        ];
        let existing = vec![
            "ok".to_owned(),
            "file\n📎 a.pdf could not be attached (404): http://x".to_owned(),
        ];
        let missing: Vec<String> = missing_comments(planned, &existing)
            .into_iter()
            .map(|c| c.body)
            .collect();
        assert_eq!(missing, vec!["ok", "hello"]);
    }
}
