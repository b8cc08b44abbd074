//! SOQL over the org's records.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use super::schema::schema;
use super::{Org, SaveError};
use crate::soql::{self, Query};

impl Org {
    /// Runs a query: the matching rows after ORDER BY and LIMIT, shaped as
    /// the REST API returns them (paging is the caller's).
    pub(crate) fn query(&self, text: &str, api: &str) -> Result<Vec<Value>, SaveError> {
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
