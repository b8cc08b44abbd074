//! The domain: what a closed conversation becomes in Salesforce. Pure, no I/O.
//!
//! [`plan_case_writes`] takes the conversation, what the worker's reads found
//! in the org, the admin's [`CasePolicy`] and what became of each attachment,
//! and returns every write: the Contact to reuse or create, the Case's fields,
//! and the comments still missing, in order. The worker only carries out
//! what it returns.
//!
//! # Where each rule lives
//!
//! - [`plan_case_writes`] (this file): audit-field authorship, Origin,
//!   External ID, which comments an existing Case still lacks.
//! - [`owner`]: which of the users the read found owns a new Case: the
//!   agent's, else the default owner, else the API user.
//! - [`media`]: which attachment is downloaded, which only linked, and why.
//! - [`fields`]: Subject `<number> [<conversation id>]` and Description.
//! - [`contact`]: which existing Contact is the customer's; naming a new one.
//! - [`comments`]: one comment per message, order, headers, attachment lines,
//!   splitting at CommentBody's limit.
//!
//! To add a field to the Case, add it in [`case_fields`].

pub mod batch;
pub mod comments;
pub mod contact;
pub mod extra;
pub mod fields;
pub mod ids;
pub mod media;
pub mod owner;

use serde_json::{json, Map, Value};

pub use comments::{missing_comments, plan_comments, AttachmentFate, Authors, CommentDraft};
pub use contact::{choose_contact, new_contact, ContactCandidate};
pub use extra::{CaseFieldRules, LeftOut};
pub use fields::{description, salesforce_datetime, subject};
pub use ids::{CaseId, ContactId, UserId};
pub use owner::{CaseOwner, OrgUser};

use crate::config::{Authorship, CasePolicy, ContactOwner};
use crate::event::Conversation;
use crate::phone::CustomerNumber;

/// What the reads found in the org for one conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// The agent's active User.
    pub agent_user: Option<UserId>,
    /// The `default_owner_username` User.
    pub default_owner: Option<UserId>,
    /// The `customer_comment_username` User (looked up with audit fields only).
    pub customer_user: Option<UserId>,
    /// The customer's Contact.
    pub contact: Option<ContactId>,
    /// The conversation's Case, when an earlier run created it.
    pub case: Option<ExistingCase>,
    /// The bodies of that Case's comments.
    pub comments: Vec<String>,
    /// What the org's describe says of Case's fields, when `case_fields`
    /// are configured (read once per settings, not per conversation).
    pub case_field_rules: Option<std::sync::Arc<CaseFieldRules>>,
}

/// A Case that already exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingCase {
    pub id: CaseId,
    pub case_number: Option<String>,
}

/// The Contact a new Case points to.
#[derive(Debug, Clone, PartialEq)]
pub enum ContactPlan {
    Existing(ContactId),
    /// Created in the same atomic write as its Case, so that a repeat finds
    /// the Case (and its ContactId) rather than making a second Contact.
    Create(Value),
}

/// A Case to create. `fields` holds everything but `ContactId`, which is the
/// Contact's id or, when the Contact is created alongside, a reference to it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    pub contact: ContactPlan,
    pub fields: Map<String, Value>,
    /// Configured fields left out because the org would refuse their value.
    pub left_out: Vec<LeftOut>,
}

/// The Case the comments go to.
#[derive(Debug, Clone, PartialEq)]
pub enum CasePlan {
    Existing(ExistingCase),
    Create(NewCase),
}

/// Every write a conversation still needs.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseWrites {
    pub case: CasePlan,
    /// The comments the Case lacks, in conversation order.
    pub comments: Vec<CommentDraft>,
}

/// A conversation that cannot be planned until the org or the settings change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("customer_comment_username {0} is not an active Salesforce user")]
    CustomerUserMissing(String),
}

/// A conversation with what is derived from it once: the customer's number
/// and the Case's Subject (also the Case's key without an External ID field,
/// so the reads and the writes must agree on it to the byte).
#[derive(Debug, Clone, Copy)]
pub struct Closing<'a> {
    pub conversation: &'a Conversation,
    pub number: &'a CustomerNumber,
    pub subject: &'a str,
}

