//! One conversation: read what exists, plan, write what is missing, upload
//! the files.

use super::attachments;
use super::error::RecordError;
use super::write::{write_comments, write_new_case};
use super::Worker;
use crate::case::{self, CasePlan, CommentDraft};
use crate::event::CloseEvent;
use crate::phone::CustomerNumber;
use crate::salesforce::SalesforceError;

/// A close event as the worker handles it: the customer's number parsed once.
pub(crate) struct Job {
    pub event: CloseEvent,
    pub number: CustomerNumber,
    /// `<number> [<conversation id>]`, also the Case's key without an External ID.
    pub subject: String,
}

impl Job {
    pub(crate) fn new(event: CloseEvent) -> Self {
        let number = CustomerNumber::parse(&event.conversation.customer.number);
        let subject = case::subject(&event.conversation, &number);
        Self {
            event,
            number,
            subject,
        }
    }
}

/// The result of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOutcome {
    pub case_id: String,
    pub case_number: Option<String>,
    pub case_created: bool,
    pub contact_created: bool,
    pub comments_created: usize,
    pub attachments_uploaded: usize,
}

/// Turns one close event into its Case (see the module's exactly-once notes).
pub(crate) async fn process_conversation(
    worker: &Worker,
    job: &Job,
) -> Result<CaseOutcome, RecordError> {
    let active = worker.active();
    let (sf, policy, media) = (&*active.client, &*active.policy, &*active.media);
    let conversation = &job.event.conversation;
    let mut raced = false;
    loop {
        let found = worker.read_state(sf, policy, job).await?;
        if found.agent_user.is_none() {
            tracing::warn!(
                conversation_id = %conversation.id,
                agent_email = conversation.agent.email,
                "no active Salesforce user has the agent's e-mail: the Case goes to the default owner"
            );
        }

        // What each comment says of its files is decided before anything is
        // written or downloaded; files are copied after the comments.
        let fate = |m: usize, a: usize| {
            attachments::fate(
                policy,
                media,
                worker.max_file_bytes,
                &conversation.messages[m].attachments[a],
            )
        };
        let writes = case::plan_case_writes(conversation, &job.number, &found, policy, &fate)?;

        let mut outcome = CaseOutcome {
            case_id: String::new(),
            case_number: None,
            case_created: false,
            contact_created: false,
            comments_created: 0,
            attachments_uploaded: 0,
        };
        let mut remaining: &[CommentDraft] = &writes.comments;
        match &writes.case {
            CasePlan::Existing(existing) => {
                outcome.case_id = existing.id.clone();
                outcome.case_number = existing.case_number.clone();
            }
            CasePlan::Create(new_case) => match write_new_case(sf, new_case, remaining).await {
                Ok(first) => {
                    outcome.case_id = first.case_id;
                    outcome.case_number = first.case_number;
                    outcome.case_created = true;
                    outcome.contact_created = first.contact_created;
                    outcome.comments_created = first.comments_written;
                    remaining = &remaining[first.comments_written..];
                }
                // Another delivery inserted the Case between our read and our
                // write: read again and write only what it lacks.
                Err(RecordError::Salesforce(e))
                    if !raced
                        && is_external_id_clash(&e, policy.case_external_id_field.as_deref()) =>
                {
                    tracing::info!(
                        conversation_id = %conversation.id,
                        "the Case was created by another delivery; continuing with it"
                    );
                    raced = true;
                    continue;
                }
                Err(e) => return Err(e),
            },
        }
        while !remaining.is_empty() {
            let written = write_comments(sf, &outcome.case_id, remaining).await?;
            outcome.comments_created += written;
            remaining = &remaining[written..];
        }
        outcome.attachments_uploaded = worker
            .upload_attachments(
                sf,
                policy,
                media,
                &job.event,
                &outcome.case_id,
                outcome.case_created,
            )
            .await?;
        return Ok(outcome);
    }
}

/// `DUPLICATE_VALUE` on the External ID field: the Case exists already
/// (the field is Unique; configuration.md).
fn is_external_id_clash(e: &SalesforceError, field: Option<&str>) -> bool {
    let Some(field) = field else { return false };
    match e {
        SalesforceError::Api { errors, .. } => errors.iter().any(|err| {
            err.code == "DUPLICATE_VALUE"
                && (err.fields.iter().any(|f| f.eq_ignore_ascii_case(field))
                    || err.message.contains(field))
        }),
        _ => false,
    }
}
