//! The org: records, schema, validation and the journal that makes
//! `allOrNone` roll back. This file saves records and keeps the journal;
//! `schema`, `validate`, `rules` and `query` hold the rest.

mod describe;
mod query;
mod rules;
mod schema;
mod setup;
mod validate;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Map, Value};

use schema::{id18, schema};
pub(crate) use schema::{normalize_id, Kind, USER_TYPES};

/// A picklist's value set as an admin defined it.
#[derive(Clone, Debug)]
pub(crate) struct Picklist {
    pub(crate) values: Vec<String>,
    /// Only these values save ("Restricted picklist", Object Reference,
    /// "Field Properties", access_for_fields.htm: "Users can't load
    /// unapproved values through the API"); an unrestricted picklist stores
    /// any text.
    pub(crate) restricted: bool,
}

/// An object's API name, from its name in any case.
pub(crate) fn object_name(object: &str) -> Option<&'static str> {
    schema(object).map(|(name, _, _)| name)
}

/// One error of a save result, in the per-record (`statusCode`) shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SaveError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) fields: Vec<String>,
    /// The `duplicateResult` of a `DUPLICATES_DETECTED` error.
    pub(crate) duplicate_result: Option<Box<Value>>,
}

impl SaveError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>, fields: &[&str]) -> Self {
        Self {
            code,
            message: message.into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            duplicate_result: None,
        }
    }
    /// The REST error-array shape (`errorCode`).
    pub(crate) fn rest(&self) -> Value {
        // A save's error always names its fields, `[]` when none is to
        // blame (a DUPLICATE_VALUE as an org answers it:
        // `{"message": ..., "errorCode": "DUPLICATE_VALUE", "fields": []}`).
        let mut e = json!({"message": self.message, "errorCode": self.code, "fields": self.fields});
        if let Some(d) = &self.duplicate_result {
            e["duplicateResult"] = (**d).clone();
        }
        json!([e])
    }
    /// The collections shape (`statusCode`).
    pub(crate) fn record(&self) -> Value {
        let mut e =
            json!({"statusCode": self.code, "message": self.message, "fields": self.fields});
        if let Some(d) = &self.duplicate_result {
            e["duplicateResult"] = (**d).clone();
        }
        e
    }
}

/// How to undo one save: (object, id), and for an update the row before it.
enum Undo {
    Created(String, String),
    Updated(String, String, Map<String, Value>),
}

/// Which save a body is checked for: the fields it may carry differ.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Insert,
    Update,
    /// An upsert that found no match: createable fields, but never audit
    /// fields.
    UpsertInsert,
    /// An upsert that matched one record.
    UpsertUpdate,
}

impl Mode {
    fn inserts(self) -> bool {
        matches!(self, Mode::Insert | Mode::UpsertInsert)
    }
}

