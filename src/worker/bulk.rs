//! The batch as the unit of Salesforce I/O: one Composite of reads for all
//! of a batch's conversations, the pure core plans each, and one atomic
//! Composite writes every new Case that fits ([`crate::case::batch`]).
//!
//! The shared write is `allOrNone`: its Contacts, Cases and comments all
//! exist afterwards or none does, so the exactly-once argument of
//! [`super`] holds for each customer as it holds for one conversation
//! (find before write: the reads come first; write atomically: one
//! transaction; write only what is missing: only conversations whose Case
//! does not exist join). What the shared write does not do (it failed, it
//! was refused, a conversation did not join) is done by the per-conversation
//! path right after, in the same invocation, which reads again and writes
//! only what is missing. A refusal of one conversation's record therefore
//! costs that batch one extra call and is then met by that conversation
//! alone, never retried into the same refusal.
//!
//! Why no Composite Graph: a graph is atomic per customer, but whether a
//! graph node's `httpHeaders` reaches its transaction is not documented,
//! and the Case must not be re-owned by an assignment rule. Inside a
//! Composite, each subrequest's `Sforce-Auto-Assign: FALSE` and duplicate
//! rule header are documented ("Composite Subrequest", requests_composite.htm),
//! whatever rules the org has active.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::conversation::{CaseOutcome, Job};
use super::error::RecordError;
use super::exchange::Exchange;
use super::write::composite_failure;
use super::Worker;
use crate::case::batch::{plan_batch_write, BatchItem, MemberContact, COLLECTION_SIZE};
use crate::case::owner::{self, OrgUser};
use crate::case::{
    self, choose_contact, CaseId, CasePlan, CaseWrites, ContactCandidate, ContactPlan, Found,
};
use crate::salesforce::composite::ALLOW_DUPLICATE_SAVE;
use crate::salesforce::records::{self, BatchReads, CaseKey, UserRow, BATCH_ROWS, MAX_QUERY_URI};
use crate::salesforce::{RefId, SalesforceError, SubResponse, Subrequest};

/// A conversation of the batch, with the group (customer) it runs in.
pub(crate) struct Entry<'a> {
    pub message_id: &'a str,
    pub group: usize,
    pub job: &'a Job,
}

/// The Cases the shared write created, by SQS message id. Whatever is not
/// here goes through the per-conversation path.
pub(crate) type Prewritten = HashMap<String, CaseOutcome>;

