//! The OAuth token endpoint and the sessions it issues.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde_json::json;

use crate::server::{Inner, Shared};
use crate::{CONSUMER_KEY, CONSUMER_SECRET, SECURITY_TOKEN};

mod jwt;
pub(crate) use jwt::certificate_der;
use jwt::{pre_authorised_user, verify_assertion, JWT_BEARER_GRANT};

struct Token {
    user_id: String,
    valid: bool,
}

/// Who can log in, and the sessions issued to them.
pub(crate) struct Logins {
    tokens: HashMap<String, Token>,
    /// username → (password, user id)
    passwords: HashMap<String, (String, String)>,
    pub(crate) password_flow_enabled: bool,
    client_credentials_user: Option<String>,
    /// Tokens expire after this many authenticated calls (0 = never).
    pub(crate) expire_every: u64,
    calls_since_expiry: u64,
    /// The `instance_url` a login answers with: this server, unless a test
    /// makes it answer another (a login endpoint that is not Salesforce's).
    pub(crate) base_url: String,
    /// The JWT bearer flow's settings of the Connected App.
    pub(crate) jwt: JwtBearer,
}

/// What the Connected App holds for the JWT bearer flow.
pub(crate) struct JwtBearer {
    /// DER of the certificate uploaded to the app ("Use digital
    /// signatures"); none until a test registers one, and then no assertion
    /// verifies.
    pub(crate) certificate: Option<Vec<u8>>,
    /// Usernames pre-authorised for the app ("Admin approved users are
    /// pre-authorized", through a profile or permission set).
    pub(crate) pre_authorised: HashSet<String>,
    /// The `aud` this server accepts. A real org accepts
    /// `https://login.salesforce.com` (production) or
    /// `https://test.salesforce.com` (sandbox); this server stands in for
    /// them at its own URL, which is therefore the default.
    pub(crate) audience: String,
    /// How far this server's clock runs ahead of the caller's (seconds):
    /// a skewed clock is how a fresh assertion arrives expired.
    pub(crate) clock_ahead: i64,
}

impl Logins {
    /// The API user can log in with both flows; client credentials run as it.
    pub(crate) fn new(base_url: String, username: &str, password: &str, user_id: &str) -> Self {
        let mut passwords = HashMap::new();
        passwords.insert(
            username.to_owned(),
            (password.to_owned(), user_id.to_owned()),
        );
        Self {
            tokens: HashMap::new(),
            passwords,
            password_flow_enabled: true,
            client_credentials_user: Some(user_id.to_owned()),
            expire_every: 0,
            calls_since_expiry: 0,
            jwt: JwtBearer {
                certificate: None,
                pre_authorised: HashSet::new(),
                audience: base_url.clone(),
                clock_ahead: 0,
            },
            base_url,
        }
    }

    /// Lets a user log in with the password flow.
    pub(crate) fn add_password(&mut self, username: String, password: String, user_id: String) {
        self.passwords.insert(username, (password, user_id));
    }

    /// Changes the password of a user that can log in; others are ignored.
    pub(crate) fn set_password(&mut self, username: &str, password: String) {
        if let Some(entry) = self.passwords.get_mut(username) {
            entry.0 = password;
        }
    }

    /// The id of a user that can log in.
    pub(crate) fn user_id_of(&self, username: &str) -> Option<&str> {
        self.passwords.get(username).map(|p| p.1.as_str())
    }

    pub(crate) fn expire_all(&mut self) {
        self.tokens.values_mut().for_each(|t| t.valid = false);
    }

    /// The user a bearer token acts as, or `None` for a 401. The call counts
    /// towards the forced expiry of `expire_every`.
    pub(crate) fn authenticate(&mut self, bearer: &str) -> Option<String> {
        let user_id = match self.tokens.get(bearer) {
            Some(t) if t.valid => t.user_id.clone(),
            _ => return None,
        };
        if self.expire_every > 0 {
            self.calls_since_expiry += 1;
            if self.calls_since_expiry > self.expire_every {
                self.calls_since_expiry = 0;
                self.expire_all();
                return None;
            }
        }
        Some(user_id)
    }
}

pub(crate) async fn token(
    State(state): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let stall = state.lock().expect("state lock").faults.stall();
    if let Some(stall) = stall {
        return crate::gate::hang(&state, stall).await;
    }
    let mut s = state.lock().expect("state lock");
    let fail = |s: &mut Inner, error: &str, description: &str| {
        s.counters.failed_logins += 1;
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    if grant == JWT_BEARER_GRANT {
        let assertion = form.get("assertion").map(String::as_str).unwrap_or("");
        let verdict = verify_assertion(&s.logins.jwt, assertion)
            .and_then(|username| pre_authorised_user(&s, &username));
        return match verdict {
            Ok(user_id) => issue(&mut s, user_id),
            Err((error, description)) => fail(&mut s, error, description),
        };
    }
    if !matches!(grant, "password" | "client_credentials") {
        return fail(&mut s, "unsupported_grant_type", "grant type not supported");
    }
    if form.get("client_id").map(String::as_str) != Some(CONSUMER_KEY) {
        return fail(&mut s, "invalid_client_id", "client identifier invalid");
    }
    if form.get("client_secret").map(String::as_str) != Some(CONSUMER_SECRET) {
        return fail(&mut s, "invalid_client", "invalid client credentials");
    }
    let user_id = if grant == "password" {
        if !s.logins.password_flow_enabled {
            return fail(&mut s, "invalid_grant", "authentication failure");
        }
        let username = form.get("username").cloned().unwrap_or_default();
        let presented = form.get("password").cloned().unwrap_or_default();
        match s.logins.passwords.get(&username) {
            Some((password, id)) if presented == format!("{password}{SECURITY_TOKEN}") => {
                id.clone()
            }
            _ => return fail(&mut s, "invalid_grant", "authentication failure"),
        }
    } else {
        match s.logins.client_credentials_user.clone() {
            Some(id) => id,
            None => {
                return fail(
                    &mut s,
                    "invalid_grant",
                    "no client credentials user enabled",
                )
            }
        }
    };
    // An inactive user cannot log in. Resource-owner credentials that do not
    // authenticate are `invalid_grant` (RFC 6749 section 5.2, which the token
    // endpoint follows), and Salesforce's description is "authentication
    // failure" whatever the reason, so an inactive user looks exactly like a
    // wrong password.
    let active = s
        .org
        .get("User", &user_id)
        .is_some_and(|u| u.get("IsActive") == Some(&serde_json::Value::Bool(true)));
    if !active {
        return fail(&mut s, "invalid_grant", "authentication failure");
    }
    issue(&mut s, user_id)
}

/// A new session for `user_id`: the token endpoint's success answer.
fn issue(s: &mut Inner, user_id: String) -> Response {
    s.counters.logins += 1;
    let org_id = "00DWt0000000001";
    let secret: String = (0..96)
        .map(|_| {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
            A[rand::random_range(0..A.len())] as char
        })
        .collect();
    let access_token = format!("{org_id}!AQ{secret}");
    s.logins.tokens.insert(
        access_token.clone(),
        Token {
            user_id: user_id.clone(),
            valid: true,
        },
    );
    let issued_at = chrono::Utc::now().timestamp_millis().to_string();
    let base = s.logins.base_url.clone();
    Json(json!({
        "access_token": access_token,
        "instance_url": base,
        "id": format!("{base}/id/{org_id}AAA/{user_id}"),
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": "bG9jYWwtc2lnbmF0dXJl",
    }))
    .into_response()
}