/// Everything the org holds.
pub(crate) struct Org {
    /// Records by object name, then by id (ids sort by creation).
    pub(crate) records: HashMap<&'static str, BTreeMap<String, Map<String, Value>>>,
    counter: u64,
    case_number: u64,
    pub(crate) audit_fields_enabled: bool,
    /// (object, field) pairs that are External ID fields, all of them Unique.
    pub(crate) external_ids: HashSet<(String, String)>,
    /// The owner the active Case assignment rule gives every Case it assigns.
    pub(crate) case_assignment_owner: Option<String>,
    /// An alert-type duplicate rule on Contact (same first and last name).
    pub(crate) contact_duplicate_rule: bool,
    /// A trigger on CaseComment insert that updates the parent Case.
    pub(crate) case_comment_trigger: bool,
    /// The API user cannot see the records a Unique value clashes with.
    pub(crate) clashing_records_hidden: bool,
    /// Users with "View All Data" (or "View All" on Contact): the API user.
    pub(crate) view_all: HashSet<String>,
    /// Custom fields an admin added: (object, field).
    custom_fields: Vec<(&'static str, schema::Field)>,
    /// (object, field) → the values an admin gave a picklist, and whether
    /// it is restricted to them; a picklist not here has its standard values
    /// (`describe::standard_values`), unrestricted.
    pub(crate) picklists: HashMap<(String, String), Picklist>,
    /// Saves since `begin`, to roll back; `None` outside a transaction.
    journal: Option<Vec<Undo>>,
    /// Bytes of ContentVersion data by id, kept out of the JSON records.
    pub(crate) blobs: HashMap<String, Vec<u8>>,
    /// Stamps CreatedDate and LastModifiedDate.
    now: fn() -> String,
    /// The API user, whom `audit_fields_enabled` grants Create Audit Fields
    /// through a permission set (`org/setup.rs`).
    pub(crate) api_user: Option<String>,
    /// Objects the API user has no Read permission on: to it they do not
    /// exist ("Status Codes and Error Responses", REST API Developer Guide,
    /// errors.htm: 404 "The requested resource couldn't be found. Check
    /// the URI for errors, and verify that there are no sharing issues").
    pub(crate) unreadable: HashSet<&'static str>,
}

fn now_iso() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

impl Default for Org {
    fn default() -> Self {
        Self {
            records: HashMap::new(),
            counter: 0,
            case_number: 1000,
            audit_fields_enabled: false,
            external_ids: HashSet::new(),
            case_assignment_owner: None,
            contact_duplicate_rule: false,
            case_comment_trigger: false,
            clashing_records_hidden: false,
            view_all: HashSet::new(),
            custom_fields: Vec::new(),
            picklists: HashMap::new(),
            journal: None,
            blobs: HashMap::new(),
            now: now_iso,
            api_user: None,
            unreadable: HashSet::new(),
        }
    }
}

/// The user a request runs as, and the request headers that change how its
/// records save.
#[derive(Clone, Copy)]
pub(crate) struct Actor<'a> {
    pub(crate) user_id: &'a str,
    /// `Sforce-Auto-Assign` was absent or not `FALSE`: active assignment
    /// rules run on the Cases it saves.
    pub(crate) auto_assign: bool,
    /// `Sforce-Duplicate-Rule-Header: allowSave=true`: alert-type duplicate
    /// rules let its saves through.
    pub(crate) allow_duplicates: bool,
}

impl<'a> Actor<'a> {
    /// A request that carried neither header ("Assignment Rule Header",
    /// REST API Developer Guide: "If the header is not provided in the
    /// request, the default value is TRUE"; "Duplicate Rule Header": "The
    /// default value for all fields is false").
    pub(crate) fn new(user_id: &'a str) -> Self {
        Self {
            user_id,
            auto_assign: true,
            allow_duplicates: false,
        }
    }

    /// Test data seeded behind the API's back: org automation stays out of
    /// the way, hard constraints (types, uniqueness) still hold.
    pub(crate) fn seeding(user_id: &'a str) -> Self {
        Self {
            user_id,
            auto_assign: false,
            allow_duplicates: true,
        }
    }
}

/// A user seeded directly, with its licence (`user_type`, one of
/// [`USER_TYPES`]).
#[derive(Clone, Copy)]
pub(crate) struct NewUser<'a> {
    pub(crate) username: &'a str,
    pub(crate) email: &'a str,
    pub(crate) first: &'a str,
    pub(crate) last: &'a str,
    pub(crate) active: bool,
    pub(crate) user_type: &'a str,
}

