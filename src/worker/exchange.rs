//! One Salesforce exchange: the client, Case policy and media access in
//! force (replaced together when the secrets change), where they are
//! re-read from, and the users found so far. What a conversation reads and
//! writes goes through the snapshot [`Exchange::active`] hands out, so a
//! change of settings never lands in the middle of one.

use std::sync::{Arc, RwLock};

use super::read::UserCache;
use super::settings::{warn_no_media_hosts, MediaAccess};
use crate::case::CaseFieldRules;
use crate::config::CasePolicy;
use crate::salesforce::{SalesforceClient, SalesforceError};
use crate::settings::{Refresher, SettingsSource};

/// The Salesforce side of a worker as it starts.
pub struct ExchangeSettings {
    pub client: Arc<SalesforceClient>,
    pub policy: CasePolicy,
    pub media: MediaAccess,
    /// Where the secrets are re-read from; `None`: never (tests, local runs).
    pub source: Option<SettingsSource>,
}

/// The Salesforce client and the Case policy in force: both come from the
/// Salesforce secret and are replaced together when it changes.
pub(crate) struct Active {
    pub(crate) client: Arc<SalesforceClient>,
    pub(crate) policy: Arc<CasePolicy>,
    pub(crate) media: Arc<MediaAccess>,
    /// What the org's describe says of Case's fields, read once for these
    /// settings when `case_fields` are configured.
    case_rules: tokio::sync::OnceCell<Arc<CaseFieldRules>>,
}

impl Active {
    pub(crate) fn new(
        client: Arc<SalesforceClient>,
        policy: Arc<CasePolicy>,
        media: Arc<MediaAccess>,
    ) -> Self {
        Self {
            client,
            policy,
            media,
            case_rules: tokio::sync::OnceCell::new(),
        }
    }

    /// The describe of Case, for checking `case_fields` values: one call
    /// per cold start or change of settings, none without `case_fields`.
    pub(crate) async fn case_field_rules(
        &self,
    ) -> Result<Option<Arc<CaseFieldRules>>, SalesforceError> {
        if self.policy.case_fields.is_empty() {
            return Ok(None);
        }
        let rules = self
            .case_rules
            .get_or_try_init(|| async {
                let describe = self.client.describe("Case").await?;
                CaseFieldRules::from_describe(&describe)
                    .map(Arc::new)
                    .ok_or_else(|| {
                        SalesforceError::Incomplete("the describe of Case lists no fields".into())
                    })
            })
            .await?;
        Ok(Some(rules.clone()))
    }
}

/// What one Salesforce exchange needs, kept across the batches of a warm
/// instance.
pub struct Exchange {
    active: RwLock<Arc<Active>>,
    pub(crate) refresher: Option<Refresher>,
    /// Usernames → active user id, per cold start.
    pub(crate) users: UserCache,
}

impl Exchange {
    pub fn new(settings: ExchangeSettings) -> Self {
        let ExchangeSettings {
            client,
            policy,
            media,
            source,
        } = settings;
        if policy.add_attachments && media.hosts.is_none() {
            warn_no_media_hosts();
        }
        Self {
            active: RwLock::new(Arc::new(Active::new(
                client,
                Arc::new(policy),
                Arc::new(media),
            ))),
            refresher: source.map(Refresher::new),
            users: UserCache::default(),
        }
    }

    /// The settings in force, for one conversation.
    pub(crate) fn active(&self) -> Arc<Active> {
        self.active.read().expect("settings lock").clone()
    }

    /// Puts `next` in force.
    pub(crate) fn replace(&self, next: Active) {
        *self.active.write().expect("settings lock") = Arc::new(next);
    }

    /// Replaces the media settings (tests and local runs).
    pub fn set_media(&self, media: MediaAccess) {
        let current = self.active();
        self.replace(Active::new(
            current.client.clone(),
            current.policy.clone(),
            Arc::new(media),
        ));
    }
}
