//! What `GET sobjects/{Type}/describe` tells a client about an object: its
//! fields as the org enforces them (types, lengths, writability, External
//! ID and Unique attributes, picklist values and whether they are
//! restricted), so a client that trusts the describe is never surprised by
//! a save.

use serde_json::{json, Value};

use super::schema::{Field, Kind, AUDIT};
use super::Org;

/// A picklist's standard values when no admin changed them, with the one
/// the org defaults to on create: the values a new org ships with (Case
/// Origin, Status and Priority in "Case", Object Reference,
/// sforce_api_objects_case.htm; UserType in "User",
/// sforce_api_objects_user.htm). Status defaults to New here because the
/// org sets it on create (`Org::save_new`).
pub(super) fn standard_values(
    object: &str,
    field: &str,
) -> (Vec<&'static str>, Option<&'static str>) {
    match (object, field) {
        ("Case", "Origin") => (vec!["Phone", "Email", "Web"], None),
        ("Case", "Status") => (vec!["New", "Working", "Escalated", "Closed"], Some("New")),
        ("Case", "Priority") => (vec!["High", "Medium", "Low"], None),
        ("User", "UserType") => (super::USER_TYPES.to_vec(), None),
        _ => (Vec::new(), None),
    }
}

impl Org {
    /// The describe of `object` (any case) as the REST API answers it, or
    /// `None` for an object this org does not have.
    ///
    /// "sObject Describe" (REST API Developer Guide,
    /// resources_sobject_describe.htm) answers a DescribeSObjectResult
    /// ("DescribeSObjectResult", SOAP API Developer Guide,
    /// sforce_api_calls_describesobjects_describesobjectresult.htm): the
    /// object's `name`, `label`, `keyPrefix`, `createable`, `updateable`,
    /// `queryable`, `custom`, `urls` and `fields`; each field with the
    /// properties of its "Field" section (`name`, `label`, `type`, `length`,
    /// `createable`, `updateable`, `nillable`, `unique`, `externalId`,
    /// `caseSensitive`, `custom`, `filterable`, `sortable`,
    /// `defaultedOnCreate`, `referenceTo`, `picklistValues` of
    /// PicklistEntry `value`/`label`/`active`/`defaultValue`,
    /// `restrictedPicklist`). Only the properties a client here reads are
    /// served; a client must not expect the others.
    pub(crate) fn describe(&self, object: &str, api: &str) -> Option<Value> {
        let (name, prefix, fields) = self.fields_of(object)?;
        let mut out: Vec<Value> = fields
            .iter()
            .map(|f| self.describe_field(name, f))
            .collect();
        // External ID fields are the org's custom text fields (their names
        // end in __c in a real org); each is Unique and, by default of the
        // Unique attribute, case-insensitive.
        let mut externals: Vec<&String> = self
            .external_ids
            .iter()
            .filter(|(o, _)| o == name)
            .map(|(_, f)| f)
            .collect();
        externals.sort();
        for f in externals {
            out.push(json!({
                "name": f, "label": label(f), "type": "string", "length": 255,
                "createable": true, "updateable": true, "nillable": true,
                "unique": true, "externalId": true, "caseSensitive": false,
                "custom": true, "filterable": true, "sortable": true,
                "defaultedOnCreate": false, "referenceTo": [],
                "picklistValues": [], "restrictedPicklist": false,
            }));
        }
        // The API user cannot create users here (`Org::save_new`).
        let createable = name != "User";
        let url = format!("/services/data/v{api}/sobjects/{name}");
        Some(json!({
            "name": name,
            "label": label(name),
            "keyPrefix": prefix,
            "custom": false,
            "createable": createable,
            "updateable": createable,
            "queryable": true,
            "retrieveable": true,
            "urls": {
                "sobject": url,
                "describe": format!("{url}/describe"),
                "rowTemplate": format!("{url}/{{ID}}"),
            },
            "fields": out,
        }))
    }

