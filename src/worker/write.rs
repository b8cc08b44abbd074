//! The writes: one atomic Composite that creates the Case (with its Contact
//! when new, and as many comments as fit), then further comments.

use serde_json::{json, Value};

use super::error::RecordError;
use crate::case::{CommentDraft, ContactPlan, NewCase};
use crate::salesforce::error::{HALTED, ROLLED_BACK};
use crate::salesforce::records::{case_number_query, CaseNumberRow};
use crate::salesforce::{SalesforceClient, SalesforceError, SubResponse, Subrequest};

/// Comments per sObject Collection, and collections per Composite.
const COLLECTION_SIZE: usize = 200;
const COLLECTIONS_PER_COMPOSITE: usize = 5;

/// What the first write did.
pub(crate) struct FirstWrite {
    pub case_id: String,
    pub case_number: Option<String>,
    pub created: bool,
    pub contact_created: bool,
    pub comments_written: usize,
}

/// One atomic Composite: Contact (if new), Case, and as many comments as fit.
pub(crate) async fn write_new_case(
    sf: &SalesforceClient,
    new_case: &NewCase,
    comments: &[CommentDraft],
) -> Result<FirstWrite, RecordError> {
    let path = sf.data_path();
    let mut requests = Vec::new();
    let mut fields = new_case.fields.clone();
    let contact_created = match &new_case.contact {
        ContactPlan::Existing(id) => {
            fields.insert("ContactId".into(), json!(id));
            false
        }
        ContactPlan::Create(contact) => {
            requests.push(Subrequest::create(
                &path,
                "contact",
                "Contact",
                contact.clone(),
            ));
            fields.insert("ContactId".into(), json!("@{contact.id}"));
            true
        }
    };
    let fields = Value::Object(fields);
    match &new_case.external_id {
        Some((field, value)) => requests.push(Subrequest::upsert(
            &path, "case", "Case", field, value, fields,
        )),
        None => requests.push(Subrequest::create(&path, "case", "Case", fields)),
    }
    let chunks: Vec<&[CommentDraft]> = comments.chunks(COLLECTION_SIZE).collect();
    // One slot of five goes to reading the CaseNumber when it is free.
    let collections = chunks.len().min(COLLECTIONS_PER_COMPOSITE);
    for (i, chunk) in chunks.iter().take(collections).enumerate() {
        let records = chunk.iter().map(|c| c.record("@{case.id}")).collect();
        requests.push(Subrequest::collection(
            &path,
            &format!("comments{i}"),
            records,
        ));
    }
    if collections < COLLECTIONS_PER_COMPOSITE {
        requests.push(case_number_query(&path, "number", "case"));
    }
    let answers = sf.composite(&requests, true).await?;
    composite_failure(&answers)?;
    let case_answer = answers
        .iter()
        .find(|a| a.reference_id == "case")
        .ok_or_else(|| SalesforceError::Decode("no answer for the Case".into()))?;
    let case_id = case_answer
        .body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| SalesforceError::Decode("the Case answer has no id".into()))?
        .to_owned();
    let created = case_answer
        .body
        .get("created")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let case_number = answers
        .iter()
        .find(|a| a.reference_id == "number")
        .and_then(|a| a.records::<CaseNumberRow>().ok())
        .and_then(|rows| rows.into_iter().next())
        .and_then(|row| row.case_number);
    Ok(FirstWrite {
        case_id,
        case_number,
        created,
        contact_created,
        comments_written: chunks.iter().take(collections).map(|c| c.len()).sum(),
    })
}

/// Further comments of an existing Case: one atomic Composite of collections.
pub(crate) async fn write_comments(
    sf: &SalesforceClient,
    case_id: &str,
    comments: &[CommentDraft],
) -> Result<usize, RecordError> {
    let path = sf.data_path();
    let chunks: Vec<&[CommentDraft]> = comments
        .chunks(COLLECTION_SIZE)
        .take(COLLECTIONS_PER_COMPOSITE)
        .collect();
    let requests: Vec<Subrequest> = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            Subrequest::collection(
                &path,
                &format!("comments{i}"),
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
fn composite_failure(answers: &[SubResponse]) -> Result<(), RecordError> {
    let mut errors: Vec<SalesforceError> = answers.iter().filter_map(SubResponse::error).collect();
    if errors.is_empty() {
        return Ok(());
    }
    let cause = errors
        .iter()
        .position(|e| !matches!(e.code(), Some(ROLLED_BACK | HALTED)))
        .unwrap_or(0);
    Err(RecordError::Salesforce(errors.swap_remove(cause)))
}