impl Org {
    fn new_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        // Pod and instance characters, then a base-62 counter, as real ids look.
        const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut n = self.counter;
        let mut tail = [b'0'; 8];
        for slot in tail.iter_mut().rev() {
            *slot = B62[(n % 62) as usize];
            n /= 62;
        }
        id18(&format!("{prefix}Wt00{}", String::from_utf8_lossy(&tail)))
    }

    pub(crate) fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    pub(crate) fn commit(&mut self) {
        self.journal = None;
    }

    pub(crate) fn in_transaction(&self) -> bool {
        self.journal.is_some()
    }

    /// A point inside the open transaction to roll back to.
    pub(crate) fn savepoint(&self) -> usize {
        self.journal.as_ref().map_or(0, Vec::len)
    }

    /// Undoes every save since `savepoint`; the transaction stays open.
    pub(crate) fn rollback_to(&mut self, savepoint: usize) {
        let undone = match &mut self.journal {
            Some(j) if j.len() > savepoint => j.split_off(savepoint),
            _ => return,
        };
        self.undo(undone);
    }

    pub(crate) fn rollback(&mut self) {
        let undone = self.journal.take().unwrap_or_default();
        self.undo(undone);
    }

    fn undo(&mut self, undone: Vec<Undo>) {
        for undo in undone.into_iter().rev() {
            match undo {
                Undo::Created(object, id) => {
                    if let Some(t) = self.table_mut(&object) {
                        t.remove(&id);
                    }
                    self.blobs.remove(&id);
                }
                Undo::Updated(object, id, old) => {
                    if let Some(t) = self.table_mut(&object) {
                        t.insert(id, old);
                    }
                }
            }
        }
    }

    /// An object's fields: the standard ones and the custom fields added.
    pub(crate) fn fields_of(
        &self,
        object: &str,
    ) -> Option<(&'static str, &'static str, Vec<schema::Field>)> {
        // An object the API user cannot read is, to it, no object at all.
        let (name, prefix, mut fields) =
            schema(object).filter(|(n, _, _)| !self.unreadable.contains(n))?;
        fields.extend(
            self.custom_fields
                .iter()
                .filter(|(o, _)| *o == name)
                .map(|(_, f)| *f),
        );
        Some((name, prefix, fields))
    }

    /// Adds a custom field (`Name__c`) to `object`, as an admin would in
    /// Setup; its name lives as long as the org.
    pub(crate) fn add_custom_field(
        &mut self,
        object: &str,
        field: &str,
        kind: schema::Kind,
    ) -> bool {
        let Some((name, _, _)) = schema(object) else {
            return false;
        };
        if !field.ends_with("__c")
            || self
                .fields_of(name)
                .is_some_and(|(_, _, fs)| fs.iter().any(|f| f.name.eq_ignore_ascii_case(field)))
        {
            return false;
        }
        let field: &'static str = Box::leak(field.to_owned().into_boxed_str());
        self.custom_fields
            .push((name, schema::f(field, kind, true, false)));
        true
    }

    fn table_mut(&mut self, object: &str) -> Option<&mut BTreeMap<String, Map<String, Value>>> {
        let (name, _, _) = schema(object)?;
        Some(self.records.entry(name).or_default())
    }

    pub(crate) fn get(&self, object: &str, id: &str) -> Option<&Map<String, Value>> {
        let (name, _, _) = schema(object)?;
        self.records.get(name)?.get(id)
    }

    /// Finds which object an id belongs to.
    fn object_of(&self, id: &str) -> Option<&'static str> {
        self.records
            .iter()
            .find(|(_, t)| t.contains_key(id))
            .map(|(n, _)| *n)
    }

    /// Adds a user directly (the API cannot create users here); returns its id.
    pub(crate) fn seed_user(&mut self, user: &NewUser) -> String {
        let id = self.new_id("005");
        let now = (self.now)();
        let (first, last) = (user.first, user.last);
        let record = json!({
            "Id": id, "Username": user.username, "Email": user.email, "FirstName": first,
            "LastName": last, "Name": format!("{first} {last}").trim().to_owned(),
            "IsActive": user.active, "UserType": user.user_type,
            "ProfileId": setup::profile_of(user.user_type),
            "CreatedDate": now, "LastModifiedDate": now, "CreatedById": Value::Null,
            "LastModifiedById": Value::Null,
        });
        self.records
            .entry("User")
            .or_default()
            .insert(id.clone(), record.as_object().cloned().unwrap_or_default());
        id
    }

    /// Inserts a record; returns its id.
    pub(crate) fn insert(
        &mut self,
        object: &str,
        body: &Map<String, Value>,
        actor: &Actor,
    ) -> Result<String, SaveError> {
        self.save_new(object, body, actor, None, Mode::Insert)
    }

    /// Inserts a record whose binary field may have arrived as a multipart part.
    pub(crate) fn insert_with_blob(
        &mut self,
        object: &str,
        body: &Map<String, Value>,
        actor: &Actor,
        blob: Option<Vec<u8>>,
    ) -> Result<String, SaveError> {
        self.save_new(object, body, actor, blob, Mode::Insert)
    }

    fn save_new(
        &mut self,
        object: &str,
        body: &Map<String, Value>,
        actor: &Actor,
        blob: Option<Vec<u8>>,
        mode: Mode,
    ) -> Result<String, SaveError> {
        let Some((name, prefix, fields)) = self.fields_of(object) else {
            return Err(SaveError::new(
                "NOT_FOUND",
                "The requested resource does not exist".to_string(),
                &[],
            ));
        };
        if schema::SETUP.contains(&name) {
            return Err(SaveError::new(
                "INSUFFICIENT_ACCESS",
                "users cannot be created by this API user",
                &[],
            ));
        }
        let mut record = self.check_fields(name, &fields, body, mode)?;
        for audit in ["CreatedById", "LastModifiedById"] {
            if record.get(audit).is_none_or(Value::is_null) {
                record.insert(audit.into(), json!(actor.user_id));
            }
        }
        let now = (self.now)();
        record.entry("CreatedDate").or_insert_with(|| json!(now));
        record
            .entry("LastModifiedDate")
            .or_insert_with(|| json!(now));
        match name {
            "Contact" => {
                let first = record
                    .get("FirstName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let last = record.get("LastName").and_then(Value::as_str).unwrap_or("");
                let full = format!("{first} {last}").trim().to_owned();
                record.insert("Name".into(), json!(full));
                record
                    .entry("OwnerId")
                    .or_insert_with(|| json!(actor.user_id));
            }
            "Case" => {
                record.entry("Status").or_insert_with(|| json!("New"));
                record
                    .entry("OwnerId")
                    .or_insert_with(|| json!(actor.user_id));
            }
            "CaseComment" => {
                record.entry("IsPublished").or_insert(json!(false));
            }
            "Account" => {
                record
                    .entry("OwnerId")
                    .or_insert_with(|| json!(actor.user_id));
            }
            _ => {}
        }
        self.apply_rules(name, &mut record, None, actor)?;
        if name == "CaseComment" && self.case_comment_trigger {
            // The org's after-insert trigger stamps the parent Case: an
            // update in the same transaction, made under the comment's own
            // request headers, so assignment rules run on that Case unless
            // the comment's request said `Sforce-Auto-Assign: FALSE`: the
            // header "also gets applied when making REST API calls that
            // indirectly result in creating or updating ... Cases" ("Assignment
            // Rule Header", REST API Developer Guide, headers_autoassign.htm).
            if let Some(parent) = record.get("ParentId").and_then(Value::as_str) {
                let parent = parent.to_owned();
                self.save_existing("Case", &parent, &Map::new(), actor, Mode::Update)?;
            }
        }
        let bytes = match name {
            "ContentVersion" => Some(version_data(&mut record, blob)?),
            _ => None,
        };
        let id = self.new_id(prefix);
        record.insert("Id".into(), json!(id));
        if name == "Case" {
            self.case_number += 1;
            record.insert(
                "CaseNumber".into(),
                json!(format!("{:08}", self.case_number)),
            );
        }
        if let Some(bytes) = bytes {
            let doc = self.new_id("069");
            record.insert("ContentDocumentId".into(), json!(doc));
            let path = record.get("PathOnClient").cloned().unwrap_or(Value::Null);
            record.entry("Title").or_insert(path);
            record.insert("ContentSize".into(), json!(bytes.len().to_string()));
            self.blobs.insert(id.clone(), bytes);
        }
        self.table_mut(name)
            .expect("known")
            .insert(id.clone(), record);
        if let Some(j) = &mut self.journal {
            j.push(Undo::Created(name.to_owned(), id.clone()));
        }
        Ok(id)
    }

    pub(crate) fn update(
        &mut self,
        object: &str,
        id: &str,
        body: &Map<String, Value>,
        actor: &Actor,
    ) -> Result<(), SaveError> {
        self.save_existing(object, id, body, actor, Mode::Update)
    }

    fn save_existing(
        &mut self,
        object: &str,
        id: &str,
        body: &Map<String, Value>,
        actor: &Actor,
        mode: Mode,
    ) -> Result<(), SaveError> {
        let not_found =
            || SaveError::new("NOT_FOUND", "The requested resource does not exist", &[]);
        let Some((name, _, fields)) = self.fields_of(object) else {
            return Err(not_found());
        };
        let Some(id) = normalize_id(id).filter(|i| self.get(name, i).is_some()) else {
            return Err(not_found());
        };
        let mut changes = self.check_fields(name, &fields, body, mode)?;
        changes.insert("LastModifiedById".into(), json!(actor.user_id));
        changes.insert("LastModifiedDate".into(), json!((self.now)()));
        self.apply_rules(name, &mut changes, Some(&id), actor)?;
        let table = self.table_mut(name).expect("known");
        let row = table.get_mut(&id).expect("checked");
        let old = row.clone();
        for (k, v) in changes {
            row.insert(k, v);
        }
        if name == "Contact" {
            let first = row.get("FirstName").and_then(Value::as_str).unwrap_or("");
            let last = row.get("LastName").and_then(Value::as_str).unwrap_or("");
            let full = format!("{first} {last}").trim().to_owned();
            row.insert("Name".into(), json!(full));
        }
        if let Some(j) = &mut self.journal {
            j.push(Undo::Updated(name.to_owned(), id, old));
        }
        Ok(())
    }

    /// Upsert on an External ID field: (id, created).
    pub(crate) fn upsert(
        &mut self,
        object: &str,
        field: &str,
        value: &str,
        body: &Map<String, Value>,
        actor: &Actor,
    ) -> Result<(String, bool), UpsertError> {
        let Some((name, _, _)) = schema(object) else {
            return Err(UpsertError::Save(SaveError::new(
                "NOT_FOUND",
                "The requested resource does not exist",
                &[],
            )));
        };
        let Some(ext) = self.external_id_field(name, field) else {
            return Err(UpsertError::Save(SaveError::new(
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
                &[],
            )));
        };
        let mut body = body.clone();
        // The URL names the record, so a body naming another value of the
        // External ID field is a contradiction, refused with INVALID_FIELD.
        // Older editions of "sObject Rows by External ID" (REST API
        // Developer Guide) say "Do not specify Id or an external ID field in
        // the request body or an error is generated"; current editions of
        // "Upsert Records Using sObject Rows by External ID" no longer carry
        // that note, so a body repeating the URL's own value is accepted.
        let in_body: Vec<String> = body
            .keys()
            .filter(|k| k.eq_ignore_ascii_case(&ext))
            .cloned()
            .collect();
        for key in in_body {
            let same = body
                .get(&key)
                .and_then(Value::as_str)
                .is_some_and(|v| v == value);
            if !same {
                return Err(UpsertError::Save(SaveError::new(
                    "INVALID_FIELD",
                    format!("The value of {ext} in the request body does not match the value in the URL: {value}"),
                    &[&ext],
                )));
            }
            body.remove(&key);
        }
        let matches = self.matching_external_id(name, &ext, value);
        match matches.as_slice() {
            [] => {
                body.insert(ext.clone(), json!(value));
                self.save_new(name, &body, actor, None, Mode::UpsertInsert)
                    .map(|id| (id, true))
                    .map_err(UpsertError::Save)
            }
            [one] => self
                .save_existing(name, one, &body, actor, Mode::UpsertUpdate)
                .map(|_| (one.clone(), false))
                .map_err(UpsertError::Save),
            many => Err(UpsertError::Multiple(many.to_vec())),
        }
    }
}

