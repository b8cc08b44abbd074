//! The running server: start-up, the state its handlers share and the
//! in-process controls of [`LocalSalesforce`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::gate::{Fault, FaultPlan, LimitInfoForm, Limits};
use crate::oauth::Logins;
use crate::operations::Cursors;
use crate::org::{Actor, NewUser, Org, Picklist, USER_TYPES};
use crate::{secret_for, ExampleUsers, API_PASSWORD, API_USERNAME};
use crate::{EXAMPLE_AGENT_EMAIL, EXAMPLE_CUSTOMER_USERNAME};

/// Counters a test or benchmark reads.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counters {
    /// Calls counted against the org's API allowance (composite = 1, login = 0).
    pub api_calls: u64,
    pub logins: u64,
    pub failed_logins: u64,
    /// Data calls refused with 401.
    pub unauthorized: u64,
    pub faults_served: u64,
    /// Calls held by a hang (also counted in `faults_served`).
    pub hung: u64,
}

/// Everything the handlers share, behind one lock: a Composite holds it
/// across its subrequests, so no other request interleaves with its
/// transaction.
pub(crate) struct Inner {
    pub(crate) org: Org,
    pub(crate) logins: Logins,
    pub(crate) faults: FaultPlan,
    pub(crate) limits: Limits,
    pub(crate) cursors: Cursors,
    pub(crate) counters: Counters,
}

pub(crate) type Shared = Arc<Mutex<Inner>>;

/// The kinds of custom field an admin can add here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomField {
    /// Text of at most this many characters.
    Text(usize),
    /// A Number field.
    Number,
    /// A picklist of text values of at most this length (unrestricted
    /// unless its values are set restricted).
    Picklist(usize),
}

/// A running local Salesforce.
#[derive(Clone)]
pub struct LocalSalesforce {
    inner: Shared,
    pub url: String,
    pub api_user_id: String,
}

