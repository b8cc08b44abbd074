//! SOQL over the org's records, with the type checks Salesforce makes on a
//! filter before it runs.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use super::schema::{normalize_id, Kind};
use super::{Org, SaveError};
use crate::soql::{self, Expr, Literal, Query};

impl Org {
    /// A record as `GET sobjects/{Type}/{id}` answers it: `attributes`, then
    /// every field, binary ones as the URL of their content.
    pub(crate) fn retrieve(&self, object: &str, id: &str, api: &str) -> Option<Value> {
        let (name, _, fields) = self.fields_of(object)?;
        let id = normalize_id(id)?;
        let row = self.records.get(name)?.get(&id)?;
        let url = format!("/services/data/v{api}/sobjects/{name}/{id}");
        let mut out = Map::new();
        out.insert("attributes".into(), json!({"type": name, "url": url}));
        for f in &fields {
            let value = if f.kind == Kind::Base64 {
                json!(format!("{url}/{}", f.name))
            } else {
                row.get(f.name).cloned().unwrap_or(Value::Null)
            };
            out.insert(f.name.into(), value);
        }
        for (_, f) in self.external_ids.iter().filter(|(o, _)| o == name) {
            out.insert(f.clone(), row.get(f).cloned().unwrap_or(Value::Null));
        }
        Some(Value::Object(out))
    }

    /// Whether `viewer` may see `row` of `object`. SOQL returns only the
    /// records the running user can see (queries run in the user's sharing
    /// context). A Contact linked to no Account is private to its owner and
    /// to users who can view all data, whatever the org's sharing model
    /// (Salesforce Help, "Organization-Wide Sharing Defaults": contacts that
    /// aren't linked to an account are private): the one sharing rule the
    /// integration's writes meet, so the one modelled. `None` is the org's
    /// own view (the control surface and the seeding of tests).
    pub(crate) fn visible(
        &self,
        object: &str,
        row: &Map<String, Value>,
        viewer: Option<&str>,
    ) -> bool {
        let Some(viewer) = viewer else { return true };
        if object != "Contact" || self.view_all.contains(viewer) {
            return true;
        }
        let has_account = row.get("AccountId").is_some_and(|a| !a.is_null());
        has_account || row.get("OwnerId").and_then(Value::as_str) == Some(viewer)
    }