/// The writes that turn a conversation into its Case (see the module doc).
/// `fate(message index, attachment index)` says what became of each file.
pub fn plan_case_writes(
    closing: Closing<'_>,
    found: &Found,
    policy: &CasePolicy,
    fate: &dyn Fn(usize, usize) -> AttachmentFate,
) -> Result<CaseWrites, PlanError> {
    let Closing {
        conversation,
        number,
        ..
    } = closing;
    let authors = match &policy.authorship {
        Authorship::ApiUser => Authors::ApiUser,
        Authorship::AuditFields { customer_username } => Authors::AuditFields {
            agent_user_id: found.agent_user.clone(),
            // Posting the customer's words as the API user would
            // misattribute them for good: wait until the user exists.
            customer_user_id: found
                .customer_user
                .clone()
                .ok_or_else(|| PlanError::CustomerUserMissing(customer_username.clone()))?,
        },
    };
    let planned = plan_comments(conversation, number, &authors, fate);
    let comments = missing_comments(planned, &found.comments);
    let case = match &found.case {
        Some(existing) => CasePlan::Existing(existing.clone()),
        None => {
            let mut fields = case_fields(closing, found, policy);
            let mut left_out = Vec::new();
            if !policy.case_fields.is_empty() {
                let rules = found
                    .case_field_rules
                    .as_deref()
                    .cloned()
                    .unwrap_or_default();
                let (extra, refused) =
                    extra::case_field_values(&policy.case_fields, conversation, number, &rules);
                // The integration's own fields were refused at load, so
                // nothing here overwrites them.
                fields.extend(extra);
                left_out = refused;
            }
            CasePlan::Create(NewCase {
                contact: match &found.contact {
                    Some(id) => ContactPlan::Existing(id.clone()),
                    None => {
                        ContactPlan::Create(contact_to_create(conversation, number, found, policy))
                    }
                },
                fields,
                left_out,
            })
        }
    };
    Ok(CaseWrites { case, comments })
}

/// The owner of a new Case ([`owner`]).
fn case_owner(found: &Found) -> CaseOwner<'_> {
    CaseOwner::choose(found.agent_user.as_deref(), found.default_owner.as_deref())
}

/// A new Contact: named after the customer, under `contact_account_id` when
/// set, and owned by the Case's owner unless the admin chose the API user,
/// so that the agent can open the customer of their Case (a Contact with no
/// Account is private to its owner).
fn contact_to_create(
    conversation: &Conversation,
    number: &CustomerNumber,
    found: &Found,
    policy: &CasePolicy,
) -> Value {
    let mut contact = new_contact(conversation, number);
    if let Some(account) = &policy.contact_account_id {
        contact["AccountId"] = json!(account);
    }
    if policy.contact_owner == ContactOwner::CaseOwner {
        if let Some(owner) = case_owner(found).id() {
            contact["OwnerId"] = json!(owner);
        }
    }
    contact
}

/// The new Case's fields, `ContactId` aside.
pub fn case_fields(closing: Closing<'_>, found: &Found, policy: &CasePolicy) -> Map<String, Value> {
    let Closing {
        conversation,
        number,
        subject,
    } = closing;
    let mut fields = Map::new();
    fields.insert("Subject".into(), json!(subject));
    fields.insert(
        "Description".into(),
        json!(description(conversation, number)),
    );
    if let Some(origin) = &policy.case_origin {
        fields.insert("Origin".into(), json!(origin));
    }
    if let Some(owner) = case_owner(found).id() {
        fields.insert("OwnerId".into(), json!(owner));
    }
    if let Some(field) = &policy.case_external_id_field {
        // Inserted, never upserted: an upsert refuses audit fields. The field
        // is Unique, so a second insert answers DUPLICATE_VALUE.
        fields.insert(field.clone(), json!(conversation.id.as_str()));
    }
    if policy.authorship.audit_fields() {
        // The Case dates from the conversation's opening, like its first comment.
        if let Some(t) = conversation.opened_at {
            fields.insert("CreatedDate".into(), json!(salesforce_datetime(t)));
        }
    }
    fields
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