impl Org {
    /// The External ID field of `object` named `field` (in any case), by
    /// its own name.
    pub(crate) fn external_id_field(&self, object: &str, field: &str) -> Option<String> {
        self.external_ids
            .iter()
            .find(|(o, f)| o == object && f.eq_ignore_ascii_case(field))
            .map(|(_, f)| f.clone())
    }

    /// Ids of the `object` records whose External ID `field` holds `value`
    /// (case-insensitive, as the Unique attribute compares).
    pub(crate) fn matching_external_id(
        &self,
        object: &str,
        field: &str,
        value: &str,
    ) -> Vec<String> {
        self.records
            .get(object)
            .map(|t| {
                t.iter()
                    .filter(|(_, r)| {
                        r.get(field)
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.eq_ignore_ascii_case(value))
                    })
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A ContentVersion's bytes: base64 `VersionData` in the JSON, or a binary
/// multipart part, never both.
fn version_data(
    record: &mut Map<String, Value>,
    blob: Option<Vec<u8>>,
) -> Result<Vec<u8>, SaveError> {
    let inline = match record.remove("VersionData") {
        Some(Value::String(b64)) => {
            use base64::Engine;
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|_| {
                        SaveError::new(
                            "INVALID_FIELD",
                            "VersionData: not valid base64",
                            &["VersionData"],
                        )
                    })?,
            )
        }
        _ => None,
    };
    match (inline, blob) {
        (Some(_), Some(_)) => Err(SaveError::new(
            "INVALID_MULTIPART_REQUEST",
            "VersionData sent both in JSON and as a binary part",
            &["VersionData"],
        )),
        (Some(b), None) | (None, Some(b)) => Ok(b),
        (None, None) => Err(SaveError::new(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [VersionData]",
            &["VersionData"],
        )),
    }
}

pub(crate) enum UpsertError {
    Save(SaveError),
    Multiple(Vec<String>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_prefix_and_checksum() {
        let mut org = Org::default();
        let id = org.new_id("500");
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("500"));
        assert_eq!(normalize_id(&id[..15]).as_deref(), Some(id.as_str()));
        assert_eq!(id18("001000000000001"), "001000000000001AAA");
        assert_eq!(id18("001A00000000001"), "001A00000000001IAA");
    }