    fn describe_field(&self, object: &str, f: &Field) -> Value {
        let (kind, length) = match f.kind {
            Kind::Id => ("id", 18),
            // Email and phone fields hold text of their own display type.
            Kind::Text(n) if f.name == "Email" => ("email", n),
            Kind::Text(n) if f.name.ends_with("Phone") => ("phone", n),
            Kind::Text(n) => ("string", n),
            Kind::Picklist(n) => ("picklist", n),
            Kind::LongText(n) | Kind::TextBytes(n) => ("textarea", n),
            Kind::Bool => ("boolean", 0),
            Kind::Number => ("double", 0),
            Kind::DateTime => ("datetime", 0),
            Kind::Ref(_) => ("reference", 18),
            Kind::Base64 => ("base64", 0),
        };
        let audit = AUDIT.contains(&f.name);
        // Audit fields are createable exactly while the org lets the API
        // set them (Create Audit Fields), as the save itself checks.
        let createable = if audit {
            self.audit_fields_enabled
        } else {
            f.createable
        };
        let system = audit || f.name == "Id";
        let nillable = !(f.required || system || f.kind == Kind::Bool);
        let filterable = !matches!(
            f.kind,
            Kind::LongText(_) | Kind::TextBytes(_) | Kind::Base64
        );
        let (values, restricted) = self.picklist_entries(object, f);
        let reference_to = match f.kind {
            Kind::Ref(target) => json!([target]),
            _ => json!([]),
        };
        json!({
            "name": f.name,
            "label": label(f.name),
            "type": kind,
            "length": length,
            "createable": createable,
            "updateable": f.updateable && !audit,
            "nillable": nillable,
            "unique": false,
            "externalId": false,
            "caseSensitive": false,
            "custom": false,
            "filterable": filterable,
            "sortable": filterable,
            "defaultedOnCreate": system
                || matches!((object, f.name), ("Case", "Status") | (_, "OwnerId")),
            "referenceTo": reference_to,
            "picklistValues": values,
            "restrictedPicklist": restricted,
        })
    }

    /// A picklist's entries and whether it is restricted; `[]` for any
    /// other field ("PicklistEntry": `value`, `label`, `active`,
    /// `defaultValue`).
    fn picklist_entries(&self, object: &str, f: &Field) -> (Value, bool) {
        if !matches!(f.kind, Kind::Picklist(_)) {
            return (json!([]), false);
        }
        let (standard, default) = standard_values(object, f.name);
        let set = self
            .picklists
            .iter()
            .find(|((o, n), _)| o.eq_ignore_ascii_case(object) && n.eq_ignore_ascii_case(f.name));
        let (values, restricted): (Vec<&str>, bool) = match set {
            Some((_, p)) => (p.values.iter().map(String::as_str).collect(), p.restricted),
            None => (standard, false),
        };
        let entries = values
            .iter()
            .map(|v| json!({"value": v, "label": v, "active": true, "defaultValue": Some(*v) == default}))
            .collect();
        (Value::Array(entries), restricted)
    }
}

/// A field's or object's label from its API name: words split at capitals,
/// `Id` written `ID` ("OwnerId" is "Owner ID").
fn label(name: &str) -> String {
    let base = name.strip_suffix("__c").unwrap_or(name);
    let mut words: Vec<String> = Vec::new();
    for c in base.chars() {
        let split = c.is_ascii_uppercase()
            && words
                .last()
                .and_then(|w| w.chars().last())
                .is_some_and(|p| p.is_ascii_lowercase());
        match words.last_mut() {
            Some(w) if !split && c != '_' => w.push(c),
            _ if c == '_' => words.push(String::new()),
            _ => words.push(c.to_string()),
        }
    }
    words
        .into_iter()
        .filter(|w| !w.is_empty())
        .map(|w| if w == "Id" { "ID".to_owned() } else { w })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn labels_read_as_words() {
        assert_eq!(label("OwnerId"), "Owner ID");
        assert_eq!(label("CaseComment"), "Case Comment");
        assert_eq!(
            label("WitiOp_Conversation_Id__c"),
            "Witi Op Conversation ID"
        );
        assert_eq!(label("Id"), "ID");
    }
}
