//! Settings that take effect without a redeploy: the Salesforce secret
//! (connection and Case policy) and the WitiOp secret (API token, media
//! hosts) are re-read on a short timer and after a refused login or a
//! configuration failure, so an admin's fix reaches warm workers. The
//! re-read itself is [`crate::settings`], shared with the links function.

use std::sync::Arc;

use secrecy::SecretString;

use super::exchange::{Active, Exchange};
use crate::config::{MediaHost, WitiopSecret};
use crate::settings::WitiopStages;

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

impl Exchange {
    /// Re-reads the secrets (at most once per interval) and puts new
    /// settings in force when they changed.
    pub(crate) async fn reload_settings(&self) -> Reload {
        let Some(refresher) = &self.refresher else {
            return Reload::Unchanged;
        };
        if !refresher.due() {
            return Reload::Unchanged;
        }
        let current = self.active();
        let fresh = refresher.read(WitiopStages::Current).await;
        let Some(settings) = fresh.salesforce else {
            return Reload::Unchanged;
        };
        let media = match fresh.witiop {
            Some(witiop) => MediaAccess::from_secret(&witiop.current),
            None => (*current.media).clone(),
        };
        let client = refresher.client_for(&current.client, settings.connection);
        let next = Active::new(client, Arc::new(settings.policy), Arc::new(media));
        if next == *current {
            return Reload::Unchanged;
        }
        if next.media.hosts.is_none() && next.policy.add_attachments {
            warn_no_media_hosts();
        }
        self.replace(next);
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
