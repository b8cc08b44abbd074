//! One conversation: read what exists, plan, write what is missing, upload
//! the files.

use super::attachments::{self, Files, Upload};
use super::error::RecordError;
use super::exchange::Exchange;
use super::read::read_state;
use super::write::{write_comments, write_new_case};
use crate::case::{self, CaseId, CasePlan, CommentDraft};
use crate::event::CloseEvent;
use crate::phone::{CustomerKey, CustomerNumber};
use crate::salesforce::error::ErrorCode;
use crate::salesforce::records::CaseKey;
use crate::salesforce::SalesforceError;

/// A close event as the worker handles it: the customer's number parsed once.
pub(crate) struct Job {
    pub event: CloseEvent,
    pub number: CustomerNumber,
    /// The customer's key, which their records of a batch are grouped by.
    pub key: CustomerKey,
    /// `<number> [<conversation id>]`, also the Case's key without an External ID.
    pub subject: String,
}

impl Job {
    /// How this conversation's Case is found: by the External ID field when
    /// one is configured, else by its Subject.
    pub(crate) fn case_key<'a>(&'a self, policy: &'a crate::config::CasePolicy) -> CaseKey<'a> {
        match &policy.case_external_id_field {
            Some(field) => CaseKey::ExternalId {
                field,
                value: self.event.conversation.id.as_str(),
            },
            None => CaseKey::Subject(&self.subject),
        }
    }

    pub(crate) fn closing(&self) -> case::Closing<'_> {
        case::Closing {
            conversation: &self.event.conversation,
            number: &self.number,
            subject: &self.subject,
        }
    }

    pub(crate) fn new(event: CloseEvent) -> Self {
        let number = CustomerNumber::parse(&event.conversation.customer.number);
        let subject = case::subject(&event.conversation, &number);
        Self {
            event,
            key: number.key(),
            number,
            subject,
        }
    }
}

/// The result of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOutcome {
    pub case_id: CaseId,
    pub case_number: Option<String>,
    pub case_created: bool,
    pub contact_created: bool,
    pub comments_created: usize,
    pub attachments_uploaded: usize,
}

