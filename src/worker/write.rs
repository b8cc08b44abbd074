//! The writes: one atomic Composite that creates the Case (with its Contact
//! when new, and as many comments as fit), then further comments.
//!
//! Salesforce resolves `@{…}` anywhere in a Composite subrequest, inside
//! string values too, and documents no escape (REST API Developer Guide,
//! "Composite", requests_composite.htm). Text a person wrote that contains
//! `@{` therefore never travels in a Composite: such records go through
//! sObject Collections called directly, where a body is only data. A
//! conversation without `@{` keeps the two-call economy.

use serde_json::{json, Value};

use super::error::RecordError;
use crate::case::batch::{has_reference_text, COLLECTION_SIZE, MAX_COLLECTIONS, REFERENCE_MARK};
use crate::case::{CaseId, CommentDraft, ContactId, ContactPlan, NewCase};
use crate::salesforce::composite::ALLOW_DUPLICATE_SAVE;
use crate::salesforce::error::ErrorCode;
use crate::salesforce::records::{case_number_query, CaseNumberRow};
use crate::salesforce::{
    RefId, SalesforceClient, SalesforceError, SaveResult, SubResponse, Subrequest,
};

/// The write Composite's subrequests.
const CONTACT: RefId = RefId::named("contact");
const CASE: RefId = RefId::named("case");
const NUMBER: RefId = RefId::named("number");

/// What the first write did.
pub(crate) struct FirstWrite {
    pub case_id: CaseId,
    pub case_number: Option<String>,
    pub contact_created: bool,
    pub comments_written: usize,
}

/// The leading comments that may travel in a Composite: those before the
/// first one containing `@{`.
fn composite_safe_prefix(comments: &[CommentDraft]) -> usize {
    comments
        .iter()
        .position(|c| c.body.contains(REFERENCE_MARK))
        .unwrap_or(comments.len())
}

/// Creates the Case: in one atomic Composite with its new Contact and as many
/// comments as fit, unless their text forbids it.
pub(crate) async fn write_new_case(
    sf: &SalesforceClient,
    new_case: &NewCase,
    comments: &[CommentDraft],
) -> Result<FirstWrite, RecordError> {
    let contact_text = match &new_case.contact {
        ContactPlan::Create(fields) => has_reference_text(fields),
        ContactPlan::Existing(_) => false,
    };
    if contact_text || has_reference_text(&Value::Object(new_case.fields.clone())) {
        return write_new_case_directly(sf, new_case).await;
    }
    let path = sf.data_path();
    let mut requests = Vec::new();
    let mut fields = new_case.fields.clone();
    let contact_created = match &new_case.contact {
        ContactPlan::Existing(id) => {
            fields.insert("ContactId".into(), json!(id));
            false
        }
        ContactPlan::Create(contact) => {
            // The worker has found no Contact with the number: an alert rule
            // matching on the name must not block the Case.
            requests.push(
                Subrequest::create(&path, CONTACT, "Contact", contact.clone())
                    .with_header(ALLOW_DUPLICATE_SAVE),
            );
            fields.insert("ContactId".into(), json!(CONTACT.at("id")));
            true
        }
    };
    requests.push(Subrequest::create(
        &path,
        CASE,
        "Case",
        Value::Object(fields),
    ));
    let safe = &comments[..composite_safe_prefix(comments)];
    let chunks: Vec<&[CommentDraft]> = safe.chunks(COLLECTION_SIZE).collect();
    // One slot of five goes to reading the CaseNumber when it is free.
    let collections = chunks.len().min(MAX_COLLECTIONS);
    for (i, chunk) in chunks.iter().take(collections).enumerate() {
        let records = chunk.iter().map(|c| c.record(&CASE.at("id"))).collect();
        requests.push(Subrequest::collection(
            &path,
            RefId::numbered("comments", i),
            records,
        ));
    }
    if collections < MAX_COLLECTIONS {
        requests.push(case_number_query(&path, NUMBER, &CASE));
    }
    let answers = sf.composite(&requests, true).await?;
    composite_failure(&answers)?;
    let case_id = answers
        .iter()
        .find(|a| a.reference_id == CASE)
        .and_then(|a| a.body.get("id"))
        .and_then(Value::as_str)
        .map(CaseId::from)
        .ok_or_else(|| SalesforceError::Incomplete("the Case answer has no id".into()))?;
    let case_number = answers
        .iter()
        .find(|a| a.reference_id == NUMBER)
        .and_then(|a| a.records::<CaseNumberRow>().ok())
        .and_then(|rows| rows.into_iter().next())
        .and_then(|row| row.case_number);
    Ok(FirstWrite {
        case_id,
        case_number,
        contact_created,
        comments_written: chunks.iter().take(collections).map(|c| c.len()).sum(),
    })
}

