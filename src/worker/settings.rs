//! The Salesforce secret, re-read when a login is refused, so that a fixed
//! password or a switch of flow takes effect without a redeploy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Active, Worker};
use crate::aws::SecretStore;
use crate::config::SalesforceSettings;
use crate::salesforce::SalesforceClient;

/// Where the Salesforce settings come from.
pub struct SettingsSource {
    pub store: SecretStore,
    pub secret_id: String,
    pub token_secret_id: String,
    /// At most one re-read per interval, however many conversations fail.
    pub interval: Duration,
}

/// What a re-read of the secret found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reload {
    /// New settings are in force: worth another attempt.
    Changed,
    /// Same settings, too soon to look again, or the secret unreadable.
    Unchanged,
}

impl Worker {
    /// Re-reads the Salesforce secret (at most once per interval) and puts
    /// new settings in force when it changed.
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
        let text = match source.store.current(&source.secret_id).await {
            Ok(Some(t)) => t,
            Ok(None) => return Reload::Unchanged,
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the Salesforce secret");
                return Reload::Unchanged;
            }
        };
        let settings = match SalesforceSettings::parse(&source.secret_id, &text) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the Salesforce secret is invalid; keeping the previous settings");
                return Reload::Unchanged;
            }
        };
        let current = self.active();
        if *current.client.connection() == settings.connection && *current.policy == settings.policy
        {
            return Reload::Unchanged;
        }
        // A new connection means a new client (its session belongs to the
        // old credentials); a policy change alone keeps the session.
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
        *self.active.write().expect("settings lock") = Arc::new(Active {
            client,
            policy: Arc::new(settings.policy),
        });
        tracing::info!("the Salesforce secret changed; new settings in force");
        Reload::Changed
    }
}
