//! Login and the shared token cache.
//!
//! The access token lives in memory for the life of a cold start and in the
//! `SALESFORCE_TOKEN_SECRET_ID` secret for all instances. On `401
//! INVALID_SESSION_ID` the client first adopts a token another instance has
//! stored (if it differs from the one that failed), and logs in only when
//! there is none, so a fleet of workers does not stampede the login endpoint,
//! which Salesforce rate-limits per user. Logins are single-flight within an
//! instance: concurrent calls wait for the same one.

use std::sync::atomic::Ordering;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::client::SalesforceClient;
use super::error::SalesforceError;
use super::instance::accepted_instance_url;
use crate::config::AuthFlow;

/// A live session: what every data call needs.
#[derive(Clone)]
pub struct Session {
    pub access_token: SecretString,
    pub instance_url: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_token", &"[REDACTED]")
            .field("instance_url", &self.instance_url)
            .finish()
    }
}

impl Session {
    fn same_token(&self, other: &Session) -> bool {
        self.access_token.expose_secret() == other.access_token.expose_secret()
    }
}

/// The token cache's JSON shape, shared by all worker instances.
#[derive(Serialize, Deserialize, Default)]
struct StoredToken {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    instance_url: String,
    #[serde(default)]
    issued_at: String,
    /// Which credentials the token came from (hash of login URL, flow,
    /// consumer key, username and the JWT signing key's public half): a
    /// token of other credentials, say after the secret was pointed at
    /// another org or given another key, is ignored.
    #[serde(default)]
    credentials: String,
    /// A refused login, shared so that no instance retries it for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refused: Option<Refusal>,
}

/// A login Salesforce refused, and with which credentials.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Refusal {
    /// Epoch milliseconds.
    at_ms: u64,
    /// Hash of the credentials including their secret parts: a corrected
    /// password is tried at once.
    secrets: String,
    error: String,
    description: String,
    status: u16,
}

/// How long a refused login is not retried: repeated failures lock the API
/// user out ("Login attempts" lockout of the user's password policy).
pub(crate) const REFUSAL_MEMORY: std::time::Duration = std::time::Duration::from_secs(60);

/// A refusal shared through the token cache holds every instance back this
/// many times [`REFUSAL_MEMORY`] (10 minutes as deployed): the cache may be
/// rewritten only about that often (see `record_refusal`), and a shared
/// refusal that went stale sooner would let every instance try the refused
/// password on its own, once a minute each. Corrected credentials are
/// tried at once whatever the cache says (the refusal names the secrets
/// it was for).
const SHARED_REFUSAL_FACTOR: u32 = 10;

impl Refusal {
    /// The same refusal as `other`, whenever each happened.
    fn same_as(&self, other: &Refusal) -> bool {
        self.secrets == other.secrets
            && self.error == other.error
            && self.description == other.description
            && self.status == other.status
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn hex_sha256(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Deserialize)]
struct LoginOk {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    issued_at: String,
}

#[derive(Deserialize, Default)]
struct LoginErr {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl SalesforceClient {
    /// The session to use now: memory, else the shared cache, else a login.
    pub async fn session(&self) -> Result<Session, SalesforceError> {
        if let Some(s) = self.session.lock().expect("session lock").clone() {
            return Ok(s);
        }
        let _guard = self.login_lock.lock().await;
        if let Some(s) = self.session.lock().expect("session lock").clone() {
            return Ok(s);
        }
        let session = match self.stored_session().await? {
            Some(s) => s,
            None => self.login_and_store().await?,
        };
        *self.session.lock().expect("session lock") = Some(session.clone());
        Ok(session)
    }

    /// Replaces a session that Salesforce refused. With `adopt`, a different
    /// token stored by another instance is taken instead of logging in.
    pub(super) async fn renew(
        &self,
        stale: &Session,
        adopt: bool,
    ) -> Result<Session, SalesforceError> {
        let _guard = self.login_lock.lock().await;
        if let Some(current) = self.session.lock().expect("session lock").clone() {
            if !current.same_token(stale) {
                // Another task of this instance renewed it while we waited.
                return Ok(current);
            }
        }
        let stored = if adopt {
            self.stored_session()
                .await?
                .filter(|s| !s.same_token(stale))
        } else {
            None
        };
        let session = match stored {
            Some(s) => {
                tracing::info!("using the Salesforce token stored by another instance");
                s
            }
            None => self.login_and_store().await?,
        };
        *self.session.lock().expect("session lock") = Some(session.clone());
        Ok(session)
    }

    /// The credentials' identity (no secret parts: a private key counts by
    /// its public key's fingerprint).
    fn credentials(&self) -> String {
        let c = &self.connection;
        hex_sha256(&[
            &c.login_url,
            c.auth_flow.as_str(),
            &c.consumer_key,
            c.username.as_deref().unwrap_or(""),
            c.private_key.as_ref().map_or("", |k| k.fingerprint()),
        ])
    }

