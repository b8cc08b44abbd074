//! A strict in-memory Salesforce REST API, for tests and local runs.
//!
//! It implements exactly the resources the integration uses (OAuth token,
//! query, sObject create/update/upsert, sObject Collections, Composite,
//! Composite Graph, ContentVersion upload), and the reads `make
//! check-salesforce` makes of an org's set-up (versions, sObject Describe, the setup objects, limits),
//! with the status codes, error bodies, limits and
//! audit-field rules of the real API, so that a request passing here would
//! pass against a real org. A control surface under `/__control/` seeds data,
//! flips org settings and injects faults; in-process users call the same
//! operations through [`LocalSalesforce`].
//!
//! # Layout
//!
//! - this file: the credentials the server accepts and the public API.
//! - `server`: [`LocalSalesforce`]: start-up, the shared state (one struct
//!   per concern, each owned by the module below that uses it) and the
//!   in-process controls (org settings, rules, users, faults).
//! - `oauth`: the token endpoint, logins and the sessions they issue
//!   (`Logins`); inactive users cannot log in; `oauth/jwt.rs` checks JWT
//!   bearer assertions against the app's certificate, audience, expiry
//!   and pre-authorised users.
//! - `gate`: what every data call passes before it reaches the org: API
//!   version, session, injected latency and faults (`FaultPlan`), the API
//!   allowance (`Limits`), passed as the handlers' last extractor (`Passed`,
//!   or `WithBody` and `JsonCall` for a body); and the `Sforce-Limit-Info`
//!   header on every answer under `/services/data`.
//! - `operations`: query with paging (`Cursors`), create, read, update,
//!   upsert and sObject Collections, each shared by its route and
//!   Composite; `SaveHeaders` reads `Sforce-Auto-Assign` and
//!   `Sforce-Duplicate-Rule-Header`.
//! - `sosl`: the SOSL phone search.
//! - `describe`: the versions list and `sobjects/{Type}/describe`, built by
//!   `org/describe.rs` from the schema and settings the org enforces.
//! - `routes`: the router, the REST handlers and the ContentVersion
//!   multipart upload.
//! - `composite`: Composite: its limits, the checks of the whole request
//!   (inherited headers), per-subrequest headers, the `allOrNone`
//!   transaction and `Location` headers; `composite/refs.rs` resolves
//!   `@{reference}` in the url and in every string of the body, `[n]`
//!   indexing an sObject Collections result too.
//! - `composite/graph.rs`: Composite Graph (API 50.0+), run through the
//!   same operations as the direct routes (field rules, audit fields,
//!   duplicate and assignment rules, `@{` read in every body string). What
//!   it models: the `graphs`/`graphResponse`/`isSuccessful` shapes and a
//!   200 whatever the graphs did; each graph committed or rolled back on
//!   its own (a failed graph's node keeps its error, the others answer
//!   `PROCESSING_HALTED`); references only to earlier nodes of the same
//!   graph; one API call. `composite/graph/check.rs` refuses the whole
//!   request (400) for a node other than sObject create, read, update,
//!   upsert and read by External ID (no query, no sObject Collections;
//!   DELETE and POST by External ID are documented but not modelled, so
//!   refused too), and for the limits: 75 graphs, 500 nodes per graph
//!   and per request, depth 15 (nodes on a chain of references), 15
//!   different nodes (API version, method, object); after 14 failed
//!   graphs the rest answer `PROCESSING_HALTED` unrun. Neither a node's
//!   `httpHeaders` nor the request's own headers have any effect
//!   (undocumented), so assignment and duplicate rules always run.
//! - `control`: the `/__control/` surface.
//! - `org`: the records and their rules, with `org/schema.rs` (objects,
//!   fields, ids, audit fields), `org/validate.rs` (field checks on save:
//!   types, UTF-16 lengths, restricted picklists), `org/rules.rs` (Unique
//!   External IDs, the Contact duplicate rule, the Case assignment rule)
//!   `org/setup.rs` (the setup objects' rows: profiles, permission sets
//!   and assignments, assignment and duplicate rules, computed from the
//!   org's settings), `org/describe.rs` (the describe of an object)
//!   and `org/query.rs` (SOQL over the records, with its type checks, and
//!   single-record reads); `org.rs` itself saves records and keeps the
//!   rollback journal with its savepoints.
//! - [`soql`]: the SOQL subset, parsed strictly.

mod composite;
mod control;
mod describe;
mod gate;
mod lightning;
mod oauth;
mod operations;
mod org;
mod routes;
mod server;
pub mod soql;
mod sosl;

use serde_json::{json, Value};

pub use gate::{Fault, LimitInfoForm};
pub use server::{Counters, CustomField, LocalSalesforce};

/// Connected App and API user credentials the server accepts by default.
pub const CONSUMER_KEY: &str = "local-consumer-key";
pub const CONSUMER_SECRET: &str = "local-consumer-secret";
pub const API_USERNAME: &str = "witiop.api@acme.example";
pub const API_PASSWORD: &str = "local-password";
pub const SECURITY_TOKEN: &str = "LOCALSECURITYTOKEN";

/// The integration's Salesforce secret (`docs/configuration.md`) for a local
/// Salesforce at `url`, password flow, with `extra` keys merged over it.
pub fn secret_for(url: &str, extra: Value) -> Value {
    let mut secret = json!({
        "login_url": url,
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        "username": API_USERNAME,
        "password": API_PASSWORD,
        "security_token": SECURITY_TOKEN,
        "api_version": "62.0",
    });
    if let (Some(base), Value::Object(extra)) = (secret.as_object_mut(), extra) {
        base.extend(extra);
    }
    secret
}

/// Test-only RSA keys for the JWT bearer flow, committed in `src/test-keys/`
/// (see its README): their private halves are public, so nothing but tests
/// and local runs may trust them.
pub mod test_keys {
    /// The Connected App's key (PKCS#8), whose certificate is [`APP_CERTIFICATE`].
    pub const APP_PRIVATE_KEY: &str = include_str!("test-keys/app.key.pem");
    /// The certificate a test uploads with `LocalSalesforce::set_jwt_certificate`.
    pub const APP_CERTIFICATE: &str = include_str!("test-keys/app.cert.pem");
    /// A key (PKCS#1) whose certificate is uploaded nowhere.
    pub const OTHER_PRIVATE_KEY: &str = include_str!("test-keys/other.key.pem");
}

/// The agent of the product's example, as WitiOp knows them.
pub const EXAMPLE_AGENT_EMAIL: &str = "agent.demo@acme.example";
/// The user that customer comments are posted as in the example set-up.
pub const EXAMPLE_CUSTOMER_USERNAME: &str = "witiop.customer@acme.example";

/// Ids of the users seeded by [`LocalSalesforce::seed_example_users`].
#[derive(Debug, Clone)]
pub struct ExampleUsers {
    pub agent: String,
    pub customer: String,
}
