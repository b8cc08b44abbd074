//! The resources the integration uses: query, sObject Collections,
//! Composite and ContentVersion upload.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{Replay, SalesforceClient};
use super::composite::{CompositeResponse, SubResponse, Subrequest};
use super::error::SalesforceError;

impl SalesforceClient {
    /// Runs a SOQL query and follows `nextRecordsUrl` to the end.
    pub async fn query<T: DeserializeOwned>(&self, soql: &str) -> Result<Vec<T>, SalesforceError> {
        let path = format!("{}/query?q={}", self.data_path(), encode_component(soql));
        let mut page: QueryPage<T> = self.json(Method::GET, &path, None, Replay::Safe).await?;
        let mut records = std::mem::take(&mut page.records);
        while let Some(next) = page.next_records_url.take() {
            page = self.json(Method::GET, &next, None, Replay::Safe).await?;
            records.append(&mut page.records);
        }
        Ok(records)
    }

    /// The remaining records of a query answered inside a Composite.
    pub async fn rest_of_query<T: DeserializeOwned>(
        &self,
        first: &SubResponse,
    ) -> Result<Vec<T>, SalesforceError> {
        let mut records = first.records()?;
        let mut next = first.has_more();
        while let Some(url) = next {
            let mut page: QueryPage<T> = self.json(Method::GET, &url, None, Replay::Safe).await?;
            records.append(&mut page.records);
            next = page.next_records_url;
        }
        Ok(records)
    }

    /// sObject Collections create (at most 200 records); results in input order.
    pub async fn create_collection(
        &self,
        records: &[Value],
        all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        self.create_collection_with(records, all_or_none, &[]).await
    }

    /// The same, with request headers such as `Sforce-Duplicate-Rule-Header`.
    /// Outside a Composite nothing in the body is read as a reference, so
    /// this is how text containing `@{` reaches Salesforce unchanged.
    pub async fn create_collection_with(
        &self,
        records: &[Value],
        all_or_none: bool,
        headers: &[(&'static str, &'static str)],
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        let path = format!("{}/composite/sobjects", self.data_path());
        let body = json!({"allOrNone": all_or_none, "records": records});
        let build = |r: RequestBuilder| {
            headers
                .iter()
                .fold(r.json(&body), |r, (name, value)| r.header(*name, *value))
        };
        let (_, bytes) = self
            .send(Method::POST, &path, &build, Replay::OnlyIfRejected)
            .await?;
        serde_json::from_slice(&bytes).map_err(SalesforceError::Decode)
    }

    /// An object's describe ("sObject Describe", resources_sobject_describe.htm):
    /// its fields with their types, lengths, picklist values and whether
    /// the API user may set them.
    pub async fn describe(&self, object: &str) -> Result<Value, SalesforceError> {
        let path = format!(
            "{}/sobjects/{}/describe",
            self.data_path(),
            encode_component(object)
        );
        self.json(Method::GET, &path, None, Replay::Safe).await
    }

    /// Composite: up to 25 subrequests in one API call.
    pub async fn composite(
        &self,
        requests: &[Subrequest],
        all_or_none: bool,
    ) -> Result<Vec<SubResponse>, SalesforceError> {
        let path = format!("{}/composite", self.data_path());
        let body = json!({"allOrNone": all_or_none, "compositeRequest": requests});
        let replay = if requests.iter().all(|r| r.method.is_read()) {
            Replay::Safe
        } else {
            Replay::OnlyIfRejected
        };
        let response: CompositeResponse =
            self.json(Method::POST, &path, Some(&body), replay).await?;
        Ok(response.composite_response)
    }

    /// Uploads a file as a ContentVersion with a multipart body, the bytes
    /// streamed from `data` rather than base64-encoded in memory.
    pub async fn upload_content_version(
        &self,
        entity: &Value,
        file_name: &str,
        content_type: &str,
        length: u64,
        data: impl Fn() -> reqwest::Body + Sync,
    ) -> Result<String, SalesforceError> {
        let path = format!("{}/sobjects/ContentVersion", self.data_path());
        let entity_text = entity.to_string();
        let build = |r: RequestBuilder| {
            let json_part = reqwest::multipart::Part::text(entity_text.clone())
                .mime_str("application/json")
                .expect("static mime type");
            // Every part's length known, the request states its
            // Content-Length instead of a chunked body of unknown size.
            let file_part = reqwest::multipart::Part::stream_with_length(data(), length)
                .file_name(file_name.to_owned())
                .mime_str(content_type)
                .unwrap_or_else(|_| {
                    reqwest::multipart::Part::stream_with_length(data(), length)
                        .file_name(file_name.to_owned())
                });
            let form = reqwest::multipart::Form::new()
                .part("entity_content", json_part)
                .part("VersionData", file_part);
            // A file may take longer than a call; a stalled one still
            // fails after the client's read timeout.
            r.multipart(form)
                .timeout(crate::deadline::bound(Duration::from_secs(300)))
        };
        let (_, bytes) = self
            .send(Method::POST, &path, &build, Replay::OnlyIfRejected)
            .await?;
        let result: SaveResult = serde_json::from_slice(&bytes).map_err(SalesforceError::Decode)?;
        result.into_id()
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters: a
/// query value or a path segment.
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct QueryPage<T> {
    #[serde(default = "Vec::new")]
    pub(super) records: Vec<T>,
    pub(super) next_records_url: Option<String>,
}

/// A save result of create, upsert or a collection.
#[derive(Debug, Clone, Deserialize)]
pub struct SaveResult {
    pub id: Option<String>,
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<super::error::ApiError>,
    pub created: Option<bool>,
}

impl SaveResult {
    pub fn into_id(self) -> Result<String, SalesforceError> {
        match (self.success, self.id) {
            (true, Some(id)) => Ok(id),
            _ => Err(SalesforceError::Api {
                status: 400,
                errors: self.errors,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_encoded() {
        assert_eq!(encode_component("a b+c/'é"), "a%20b%2Bc%2F%27%C3%A9");
    }
}
