//! `case_fields`: the admin's own Case fields, literals or text with
//! placeholders from the event, parsed once when the secret is read.

use serde_json::{Map, Value};

/// The fields the integration sets itself: naming one in `case_fields`
/// would silently fight the product's own rules, so it is refused at load.
const OWN_FIELDS: [&str; 10] = [
    "Id",
    "Subject",
    "Description",
    "Origin",
    "OwnerId",
    "ContactId",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
];

/// One configured Case field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseField {
    /// The field's API name, as configured.
    pub name: String,
    pub value: CaseFieldValue,
}

/// What a configured field is set to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseFieldValue {
    /// A JSON number, boolean or null, sent as it is.
    Literal(Value),
    /// Text, with placeholders filled from each event.
    Text(Vec<Piece>),
}

/// A run of literal text or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Placeholder(Placeholder),
}

/// What a placeholder stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    ConversationId,
    ClosedAt,
    AgentEmail,
    AgentName,
    CustomerNumber,
    CustomerName,
    /// `{profile.<key>}`: the agent's profiling at close.
    Profile(String),
}

impl Placeholder {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "conversation.id" => Self::ConversationId,
            "conversation.closed_at" => Self::ClosedAt,
            "agent.email" => Self::AgentEmail,
            "agent.name" => Self::AgentName,
            "customer.number" => Self::CustomerNumber,
            "customer.name" => Self::CustomerName,
            other => Self::Profile(other.strip_prefix("profile.")?.to_owned()).non_empty()?,
        })
    }

    fn non_empty(self) -> Option<Self> {
        match &self {
            Self::Profile(key) if key.is_empty() => None,
            _ => Some(self),
        }
    }
}

/// Whether `name` can be a field's API name: only what Salesforce allows in
/// one, since names go into JSON bodies, URL paths and SOQL field lists.
pub(crate) fn is_api_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses the `case_fields` object; `external_id_field` is the integration's
/// own too. The error says which field and why.
pub(crate) fn parse_case_fields(
    value: &Map<String, Value>,
    external_id_field: Option<&str>,
) -> Result<Vec<CaseField>, String> {
    let mut fields = Vec::with_capacity(value.len());
    for (name, v) in value {
        if !is_api_name(name) {
            return Err(format!("{name:?} is not a field API name"));
        }
        let own = OWN_FIELDS
            .iter()
            .copied()
            .chain(external_id_field)
            .any(|f| f.eq_ignore_ascii_case(name));
        if own {
            return Err(format!("{name} is set by the integration itself"));
        }
        let value = match v {
            Value::String(text) => {
                CaseFieldValue::Text(parse_template(text).map_err(|e| format!("{name}: {e}"))?)
            }
            Value::Number(_) | Value::Bool(_) | Value::Null => CaseFieldValue::Literal(v.clone()),
            Value::Array(_) | Value::Object(_) => {
                return Err(format!(
                    "{name}: a value is text, a number, true, false or null"
                ))
            }
        };
        fields.push(CaseField {
            name: name.clone(),
            value,
        });
    }
    Ok(fields)
}

/// `"WhatsApp {customer.number}"` → literal and placeholder pieces. A `{`
/// that does not open a known placeholder is an error, so that a typo is
/// seen at load rather than in every Case.
fn parse_template(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Literal(rest[..open].to_owned()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed placeholder in {text:?}"))?;
        let name = &rest[open + 1..open + close];
        let placeholder = Placeholder::parse(name.trim())
            .ok_or_else(|| format!("unknown placeholder {{{name}}}"))?;
        pieces.push(Piece::Placeholder(placeholder));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Literal(rest.to_owned()));
    }
    Ok(pieces)
}

/// `case_fields` from a JSON object, for tests of what they become.
#[cfg(test)]
pub(crate) fn case_fields_for_tests(value: Value) -> Vec<CaseField> {
    parse_case_fields(value.as_object().expect("an object"), None).expect("valid case_fields")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Vec<CaseField>, String> {
        parse_case_fields(v.as_object().unwrap(), Some("WitiOp_Conversation_Id__c"))
    }

    #[test]
    fn literals_and_placeholders_are_read_once() {
        let fields = parse(json!({
            "Priority": "High",
            "Score__c": 3,
            "VIP__c": true,
            "Reason": null,
            "WhatsApp_Number__c": "{customer.number}",
            "Topic__c": "WhatsApp: { profile.category } ({agent.name})",
        }))
        .unwrap();
        let by_name = |n: &str| fields.iter().find(|f| f.name == n).unwrap().value.clone();
        assert_eq!(by_name("Score__c"), CaseFieldValue::Literal(json!(3)));
        assert_eq!(by_name("Reason"), CaseFieldValue::Literal(Value::Null));
        assert_eq!(
            by_name("Priority"),
            CaseFieldValue::Text(vec![Piece::Literal("High".into())])
        );
        assert_eq!(
            by_name("Topic__c"),
            CaseFieldValue::Text(vec![
                Piece::Literal("WhatsApp: ".into()),
                Piece::Placeholder(Placeholder::Profile("category".into())),
                Piece::Literal(" (".into()),
                Piece::Placeholder(Placeholder::AgentName),
                Piece::Literal(")".into()),
            ])
        );
    }

    #[test]
    fn the_integrations_own_fields_and_typos_are_refused() {
        for (value, expected) in [
            (
                json!({"Subject": "x"}),
                "Subject is set by the integration itself",
            ),
            (json!({"ownerid": "005x"}), "set by the integration itself"),
            (
                json!({"witiop_conversation_id__c": "x"}),
                "set by the integration itself",
            ),
            (
                json!({"Priority": "{agent.mail}"}),
                "unknown placeholder {agent.mail}",
            ),
            (json!({"Priority": "{profile.}"}), "unknown placeholder"),
            (
                json!({"Priority": "{customer.number"}),
                "unclosed placeholder",
            ),
            (json!({"Tags__c": ["a"]}), "a value is text"),
            (json!({"Bad Name": 1}), "is not a field API name"),
        ] {
            let err = parse(value.clone()).unwrap_err();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }
}
