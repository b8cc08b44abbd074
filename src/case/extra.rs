//! The admin's own Case fields (`case_fields`): filled from the event and
//! checked against what the org's describe says of each field, so that a
//! value Salesforce would refuse is left out (and reported) instead of
//! costing the whole Case.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::fields::salesforce_datetime;
use crate::config::{CaseField, CaseFieldValue, Piece, Placeholder};
use crate::event::Conversation;
use crate::phone::CustomerNumber;
use crate::text::utf16_len;

/// What the org's describe of Case says of a field, as far as a value's
/// fate goes ("sObject Describe", resources_sobject_describe.htm; the
/// field properties are the Field type of "DescribeSObjectResult", SOAP API
/// Developer Guide: `createable`, `nillable`, `type`, `length`,
/// `picklistValues`, `restrictedPicklist`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRule {
    /// The field's API name as the org spells it.
    pub name: String,
    pub createable: bool,
    pub nillable: bool,
    pub kind: FieldKind,
}

/// The kinds of value a field takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// string, textarea, email, phone, url: text of at most `max` characters.
    Text {
        max: usize,
    },
    /// A picklist: a restricted one takes only its active values.
    Picklist {
        values: Vec<String>,
        restricted: bool,
        max: usize,
    },
    /// double, int, currency, percent.
    Number,
    Boolean,
    /// Dates, references and the rest: left to Salesforce.
    Other,
}

/// Every Case field the describe listed, by lower-case name (API names are
/// case-insensitive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseFieldRules(HashMap<String, FieldRule>);

impl CaseFieldRules {
    /// Reads a describe answer; `None` when it has no `fields` list.
    pub fn from_describe(describe: &Value) -> Option<Self> {
        let fields = describe.get("fields")?.as_array()?;
        let rules = fields
            .iter()
            .filter_map(|f| {
                let name = f.get("name")?.as_str()?.to_owned();
                let flag = |k: &str| f.get(k).and_then(Value::as_bool).unwrap_or(false);
                let max = f.get("length").and_then(Value::as_u64).unwrap_or(0) as usize;
                let kind = match f.get("type").and_then(Value::as_str).unwrap_or("") {
                    "string" | "textarea" | "email" | "phone" | "url" => FieldKind::Text { max },
                    "picklist" => FieldKind::Picklist {
                        values: f
                            .get("picklistValues")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter(|v| v.get("active").and_then(Value::as_bool) != Some(false))
                            .filter_map(|v| v.get("value")?.as_str().map(str::to_owned))
                            .collect(),
                        restricted: flag("restrictedPicklist"),
                        max,
                    },
                    "double" | "int" | "long" | "currency" | "percent" => FieldKind::Number,
                    "boolean" => FieldKind::Boolean,
                    _ => FieldKind::Other,
                };
                let rule = FieldRule {
                    name: name.clone(),
                    createable: flag("createable"),
                    nillable: flag("nillable"),
                    kind,
                };
                Some((name.to_ascii_lowercase(), rule))
            })
            .collect();
        Some(Self(rules))
    }

    fn get(&self, name: &str) -> Option<&FieldRule> {
        self.0.get(&name.to_ascii_lowercase())
    }
}

/// A configured field left out of a Case, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub field: String,
    pub reason: String,
}

/// The configured fields' values for this conversation: those the org will
/// take, and those left out with their reason.
pub fn case_field_values(
    configured: &[CaseField],
    conversation: &Conversation,
    number: &CustomerNumber,
    rules: &CaseFieldRules,
) -> (Map<String, Value>, Vec<LeftOut>) {
    let mut values = Map::new();
    let mut left_out = Vec::new();
    for field in configured {
        let value = match &field.value {
            CaseFieldValue::Literal(v) => v.clone(),
            CaseFieldValue::Text(pieces) => Value::String(render(pieces, conversation, number)),
        };
        match fit(field, value, rules) {
            Ok((name, value)) => {
                values.insert(name, value);
            }
            Err(reason) => left_out.push(LeftOut {
                field: field.name.clone(),
                reason,
            }),
        }
    }
    (values, left_out)
}

/// Fills the placeholders; a missing value is empty.
fn render(pieces: &[Piece], conversation: &Conversation, number: &CustomerNumber) -> String {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Placeholder(p) => out.push_str(&match p {
                Placeholder::ConversationId => conversation.id.to_string(),
                Placeholder::ClosedAt => conversation
                    .closed_at
                    .map(salesforce_datetime)
                    .unwrap_or_default(),
                Placeholder::AgentEmail => conversation.agent.email.clone(),
                Placeholder::AgentName => conversation.agent.name.clone().unwrap_or_default(),
                Placeholder::CustomerNumber => number.display(),
                Placeholder::CustomerName => conversation.customer.name.clone().unwrap_or_default(),
                Placeholder::Profile(key) => conversation
                    .profile
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            }),
        }
    }
    out
}