impl LocalSalesforce {
    /// Starts on `127.0.0.1:port` (0 = a free port), with the API user seeded.
    pub async fn start(port: u16) -> std::io::Result<Self> {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut org = Org::default();
        let api_user_id = org.seed_user(&NewUser {
            username: API_USERNAME,
            email: API_USERNAME,
            first: "WitiOp",
            last: "API",
            active: true,
            user_type: "Standard",
        });
        org.api_user = Some(api_user_id.clone());
        // The integration user can see every Contact, which the Contact
        // match needs (the runbook's setup gives it "View All" on Contact).
        org.view_all.insert(api_user_id.clone());
        let inner = Arc::new(Mutex::new(Inner {
            org,
            logins: Logins::new(url.clone(), API_USERNAME, API_PASSWORD, &api_user_id),
            faults: FaultPlan::default(),
            limits: Limits::default(),
            cursors: Cursors::default(),
            counters: Counters::default(),
        }));
        // Salesforce accepts a trailing slash on every resource; routing here does not.
        let app = tower::Layer::layer(
            &tower_http::normalize_path::NormalizePathLayer::trim_trailing_slash(),
            crate::routes::router(inner.clone()),
        );
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
            )
            .await;
        });
        Ok(Self {
            inner,
            url,
            api_user_id,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().expect("state lock"))
    }

    /// The integration's Salesforce secret for this server (see [`secret_for`]).
    pub fn secret(&self, extra: Value) -> Value {
        secret_for(&self.url, extra)
    }

    /// Seeds the users of the product's example: agent.demo (whose Email is
    /// the WitiOp agent's) and the user customer comments are posted as.
    pub fn seed_example_users(&self) -> ExampleUsers {
        ExampleUsers {
            agent: self.add_user(
                "agent.demo@acme.example.crm",
                EXAMPLE_AGENT_EMAIL,
                "Agent",
                "Demo",
                true,
            ),
            customer: self.add_user(
                EXAMPLE_CUSTOMER_USERNAME,
                EXAMPLE_CUSTOMER_USERNAME,
                "WitiOp",
                "Customer",
                true,
            ),
        }
    }

    /// Adds a user with a full (`Standard`) licence; returns its id.
    pub fn add_user(
        &self,
        username: &str,
        email: &str,
        first: &str,
        last: &str,
        active: bool,
    ) -> String {
        self.add_user_of_type(username, email, first, last, active, "Standard")
    }

    /// Adds a user of another licence, e.g. `PowerCustomerSuccess` (a
    /// portal user) or `CsnOnly` (Chatter only); returns its id.
    ///
    /// # Panics
    /// If `user_type` is not a documented UserType value.
    pub fn add_user_of_type(
        &self,
        username: &str,
        email: &str,
        first: &str,
        last: &str,
        active: bool,
        user_type: &str,
    ) -> String {
        assert!(
            USER_TYPES.contains(&user_type),
            "unknown UserType {user_type}: one of {USER_TYPES:?}"
        );
        let user = NewUser {
            username,
            email,
            first,
            last,
            active,
            user_type,
        };
        self.with(|s| s.org.seed_user(&user))
    }

    /// Inserts a record as the API user, bypassing limits (seeding): the
    /// field rules and Unique fields hold, the assignment and duplicate
    /// rules stay out of the way.
    pub fn insert(&self, object: &str, fields: Value) -> Result<String, String> {
        let api = self.api_user_id.clone();
        self.with(|s| {
            let body = fields.as_object().cloned().unwrap_or_default();
            s.org
                .insert(object, &body, &Actor::seeding(&api))
                .map_err(|e| e.message)
        })
    }

    /// Every record of an object, in creation order.
    pub fn records(&self, object: &str) -> Vec<Map<String, Value>> {
        self.with(|s| {
            s.org
                .records
                .get(object)
                .map(|t| t.values().cloned().collect())
                .unwrap_or_default()
        })
    }

    /// The bytes uploaded as a ContentVersion.
    pub fn blob(&self, content_version_id: &str) -> Option<Vec<u8>> {
        self.with(|s| s.org.blobs.get(content_version_id).cloned())
    }

    pub fn set_audit_fields(&self, enabled: bool) {
        self.with(|s| s.org.audit_fields_enabled = enabled);
    }

    /// Makes `field` of `object` an External ID field with the Unique
    /// attribute: upserts key on it, and a second record with a value
    /// already held is `DUPLICATE_VALUE`.
    pub fn add_external_id(&self, object: &str, field: &str) {
        self.with(|s| {
            s.org
                .external_ids
                .insert((object.to_owned(), field.to_owned()))
        });
    }

    /// Activates a Case assignment rule giving every Case it assigns to
    /// `owner` (a user id), or deactivates it (`None`, the default). It runs
    /// on each Case created or updated by a request that did not send
    /// `Sforce-Auto-Assign: FALSE`.
    pub fn set_case_assignment_rule(&self, owner: Option<String>) {
        self.with(|s| s.org.case_assignment_owner = owner);
    }

    /// Activates (or deactivates, the default) an alert-type duplicate rule
    /// on Contact matching first and last name: a duplicate save is
    /// `DUPLICATES_DETECTED` unless the request sends
    /// `Sforce-Duplicate-Rule-Header: allowSave=true`.
    pub fn set_contact_duplicate_rule(&self, active: bool) {
        self.with(|s| s.org.contact_duplicate_rule = active);
    }

    /// Makes a picklist (e.g. Case.Origin) restricted to `values`: any other
    /// value is `INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`. Picklists are
    /// unrestricted by default and store any text.
    pub fn restrict_picklist(&self, object: &str, field: &str, values: &[&str]) {
        self.set_picklist(object, field, values, true);
    }

    /// Gives a picklist (e.g. Case.Origin) the values `values`, restricted
    /// to them or not, as an admin edits its value set: describe lists
    /// them, and a restricted one refuses any other value.
    pub fn set_picklist(&self, object: &str, field: &str, values: &[&str], restricted: bool) {
        let picklist = Picklist {
            values: values.iter().map(|v| (*v).to_owned()).collect(),
            restricted,
        };
        self.with(|s| {
            s.org
                .picklists
                .insert((object.to_owned(), field.to_owned()), picklist)
        });
    }

    /// Takes away (or gives back) the API user's Read permission on
    /// `object`: describe answers 404 `NOT_FOUND`, queries `INVALID_TYPE`
    /// and saves `NOT_FOUND`, as for an object that does not exist.
    pub fn set_object_readable(&self, object: &str, readable: bool) {
        let Some(name) = crate::org::object_name(object) else {
            return;
        };
        self.with(|s| {
            if readable {
                s.org.unreadable.remove(name);
            } else {
                s.org.unreadable.insert(name);
            }
        });
    }

    /// Uploads `pem`, an X.509 certificate, to the Connected App for the JWT
    /// bearer flow ("Use digital signatures"); it replaces any other. Until
    /// one is uploaded no assertion verifies.
    ///
    /// # Errors
    /// If `pem` is not a PEM X.509 certificate.
    pub fn set_jwt_certificate(&self, pem: &str) -> Result<(), String> {
        let der = crate::oauth::certificate_der(pem)?;
        self.with(|s| s.logins.jwt.certificate = Some(der));
        Ok(())
    }

    /// Pre-authorises `username` for the Connected App, as a profile or
    /// permission set of the app under "Admin approved users are
    /// pre-authorized" does: the JWT bearer flow logs in only such users.
    pub fn pre_authorise(&self, username: &str) {
        self.with(|s| s.logins.jwt.pre_authorised.insert(username.to_owned()));
    }

    /// The `aud` the JWT bearer flow accepts; by default this server's URL,
    /// which stands in for `https://login.salesforce.com`. Setting a real
    /// org's audience shows how a production/sandbox mix-up is refused.
    pub fn set_jwt_audience(&self, audience: &str) {
        self.with(|s| s.logins.jwt.audience = audience.to_owned());
    }

    /// Runs this server's clock `ahead` of the caller's (negative: behind),
    /// as far as assertion expiry is concerned.
    pub fn set_clock_ahead(&self, ahead: Duration) {
        let seconds = i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX);
        self.with(|s| s.logins.jwt.clock_ahead = seconds);
    }

    /// Makes logins answer `instance_url` instead of this server's URL, as a
    /// login endpoint that is not Salesforce's might (the token response's
    /// `instance_url` field, OAuth 2.0 Username-Password Flow,
    /// https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_username_password_flow.htm).
    pub fn set_instance_url(&self, instance_url: &str) {
        self.with(|s| s.logins.base_url = instance_url.to_owned());
    }

    pub fn set_password_flow(&self, enabled: bool) {
        self.with(|s| s.logins.password_flow_enabled = enabled);
    }

    /// Adds a custom field to `object` (its name must end in `__c`);
    /// false when the object is unknown or the field exists.
    pub fn add_custom_field(&self, object: &str, field: &str, kind: CustomField) -> bool {
        let kind = match kind {
            CustomField::Text(max) => crate::org::Kind::Text(max),
            CustomField::Number => crate::org::Kind::Number,
            CustomField::Picklist(max) => crate::org::Kind::Picklist(max),
        };
        self.with(|s| s.org.add_custom_field(object, field, kind))
    }

    /// Lets the user `user_id` log in with the password flow as `username`
    /// (an agent reading what the integration wrote, for instance).
    pub fn allow_login(&self, user_id: &str, username: &str, password: &str) {
        self.with(|s| {
            s.logins
                .add_password(username.to_owned(), password.to_owned(), user_id.to_owned())
        });
    }

    pub fn set_password(&self, username: &str, password: &str) {
        self.with(|s| s.logins.set_password(username, password.to_owned()));
    }

    /// Counts `calls` against the allowance, as other clients of the org
    /// would have used it today.
    pub fn use_api_calls(&self, calls: u64) {
        self.with(|s| s.counters.api_calls += calls);
    }

    pub fn set_api_limit(&self, limit: u64) {
        self.with(|s| s.limits.api_limit = limit);
    }

    /// Invalidates every issued token, as a session timeout or revocation would.
    pub fn expire_tokens(&self) {
        self.with(|s| s.logins.expire_all());
    }

    /// Expires all tokens every `calls` authenticated calls (0 = never).
    pub fn expire_tokens_every(&self, calls: u64) {
        self.with(|s| s.logins.expire_every = calls);
    }

    /// Lets `skip` data calls through, then serves `count` faults.
    pub fn inject_after(&self, skip: u64, fault: Fault, count: usize) {
        self.with(|s| s.faults.inject_after(skip, fault, count));
    }

    /// Each data call fails with `fault` with the given probability.
    pub fn set_fault_rates(&self, rates: Vec<(Fault, f64)>) {
        self.with(|s| s.faults.rates = rates);
    }

    /// The org's allowance is exhausted for `window`, starting now.
    pub fn limit_for(&self, window: Duration) {
        self.with(|s| s.limits.exhausted_until = Some(std::time::Instant::now() + window));
    }

    pub fn inject(&self, fault: Fault, count: usize) {
        self.with(|s| s.faults.inject(fault, count));
    }

    /// For `window` from now, every data call and login is accepted and held
    /// for `stall` before any answer: a Salesforce that hangs.
    pub fn hang_for(&self, window: Duration, stall: Duration) {
        self.with(|s| s.faults.hang = Some((std::time::Instant::now() + window, stall)));
    }

    /// Which fields `Sforce-Limit-Info` carries (`api-usage` alone by default).
    pub fn set_limit_info_form(&self, form: LimitInfoForm) {
        self.with(|s| s.limits.info_form = form);
    }

    /// Activates (or deactivates, the default) a CaseComment trigger that
    /// updates the comment's parent Case, as orgs have to stamp a "last
    /// customer contact" date: assignment rules then run on that Case unless
    /// the comment's own request says `Sforce-Auto-Assign: FALSE`.
    pub fn set_case_comment_trigger(&self, active: bool) {
        self.with(|s| s.org.case_comment_trigger = active);
    }

    /// The API user cannot see the records a Unique value clashes with:
    /// `DUPLICATE_VALUE` names neither the field nor the record.
    pub fn set_clashing_records_hidden(&self, hidden: bool) {
        self.with(|s| s.org.clashing_records_hidden = hidden);
    }

    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.faults.latency = latency);
    }

    pub fn counters(&self) -> Counters {
        self.with(|s| s.counters.clone())
    }

    pub fn reset_counters(&self) {
        self.with(|s| s.counters = Counters::default());
    }
}
