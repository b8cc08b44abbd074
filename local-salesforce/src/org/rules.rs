//! What a save meets beyond its own fields: Unique External IDs, the
//! Contact duplicate rule and the Case assignment rule.

use serde_json::{json, Map, Value};

use super::{Actor, Org, SaveError};

/// The alert text of the standard Contact duplicate rule.
const DUPLICATE_ALERT: &str = "Use one of these records?";

impl Org {
    /// Checks and completes `changes` (a new record, or the changes to the
    /// record `existing`) against the org's constraints and automation.
    pub(super) fn apply_rules(
        &self,
        object: &'static str,
        changes: &mut Map<String, Value>,
        existing: Option<&str>,
        actor: &Actor,
    ) -> Result<(), SaveError> {
        self.check_unique(object, changes, existing)?;
        if object == "Contact" {
            self.check_contact_duplicates(changes, existing, actor)?;
        }
        if object == "Case" && actor.auto_assign {
            // "Assignment Rule Header" (REST API Developer Guide): the active
            // rules run on Cases *created or updated* unless the request says
            // `Sforce-Auto-Assign: FALSE`, and they overwrite the owner the
            // request set. Running them on updates too is what the page says
            // and the stricter reading for a client.
            if let Some(owner) = &self.case_assignment_owner {
                changes.insert("OwnerId".into(), json!(owner));
            }
        }
        Ok(())
    }

    /// Every External ID field here is also Unique (case-insensitive, the
    /// default of the Unique attribute): a value another record holds is
    /// `DUPLICATE_VALUE` ("Upsert Records Using sObject Rows by External
    /// ID": "The Unique attribute prevents the creation of duplicates").
    /// Salesforce documents the code only (DuplicateError,
    /// sforce_api_objects_duplicateerror.htm); a real org answers with
    /// `fields` empty and names the field and the other record's
    /// 15-character id in the message alone, "duplicate value found:
    /// <field> duplicates value on record with id: <id>", and writes
    /// `<unknown>` for both when the API user cannot see that record: the
    /// shape a client must read, so the shape served here.
    fn check_unique(
        &self,
        object: &str,
        changes: &Map<String, Value>,
        existing: Option<&str>,
    ) -> Result<(), SaveError> {
        let Some(table) = self.records.get(object) else {
            return Ok(());
        };
        for (_, field) in self.external_ids.iter().filter(|(o, _)| o == object) {
            let Some(value) = changes.get(field).and_then(Value::as_str) else {
                continue;
            };
            let clash = table.iter().find(|(id, row)| {
                Some(id.as_str()) != existing
                    && row
                        .get(field)
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.eq_ignore_ascii_case(value))
            });
            if let Some((id, _)) = clash {
                let (field, id) = if self.clashing_records_hidden {
                    ("<unknown>", "<unknown>")
                } else {
                    (field.as_str(), &id[..15])
                };
                return Err(SaveError::new(
                    "DUPLICATE_VALUE",
                    format!(
                        "duplicate value found: {field} duplicates value on record with id: {id}"
                    ),
                    &[],
                ));
            }
        }
        Ok(())
    }

    /// An alert-type duplicate rule on Contact matching first and last name
    /// (case-insensitive): the save is refused with `DUPLICATES_DETECTED`
    /// unless the request carried `Sforce-Duplicate-Rule-Header:
    /// allowSave=true` ("Duplicate Rule Header", REST API Developer Guide;
    /// the error carries a DuplicateResult, "DuplicateResult", SOAP API
    /// Developer Guide). Like the standard rule it runs on create and edit.
    fn check_contact_duplicates(
        &self,
        changes: &Map<String, Value>,
        existing: Option<&str>,
        actor: &Actor,
    ) -> Result<(), SaveError> {
        if !self.contact_duplicate_rule || actor.allow_duplicates {
            return Ok(());
        }
        let Some(table) = self.records.get("Contact") else {
            return Ok(());
        };
        let before = existing.and_then(|id| table.get(id));
        if before.is_some()
            && !changes.contains_key("FirstName")
            && !changes.contains_key("LastName")
        {
            return Ok(());
        }
        let name = |field: &str| -> String {
            changes
                .get(field)
                .or_else(|| before.and_then(|b| b.get(field)))
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim()
                .to_lowercase()
        };
        let (first, last) = (name("FirstName"), name("LastName"));
        let matches: Vec<&String> = table
            .iter()
            .filter(|(id, row)| {
                let same = |field: &str, want: &str| {
                    row.get(field)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .trim()
                        .to_lowercase()
                        == want
                };
                Some(id.as_str()) != existing
                    && same("FirstName", &first)
                    && same("LastName", &last)
            })
            .map(|(id, _)| id)
            .collect();
        if matches.is_empty() {
            return Ok(());
        }
        let records: Vec<Value> = matches
            .iter()
            .map(|id| {
                json!({
                    "additionalInformation": [], "fieldDiffs": [], "matchConfidence": 100.0,
                    "record": {"attributes": {"type": "Contact"}, "Id": id},
                })
            })
            .collect();
        let mut e = SaveError::new("DUPLICATES_DETECTED", DUPLICATE_ALERT, &[]);
        e.duplicate_result = Some(Box::new(json!({
            "allowSave": true,
            "duplicateRule": "Standard_Contact_Duplicate_Rule",
            "duplicateRuleEntityType": "Contact",
            "errorMessage": DUPLICATE_ALERT,
            "matchResults": [{
                "entityType": "Contact", "errors": [], "matchEngine": "ExactMatchEngine",
                "matchRecords": records, "rule": "Contact_Name_Match_Rule",
                "size": matches.len(), "success": true,
            }],
        })));
        Err(e)
    }
}