    /// Runs a query: the matching rows after ORDER BY and LIMIT, shaped as
    /// the REST API returns them (paging is the caller's), as `viewer` sees
    /// them.
    pub(crate) fn query(
        &self,
        text: &str,
        api: &str,
        viewer: Option<&str>,
    ) -> Result<Vec<Value>, SaveError> {
        let mut q: Query =
            soql::parse(text).map_err(|m| SaveError::new("MALFORMED_QUERY", m.0, &[]))?;
        let Some((name, _, fields)) = self.fields_of(&q.object) else {
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
        let kind_of = |f: &str| -> Kind {
            fields
                .iter()
                .find(|x| x.name.eq_ignore_ascii_case(f))
                .map_or(Kind::Text(255), |x| x.kind)
        };
        let located = |(code, message): (&'static str, String)| {
            SaveError::new(
                code,
                format!("\n{text}\n^\nERROR at Row:1:Column:1\n{message}"),
                &[],
            )
        };
        if let Some(filter) = &mut q.filter {
            check_filter(filter, &kind_of).map_err(located)?;
        }
        for o in &q.order {
            if !sortable(kind_of(&o.field)) {
                return Err(located((
                    "INVALID_FIELD",
                    format!("field '{}' can not be sorted in a query call", o.field),
                )));
            }
        }
        let empty = BTreeMap::new();
        let setup = self.setup_rows(name);
        let table = setup
            .as_ref()
            .or_else(|| self.records.get(name))
            .unwrap_or(&empty);
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
            .filter(|row| self.visible(name, row, viewer))
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

/// Long text areas and binary fields can be selected but neither filtered
/// nor sorted ("fieldExpression Syntax", SOQL and SOSL Reference: "It can be
/// any field except a long text area field, encrypted data field, or
/// base64-encoded field").
fn sortable(kind: Kind) -> bool {
    !matches!(kind, Kind::LongText(_) | Kind::TextBytes(_) | Kind::Base64)
}

/// The value of a filter must have its field's type ("fieldExpression
/// Syntax": "Supply a value whose data type matches the field type of the
/// specified field"). A mismatch is an error, never zero rows. The codes and
/// messages are those Salesforce answers: `INVALID_FIELD` "value of filter
/// criterion for field 'X' must be of type T and should [not] be enclosed in
/// quotes", `INVALID_QUERY_FILTER_OPERATOR` "invalid ID field: …" and
/// "invalid operator on T field", `INVALID_FIELD` "field 'X' can not be
/// filtered in a query call". Id literals are read in their 18-character
/// form, so a 15-character id matches.
fn check_filter(
    e: &mut Expr,
    kind_of: &dyn Fn(&str) -> Kind,
) -> Result<(), (&'static str, String)> {
    let operator = |kind: Kind| -> (&'static str, String) {
        (
            "INVALID_QUERY_FILTER_OPERATOR",
            format!("invalid operator on {} field", type_name(kind)),
        )
    };
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter_mut().try_for_each(|e| check_filter(e, kind_of)),
        Expr::Not(e) => check_filter(e, kind_of),
        Expr::Like { field, .. } => {
            let kind = kind_of(field);
            filterable(field, kind)?;
            match kind {
                Kind::Text(_) | Kind::Picklist(_) => Ok(()),
                _ => Err(operator(kind)),
            }
        }
        Expr::Cmp { field, op, value } => {
            let kind = kind_of(field);
            filterable(field, kind)?;
            if kind == Kind::Bool && !matches!(op.as_str(), "=" | "!=" | "<>") {
                return Err(operator(kind));
            }
            check_literal(field, kind, value)
        }
        Expr::In { field, values, .. } => {
            let kind = kind_of(field);
            filterable(field, kind)?;
            values
                .iter_mut()
                .try_for_each(|v| check_literal(field, kind, v))
        }
    }
}

fn filterable(field: &str, kind: Kind) -> Result<(), (&'static str, String)> {
    if sortable(kind) {
        Ok(())
    } else {
        Err((
            "INVALID_FIELD",
            format!("field '{field}' can not be filtered in a query call"),
        ))
    }
}

fn type_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Bool => "boolean",
        Kind::Number => "double",
        Kind::DateTime => "dateTime",
        Kind::Id | Kind::Ref(_) => "id",
        Kind::Base64 => "base64",
        Kind::Text(_) | Kind::LongText(_) | Kind::TextBytes(_) | Kind::Picklist(_) => "string",
    }
}

fn check_literal(
    field: &str,
    kind: Kind,
    value: &mut Literal,
) -> Result<(), (&'static str, String)> {
    let wrong = |quoted: bool| {
        let should = if quoted { "should" } else { "should not" };
        Err((
            "INVALID_FIELD",
            format!(
                "value of filter criterion for field '{field}' must be of type {} and {should} be enclosed in quotes",
                type_name(kind)
            ),
        ))
    };
    match (kind, &*value) {
        (_, Literal::Null) => Ok(()),
        (Kind::Bool, Literal::Bool(_)) => Ok(()),
        (Kind::Number, Literal::Num(_)) => Ok(()),
        (Kind::Number, Literal::Str(_)) => wrong(false),
        (Kind::Bool | Kind::DateTime, _) => wrong(false),
        (Kind::Id | Kind::Ref(_), Literal::Str(s)) => match normalize_id(s) {
            Some(id) => {
                *value = Literal::Str(id);
                Ok(())
            }
            None => Err((
                "INVALID_QUERY_FILTER_OPERATOR",
                format!("invalid ID field: {s}"),
            )),
        },
        (_, Literal::Str(_)) => Ok(()),
        _ => wrong(true),
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