/// Turns one close event into its Case (see the module's exactly-once notes).
pub(crate) async fn process_conversation(
    exchange: &Exchange,
    files: &Files,
    job: &Job,
) -> Result<CaseOutcome, RecordError> {
    // One snapshot of the settings for the whole conversation.
    let active = exchange.active();
    let (sf, policy, media) = (&*active.client, &*active.policy, &*active.media);
    let conversation = &job.event.conversation;
    let mut raced = false;
    let case_field_rules = active.case_field_rules().await?;
    loop {
        let mut found = read_state(sf, policy, &exchange.users, job).await?;
        found.case_field_rules = case_field_rules.clone();
        report_found(job, &found);

        // What each comment says of its files is decided before anything is
        // written or downloaded; files are copied after the comments.
        let rules = attachments::media_policy(policy, media, files.max_file_bytes);
        let fate = |m: usize, a: usize| {
            case::media::fate(&rules, &conversation.messages[m].attachments[a])
        };
        let writes = case::plan_case_writes(job.closing(), &found, policy, &fate)?;

        if let CasePlan::Create(new_case) = &writes.case {
            report_left_out(job, new_case);
        }
        let mut remaining: &[CommentDraft] = &writes.comments;
        let mut outcome = match &writes.case {
            CasePlan::Existing(existing) => CaseOutcome {
                case_id: existing.id.clone(),
                case_number: existing.case_number.clone(),
                case_created: false,
                contact_created: false,
                comments_created: 0,
                attachments_uploaded: 0,
            },
            CasePlan::Create(new_case) => match write_new_case(sf, new_case, remaining).await {
                Ok(first) => {
                    remaining = &remaining[first.comments_written..];
                    CaseOutcome {
                        case_id: first.case_id,
                        case_number: first.case_number,
                        case_created: true,
                        contact_created: first.contact_created,
                        comments_created: first.comments_written,
                        attachments_uploaded: 0,
                    }
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
        };
        while !remaining.is_empty() {
            let written = write_comments(sf, &outcome.case_id, remaining).await?;
            outcome.comments_created += written;
            remaining = &remaining[written..];
        }
        outcome.attachments_uploaded = files
            .upload(&Upload {
                sf,
                policy,
                media,
                event: &job.event,
                case_id: &outcome.case_id,
                case_is_new: outcome.case_created,
            })
            .await?;
        return Ok(outcome);
    }
}

/// What an admin should hear of the reads: a Case without its agent.
pub(crate) fn report_found(job: &Job, found: &case::Found) {
    if found.agent_user.is_none() {
        let conversation = &job.event.conversation;
        tracing::warn!(
            conversation_id = %conversation.id,
            agent = crate::telemetry::pseudonym(&conversation.agent.email),
            "no active Salesforce user has the agent's e-mail: the Case goes to the default owner"
        );
    }
}

/// Configured Case fields the org would refuse, left out of a new Case.
pub(crate) fn report_left_out(job: &Job, new_case: &case::NewCase) {
    for left in &new_case.left_out {
        // The field and the reason only: the value may hold the
        // customer's data.
        tracing::warn!(
            conversation_id = %job.event.conversation.id,
            field = left.field,
            reason = left.reason,
            "a case_fields entry is left out of the Case: Salesforce would refuse its value"
        );
        metrics::counter!("case_fields_left_out").increment(1);
    }
}

/// A conversation whose Case and comments the batch's shared write created:
/// its files, if it has any to copy, are all that is left.
pub(crate) async fn complete_prewritten(
    exchange: &Exchange,
    files: &Files,
    job: &Job,
    written: &CaseOutcome,
) -> Result<CaseOutcome, RecordError> {
    let active = exchange.active();
    let mut outcome = written.clone();
    outcome.attachments_uploaded = files
        .upload(&Upload {
            sf: &active.client,
            policy: &active.policy,
            media: &active.media,
            event: &job.event,
            case_id: &outcome.case_id,
            case_is_new: true,
        })
        .await?;
    Ok(outcome)
}

/// `DUPLICATE_VALUE` on the External ID field: the Case exists already
/// (the field is Unique; docs/configuration.md). A real org names the field
/// and the other record only in the message, with `fields` empty:
/// "duplicate value found: Witiop_Conversation_Id__c duplicates value on
/// record with id: 5006g00000DklQA"; both read `<unknown>` when the API user
/// cannot see that record. Salesforce documents no more of the message than
/// its code (DuplicateError, sforce_api_objects_duplicateerror.htm), so the
/// field is compared without regard to case, and an unknown field counts as
/// the Case existing: the re-read that follows finds it, or the second
/// refusal parks the conversation with its reason.
fn is_external_id_clash(e: &SalesforceError, field: Option<&str>) -> bool {
    let Some(field) = field else { return false };
    let SalesforceError::Api { errors, .. } = e else {
        return false;
    };
    errors.iter().any(|err| {
        err.code == ErrorCode::DuplicateValue
            && (err.fields.iter().any(|f| f.eq_ignore_ascii_case(field))
                || duplicate_value_field(&err.message)
                    .is_some_and(|f| f == UNKNOWN || f.eq_ignore_ascii_case(field)))
    })
}

/// What Salesforce puts where the API user may not see a name.
const UNKNOWN: &str = "<unknown>";

/// The field a `DUPLICATE_VALUE` message names.
fn duplicate_value_field(message: &str) -> Option<&str> {
    let rest = message.trim().strip_prefix("duplicate value found: ")?;
    let (field, _) = rest.split_once(" duplicates value on record with id")?;
    Some(field.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::ApiError;

    fn clash(fields: &[&str], message: &str) -> SalesforceError {
        SalesforceError::Api {
            status: 400,
            errors: vec![ApiError {
                code: ErrorCode::DuplicateValue,
                message: message.into(),
                fields: fields.iter().map(|f| f.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn external_id_clashes_are_read_as_a_real_org_sends_them() {
        let field = Some("Witiop_Conversation_Id__c");
        let cases: [(&[&str], &str, Option<&str>, bool); 8] = [
            // As a real org answers: `fields` empty, the field in the message.
            (&[], "duplicate value found: Witiop_Conversation_Id__c duplicates value on record with id: 5006g00000DklQA", field, true),
            // The configured name in other case.
            (&[], "duplicate value found: witiop_conversation_id__C duplicates value on record with id: 5006g00000DklQA", field, true),
            // The API user cannot see the other record.
            (&[], "duplicate value found: <unknown> duplicates value on record with id: <unknown>", field, true),
            (&["WITIOP_CONVERSATION_ID__C"], "", field, true),
            // Another Unique field: not this Case.
            (&[], "duplicate value found: Other_Key__c duplicates value on record with id: 5006g00000DklQA", field, false),
            (&[], "something else entirely", field, false),
            // Without an External ID field there is nothing to race on.
            (&[], "duplicate value found: <unknown> duplicates value on record with id: <unknown>", None, false),
            (&["Witiop_Conversation_Id__c"], "", None, false),
        ];
        for (fields, message, configured, expected) in cases {
            assert_eq!(
                is_external_id_clash(&clash(fields, message), configured),
                expected,
                "{fields:?} {message}"
            );
        }
    }
}
