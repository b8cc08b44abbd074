//! The customer's Contact: which existing one is theirs, or the one to create.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use crate::event::Conversation;
use crate::phone::CustomerNumber;
use crate::text::truncate_utf16;

/// Field lengths, in UTF-16 code units as Salesforce counts them.
const FIRST_NAME_MAX: usize = 40;
const LAST_NAME_MAX: usize = 80;
const PHONE_MAX: usize = 40;

/// A Contact that a phone query returned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContactCandidate {
    pub id: super::ContactId,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
}

/// The customer's Contact among the candidates (the queries return them
/// oldest first): the first whose Phone or MobilePhone is the customer's
/// number by libphonenumber's verdict. Also how many matched, so that a
/// duplicate Contact in the org can be reported.
pub fn choose_contact(
    number: &CustomerNumber,
    candidates: &[ContactCandidate],
) -> (Option<super::ContactId>, usize) {
    let mut seen = HashSet::new();
    let matching: Vec<&ContactCandidate> = candidates
        .iter()
        .filter(|c| seen.insert(c.id.as_str()))
        .filter(|c| {
            [&c.phone, &c.mobile_phone]
                .iter()
                .any(|p| p.as_deref().is_some_and(|p| number.matches(p)))
        })
        .collect();
    (matching.first().map(|c| c.id.clone()), matching.len())
}

/// Fields of the Contact created when none has the customer's number.
/// Names longer than the fields are cut (the full name is in the Case's
/// Description); a name with nothing printable falls back to the number.
pub fn new_contact(conversation: &Conversation, number: &CustomerNumber) -> Value {
    let number = number.display();
    let (first, last) = match conversation.customer.name.as_deref().map(split_name) {
        Some((first, last)) if !last.is_empty() => (first, last),
        _ => (None, number.clone()),
    };
    let mut fields = Map::new();
    if let Some(first) = first {
        fields.insert(
            "FirstName".into(),
            json!(truncate_utf16(&first, FIRST_NAME_MAX)),
        );
    }
    fields.insert(
        "LastName".into(),
        json!(truncate_utf16(&last, LAST_NAME_MAX)),
    );
    let phone = truncate_utf16(&number, PHONE_MAX);
    fields.insert("MobilePhone".into(), json!(phone));
    fields.insert("Phone".into(), json!(phone));
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
