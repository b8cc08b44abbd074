//! The links function's settings in force, and their re-read: the
//! Salesforce secret's connection and Case key, and the WitiOp secret's
//! `link_key` at its current and previous versions. The schedule and the
//! reading are the worker's ([`crate::settings`]).

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::Links;
use crate::salesforce::SalesforceClient;
use crate::settings::{FreshWitiop, WitiopStages};

/// What the secrets say, replaced as a whole when one changes.
pub(super) struct Active {
    pub(super) client: Arc<SalesforceClient>,
    /// The Case's External ID field, when configured (else the Subject is the key).
    pub(super) case_external_id_field: Option<String>,
    /// The current `link_key`, then the previous one; empty: links are off.
    pub(super) keys: Vec<SecretString>,
}

impl PartialEq for Active {
    fn eq(&self, other: &Self) -> bool {
        let keys = |a: &Self| {
            a.keys
                .iter()
                .map(|k| k.expose_secret().to_owned())
                .collect::<Vec<_>>()
        };
        Arc::ptr_eq(&self.client, &other.client)
            && self.case_external_id_field == other.case_external_id_field
            && keys(self) == keys(other)
    }
}

/// The keys a WitiOp secret's versions accept. A current version without a
/// key turns links off: the previous key alone does not keep them working.
fn link_keys(witiop: &FreshWitiop) -> Vec<SecretString> {
    let Some(current) = &witiop.current.link_key else {
        return Vec::new();
    };
    let mut keys = vec![current.clone()];
    if let Some(previous) = witiop.previous.as_ref().and_then(|p| p.link_key.as_ref()) {
        // A rotation of the webhook token alone leaves the key as it was.
        if previous.expose_secret() != current.expose_secret() {
            keys.push(previous.clone());
        }
    }
    keys
}

impl Links {
    /// Re-reads both secrets (at most once per interval) and puts what
    /// changed in force; true when something did.
    pub(super) async fn reload(&self) -> bool {
        let Some(refresher) = &self.refresher else {
            return false;
        };
        if !refresher.due() {
            return false;
        }
        let current = self.active();
        let fresh = refresher.read(WitiopStages::CurrentAndPrevious).await;
        let (client, case_external_id_field) = match fresh.salesforce {
            Some(settings) => (
                refresher.client_for(&current.client, settings.connection),
                settings.policy.case_external_id_field,
            ),
            None => (
                current.client.clone(),
                current.case_external_id_field.clone(),
            ),
        };
        let keys = match &fresh.witiop {
            Some(witiop) => link_keys(witiop),
            None => current.keys.clone(),
        };
        let next = Active {
            client,
            case_external_id_field,
            keys,
        };
        if next == *current {
            return false;
        }
        if !Arc::ptr_eq(&next.client, &current.client)
            || next.case_external_id_field != current.case_external_id_field
        {
            // Ids found through the old connection or key may name no Case
            // of the new one.
            self.memory.forget();
        }
        *self.active.write().expect("settings lock") = Arc::new(next);
        tracing::info!("the secrets changed; new link settings in force");
        true
    }
}