/// The value as the field takes it, under the org's spelling of its name,
/// or why Salesforce would refuse it.
fn fit(field: &CaseField, value: Value, rules: &CaseFieldRules) -> Result<(String, Value), String> {
    let Some(rule) = rules.get(&field.name) else {
        return Err("Case has no such field, or the API user cannot see it".into());
    };
    if !rule.createable {
        return Err("the API user cannot set this field on a new Case".into());
    }
    let name = rule.name.clone();
    if value.is_null() {
        return if rule.nillable {
            Ok((name, value))
        } else {
            Err("the field cannot be empty".into())
        };
    }
    let fitted = match (&rule.kind, &value) {
        (FieldKind::Text { max }, Value::String(s)) => within(s, *max).map(|()| value.clone()),
        (
            FieldKind::Picklist {
                values,
                restricted,
                max,
            },
            Value::String(s),
        ) => {
            if *restricted && !values.iter().any(|v| v == s) {
                Err("not one of the restricted picklist's values".into())
            } else {
                within(s, *max).map(|()| value.clone())
            }
        }
        (FieldKind::Number, Value::Number(_)) => Ok(value.clone()),
        (FieldKind::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| "the field takes a number".to_owned()),
        (FieldKind::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (FieldKind::Boolean, Value::String(s)) => match s.trim() {
            "true" => Ok(json!(true)),
            "false" => Ok(json!(false)),
            _ => Err("the field takes true or false".into()),
        },
        (FieldKind::Other, _) => Ok(value.clone()),
        (FieldKind::Text { .. } | FieldKind::Picklist { .. }, _) => {
            Err("the field takes text".into())
        }
        (FieldKind::Number, _) => Err("the field takes a number".into()),
        (FieldKind::Boolean, _) => Err("the field takes true or false".into()),
    };
    fitted.map(|v| (name, v))
}

/// Salesforce counts a text field's length in UTF-16 code units.
fn within(text: &str, max: usize) -> Result<(), String> {
    if max > 0 && utf16_len(text) > max {
        Err(format!("longer than the field's {max} characters"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::case_fields_for_tests;
    use crate::event::{parse_body, ParsedBody};

    fn describe() -> CaseFieldRules {
        CaseFieldRules::from_describe(&json!({"fields": [
            {"name": "Priority", "type": "picklist", "createable": true, "nillable": true, "length": 40,
             "restrictedPicklist": true, "picklistValues": [
                {"value": "High", "active": true}, {"value": "Low", "active": true},
                {"value": "Retired", "active": false}]},
            {"name": "Status", "type": "picklist", "createable": true, "nillable": true, "length": 40,
             "restrictedPicklist": false, "picklistValues": [{"value": "New", "active": true}]},
            {"name": "Topic__c", "type": "string", "createable": true, "nillable": true, "length": 20},
            {"name": "Score__c", "type": "double", "createable": true, "nillable": true},
            {"name": "Notes__c", "type": "textarea", "createable": true, "nillable": true, "length": 255},
            {"name": "VIP__c", "type": "boolean", "createable": true, "nillable": false},
            {"name": "CaseNumber", "type": "string", "createable": false, "nillable": false, "length": 30},
        ]}))
        .unwrap()
    }

    fn conversation() -> (Conversation, CustomerNumber) {
        let ParsedBody::Closed(e) =
            parse_body(include_bytes!("../../events/conversation-closed.json")).unwrap()
        else {
            unreachable!()
        };
        let number = CustomerNumber::parse(&e.conversation.customer.number);
        (e.conversation, number)
    }

    #[test]
    fn values_the_org_takes_are_set_and_the_rest_left_out_with_a_reason() {
        let (c, number) = conversation();
        let configured = case_fields_for_tests(json!({
            "priority": "High",
            "Status": "Escalated",
            "Topic__c": "{profile.category} via {customer.number}",
            "Score__c": 7.5,
            "VIP__c": "{profile.vip}",
            "CaseNumber": "x",
            "Nope__c": "x",
        }));
        let (values, left_out) = case_field_values(&configured, &c, &number, &describe());
        assert_eq!(values["Priority"], "High", "the org's spelling of the name");
        assert_eq!(
            values["Status"], "Escalated",
            "an unrestricted picklist takes any text"
        );
        assert_eq!(values["Score__c"], 7.5);
        let reasons: HashMap<&str, &str> = left_out
            .iter()
            .map(|l| (l.field.as_str(), l.reason.as_str()))
            .collect();
        // "Billing via +393331234567" is 25 characters.
        assert_eq!(reasons["Topic__c"], "longer than the field's 20 characters");
        assert_eq!(reasons["VIP__c"], "the field takes true or false");
        assert_eq!(
            reasons["CaseNumber"],
            "the API user cannot set this field on a new Case"
        );
        assert!(reasons["Nope__c"].starts_with("Case has no such field"));
        assert_eq!(left_out.len(), 4);
    }

    #[test]
    fn placeholders_are_filled_from_the_event() {
        let (c, number) = conversation();
        let configured = case_fields_for_tests(json!({
            "Priority": "Retired",
            "Topic__c": "{profile.category}",
            "Score__c": "{profile.missing}",
        }));
        let (values, left_out) = case_field_values(&configured, &c, &number, &describe());
        assert_eq!(values["Topic__c"], "Billing");
        let reasons: Vec<&str> = left_out.iter().map(|l| l.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "not one of the restricted picklist's values",
                "the field takes a number"
            ]
        );
        let full = case_field_values(
            &case_fields_for_tests(
                json!({"Notes__c": "{conversation.id} {agent.email} {customer.name} {conversation.closed_at}"}),
            ),
            &c,
            &number,
            &describe(),
        );
        assert_eq!(
            full.0["Notes__c"],
            "1793 agent.demo@acme.example Maria C. 2026-11-24T10:15:40.000Z"
        );
    }
}
