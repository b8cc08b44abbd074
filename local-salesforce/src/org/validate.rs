//! The checks a record passes on insert and update: known, writable fields,
//! types, lengths, restricted picklist values and references.

use serde_json::{Map, Value};

use super::schema::{key_prefix, normalize_id, Field, Kind, AUDIT};
use super::{Mode, Org, SaveError};

impl Org {
    /// The body's fields, checked and under their schema names.
    pub(super) fn check_fields(
        &self,
        object: &'static str,
        fields: &[Field],
        body: &Map<String, Value>,
        mode: Mode,
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
                        mode == Mode::Insert && self.audit_fields_enabled
                    } else if mode.inserts() {
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
                Kind::Text(max)
                | Kind::LongText(max)
                | Kind::Picklist(max)
                | Kind::TextBytes(max) => {
                    let text = match value {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(bad_value(object, &name, value)),
                    };
                    let len = if matches!(kind, Kind::TextBytes(_)) {
                        // "Multi-line text and rich text fields limits and
                        // restrictions" (help article 000382141): fields like
                        // CaseComment's body hold 4,000 *bytes* through the
                        // API. Counting UTF-8 bytes is the stricter reading
                        // of an encoding the article leaves open.
                        text.len()
                    } else {
                        // "Surrogate Pair Characters Are Treated as Two
                        // Characters" (help article 005166849): Salesforce
                        // counts UTF-16 code units, so an emoji takes two of
                        // a field's characters.
                        text.encode_utf16().count()
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
                    if matches!(kind, Kind::Picklist(_)) {
                        self.check_picklist(object, &name, &text)?;
                    }
                    Value::String(text)
                }
                // A Number field takes a JSON number; text, even digits, is
                // refused as the REST API's JSON parser refuses it.
                Kind::Number => match value {
                    Value::Number(_) => value.clone(),
                    _ => return Err(bad_value(object, &name, value)),
                },
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
                    let id = id_value(&name, value)?;
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
                    let id = id_value(&name, value)?;
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
        if mode.inserts() {
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
}

impl Org {
    /// A restricted picklist accepts only its values ("Restricted picklist"
    /// in the Metadata API's Picklist type: "users can't load or remove
    /// values through the API"); an unrestricted one stores any text. The
    /// comparison is exact, the stricter reading where the documentation
    /// says nothing about case.
    fn check_picklist(&self, object: &str, field: &str, value: &str) -> Result<(), SaveError> {
        let allowed = self
            .picklists
            .iter()
            .find(|((o, f), p)| {
                p.restricted && o.eq_ignore_ascii_case(object) && f.eq_ignore_ascii_case(field)
            })
            .map(|(_, p)| &p.values);
        match allowed {
            Some(values) if !values.iter().any(|v| v == value) => Err(SaveError::new(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                format!("{field}: bad value for restricted picklist field: {value}"),
                &[field],
            )),
            _ => Ok(()),
        }
    }
}

/// The 18-character id a reference or id field holds.
fn id_value(field: &str, value: &Value) -> Result<String, SaveError> {
    value.as_str().and_then(normalize_id).ok_or_else(|| {
        SaveError::new(
            "MALFORMED_ID",
            format!("{field}: id value of incorrect type: {value}"),
            &[field],
        )
    })
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
