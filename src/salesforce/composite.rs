//! Composite's request and response shapes.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::{parse_errors, SalesforceError};
use super::resources::encode_component;

/// The methods this project sends inside a Composite. Whether a failed
/// call may be sent again follows from it: a read any time, a write only
/// when Salesforce said it did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SubMethod {
    Get,
    Post,
}

impl SubMethod {
    pub fn is_read(self) -> bool {
        matches!(self, Self::Get)
    }
}

/// A subrequest's `referenceId`, and the way later subrequests of the same
/// Composite name its answer (`@{ref.path}`, "Composite Request Body",
/// requests_composite.htm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefId(Cow<'static, str>);

impl RefId {
    pub const fn named(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    /// `prefix` followed by `n`: one of several subrequests of one kind.
    pub fn numbered(prefix: &str, n: usize) -> Self {
        Self(Cow::Owned(format!("{prefix}{n}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `@{ref.path}`: a value of this subrequest's answer, for a later one.
    pub fn at(&self, path: &str) -> String {
        format!("@{{{}.{path}}}", self.0)
    }
}

impl std::fmt::Display for RefId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One subrequest of a Composite call.
#[derive(Debug, Clone, Serialize)]
pub struct Subrequest {
    pub method: SubMethod,
    pub url: String,
    #[serde(rename = "referenceId")]
    pub reference_id: RefId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// Headers for this subrequest alone. A subrequest inherits only
    /// `Accept`, `Authorization` and `Content-Type` from the Composite call,
    /// and may not name those three (REST API Developer Guide, "Composite
    /// Request Body" > "Composite Subrequest", requests_composite.htm), so
    /// headers such as `Sforce-Auto-Assign` must be set here to take effect.
    #[serde(
        rename = "httpHeaders",
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "header_map"
    )]
    pub http_headers: Vec<(&'static str, &'static str)>,
}

fn header_map<S: serde::Serializer>(
    headers: &[(&'static str, &'static str)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(headers.iter().copied())
}

/// Case assignment rules would otherwise re-own a Case the worker gave to the
/// agent: absent, the header means TRUE (REST API Developer Guide,
/// "Assignment Rule Header", headers_autoassign.htm).
pub const NO_AUTO_ASSIGN: (&str, &str) = ("Sforce-Auto-Assign", "FALSE");
/// An alert-type duplicate rule would otherwise block an API save with
/// `DUPLICATES_DETECTED` (REST API Developer Guide, "Duplicate Rule Header",
/// headers_duplicaterules.htm).
pub const ALLOW_DUPLICATE_SAVE: (&str, &str) = ("Sforce-Duplicate-Rule-Header", "allowSave=true");

impl Subrequest {
    /// The same subrequest with one more header of its own.
    pub fn with_header(mut self, header: (&'static str, &'static str)) -> Self {
        self.http_headers.push(header);
        self
    }

    pub fn query(data_path: &str, reference_id: RefId, soql: &str) -> Self {
        Self {
            method: SubMethod::Get,
            url: format!("{data_path}/query?q={}", encode_component(soql)),
            reference_id,
            body: None,
            http_headers: Vec::new(),
        }
    }

    /// A query whose text holds composite references (`@{ref.records[0].Id}`):
    /// those must reach Salesforce unencoded to be substituted.
    pub fn query_with_references(data_path: &str, reference_id: RefId, soql: &str) -> Self {
        let mut url = format!("{data_path}/query?q=");
        let mut rest = soql;
        while let Some(start) = rest.find("@{") {
            let end = rest[start..]
                .find('}')
                .map_or(rest.len(), |e| start + e + 1);
            url.push_str(&encode_component(&rest[..start]));
            url.push_str(&rest[start..end]);
            rest = &rest[end..];
        }
        url.push_str(&encode_component(rest));
        Self {
            method: SubMethod::Get,
            url,
            reference_id,
            body: None,
            http_headers: Vec::new(),
        }
    }

    /// A write carries `Sforce-Auto-Assign: FALSE` by construction: the
    /// header "also gets applied when making REST API calls that indirectly
    /// result in creating or updating Accounts, Cases, or Leads" ("Assignment
    /// Rule Header", headers_autoassign.htm), so a comment whose trigger or
    /// flow touches its Case must carry it as much as the Case itself.
    pub fn create(data_path: &str, reference_id: RefId, object: &str, fields: Value) -> Self {
        Self {
            method: SubMethod::Post,
            url: format!("{data_path}/sobjects/{object}"),
            reference_id,
            body: Some(fields),
            http_headers: vec![NO_AUTO_ASSIGN],
        }
    }

    /// An `allOrNone` sObject Collection insert; a write, like [`Self::create`].
    pub fn collection(data_path: &str, reference_id: RefId, records: Vec<Value>) -> Self {
        Self {
            method: SubMethod::Post,
            url: format!("{data_path}/composite/sobjects"),
            reference_id,
            body: Some(json!({"allOrNone": true, "records": records})),
            http_headers: vec![NO_AUTO_ASSIGN],
        }
    }
}

#[derive(Deserialize)]
pub(super) struct CompositeResponse {
    #[serde(rename = "compositeResponse")]
    pub(super) composite_response: Vec<SubResponse>,
}

/// One subrequest's answer inside a Composite response.
#[derive(Debug, Clone, Deserialize)]
pub struct SubResponse {
    #[serde(default)]
    pub body: Value,
    #[serde(rename = "httpStatusCode")]
    pub status: u16,
    #[serde(rename = "referenceId")]
    pub reference_id: RefId,
}

impl SubResponse {
    /// The subrequest's error, if it failed, including per-record failures
    /// that a collection reports under a 200.
    pub fn error(&self) -> Option<SalesforceError> {
        if !(200..300).contains(&self.status) {
            return Some(SalesforceError::Api {
                status: self.status,
                errors: parse_errors(&self.body).unwrap_or_default(),
            });
        }
        if let Value::Array(items) = &self.body {
            let failed: Vec<_> = items
                .iter()
                .filter(|r| r.get("success") == Some(&Value::Bool(false)))
                .cloned()
                .collect();
            if !failed.is_empty() {
                let mut errors = parse_errors(&Value::Array(failed)).unwrap_or_default();
                // The record that failed first, those rolled back with it after.
                errors.sort_by_key(|e| e.code.is_consequence());
                return Some(SalesforceError::Api {
                    status: 400,
                    errors,
                });
            }
        }
        None
    }

    /// The records of a query subrequest.
    pub fn records<T: DeserializeOwned>(&self) -> Result<Vec<T>, SalesforceError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        // Typed straight from the parsed answer: `&Value` is a deserializer.
        match self.body.get("records") {
            Some(records) => Vec::<T>::deserialize(records).map_err(SalesforceError::Decode),
            None => Ok(Vec::new()),
        }
    }

    /// True when a query subrequest has more pages than it returned.
    pub fn has_more(&self) -> Option<String> {
        self.body
            .get("nextRecordsUrl")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_says_not_to_run_assignment_rules() {
        let path = "/services/data/v62.0";
        let writes = [
            Subrequest::create(path, RefId::named("case"), "Case", json!({"Subject": "s"})),
            Subrequest::collection(
                path,
                RefId::named("comments0"),
                vec![json!({"CommentBody": "c"})],
            ),
            Subrequest::create(
                path,
                RefId::named("contact"),
                "Contact",
                json!({"LastName": "l"}),
            )
            .with_header(ALLOW_DUPLICATE_SAVE),
        ];
        for write in writes {
            let wire = serde_json::to_value(&write).unwrap();
            assert_eq!(wire["httpHeaders"]["Sforce-Auto-Assign"], "FALSE", "{wire}");
        }
        let read = serde_json::to_value(Subrequest::query(
            path,
            RefId::named("q"),
            "SELECT Id FROM Case",
        ))
        .unwrap();
        assert!(read.get("httpHeaders").is_none());
    }
}
