//! Find before write: one Composite of reads tells what already exists.

use std::collections::HashMap;
use std::sync::Mutex;

use super::conversation::Job;
use super::error::RecordError;
use crate::case::owner::{self, OrgUser};
use crate::case::{choose_contact, ContactCandidate, ExistingCase, Found, UserId};
use crate::config::CasePolicy;
use crate::salesforce::records::{self, CaseRow, CommentRow, ConversationReads, UserRow};
use crate::salesforce::{RefId, SalesforceClient, SubResponse};

/// Users, Contact candidates, the Case and its comments, in one call
/// (more only for a Case with over 2,000 comments).
pub(crate) async fn read_state(
    sf: &SalesforceClient,
    policy: &CasePolicy,
    users_seen: &UserCache,
    job: &Job,
) -> Result<Found, RecordError> {
    let conversation = &job.event.conversation;
    let uncached = users_seen.uncached_usernames(policy);
    let case = job.case_key(policy);
    let reads = ConversationReads {
        agent_email: &conversation.agent.email,
        usernames: &uncached,
        number: &job.number,
        case,
    };
    let answers = sf
        .composite(&reads.subrequests(&sf.data_path()), false)
        .await?;
    let by_ref = |r: RefId| answers.iter().find(|a| a.reference_id == r);

    let users: Vec<OrgUser> = by_ref(records::USERS)
        .map(SubResponse::records::<UserRow>)
        .transpose()?
        .unwrap_or_default()
        .into_iter()
        .map(OrgUser::from)
        .collect();
    let agent = owner::agent_user(&users, &conversation.agent.email);
    if agent.candidates > 1 {
        tracing::warn!(
            agent = crate::telemetry::pseudonym(&conversation.agent.email),
            chosen = agent.chosen.map_or("", |u| u.id.as_str()),
            candidates = agent.candidates,
            "several active users share the agent's e-mail; the oldest is used"
        );
    }
    let agent_user = agent.chosen.map(|u| u.id.clone());
    users_seen.remember(&uncached, &users);
    let default_owner = policy
        .default_owner_username
        .as_deref()
        .and_then(|u| users_seen.cached(u));
    if policy.default_owner_username.is_some() && default_owner.is_none() {
        tracing::warn!(
                username = policy.default_owner_username.as_deref().unwrap_or(""),
                "default_owner_username is not an active user; Cases without an agent user go to the API user"
            );
    }
    let customer_user = policy
        .authorship
        .customer_username()
        .and_then(|u| users_seen.cached(u));

    let mut candidates: Vec<ContactCandidate> = by_ref(records::CONTACTS)
        .map(SubResponse::records)
        .transpose()?
        .unwrap_or_default();
    if let Some(similar) = by_ref(records::SIMILAR) {
        // The suffix query scans; on a very large org it may time out. The
        // exact query has already answered for the common formats.
        match similar.records::<ContactCandidate>() {
            Ok(rows) => candidates.extend(rows),
            Err(e) => {
                tracing::warn!(error = %e, "the phone suffix query failed; using exact formats only")
            }
        }
    }
    let (contact, matching) = choose_contact(&job.number, &candidates);
    if matching > 1 {
        tracing::warn!(
            customer = crate::telemetry::pseudonym(&job.number.display()),
            chosen = contact.as_deref().unwrap_or(""),
            candidates = matching,
            "several Contacts have the customer's number; the oldest is used"
        );
    }

    let case = by_ref(records::EXISTING)
        .map(SubResponse::records::<CaseRow>)
        .transpose()?
        .and_then(|rows| rows.into_iter().next())
        .map(|row| ExistingCase {
            id: row.id,
            case_number: row.case_number,
        });
    let comments = match (&case, by_ref(records::COMMENTS)) {
        (Some(_), Some(answer)) => sf
            .rest_of_query::<CommentRow>(answer)
            .await?
            .into_iter()
            .filter_map(|c| c.comment_body)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Found {
        agent_user,
        default_owner,
        customer_user,
        contact,
        case,
        comments,
        case_field_rules: None,
    })
}

/// Usernames → active user id, per cold start. Only users found are kept:
/// one created after a failure is found on the next attempt.
#[derive(Default)]
pub(crate) struct UserCache(Mutex<HashMap<String, UserId>>);

impl UserCache {
    /// Usernames whose ids do not change are cached per cold start.
    pub(super) fn uncached_usernames(&self, policy: &CasePolicy) -> Vec<String> {
        let mut wanted: Vec<String> = Vec::new();
        if let Some(u) = &policy.default_owner_username {
            wanted.push(u.to_lowercase());
        }
        if let Some(u) = policy.authorship.customer_username() {
            wanted.push(u.to_lowercase());
        }
        let cache = self.0.lock().expect("user cache");
        wanted.retain(|u| !cache.contains_key(u));
        wanted
    }

    pub(super) fn remember(&self, wanted: &[String], users: &[OrgUser]) {
        let mut cache = self.0.lock().expect("user cache");
        for name in wanted {
            if let Some(user) = owner::user_named(users, name) {
                cache.insert(name.clone(), user.id.clone());
            }
        }
    }

    pub(super) fn cached(&self, name: &str) -> Option<UserId> {
        let name = name.to_lowercase();
        self.0.lock().expect("user cache").get(&name).cloned()
    }
}
