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
#[derive(Serialize, Deserialize)]
struct StoredToken {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    issued_at: String,
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

    async fn stored_session(&self) -> Result<Option<Session>, SalesforceError> {
        let Some(text) = self.tokens.current(&self.token_secret_id).await? else {
            return Ok(None);
        };
        Ok(serde_json::from_str::<StoredToken>(&text)
            .ok()
            .filter(|t| !t.access_token.is_empty() && t.instance_url.starts_with("http"))
            .map(|t| Session {
                access_token: SecretString::from(t.access_token),
                instance_url: t.instance_url.trim_end_matches('/').to_owned(),
            }))
    }

    async fn login_and_store(&self) -> Result<Session, SalesforceError> {
        let (session, issued_at) = self.login().await?;
        let stored = StoredToken {
            access_token: session.access_token.expose_secret().to_owned(),
            instance_url: session.instance_url.clone(),
            issued_at,
        };
        let text =
            serde_json::to_string(&stored).map_err(|e| SalesforceError::Decode(e.to_string()))?;
        if let Err(e) = self.tokens.write(&self.token_secret_id, &text).await {
            // The token works without being shared; other instances will log in.
            tracing::warn!(error = %e, "could not store the Salesforce token for other instances");
        }
        Ok(session)
    }

    /// OAuth 2.0 login with the configured flow.
    async fn login(&self) -> Result<(Session, String), SalesforceError> {
        let s = &self.connection;
        let flow = s.auth_flow;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", flow.as_str().to_owned()),
            ("client_id", s.consumer_key.clone()),
            (
                "client_secret",
                s.consumer_secret.expose_secret().to_owned(),
            ),
        ];
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
        self.logins.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("salesforce_logins").increment(1);
        tracing::info!(flow = flow.as_str(), instance_url = %ok.instance_url, "logged in to Salesforce");
        Ok((
            Session {
                access_token: SecretString::from(ok.access_token),
                instance_url: ok.instance_url.trim_end_matches('/').to_owned(),
            },
            ok.issued_at,
        ))
    }
}