/// Reads and writes what it can for the whole batch. What it could not do
/// is left to the per-conversation path; the error is returned only so
/// that the batch can stop when Salesforce refuses everything (the API
/// allowance spent, a refused login), as a record's failure stops it.
pub(crate) async fn write_batch(
    worker: &Worker,
    entries: &[Entry<'_>],
) -> Result<Prewritten, RecordError> {
    // Boxed, as every large future of the batch: it runs on the caller's stack.
    Box::pin(shared_write(&worker.salesforce, &worker.files, entries))
        .await
        .map_err(|e| {
            // Nothing of it is trusted; each conversation reads again.
            tracing::warn!(
                conversations = entries.len(),
                error_code = e.code(),
                error = %e,
                "the batch's shared read or write did not complete; its conversations are written one by one"
            );
            metrics::counter!("batch_writes_fallen_back").increment(1);
            RecordError::Salesforce(e)
        })
}

async fn shared_write(
    exchange: &Exchange,
    files: &super::Files,
    entries: &[Entry<'_>],
) -> Result<Prewritten, SalesforceError> {
    let active = exchange.active();
    let (sf, policy, media) = (&*active.client, &*active.policy, &*active.media);
    let case_field_rules = Box::pin(active.case_field_rules()).await?;
    let uncached = exchange.users.uncached_usernames(policy);

    // The reads, for as many conversations as their queries can name.
    let keys: Vec<CaseKey> = entries.iter().map(|e| e.job.case_key(policy)).collect();
    let mut n = entries.len();
    let reads = loop {
        let reads = BatchReads {
            agent_emails: entries[..n]
                .iter()
                .map(|e| e.job.event.conversation.agent.email.as_str())
                .collect(),
            usernames: &uncached,
            numbers: entries[..n].iter().map(|e| &e.job.number).collect(),
            cases: keys[..n].to_vec(),
        }
        .subrequests(&sf.data_path());
        if reads.iter().all(|r| r.url.len() <= MAX_QUERY_URI) {
            break reads;
        }
        n -= 1;
        if n < 2 {
            return Ok(Prewritten::new());
        }
    };
    let answers = Box::pin(sf.composite(&reads, false)).await?;
    let Some(read) =
        BatchRead::from_answers(&answers, keys.first().map_or("Subject", CaseKey::field))?
    else {
        tracing::info!("the batch's reads filled a page; its conversations are read one by one");
        return Ok(Prewritten::new());
    };
    let keys = &keys[..n];
    if !read.every_case_is_one_of(keys) {
        // Salesforce matched a Case to a key this comparison does not:
        // which conversation it belongs to is for each one's own read.
        tracing::info!("a Case the batch's read found matches none of its keys here; its conversations are read one by one");
        return Ok(Prewritten::new());
    }
    exchange.users.remember(&uncached, &read.users);

    // Each conversation planned by the pure core, as on its own path.
    let rules = super::attachments::media_policy(policy, media, files.max_file_bytes);
    let mut planned: Vec<Option<(CaseWrites, Found)>> = Vec::with_capacity(n);
    for (entry, key) in entries[..n].iter().zip(keys) {
        let job = entry.job;
        let conversation = &job.event.conversation;
        if read.case_exists(key.value()) {
            // A redelivery: its own path reads its comments and completes it.
            planned.push(None);
            continue;
        }
        let found = Found {
            agent_user: owner::agent_user(&read.users, &conversation.agent.email)
                .chosen
                .map(|u| u.id.clone()),
            default_owner: policy
                .default_owner_username
                .as_deref()
                .and_then(|u| exchange.users.cached(u)),
            customer_user: policy
                .authorship
                .customer_username()
                .and_then(|u| exchange.users.cached(u)),
            contact: choose_contact(&job.number, &read.contacts).0,
            case: None,
            comments: Vec::new(),
            case_field_rules: case_field_rules.clone(),
        };
        let fate = |m: usize, a: usize| {
            case::media::fate(&rules, &conversation.messages[m].attachments[a])
        };
        let writes = case::plan_case_writes(job.closing(), &found, policy, &fate).ok();
        planned.push(writes.map(|w| (w, found)));
    }
    let items: Vec<BatchItem> = entries[..n]
        .iter()
        .zip(keys)
        .zip(&planned)
        .map(|((e, key), p)| BatchItem {
            group: e.group,
            key: key.value(),
            writes: p.as_ref().map(|(writes, _)| writes),
        })
        .collect();
    let plan = plan_batch_write(&items);
    if plan.members.is_empty() {
        return Ok(Prewritten::new());
    }

    // One atomic Composite: new Contacts, Cases, then their comments.
    let path = sf.data_path();
    let contact_ref = |n: usize| RefId::numbered("contact", n);
    let case_ref = |j: usize| RefId::numbered("case", j);
    let mut requests = Vec::with_capacity(plan.subrequests());
    let mut cases = Vec::with_capacity(plan.members.len());
    let mut comments: Vec<Value> = Vec::with_capacity(plan.comments);
    for (j, member) in plan.members.iter().enumerate() {
        let (writes, _) = planned[member.item].as_ref().expect("members were planned");
        let CasePlan::Create(new_case) = &writes.case else {
            unreachable!("members create their Case")
        };
        let mut fields: Map<String, Value> = new_case.fields.clone();
        match (&new_case.contact, member.contact) {
            (ContactPlan::Existing(id), _) => {
                fields.insert("ContactId".into(), json!(id));
            }
            (ContactPlan::Create(contact), MemberContact::New { n, created }) => {
                if created {
                    // No Contact has the number: an alert rule matching on
                    // the name must not block it.
                    requests.push(
                        Subrequest::create(&path, contact_ref(n), "Contact", contact.clone())
                            .with_header(ALLOW_DUPLICATE_SAVE),
                    );
                }
                fields.insert("ContactId".into(), json!(contact_ref(n).at("id")));
            }
            (ContactPlan::Create(_), MemberContact::Existing) => {
                unreachable!("the planner names a new Contact for a plan that creates one")
            }
        }
        cases.push(Subrequest::create(
            &path,
            case_ref(j),
            "Case",
            Value::Object(fields),
        ));
        let parent = case_ref(j).at("id");
        comments.extend(writes.comments.iter().map(|c| c.record(&parent)));
    }
    requests.extend(cases);
    let mut chunks = comments.into_iter().peekable();
    let mut c = 0;
    while chunks.peek().is_some() {
        let chunk: Vec<Value> = chunks.by_ref().take(COLLECTION_SIZE).collect();
        requests.push(Subrequest::collection(
            &path,
            RefId::numbered("comments", c),
            chunk,
        ));
        c += 1;
    }
    let answers = Box::pin(sf.composite(&requests, true)).await?;
    if let Err(e) = composite_failure(&answers) {
        // Rolled back as a whole: each conversation meets its own refusal
        // on its own path, and the others go through there too.
        tracing::warn!(
            members = plan.members.len(),
            error = %e,
            "the batch's shared write was refused; its conversations are written one by one"
        );
        metrics::counter!("batch_writes_refused").increment(1);
        return Ok(Prewritten::new());
    }

    let mut done = Prewritten::new();
    for (j, member) in plan.members.iter().enumerate() {
        let reference = case_ref(j);
        let case_id = answers
            .iter()
            .find(|a| a.reference_id == reference)
            .and_then(|a| a.body.get("id"))
            .and_then(Value::as_str)
            .map(CaseId::from)
            .ok_or_else(|| SalesforceError::Incomplete("a Case answer has no id".into()))?;
        let (writes, found) = planned[member.item].as_ref().expect("members were planned");
        // What its own path would have said; the others say it there.
        let job = entries[member.item].job;
        super::conversation::report_found(job, found);
        if let CasePlan::Create(new_case) = &writes.case {
            super::conversation::report_left_out(job, new_case);
        }
        done.insert(
            entries[member.item].message_id.to_owned(),
            CaseOutcome {
                case_id,
                case_number: None,
                case_created: true,
                contact_created: matches!(member.contact, MemberContact::New { created: true, .. }),
                comments_created: writes.comments.len(),
                attachments_uploaded: 0,
            },
        );
    }
    tracing::info!(
        conversations = entries.len(),
        written_together = done.len(),
        subrequests = requests.len(),
        "the batch's new Cases were written together"
    );
    metrics::counter!("conversations_written_together").increment(done.len() as u64);
    Ok(done)
}

/// What the batch's reads found.
struct BatchRead {
    users: Vec<OrgUser>,
    contacts: Vec<ContactCandidate>,
    /// The key values of the Cases that exist, lower-cased: SOQL compares
    /// text without regard to case (in the user's locale), except on a
    /// unique case-sensitive field ("Comparison Operators", SOQL and SOSL
    /// Reference, sforce_api_calls_soql_select_comparisonoperators.htm).
    /// Lower-casing can only find more Cases than a case-sensitive field
    /// holds, which sends a conversation to its own, exact, read.
    existing: Vec<String>,
}

impl BatchRead {
    /// `None` when a query filled its page: what it left out is unknown.
    fn from_answers(
        answers: &[SubResponse],
        key_field: &str,
    ) -> Result<Option<Self>, SalesforceError> {
        let by_ref = |r: RefId| answers.iter().find(|a| a.reference_id == r);
        let missing = || SalesforceError::Incomplete("a batch read is missing".into());
        let users: Vec<UserRow> = by_ref(records::USERS).ok_or_else(missing)?.records()?;
        let mut contacts: Vec<ContactCandidate> =
            by_ref(records::CONTACTS).ok_or_else(missing)?.records()?;
        let cases: Vec<Map<String, Value>> =
            by_ref(records::EXISTING).ok_or_else(missing)?.records()?;
        let mut full = [users.len(), contacts.len(), cases.len()]
            .iter()
            .any(|&rows| rows >= BATCH_ROWS);
        if let Some(similar) = by_ref(records::SIMILAR) {
            // As on a conversation's own path: the suffix query may time
            // out on a very large org; the exact formats have answered.
            match similar.records::<ContactCandidate>() {
                Ok(rows) => {
                    full |= rows.len() >= BATCH_ROWS;
                    contacts.extend(rows);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the phone suffix query failed; using exact formats only")
                }
            }
        }
        if full {
            return Ok(None);
        }
        // Salesforce names the field as it is defined, whatever its case in
        // the query.
        let existing = cases
            .iter()
            .filter_map(|row| {
                row.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key_field))
                    .and_then(|(_, v)| v.as_str())
                    .map(str::to_lowercase)
            })
            .collect();
        Ok(Some(Self {
            users: users.into_iter().map(OrgUser::from).collect(),
            contacts,
            existing,
        }))
    }

    /// Every Case found is the Case of one of `keys` by this comparison.
    /// A Case Salesforce matched by its locale's casing rules (a Turkish
    /// dotted capital I, say) may not be; then the batch is not trusted.
    fn every_case_is_one_of(&self, keys: &[CaseKey<'_>]) -> bool {
        let keys: Vec<String> = keys.iter().map(|k| k.value().to_lowercase()).collect();
        self.existing.iter().all(|e| keys.contains(e))
    }

    fn case_exists(&self, key: &str) -> bool {
        let key = key.to_lowercase();
        self.existing.contains(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(values: &[&str]) -> BatchRead {
        BatchRead {
            users: Vec::new(),
            contacts: Vec::new(),
            existing: values.iter().map(|v| v.to_lowercase()).collect(),
        }
    }

    #[test]
    fn a_case_found_by_other_casing_rules_makes_the_batch_untrusted() {
        let keys = [
            CaseKey::Subject("+39 [Service]"),
            CaseKey::Subject("+39 [2]"),
        ];
        assert!(found(&["+39 [SERVICE]"]).every_case_is_one_of(&keys));
        assert!(found(&["+39 [SERVICE]"]).case_exists("+39 [Service]"));
        assert!(!found(&["+39 [SERVICE]"]).case_exists("+39 [2]"));
        // Matched by a Turkish user's casing rules, not by lower-casing.
        assert!(!found(&["+39 [SERVİCE]"]).every_case_is_one_of(&keys));
    }
}