/// The Contact and the Case through sObject Collections, one call each. Not
/// atomic, but convergent: a Contact left without its Case is found by its
/// number on the next run and reused.
async fn write_new_case_directly(
    sf: &SalesforceClient,
    new_case: &NewCase,
) -> Result<FirstWrite, RecordError> {
    let mut fields = new_case.fields.clone();
    let (contact_id, contact_created) = match &new_case.contact {
        ContactPlan::Existing(id) => (id.clone(), false),
        ContactPlan::Create(contact) => {
            let id = create_one(sf, "Contact", contact, &[ALLOW_DUPLICATE_SAVE]).await?;
            (ContactId::from(id), true)
        }
    };
    fields.insert("ContactId".into(), json!(contact_id));
    let case_id = create_one(sf, "Case", &Value::Object(fields), &[]).await?;
    Ok(FirstWrite {
        case_id: case_id.into(),
        case_number: None,
        contact_created,
        comments_written: 0,
    })
}

async fn create_one(
    sf: &SalesforceClient,
    object: &str,
    fields: &Value,
    headers: &[(&'static str, &'static str)],
) -> Result<String, RecordError> {
    let mut record = fields.clone();
    record["attributes"] = json!({ "type": object });
    let results = sf.create_collection_with(&[record], true, headers).await?;
    collection_failure(&results)?;
    results
        .into_iter()
        .next()
        .and_then(|r| r.id)
        .ok_or_else(|| SalesforceError::Incomplete(format!("the {object} answer has no id")).into())
}

/// Writes the next comments of an existing Case, in order; returns how many.
/// Those without `@{` go up to 1,000 in one atomic Composite; a chunk that
/// has one goes alone through a direct sObject Collection.
pub(crate) async fn write_comments(
    sf: &SalesforceClient,
    case_id: &str,
    comments: &[CommentDraft],
) -> Result<usize, RecordError> {
    let safe = composite_safe_prefix(comments);
    if safe == 0 {
        let chunk = &comments[..comments.len().min(COLLECTION_SIZE)];
        let records: Vec<Value> = chunk.iter().map(|c| c.record(case_id)).collect();
        let results = sf.create_collection_with(&records, true, &[]).await?;
        collection_failure(&results)?;
        return Ok(chunk.len());
    }
    let path = sf.data_path();
    let chunks: Vec<&[CommentDraft]> = comments[..safe]
        .chunks(COLLECTION_SIZE)
        .take(MAX_COLLECTIONS)
        .collect();
    let requests: Vec<Subrequest> = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            Subrequest::collection(
                &path,
                RefId::numbered("comments", i),
                chunk.iter().map(|c| c.record(case_id)).collect(),
            )
        })
        .collect();
    let answers = sf.composite(&requests, true).await?;
    composite_failure(&answers)?;
    Ok(chunks.iter().map(|c| c.len()).sum())
}

/// The error of an `allOrNone` Composite: the subrequest that really failed,
/// not those Salesforce halted or rolled back because of it.
pub(super) fn composite_failure(answers: &[SubResponse]) -> Result<(), RecordError> {
    let errors: Vec<SalesforceError> = answers.iter().filter_map(SubResponse::error).collect();
    first_cause(errors)
}

/// The same for the save results of a direct sObject Collection.
fn collection_failure(results: &[SaveResult]) -> Result<(), RecordError> {
    let errors: Vec<SalesforceError> = results
        .iter()
        .filter(|r| !r.success)
        .map(|r| SalesforceError::Api {
            status: 400,
            errors: r.errors.clone(),
        })
        .collect();
    first_cause(errors)
}

fn first_cause(mut errors: Vec<SalesforceError>) -> Result<(), RecordError> {
    if errors.is_empty() {
        return Ok(());
    }
    let cause = errors
        .iter()
        .position(|e| !e.codes().next().is_some_and(ErrorCode::is_consequence))
        .unwrap_or(0);
    Err(RecordError::Salesforce(errors.swap_remove(cause)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comment(body: &str) -> CommentDraft {
        CommentDraft {
            body: body.into(),
            created_by: None,
            created_date: None,
        }
    }

    #[test]
    fn reference_text_is_found_anywhere() {
        assert!(has_reference_text(&json!({"a": [{"b": "x @{y} z"}]})));
        assert!(!has_reference_text(
            &json!({"a": ["@", "{", "@ {x}"], "n": 1})
        ));
        let comments = [comment("ok"), comment("my code is @{x}"), comment("ok")];
        assert_eq!(composite_safe_prefix(&comments), 1);
        assert_eq!(composite_safe_prefix(&comments[1..]), 0);
        assert_eq!(composite_safe_prefix(&comments[2..]), 1);
    }
}
