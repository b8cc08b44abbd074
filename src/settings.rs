//! Secrets re-read by a warm instance: the Salesforce secret (connection and
//! Case policy) and the WitiOp secret, at most once per interval and after a
//! refused login, so that a rotation or an admin's fix takes effect without
//! a redeploy. The worker and the links function share this; each decides
//! what of the fresh values to put in force.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::aws::{SecretStore, PREVIOUS_STAGE};
use crate::config::{SalesforceConnection, SalesforceSettings, WitiopSecret};
use crate::salesforce::SalesforceClient;

/// Where the settings come from.
pub struct SettingsSource {
    pub store: SecretStore,
    pub secret_id: String,
    /// The WitiOp secret (API token, media hosts, link key).
    pub witiop_secret_id: Option<String>,
    pub token_secret_id: String,
    /// At most one re-read per interval, however many requests run.
    pub interval: Duration,
}

impl SettingsSource {
    /// A Salesforce client for `connection` whose token is shared through
    /// this source's store, so the store and its ids are given once.
    pub fn salesforce_client(
        &self,
        http: reqwest::Client,
        connection: SalesforceConnection,
    ) -> SalesforceClient {
        SalesforceClient::new(
            http,
            Arc::new(connection),
            self.store.clone(),
            self.token_secret_id.clone(),
        )
    }
}

/// Which versions of the WitiOp secret a re-read wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WitiopStages {
    /// `AWSCURRENT` only.
    Current,
    /// `AWSCURRENT` and `AWSPREVIOUS`: what was in force before the last
    /// rotation stays valid until the next one. `PutSecretValue` moves
    /// `AWSPREVIOUS` to the version `AWSCURRENT` leaves
    /// (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html).
    CurrentAndPrevious,
}

/// What one re-read found. A secret that could not be read or parsed is
/// `None` (and logged): the caller keeps what it had.
pub(crate) struct Fresh {
    pub(crate) salesforce: Option<SalesforceSettings>,
    pub(crate) witiop: Option<FreshWitiop>,
}

/// The WitiOp secret's versions.
pub(crate) struct FreshWitiop {
    pub(crate) current: WitiopSecret,
    /// `None` when there is no previous version, it was not asked for, or
    /// it is in a shape this release no longer reads.
    pub(crate) previous: Option<WitiopSecret>,
}

/// A [`SettingsSource`] and the time of its last re-read.
pub(crate) struct Refresher {
    pub(crate) source: SettingsSource,
    last: Mutex<Option<Instant>>,
}

impl Refresher {
    pub(crate) fn new(source: SettingsSource) -> Self {
        Self {
            source,
            last: Mutex::new(None),
        }
    }

    /// Claims this interval's re-read: false when one started less than an
    /// interval ago. The first call is always due.
    pub(crate) fn due(&self) -> bool {
        let mut last = self.last.lock().expect("reload lock");
        if last.is_some_and(|t| t.elapsed() < self.source.interval) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Reads both secrets at the same time.
    pub(crate) async fn read(&self, stages: WitiopStages) -> Fresh {
        let source = &self.source;
        let (salesforce, witiop) =
            tokio::join!(read_salesforce(&source.store, &source.secret_id), async {
                match &source.witiop_secret_id {
                    Some(id) => read_witiop(&source.store, id, stages).await,
                    None => None,
                }
            });
        Fresh { salesforce, witiop }
    }

    /// The client for `connection`: `current` when the connection is
    /// unchanged (its session is kept), else a new client, since a session
    /// belongs to the credentials that opened it.
    pub(crate) fn client_for(
        &self,
        current: &Arc<SalesforceClient>,
        connection: SalesforceConnection,
    ) -> Arc<SalesforceClient> {
        if *current.connection() == connection {
            return current.clone();
        }
        Arc::new(
            self.source
                .salesforce_client(current.http().clone(), connection)
                .with_retry(current.retry_policy()),
        )
    }
}

async fn read_salesforce(store: &SecretStore, id: &str) -> Option<SalesforceSettings> {
    match store.current(id).await {
        Ok(Some(text)) => match SalesforceSettings::parse(id, &text) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "the Salesforce secret is invalid; keeping the previous settings");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "could not re-read the Salesforce secret");
            None
        }
    }
}

async fn read_witiop(store: &SecretStore, id: &str, stages: WitiopStages) -> Option<FreshWitiop> {
    let (current, previous) = tokio::join!(store.current(id), async {
        match stages {
            WitiopStages::Current => Ok(None),
            WitiopStages::CurrentAndPrevious => store.read(id, Some(PREVIOUS_STAGE)).await,
        }
    });
    let (current, previous) = match (current, previous) {
        (Ok(Some(c)), Ok(p)) => (c, p),
        (Ok(None), _) => return None,
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "could not re-read the WitiOp secret");
            return None;
        }
    };
    let current = match WitiopSecret::parse(id, &current) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the WitiOp secret is invalid; keeping the previous settings");
            return None;
        }
    };
    // A previous version in an old shape must not break the current one.
    let previous = previous.and_then(|text| match WitiopSecret::parse(id, &text) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the AWSPREVIOUS version of the WitiOp secret");
            None
        }
    });
    Some(FreshWitiop { current, previous })
}
