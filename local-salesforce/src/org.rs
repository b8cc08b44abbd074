//! The org: records, schema, validation and the journal that makes
//! `allOrNone` roll back.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Map, Value};

use crate::soql::{self, Query};

/// One error of a save result, in the per-record (`statusCode`) shape.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveError {
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

impl SaveError {
    pub fn new(code: &'static str, message: impl Into<String>, fields: &[&str]) -> Self {
        Self {
            code,
            message: message.into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        }
    }
    /// The REST error-array shape (`errorCode`).
    pub fn rest(&self) -> Value {
        let mut e = json!({"message": self.message, "errorCode": self.code});
        if !self.fields.is_empty() {
            e["fields"] = json!(self.fields);
        }
        json!([e])
    }
    /// The collections shape (`statusCode`).
    pub fn record(&self) -> Value {
        json!({"statusCode": self.code, "message": self.message, "fields": self.fields})
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Id,
    Text(usize),
    /// Limit in bytes rather than characters.
    TextBytes(usize),
    Bool,
    DateTime,
    Ref(&'static str),
    Base64,
}

struct Field {
    name: &'static str,
    kind: Kind,
    createable: bool,
    updateable: bool,
    required: bool,
}

const fn f(name: &'static str, kind: Kind, createable: bool, required: bool) -> Field {
    Field {
        name,
        kind,
        createable,
        updateable: createable,
        required,
    }
}

const AUDIT: [&str; 2] = ["CreatedById", "CreatedDate"];

fn schema(object: &str) -> Option<(&'static str, &'static str, Vec<Field>)> {
    use Kind::*;
    let common = || {
        vec![
            f("Id", Id, false, false),
            f("CreatedById", Ref("User"), false, false),
            f("CreatedDate", DateTime, false, false),
            f("LastModifiedDate", DateTime, false, false),
        ]
    };
    let (name, prefix, mut fields) = match object.to_ascii_lowercase().as_str() {
        "user" => (
            "User",
            "005",
            vec![
                f("Username", Text(80), false, false),
                f("Email", Text(128), false, false),
                f("FirstName", Text(40), false, false),
                f("LastName", Text(80), false, false),
                f("Name", Text(121), false, false),
                f("IsActive", Bool, false, false),
            ],
        ),
        "contact" => (
            "Contact",
            "003",
            vec![
                f("FirstName", Text(40), true, false),
                f("LastName", Text(80), true, true),
                f("Name", Text(121), false, false),
                f("Phone", Text(40), true, false),
                f("MobilePhone", Text(40), true, false),
                f("Email", Text(80), true, false),
                f("Description", Text(32000), true, false),
                f("OwnerId", Ref("User"), true, false),
            ],
        ),
        "case" => (
            "Case",
            "500",
            vec![
                f("CaseNumber", Text(30), false, false),
                f("Subject", Text(255), true, false),
                f("Description", Text(32000), true, false),
                f("Origin", Text(40), true, false),
                f("Status", Text(40), true, false),
                f("Priority", Text(40), true, false),
                f("OwnerId", Ref("User"), true, false),
                f("ContactId", Ref("Contact"), true, false),
            ],
        ),
        "casecomment" => (
            "CaseComment",
            "00a",
            vec![
                f("ParentId", Ref("Case"), true, true),
                f("CommentBody", TextBytes(4000), true, false),
                f("IsPublished", Bool, true, false),
            ],
        ),
        "contentversion" => (
            "ContentVersion",
            "068",
            vec![
                f("Title", Text(255), true, false),
                f("PathOnClient", Text(500), true, true),
                f("VersionData", Base64, true, false),
                f("FirstPublishLocationId", Id, true, false),
                f("ContentDocumentId", Id, false, false),
                f("ContentSize", Text(20), false, false),
                f("Description", Text(1000), true, false),
            ],
        ),
        _ => return None,
    };
    let mut all = common();
    all.append(&mut fields);
    // Parent and publication location cannot change once set.
    for field in &mut all {
        if matches!(
            field.name,
            "ParentId" | "FirstPublishLocationId" | "PathOnClient"
        ) {
            field.updateable = false;
        }
    }
    Some((name, prefix, all))
}

fn key_prefix(object: &str) -> Option<&'static str> {
    schema(object).map(|(_, p, _)| p)
}

/// Appends Salesforce's 3-character case-safe suffix to a 15-character id.
pub fn id18(id15: &str) -> String {
    const MAP: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let mut suffix = String::new();
    for chunk in id15.as_bytes().chunks(5) {
        let mut bits = 0;
        for (i, c) in chunk.iter().enumerate() {
            if c.is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        suffix.push(MAP[bits] as char);
    }
    format!("{id15}{suffix}")
}

/// The 18-character form of a 15- or 18-character id, if it is one.
pub fn normalize_id(id: &str) -> Option<String> {
    let ok = id.chars().all(|c| c.is_ascii_alphanumeric());
    match id.len() {
        15 if ok => Some(id18(id)),
        18 if ok && id18(&id[..15]) == id => Some(id.to_owned()),
        _ => None,
    }
}

enum Undo {
    Created(String, String),
    Updated(String, String, Map<String, Value>),
}

/// Everything the org holds.
pub struct Org {
    /// Records by object name, then by id (ids sort by creation).
    pub records: HashMap<&'static str, BTreeMap<String, Map<String, Value>>>,
    counter: u64,
    case_number: u64,
    pub audit_fields_enabled: bool,
    /// (object, field) pairs that are External ID fields.
    pub external_ids: HashSet<(String, String)>,
    journal: Option<Vec<Undo>>,
    /// Bytes of ContentVersion data by id, kept out of the JSON records.
    pub blobs: HashMap<String, Vec<u8>>,
    pub now: fn() -> String,
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
            journal: None,
            blobs: HashMap::new(),
            now: now_iso,
        }
    }
}

