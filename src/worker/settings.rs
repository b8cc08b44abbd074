//! Settings that take effect without a redeploy: the Salesforce secret
//! (connection and Case policy) and the WitiOp secret (API token, media
//! hosts) are re-read on a short timer and after a refused login or a
//! configuration failure, so an admin's fix reaches warm workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use super::{Active, Worker};
use crate::aws::SecretStore;
use crate::config::{MediaHost, SalesforceSettings, WitiopSecret};
use crate::salesforce::SalesforceClient;

/// Where the settings come from.
pub struct SettingsSource {
    pub store: SecretStore,
    pub secret_id: String,
    /// The WitiOp secret, for the API token and the media hosts.
    pub witiop_secret_id: Option<String>,
    pub token_secret_id: String,
    /// At most one re-read per interval, however many conversations run.
    pub interval: Duration,
}

/// What the worker may download attachments with, from the WitiOp secret.
#[derive(Debug, Clone, Default)]
pub struct MediaAccess {
    /// Sent only to a listed host.
    pub api_token: Option<SecretString>,
    /// `None`: nothing is downloaded, attachments are linked.
    pub hosts: Option<Vec<MediaHost>>,
}

impl PartialEq for MediaAccess {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret;
        let token = |m: &Self| m.api_token.as_ref().map(|t| t.expose_secret().to_owned());
        token(self) == token(other) && self.hosts == other.hosts
    }
}

impl MediaAccess {
    pub fn from_secret(secret: &WitiopSecret) -> Self {
        Self {
            api_token: secret.api_token.clone(),
            hosts: secret.media_hosts.clone(),
        }
    }
}

impl PartialEq for Active {
    fn eq(&self, other: &Self) -> bool {
        self.client.connection() == other.client.connection()
            && self.policy == other.policy
            && self.media == other.media
    }
}

/// What a re-read of the secrets found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reload {
    /// New settings are in force: worth another attempt.
    Changed,
    /// Same settings, too soon to look again, or a secret unreadable.
    Unchanged,
}

impl Worker {
    /// Re-reads the secrets (at most once per interval) and puts new
    /// settings in force when they changed.
    pub(crate) async fn reload_settings(&self) -> Reload {
        let Some(source) = &self.settings_source else {
            return Reload::Unchanged;
        };
        {
            let mut last = self.last_reload.lock().expect("reload lock");
            if last.is_some_and(|t| t.elapsed() < source.interval) {
                return Reload::Unchanged;
            }
            *last = Some(Instant::now());
        }
        let current = self.active();
        let read = |id: String| {
            let store = source.store.clone();
            async move { store.current(&id).await }
        };
        let (salesforce, witiop) = tokio::join!(read(source.secret_id.clone()), async {
            match &source.witiop_secret_id {
                Some(id) => read(id.clone()).await.map(Some),
                None => Ok(None),
            }
        });
        let settings = match salesforce {
            Ok(Some(text)) => match SalesforceSettings::parse(&source.secret_id, &text) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "the Salesforce secret is invalid; keeping the previous settings");
                    return Reload::Unchanged;
                }
            },
            Ok(None) => return Reload::Unchanged,
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the Salesforce secret");
                return Reload::Unchanged;
            }
        };
        let media = match witiop {
            Ok(Some(Some(text))) => {
                match WitiopSecret::parse(source.witiop_secret_id.as_deref().unwrap_or(""), &text) {
                    Ok(secret) => MediaAccess::from_secret(&secret),
                    Err(e) => {
                        tracing::error!(error = %e, "the WitiOp secret is invalid; keeping the previous media settings");
                        (*current.media).clone()
                    }
                }
            }
            Ok(_) => (*current.media).clone(),
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the WitiOp secret");
                (*current.media).clone()
            }
        };
        // A new connection means a new client (its session belongs to the
        // old credentials); otherwise the session is kept.
        let client = if *current.client.connection() == settings.connection {
            current.client.clone()
        } else {
            Arc::new(SalesforceClient::new(
                current.client.http().clone(),
                Arc::new(settings.connection),
                source.store.clone(),
                source.token_secret_id.clone(),
            ))
        };
        let next = Active::new(client, Arc::new(settings.policy), Arc::new(media));
        if next == *current {
            return Reload::Unchanged;
        }
        if next.media.hosts.is_none() && next.policy.add_attachments {
            warn_no_media_hosts();
        }
        *self.active.write().expect("settings lock") = Arc::new(next);
        tracing::info!("the secrets changed; new settings in force");
        Reload::Changed
    }
}

/// `add_attachments` without `media_hosts`: the safe reading is links only.
pub fn warn_no_media_hosts() {
    tracing::warn!(
        "add_attachments is on but the WitiOp secret lists no media_hosts: attachments are linked, never downloaded"
    );
}
