//! One CaseComment per message: order, authors, attachment lines, and the
//! split of a text longer than CommentBody allows.

use serde_json::{json, Value};

use super::fields::{salesforce_datetime, utc_text};
use super::ids::UserId;
use crate::event::{Attachment, AttachmentUrl, Conversation, Message, Sender};
use crate::phone::CustomerNumber;
use crate::text::truncate_bytes;

/// CaseComment.CommentBody holds at most this many bytes.
pub const COMMENT_MAX_BYTES: usize = 4000;
/// The header line (who wrote it, when) is cut to this many bytes.
const HEADER_MAX_BYTES: usize = 600;
/// Room kept for `" (part 99999/99999)"`.
const PART_LABEL_MAX_BYTES: usize = 20;
/// Attachment lines start with this; the duplicate check ignores what follows,
/// because an attachment's fate (uploaded or not) may differ between attempts.
const ATTACHMENT_MARK: &str = "\n📎 ";

/// Who the comments are posted as.
#[derive(Debug, Clone, Default)]
pub enum Authors {
    /// The API user, each comment's header naming its author.
    #[default]
    ApiUser,
    /// Through audit fields, dated when each message was sent.
    AuditFields {
        /// The agent's active User; without one the agent's comments are
        /// the API user's, their header naming the agent.
        agent_user_id: Option<UserId>,
        /// The `customer_comment_username` User.
        customer_user_id: UserId,
    },
}

/// What the comment says of one attachment. Comments are written before
/// any file is uploaded, so they never claim a file is attached: a file
/// copied to the Case's Files appears there, under the same name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentFate {
    /// The WitiOp link (and, with `add_attachments`, a copy in Files later).
    Linked,
    /// Never downloaded, and why (a host not listed, too large): the link.
    NotFetched(String),
}

/// A CaseComment to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentDraft {
    pub body: String,
    pub created_by: Option<UserId>,
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
    number: &CustomerNumber,
    authors: &Authors,
    fate: &dyn Fn(usize, usize) -> AttachmentFate,
) -> Vec<CommentDraft> {
    let mut out = Vec::new();
    for (index, message) in ordered_messages(conversation) {
        let (created_by, created_date) = match authors {
            Authors::ApiUser => (None, None),
            Authors::AuditFields {
                agent_user_id,
                customer_user_id,
            } => {
                let by = match message.sender {
                    Sender::Agent => agent_user_id.clone(),
                    Sender::Customer => Some(customer_user_id.clone()),
                    // Posted as the API user, so they say who wrote them.
                    Sender::System => None,
                };
                (by, Some(salesforce_datetime(message.sent_at)))
            }
        };
        let header_needed = created_by.is_none();
        let header = header_needed.then(|| header(conversation, number, message));
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

fn header(conversation: &Conversation, number: &CustomerNumber, message: &Message) -> String {
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
            None => format!("{} (customer)", number.display()),
        },
        Sender::System => "WitiOp (system)".to_owned(),
    };
    format!("{who} · {}", utc_text(message.sent_at))
}

pub(crate) fn attachment_line(a: &Attachment, fate: &AttachmentFate) -> String {
    let name = a
        .file_name
        .clone()
        .unwrap_or_else(|| file_name_from_url(&a.url));
    let url = a.url.shown();
    match fate {
        AttachmentFate::Linked => format!("{ATTACHMENT_MARK}{name}: {url}"),
        AttachmentFate::NotFetched(reason) => {
            format!("{ATTACHMENT_MARK}{name} is not copied to Salesforce ({reason}): {url}")
        }
    }
}

/// The last path segment of a URL, the name a file gets when WitiOp gives none.
pub fn file_name_from_url(url: &AttachmentUrl) -> String {
    url.last_segment().unwrap_or("attachment").to_owned()
}

/// One body, or several when the text does not fit: each part repeats the
/// header and says which part it is. The text and its attachment lines are
/// split as one, so neither a long text nor many attachments can exceed the
/// limit, and the parts concatenate back to exactly what one body would hold.
fn compose_bodies(header: Option<&str>, text: &str, attachments: &str) -> Vec<String> {
    // A display name may be thousands of bytes: the header says who wrote the
    // message, the Description keeps the full name.
    let header = header.map(|h| {
        if h.len() <= HEADER_MAX_BYTES {
            h.to_owned()
        } else {
            format!("{}…", truncate_bytes(h, HEADER_MAX_BYTES - '…'.len_utf8()))
        }
    });
    let header = header.as_deref();
    let single = join_body(header, None, text, attachments);
    if single.len() <= COMMENT_MAX_BYTES {
        return vec![single];
    }
    let content = if text.is_empty() {
        attachments.trim_start_matches('\n').to_owned()
    } else {
        format!("{text}{attachments}")
    };
    // The header is bounded, so the room is never small; the part label's
    // length is reserved for any count a message can reach.
    let overhead = header.map_or(0, |h| h.len() + 1) + PART_LABEL_MAX_BYTES + 1;
    let room = COMMENT_MAX_BYTES.saturating_sub(overhead);
    let chunks = split_text(&content, room);
    let total = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let part = format!("(part {}/{total})", i + 1);
            join_body(header, Some(&part), chunk, "")
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
    // Any one character fits in four bytes.
    let max_bytes = max_bytes.max(4);
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
