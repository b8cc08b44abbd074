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
        let (_, login) = password_login(&http, &sf.url, API_USERNAME, API_PASSWORD).await;
        let token = login["access_token"].as_str().unwrap().to_owned();
        Self { sf, http, token }
    }

    /// The same org, seen by the user whose access token is `token`.
    pub fn as_token(&self, token: &str) -> Self {
        Self {
            sf: self.sf.clone(),
            http: self.http.clone(),
            token: token.to_owned(),
        }
    }

    /// Adds the agent the rule tests own records with (agent@acme.example,
    /// a full licence); returns its id.
    pub fn add_agent(&self) -> String {
        self.sf
            .add_user("agent@acme.crm", "agent@acme.example", "A", "Gent", true)
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

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body), &[]).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, &[]).await
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

    /// A Composite's `compositeResponse`: one result a subrequest.
    pub async fn composite_results(&self, all_or_none: bool, subs: Value) -> Value {
        let r = self.composite(all_or_none, subs).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["compositeResponse"].clone()
    }

    /// A Composite Graph request of `graphs` (each `{"graphId",
    /// "compositeRequest"}`).
    pub async fn graph(&self, graphs: Value) -> Reply {
        self.post("composite/graph", json!({ "graphs": graphs }))
            .await
    }

    /// A Composite Graph's `graphs` answer, the request having succeeded.
    pub async fn graph_results(&self, graphs: Value) -> Vec<Value> {
        let r = self.graph(graphs).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["graphs"].as_array().unwrap().clone()
    }

    /// Logs `username` in with the password flow; the token endpoint's answer.
    pub async fn password_login(&self, username: &str, password: &str) -> (StatusCode, Value) {
        password_login(&self.http, &self.sf.url, username, password).await
    }
}

async fn password_login(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> (StatusCode, Value) {
    let r = http
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", CONSUMER_KEY),
            ("client_secret", CONSUMER_SECRET),
            ("username", username),
            ("password", &format!("{password}{SECURITY_TOKEN}")),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// A Composite subrequest without a body: `method` on `path` (under the data
/// URL), named `reference`.
pub fn sub(method: &str, path: &str, reference: &str) -> Value {
    json!({"method": method, "url": url(path), "referenceId": reference})
}

/// A POST subrequest sending `body`.
pub fn sub_post(reference: &str, path: &str, body: Value) -> Value {
    with_body(sub("POST", path, reference), body)
}

/// A subrequest creating an `object` record with `fields`.
pub fn sub_create(reference: &str, object: &str, fields: Value) -> Value {
    sub_post(reference, &format!("sobjects/{object}"), fields)
}

/// A PATCH subrequest sending `body`.
pub fn sub_patch(reference: &str, path: &str, body: Value) -> Value {
    with_body(sub("PATCH", path, reference), body)
}

fn with_body(mut sub: Value, body: Value) -> Value {
    sub["body"] = body;
    sub
}

/// A subrequest with its own `httpHeaders`.
pub fn with_headers(mut sub: Value, headers: Value) -> Value {
    sub["httpHeaders"] = headers;
    sub
}

/// A graph of a Composite Graph request.
pub fn graph_of(id: &str, nodes: Value) -> Value {
    json!({"graphId": id, "compositeRequest": nodes})
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
