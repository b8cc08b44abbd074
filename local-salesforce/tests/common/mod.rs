//! A local Salesforce and a logged-in HTTP client for the behaviour tests.

#![allow(dead_code)] // each test file uses part of it

use local_salesforce::{LocalSalesforce, API_PASSWORD, API_USERNAME, SECURITY_TOKEN};
use local_salesforce::{CONSUMER_KEY, CONSUMER_SECRET};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const V: &str = "62.0";

pub struct Org {
    pub sf: LocalSalesforce,
    pub http: reqwest::Client,
    pub token: String,
}

/// What a call answered.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Org {
    pub async fn start() -> Self {
        let sf = LocalSalesforce::start(0).await.unwrap();
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{}/services/oauth2/token", sf.url))
            .form(&[
                ("grant_type", "password"),
                ("client_id", CONSUMER_KEY),
                ("client_secret", CONSUMER_SECRET),
                ("username", API_USERNAME),
                ("password", &format!("{API_PASSWORD}{SECURITY_TOKEN}")),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().unwrap().to_owned();
        Self { sf, http, token }
    }

    /// A data call to `path` under `/services/data/vXX.X/`, with extra headers.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}/services/data/v{V}/{path}", self.sf.url))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    pub async fn query(&self, soql: &str) -> Reply {
        let mut url = reqwest::Url::parse("http://x/").unwrap();
        url.query_pairs_mut().append_pair("q", soql);
        let q = url.query().unwrap().to_owned();
        self.call(Method::GET, &format!("query?{q}"), None, &[])
            .await
    }

    pub async fn composite(&self, all_or_none: bool, subs: Value) -> Reply {
        self.post(
            "composite",
            json!({"allOrNone": all_or_none, "compositeRequest": subs}),
        )
        .await
    }
}

/// `/services/data/vXX.X/` + `path`, as a subrequest's url.
pub fn url(path: &str) -> String {
    format!("/services/data/v{V}/{path}")
}

/// The errorCode of a REST error array, or the statusCode of a save result.
pub fn code(body: &Value) -> &str {
    body.get(0)
        .and_then(|e| e.get("errorCode"))
        .or_else(|| body.pointer("/errors/0/statusCode"))
        .and_then(Value::as_str)
        .unwrap_or("")
}