    #[test]
    fn validation_and_rollback() {
        let mut org = Org::default();
        let api = org.seed_user(&NewUser {
            username: "api@x",
            email: "api@x",
            first: "API",
            last: "User",
            active: true,
            user_type: "Standard",
        });
        let actor = Actor::new(&api);
        let body = |v: Value| v.as_object().cloned().unwrap();
        let err = org
            .insert("Contact", &body(json!({"FirstName": "A"})), &actor)
            .unwrap_err();
        assert_eq!(err.code, "REQUIRED_FIELD_MISSING");
        let err = org
            .insert("Case", &body(json!({"Subject": "x".repeat(256)})), &actor)
            .unwrap_err();
        assert_eq!(err.code, "STRING_TOO_LONG");
        let err = org
            .insert(
                "Case",
                &body(json!({"CreatedDate": "2026-01-01T00:00:00Z"})),
                &actor,
            )
            .unwrap_err();
        assert_eq!(err.code, "INVALID_FIELD_FOR_INSERT_UPDATE");
        assert_eq!(err.fields, vec!["CreatedDate"]);
        let err = org
            .insert(
                "CaseComment",
                &body(json!({"ParentId": "500Wt00000000zzAAA", "CommentBody": "x"})),
                &actor,
            )
            .unwrap_err();
        assert_eq!(err.code, "MALFORMED_ID");
        let parent = org
            .insert("Case", &body(json!({"Subject": "s"})), &actor)
            .unwrap();
        let err = org
            .insert(
                "CaseComment",
                &body(json!({"ParentId": parent, "CommentBody": "é".repeat(2001)})),
                &actor,
            )
            .unwrap_err();
        assert_eq!(err.code, "STRING_TOO_LONG");
        assert!(org
            .insert(
                "CaseComment",
                &body(json!({"ParentId": parent, "CommentBody": "é".repeat(2000)})),
                &actor
            )
            .is_ok());

        org.begin();
        let case = org
            .insert("Case", &body(json!({"Subject": "s"})), &actor)
            .unwrap();
        org.rollback();
        assert!(org.get("Case", &case).is_none());
    }
}