/// The user a request runs as (for CreatedById defaults).
pub struct Actor<'a> {
    pub user_id: &'a str,
}

impl Org {
    pub fn new_id(&mut self, prefix: &str) -> String {
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

    pub fn begin(&mut self) {
        self.journal = Some(Vec::new());
    }

    pub fn commit(&mut self) {
        self.journal = None;
    }

    pub fn rollback(&mut self) {
        for undo in self.journal.take().unwrap_or_default().into_iter().rev() {
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

    fn table_mut(&mut self, object: &str) -> Option<&mut BTreeMap<String, Map<String, Value>>> {
        let (name, _, _) = schema(object)?;
        Some(self.records.entry(name).or_default())
    }

    pub fn get(&self, object: &str, id: &str) -> Option<&Map<String, Value>> {
        let (name, _, _) = schema(object)?;
        self.records.get(name)?.get(id)
    }

    /// Finds which object an id belongs to.
    pub fn object_of(&self, id: &str) -> Option<&'static str> {
        self.records
            .iter()
            .find(|(_, t)| t.contains_key(id))
            .map(|(n, _)| *n)
    }

    /// Adds a user directly (the API cannot create users here).
    pub fn seed_user(
        &mut self,
        username: &str,
        email: &str,
        first: &str,
        last: &str,
        active: bool,
    ) -> String {
        let id = self.new_id("005");
        let now = (self.now)();
        let record = json!({
            "Id": id, "Username": username, "Email": email, "FirstName": first, "LastName": last,
            "Name": format!("{first} {last}").trim().to_owned(), "IsActive": active,
            "CreatedDate": now, "LastModifiedDate": now, "CreatedById": Value::Null,
        });
        self.records
            .entry("User")
            .or_default()
            .insert(id.clone(), record.as_object().cloned().unwrap_or_default());
        id
    }

    fn check_fields(
        &self,
        object: &'static str,
        fields: &[Field],
        body: &Map<String, Value>,
        insert: bool,
    ) -> Result<Map<String, Value>, SaveError> {
        let mut clean = Map::new();
        let mut not_writable = Vec::new();
        for (key, value) in body {
            if key == "attributes" {
                continue;
            }
            let field = fields.iter().find(|f| f.name.eq_ignore_ascii_case(key));
            let external = self
                .external_ids
                .iter()
                .find(|(o, f)| o == object && f.eq_ignore_ascii_case(key));
            let (name, kind, writable) = match (field, external) {
                (Some(f), _) => {
                    let audit = AUDIT.contains(&f.name);
                    let writable = if audit {
                        insert && self.audit_fields_enabled
                    } else if insert {
                        f.createable
                    } else {
                        f.updateable
                    };
                    (f.name.to_owned(), f.kind, writable)
                }
                (None, Some((_, ext))) => (ext.clone(), Kind::Text(255), true),
                (None, None) => {
                    return Err(SaveError::new(
                        "INVALID_FIELD",
                        format!("No such column '{key}' on sobject of type {object}"),
                        &[],
                    ))
                }
            };
            if !writable {
                not_writable.push(name);
                continue;
            }
            if value.is_null() {
                clean.insert(name, Value::Null);
                continue;
            }
            let checked = match kind {
                Kind::Text(max) | Kind::TextBytes(max) => {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(bad_value(object, &name, value)),
                    };
                    let len = if matches!(kind, Kind::TextBytes(_)) {
                        text.len()
                    } else {
                        text.chars().count()
                    };
                    if len > max {
                        return Err(SaveError::new(
                            "STRING_TOO_LONG",
                            format!(
                                "{name}: data value too large: {} (max length={max})",
                                preview(&text)
                            ),
                            &[&name],
                        ));
                    }
                    Value::String(text)
                }
                Kind::Bool => match value {
                    Value::Bool(_) => value.clone(),
                    Value::String(s)
                        if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
                    {
                        Value::Bool(s.eq_ignore_ascii_case("true"))
                    }
                    _ => return Err(bad_value(object, &name, value)),
                },
                Kind::DateTime => {
                    let Some(text) = value.as_str() else {
                        return Err(bad_value(object, &name, value));
                    };
                    let parsed = chrono::DateTime::parse_from_rfc3339(text)
                        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
                        .map_err(|_| SaveError::new(
                            "JSON_PARSER_ERROR",
                            format!("Cannot deserialize instance of datetime from VALUE_STRING value {text} or request may be missing a required field"),
                            &[],
                        ))?;
                    if parsed.timestamp() < 0 {
                        return Err(SaveError::new(
                            "INVALID_FIELD_FOR_INSERT_UPDATE",
                            format!("{name}: date before 1970"),
                            &[&name],
                        ));
                    }
                    if name == "CreatedDate"
                        && parsed.timestamp() > chrono::Utc::now().timestamp() + 60
                    {
                        return Err(SaveError::new(
                            "INVALID_FIELD_FOR_INSERT_UPDATE",
                            "CreatedDate cannot be in the future",
                            &[&name],
                        ));
                    }
                    Value::String(
                        parsed
                            .with_timezone(&chrono::Utc)
                            .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                            .to_string(),
                    )
                }
                Kind::Ref(target) => {
                    let id = value.as_str().and_then(normalize_id).ok_or_else(|| {
                        SaveError::new(
                            "MALFORMED_ID",
                            format!("{name}: id value of incorrect type: {value}"),
                            &[&name],
                        )
                    })?;
                    if Some(&id[..3]) != key_prefix(target) {
                        return Err(SaveError::new(
                            "FIELD_INTEGRITY_EXCEPTION",
                            format!("{name}: id value of incorrect type: {id}"),
                            &[&name],
                        ));
                    }
                    let Some(row) = self.get(target, &id) else {
                        return Err(SaveError::new(
                            "INVALID_CROSS_REFERENCE_KEY",
                            "invalid cross reference id".to_string(),
                            &[&name],
                        ));
                    };
                    if target == "User" && row.get("IsActive") != Some(&Value::Bool(true)) {
                        return Err(SaveError::new(
                            "INACTIVE_OWNER_OR_USER",
                            format!("operation performed with inactive user [{id}] as owner of {object}"),
                            &[&name],
                        ));
                    }
                    Value::String(id)
                }
                Kind::Id => {
                    let id = value.as_str().and_then(normalize_id).ok_or_else(|| {
                        SaveError::new(
                            "MALFORMED_ID",
                            format!("{name}: id value of incorrect type: {value}"),
                            &[&name],
                        )
                    })?;
                    if self.object_of(&id).is_none() {
                        return Err(SaveError::new(
                            "INVALID_CROSS_REFERENCE_KEY",
                            "invalid cross reference id",
                            &[&name],
                        ));
                    }
                    Value::String(id)
                }
                Kind::Base64 => value.clone(),
            };
            clean.insert(name, checked);
        }
        if !not_writable.is_empty() {
            let list = not_writable.join(", ");
            let refs: Vec<&str> = not_writable.iter().map(String::as_str).collect();
            return Err(SaveError::new(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!("Unable to create/update fields: {list}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."),
                &refs,
            ));
        }
        if insert {
            let missing: Vec<&str> = fields
                .iter()
                .filter(|f| f.required && clean.get(f.name).is_none_or(|v| v.is_null() || v == ""))
                .map(|f| f.name)
                .collect();
            if !missing.is_empty() {
                return Err(SaveError::new(
                    "REQUIRED_FIELD_MISSING",
                    format!("Required fields are missing: [{}]", missing.join(", ")),
                    &missing,
                ));
            }
        }
        Ok(clean)
    }

    /// Inserts a record; returns its id.
    pub fn insert(
        &mut self,
        object: &str,
        body: &Map<String, Value>,
        actor: &Actor,
    ) -> Result<String, SaveError> {
        self.insert_with_blob(object, body, actor, None)
    }

    /// Inserts a record whose binary field may have arrived as a multipart part.
    pub fn insert_with_blob(
        &mut self,
        object: &str,
        body: &Map<String, Value>,
        actor: &Actor,
        blob: Option<Vec<u8>>,
    ) -> Result<String, SaveError> {
        let Some((name, prefix, fields)) = schema(object) else {
            return Err(SaveError::new(
                "NOT_FOUND",
                "The requested resource does not exist".to_string(),
                &[],
            ));
        };
        if name == "User" {
            return Err(SaveError::new(
                "INSUFFICIENT_ACCESS",
                "users cannot be created by this API user",
                &[],
            ));
        }
        let mut record = self.check_fields(name, &fields, body, true)?;
        let id = self.new_id(prefix);
        let now = (self.now)();
        record.insert("Id".into(), json!(id));
        record
            .entry("CreatedById")
            .or_insert_with(|| json!(actor.user_id));
        if record.get("CreatedById").is_some_and(Value::is_null) {
            record.insert("CreatedById".into(), json!(actor.user_id));
        }
        record.entry("CreatedDate").or_insert_with(|| json!(now));
        record.insert("LastModifiedDate".into(), json!(now));
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
                self.case_number += 1;
                record.insert(
                    "CaseNumber".into(),
                    json!(format!("{:08}", self.case_number)),
                );
                record.entry("Status").or_insert_with(|| json!("New"));
                record
                    .entry("OwnerId")
                    .or_insert_with(|| json!(actor.user_id));
            }
            "CaseComment" => {
                record.entry("IsPublished").or_insert(json!(false));
            }
            "ContentVersion" => {
                let doc = self.new_id("069");
                record.insert("ContentDocumentId".into(), json!(doc));
                let path = record.get("PathOnClient").cloned().unwrap_or(Value::Null);
                record.entry("Title").or_insert(path);
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
                let bytes = match (inline, blob) {
                    (Some(_), Some(_)) => {
                        return Err(SaveError::new(
                            "INVALID_MULTIPART_REQUEST",
                            "VersionData sent both in JSON and as a binary part",
                            &["VersionData"],
                        ))
                    }
                    (Some(b), None) | (None, Some(b)) => b,
                    (None, None) => {
                        return Err(SaveError::new(
                            "REQUIRED_FIELD_MISSING",
                            "Required fields are missing: [VersionData]",
                            &["VersionData"],
                        ))
                    }
                };
                record.insert("ContentSize".into(), json!(bytes.len().to_string()));
                self.blobs.insert(id.clone(), bytes);
            }
            _ => {}
        }
        self.table_mut(name)
            .expect("known")
            .insert(id.clone(), record);
        if let Some(j) = &mut self.journal {
            j.push(Undo::Created(name.to_owned(), id.clone()));
        }
        Ok(id)
    }

    pub fn update(
        &mut self,
        object: &str,
        id: &str,
        body: &Map<String, Value>,
    ) -> Result<(), SaveError> {
        let Some((name, _, fields)) = schema(object) else {
            return Err(SaveError::new(
                "NOT_FOUND",
                "The requested resource does not exist",
                &[],
            ));
        };
        let Some(id) = normalize_id(id).filter(|i| self.get(name, i).is_some()) else {
            return Err(SaveError::new(
                "NOT_FOUND",
                "The requested resource does not exist",
                &[],
            ));
        };
        let changes = self.check_fields(name, &fields, body, false)?;
        let now = (self.now)();
        let table = self.table_mut(name).expect("known");
        let row = table.get_mut(&id).expect("checked");
        let old = row.clone();
        for (k, v) in changes {
            row.insert(k, v);
        }
        row.insert("LastModifiedDate".into(), json!(now));
        if let Some(j) = &mut self.journal {
            j.push(Undo::Updated(name.to_owned(), id, old));
        }
        Ok(())
    }

    /// Upsert on an External ID field: (id, created).
    pub fn upsert(
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
        let Some((_, ext)) = self
            .external_ids
            .iter()
            .find(|(o, f)| o == name && f.eq_ignore_ascii_case(field))
            .cloned()
        else {
            return Err(UpsertError::Save(SaveError::new(
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
                &[],
            )));
        };
        let matches: Vec<String> = self
            .records
            .get(name)
            .map(|t| {
                t.iter()
                    .filter(|(_, r)| {
                        r.get(&ext)
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.eq_ignore_ascii_case(value))
                    })
                    .map(|(id, _)| id.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut body = body.clone();
        body.retain(|k, _| !k.eq_ignore_ascii_case(&ext));
        match matches.as_slice() {
            [] => {
                body.insert(ext.clone(), json!(value));
                self.insert(name, &body, actor)
                    .map(|id| (id, true))
                    .map_err(UpsertError::Save)
            }
            [one] => {
                // Audit fields can only be set on insert; an upsert that updates drops them.
                for a in AUDIT {
                    body.remove(a);
                }
                self.update(name, one, &body)
                    .map(|_| (one.clone(), false))
                    .map_err(UpsertError::Save)
            }
            many => Err(UpsertError::Multiple(many.to_vec())),
        }
    }

    /// Runs a query; returns (records, total before LIMIT is applied is not tracked).
    pub fn query(&self, text: &str, api: &str) -> Result<Vec<Value>, SaveError> {
        let q: Query =
            soql::parse(text).map_err(|m| SaveError::new("MALFORMED_QUERY", m.0, &[]))?;
        let Some((name, _, fields)) = schema(&q.object) else {
            return Err(SaveError::new(
                "INVALID_TYPE",
                format!("\n{text}\n^\nERROR at Row:1:Column:1\nsObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name.", q.object),
                &[],
            ));
        };
        let canonical = |f: &str| -> Option<String> {
            fields
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(f))
                .map(|x| x.name.to_owned())
                .or_else(|| {
                    self.external_ids
                        .iter()
                        .find(|(o, x)| o == name && x.eq_ignore_ascii_case(f))
                        .map(|(_, x)| x.clone())
                })
        };
        let mut used = q.fields.clone();
        if let Some(filter) = &q.filter {
            filter.fields(&mut used);
        }
        used.extend(q.order.iter().map(|o| o.field.clone()));
        for f in &used {
            if canonical(f).is_none() {
                return Err(SaveError::new(
                    "INVALID_FIELD",
                    format!("\n{text}\n^\nERROR at Row:1:Column:1\nNo such column '{f}' on entity '{name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."),
                    &[],
                ));
            }
        }
        let empty = BTreeMap::new();
        let table = self.records.get(name).unwrap_or(&empty);
        // Resolved once per query rather than once per row and field.
        let names: HashMap<String, String> = used
            .iter()
            .filter_map(|f| Some((f.clone(), canonical(f)?)))
            .collect();
        let read = |row: &Map<String, Value>, f: &str| -> Value {
            names
                .get(f)
                .and_then(|c| row.get(c).cloned())
                .unwrap_or(Value::Null)
        };
        let mut rows: Vec<&Map<String, Value>> = table
            .values()
            .filter(|row| {
                q.filter
                    .as_ref()
                    .is_none_or(|e| e.matches(&|f| read(row, f)))
            })
            .collect();
        for o in q.order.iter().rev() {
            rows.sort_by(|a, b| {
                let (x, y) = (read(a, &o.field), read(b, &o.field));

                match (&x, &y) {
                    (Value::Null, Value::Null) => std::cmp::Ordering::Equal,
                    (Value::Null, _) => {
                        if o.nulls_last {
                            std::cmp::Ordering::Greater
                        } else {
                            std::cmp::Ordering::Less
                        }
                    }
                    (_, Value::Null) => {
                        if o.nulls_last {
                            std::cmp::Ordering::Less
                        } else {
                            std::cmp::Ordering::Greater
                        }
                    }
                    _ => {
                        let c = cmp_values(&x, &y);
                        if o.descending {
                            c.reverse()
                        } else {
                            c
                        }
                    }
                }
            });
        }
        if let Some(limit) = q.limit {
            rows.truncate(limit);
        }
        Ok(rows
            .into_iter()
            .map(|row| {
                let id = row.get("Id").and_then(Value::as_str).unwrap_or_default();
                let mut out = Map::new();
                out.insert("attributes".into(), json!({"type": name, "url": format!("/services/data/v{api}/sobjects/{name}/{id}")}));
                for f in &q.fields {
                    let c = canonical(f).expect("checked");
                    out.insert(c.clone(), row.get(&c).cloned().unwrap_or(Value::Null));
                }
                Value::Object(out)
            })
            .collect())
    }
}

pub enum UpsertError {
    Save(SaveError),
    Multiple(Vec<String>),
}

fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.to_lowercase().cmp(&y.to_lowercase()),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

fn bad_value(object: &str, field: &str, value: &Value) -> SaveError {
    SaveError::new(
        "JSON_PARSER_ERROR",
        format!("Cannot deserialize instance of {field} on {object} from {value}"),
        &[],
    )
}

fn preview(text: &str) -> String {
    let p: String = text.chars().take(20).collect();
    if p.len() < text.len() {
        format!("{p}...")
    } else {
        p
    }
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
        let api = org.seed_user("api@x", "api@x", "API", "User", true);
        let actor = Actor { user_id: &api };
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