    /// The credentials including their secret parts.
    fn secrets_digest(&self) -> String {
        let c = &self.connection;
        let secret = |s: &Option<SecretString>| {
            s.as_ref()
                .map(|v| v.expose_secret().to_owned())
                .unwrap_or_default()
        };
        hex_sha256(&[
            &self.credentials(),
            &secret(&c.consumer_secret),
            &secret(&c.password),
            &secret(&c.security_token),
        ])
    }

    async fn read_cache(&self) -> Result<StoredToken, SalesforceError> {
        let Some(text) = self.tokens.current(&self.token_secret_id).await? else {
            return Ok(StoredToken::default());
        };
        Ok(serde_json::from_str(&text).unwrap_or_default())
    }

    async fn write_cache(&self, stored: &StoredToken) {
        let Ok(text) = serde_json::to_string(stored) else {
            return;
        };
        if let Err(e) = self.tokens.write(&self.token_secret_id, &text).await {
            // The token works without being shared; other instances will log in.
            tracing::warn!(error = %e, "could not update the shared Salesforce token cache");
        }
    }

    async fn stored_session(&self) -> Result<Option<Session>, SalesforceError> {
        let stored = self.read_cache().await?;
        if stored.access_token.is_empty() {
            return Ok(None);
        }
        if stored.credentials != self.credentials() {
            tracing::info!("the cached Salesforce token is for other credentials; ignoring it");
            return Ok(None);
        }
        // Whoever can write the cache must not be able to send the token,
        // and every transcript after it, elsewhere: a fresh login instead.
        let instance_url = match accepted_instance_url(
            &stored.instance_url,
            &self.connection.login_url,
        ) {
            Ok(url) => url,
            Err(e) => {
                tracing::warn!(reason = %e, "the cached Salesforce instance_url is refused; logging in afresh");
                return Ok(None);
            }
        };
        Ok(Some(Session {
            access_token: SecretString::from(stored.access_token),
            instance_url,
        }))
    }

    /// A refusal of these very credentials: this instance's own, younger
    /// than [`REFUSAL_MEMORY`], or one shared through the cache, younger
    /// than [`SHARED_REFUSAL_FACTOR`] times that.
    async fn recent_refusal(&self) -> Result<Option<Refusal>, SalesforceError> {
        let secrets = self.secrets_digest();
        let memory = self.refusal_memory.as_millis() as u64;
        let fresh = |r: &Refusal, memory: u64| {
            r.secrets == secrets && now_ms().saturating_sub(r.at_ms) < memory
        };
        if let Some(r) = self.refusal.lock().expect("refusal lock").clone() {
            if fresh(&r, memory) {
                return Ok(Some(r));
            }
        }
        let shared = memory * u64::from(SHARED_REFUSAL_FACTOR);
        Ok(self
            .read_cache()
            .await?
            .refused
            .filter(|r| fresh(r, shared)))
    }

    async fn login_and_store(&self) -> Result<Session, SalesforceError> {
        if let Some(r) = self.recent_refusal().await? {
            let ago = now_ms().saturating_sub(r.at_ms) / 1000;
            return Err(SalesforceError::Login {
                flow: self.connection.auth_flow.as_str(),
                login_url: self.connection.login_url.clone(),
                error: r.error,
                description: format!(
                    "{} (refused {ago} s ago with these credentials; not retried for a while so that the API user is not locked out)",
                    r.description,
                ),
                status: r.status,
            });
        }
        let (session, issued_at) = match self.login().await {
            Ok(ok) => ok,
            Err(e) => {
                if let SalesforceError::Login {
                    error,
                    description,
                    status,
                    ..
                } = &e
                {
                    if (400..500).contains(status) && *status != 429 {
                        let refusal = Refusal {
                            at_ms: now_ms(),
                            secrets: self.secrets_digest(),
                            error: error.clone(),
                            description: description.clone(),
                            status: *status,
                        };
                        *self.refusal.lock().expect("refusal lock") = Some(refusal.clone());
                        self.record_refusal(refusal).await;
                    }
                }
                return Err(e);
            }
        };
        self.write_cache(&StoredToken {
            access_token: session.access_token.expose_secret().to_owned(),
            instance_url: session.instance_url.clone(),
            issued_at,
            credentials: self.credentials(),
            refused: None,
        })
        .await;
        Ok(session)
    }

    /// Shares a refusal through the token cache, unless the cache already
    /// records this very refusal of these credentials from less than
    /// [`SHARED_REFUSAL_FACTOR`] × [`REFUSAL_MEMORY`] ago (then it is
    /// renewed, so that it keeps holding every instance back). Each write is a new
    /// version of the secret; AWS asks for no more than one every 10
    /// minutes, as versions younger than 24 hours are never removed and
    /// more would reach the quota for secret versions
    /// (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html,
    /// https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_limits.html),
    /// which would also keep the next good token out of the cache. A
    /// refusal repeated every minute would write one a minute. Other
    /// instances still learn of it: it stays in the cache, and each
    /// instance's own memory spaces its retries.
    async fn record_refusal(&self, refusal: Refusal) {
        let credentials = self.credentials();
        match self.read_cache().await {
            Ok(cached)
                if cached.access_token.is_empty()
                    && cached.credentials == credentials
                    && cached.refused.as_ref().is_some_and(|r| {
                        r.same_as(&refusal)
                            && refusal.at_ms.saturating_sub(r.at_ms)
                                < (REFUSAL_MEMORY * SHARED_REFUSAL_FACTOR).as_millis() as u64
                    }) =>
            {
                return;
            }
            // An unreadable cache: write, as before; the write reports.
            _ => {}
        }
        self.write_cache(&StoredToken {
            credentials,
            refused: Some(refusal),
            ..StoredToken::default()
        })
        .await;
    }

    /// The token request's form for the configured flow.
    fn login_form(&self) -> Result<Vec<(&'static str, String)>, SalesforceError> {
        let s = &self.connection;
        let flow = s.auth_flow;
        let mut form: Vec<(&str, String)> = vec![("grant_type", flow.grant_type().to_owned())];
        if flow == AuthFlow::JwtBearer {
            // The assertion alone authenticates both the app (by its
            // signature) and the user (its subject): no client_id, no
            // secret (OAuth 2.0 JWT Bearer Flow for Server-to-Server
            // Integration,
            // https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm).
            let unsigned = |description: &str| SalesforceError::Login {
                flow: flow.as_str(),
                login_url: s.login_url.clone(),
                error: "no assertion".into(),
                description: description.into(),
                status: 0,
            };
            let key = s
                .private_key
                .as_ref()
                .ok_or_else(|| unsigned("the Salesforce secret has no private_key"))?;
            let now = chrono::Utc::now().timestamp();
            let claims = super::assertion::Claims::new(
                &s.consumer_key,
                s.username.as_deref().unwrap_or(""),
                &s.login_url,
                now,
            );
            let assertion =
                super::assertion::sign(&claims, key).map_err(|e| unsigned(&e.to_string()))?;
            form.push(("assertion", assertion));
            return Ok(form);
        }
        form.push(("client_id", s.consumer_key.clone()));
        form.push((
            "client_secret",
            s.consumer_secret
                .as_ref()
                .map(|v| v.expose_secret().to_owned())
                .unwrap_or_default(),
        ));
        if flow == AuthFlow::Password {
            let password = format!(
                "{}{}",
                s.password.as_ref().map(|p| p.expose_secret()).unwrap_or(""),
                s.security_token
                    .as_ref()
                    .map(|t| t.expose_secret())
                    .unwrap_or("")
            );
            form.push(("username", s.username.clone().unwrap_or_default()));
            form.push(("password", password));
        }
        Ok(form)
    }

    /// OAuth 2.0 login with the configured flow.
    async fn login(&self) -> Result<(Session, String), SalesforceError> {
        let s = &self.connection;
        let flow = s.auth_flow;
        let form = self.login_form()?;
        let url = format!("{}/services/oauth2/token", s.login_url);
        let failed = |status: u16, error: String, description: String| SalesforceError::Login {
            flow: flow.as_str(),
            login_url: s.login_url.clone(),
            error,
            description,
            status,
        };
        let response = self
            .http
            .post(&url)
            .form(&form)
            .timeout(crate::deadline::bound(super::client::CALL_TIMEOUT))
            .send()
            .await
            .map_err(|e| failed(0, "unreachable".into(), e.without_url().to_string()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            failed(
                status.as_u16(),
                "unreadable answer".into(),
                e.without_url().to_string(),
            )
        })?;
        if !status.is_success() {
            let err: LoginErr = serde_json::from_slice(&body).unwrap_or_default();
            let (error, description) = if err.error.is_empty() {
                (
                    format!("HTTP {}", status.as_u16()),
                    String::from_utf8_lossy(&body).chars().take(200).collect(),
                )
            } else {
                (err.error, err.error_description)
            };
            if status.is_client_error() && status.as_u16() != 429 {
                // Credentials Salesforce refused: someone has to fix the secret.
                metrics::counter!("salesforce_logins_refused").increment(1);
            }
            return Err(failed(status.as_u16(), error, description));
        }
        let ok: LoginOk = serde_json::from_slice(&body)
            .map_err(|e| failed(status.as_u16(), "unexpected answer".into(), e.to_string()))?;
        // The token would travel to every data call's host: only a
        // Salesforce one (or this machine, for local runs). A login URL that
        // answers otherwise is not Salesforce's, which someone must fix.
        let instance_url = accepted_instance_url(&ok.instance_url, &s.login_url).map_err(|e| {
            failed(
                status.as_u16(),
                "instance_url refused".into(),
                format!("the login answered an instance_url Salesforce serves no org from ({e}); check login_url"),
            )
        })?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("salesforce_logins").increment(1);
        tracing::info!(
            flow = flow.as_str(),
            instance_url,
            "logged in to Salesforce"
        );
        Ok((
            Session {
                access_token: SecretString::from(ok.access_token),
                instance_url,
            },
            ok.issued_at,
        ))
    }
}
