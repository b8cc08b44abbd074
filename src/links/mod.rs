//! The agent's link to the Case: `GET /witiop/cases/{conversation id}`,
//! signed by the webhook. A wrong, expired or unsigned link is a bare 404; a
//! Case that exists is a 302 to it in Lightning; one that does not exist yet
//! is a small page that refreshes until it does.
//!
//! No link traffic can spend the org's API allowance: found Case ids are
//! remembered by the warm instance (reopening costs no call), a Case found
//! missing is not asked for again for [`LinkLimits::missing_for`], each
//! link asks at most once per [`THROTTLE`], each lookup is cut off after
//! [`LinkLimits::lookup_timeout`], and an instance makes no more calls than
//! its [`CallBudget`] allows. The template's reserved concurrency bounds the
//! instances; docs/operations.md §12.1 works the budget out.
//!
//! Both secrets are re-read on the worker's schedule ([`crate::settings`]),
//! so a rotated `link_key` or fixed Salesforce credentials reach a warm
//! instance; links signed with the previous `link_key` keep working until
//! the next rotation.

mod http;
mod memory;
mod page;
mod settings;
pub mod signing;

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use secrecy::SecretString;

pub use memory::CallBudget;

use crate::case::CaseId;
use crate::phone::CustomerNumber;
use crate::salesforce::client::count_calls;
use crate::salesforce::records::{case_lookup_query, CaseKey, CaseRow};
use crate::salesforce::{SalesforceClient, SalesforceError};
use crate::settings::{Refresher, SettingsSource};
use memory::Memory;
use settings::Active;
use signing::Link;

/// At most one Salesforce call per link per this interval, per instance.
pub const THROTTLE: Duration = Duration::from_secs(2);

/// How much Salesforce a links instance may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// How long one lookup (and the session it needs) may take before the
    /// waiting page is served instead: far under the function's timeout,
    /// and under the 20 s after which Salesforce counts a request against
    /// the org's concurrent long-running requests
    /// (https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html).
    pub lookup_timeout: Duration,
    /// How long a Case found missing (or not found in time) is not asked
    /// for again by this instance.
    pub missing_for: Duration,
    /// The calls this instance may make.
    pub budget: CallBudget,
}

impl Default for LinkLimits {
    /// The deployed limits; docs/operations.md §12.1 has the
    /// arithmetic that ties them to the template's reserved concurrency.
    fn default() -> Self {
        Self {
            lookup_timeout: Duration::from_secs(3),
            missing_for: Duration::from_secs(30),
            budget: CallBudget {
                capacity: 10,
                every: Duration::from_secs(10),
            },
        }
    }
}

/// What the links function needs, built once per cold start.
pub struct Links {
    active: RwLock<Arc<Active>>,
    refresher: Option<Refresher>,
    memory: Memory,
    limits: LinkLimits,
}

impl Links {
    /// `link_key`: `None` turns links off (every request is a 404).
    pub fn new(
        salesforce: Arc<SalesforceClient>,
        case_external_id_field: Option<String>,
        link_key: Option<SecretString>,
    ) -> Self {
        let limits = LinkLimits::default();
        Self {
            active: RwLock::new(Arc::new(Active {
                client: salesforce,
                case_external_id_field,
                keys: link_key.into_iter().collect(),
            })),
            refresher: None,
            memory: Memory::new(limits.budget),
            limits,
        }
    }

    /// Re-reads both secrets from `source`, at most once per its interval
    /// and after a refused login.
    pub fn with_settings_source(mut self, source: SettingsSource) -> Self {
        self.refresher = Some(Refresher::new(source));
        self
    }

    /// Other limits than the deployed ones (tests).
    pub fn with_limits(mut self, limits: LinkLimits) -> Self {
        self.memory = Memory::new(limits.budget);
        self.limits = limits;
        self
    }

    fn active(&self) -> Arc<Active> {
        self.active.read().expect("settings lock").clone()
    }

    /// The Case of this conversation, from memory or (within the limits)
    /// from Salesforce; `None` when it is missing or was not asked for.
    async fn case_id(&self, active: &Active, link: Link<'_>) -> Option<CaseId> {
        let conversation_id = link.conversation_id;
        if let Some(found) = self.memory.found(conversation_id) {
            return Some(found);
        }
        if self.memory.known_missing(conversation_id)
            || !self.memory.may_ask(conversation_id, THROTTLE)
        {
            return None;
        }
        if !self.memory.take_call(self.limits.budget) {
            tracing::warn!(
                conversation_id,
                outcome = "over_budget",
                "this instance's Salesforce budget for links is spent; the page waits"
            );
            return None;
        }
        let lookup = self.bounded(find_case(active, conversation_id, link.digits));
        let (result, calls) = count_calls(lookup).await;
        metrics::counter!("links_salesforce_calls").increment(calls);
        // A lookup that made several calls (a renewed session) pays for
        // them all, so the budget bounds calls, not lookups.
        self.memory.charge_calls(calls.saturating_sub(1));
        match result {
            Ok(Some(case_id)) => return Some(case_id),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(conversation_id, error = %e, "could not look the Case up");
                // Credentials Salesforce refused may have been fixed since
                // the secret was last read; new ones are tried at once.
                if matches!(e, SalesforceError::Login { .. }) && self.reload().await {
                    return None;
                }
            }
        }
        self.memory
            .remember_missing(conversation_id, self.limits.missing_for);
        None
    }

    /// `work` cut off after the lookup timeout: every call inside gets that
    /// deadline, and whatever is left of it when the time is up is dropped.
    async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, SalesforceError>>,
    ) -> Result<T, SalesforceError> {
        let limit = self.limits.lookup_timeout;
        let scoped = crate::deadline::scope(Instant::now() + limit, work);
        match tokio::time::timeout(limit, scoped).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    timeout_ms = limit.as_millis() as u64,
                    "Salesforce did not answer in time; the page waits"
                );
                Err(SalesforceError::OutOfTime)
            }
        }
    }
}

/// Handles one request of the links route.
pub async fn handle_link(
    links: &Links,
    request: ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    // A rotated link_key or fixed credentials reach this warm instance.
    // Boxed: the SDK's futures are large, and every request awaits this.
    Box::pin(links.reload()).await;
    let active = links.active();
    if active.keys.is_empty() {
        return http::not_found();
    }
    let Some(conversation_id) = http::conversation_id(&request) else {
        return http::not_found();
    };
    let query = |name: &str| http::query_param(&request, name);
    let (Some(digits), Some(expires), Some(signature)) = (
        query("n"),
        query("exp").as_deref().and_then(signing::parse_expiry),
        query("sig"),
    ) else {
        return http::not_found();
    };
    let link = Link {
        conversation_id: &conversation_id,
        digits: &digits,
        expires,
    };
    let now = signing::epoch_seconds();
    if !signing::verify(&active.keys, link, &signature, now) {
        tracing::info!(
            outcome = "refused",
            "case link refused: bad signature or expired"
        );
        return http::not_found();
    }
    if let Some(case_id) = links.case_id(&active, link).await {
        match links.bounded(active.client.session()).await {
            Ok(session) => {
                links.memory.remember_found(&conversation_id, &case_id);
                tracing::info!(
                    conversation_id,
                    case_id = case_id.as_str(),
                    outcome = "redirect",
                    "case link opened"
                );
                return http::redirect(&format!(
                    "{}/lightning/r/Case/{case_id}/view",
                    session.instance_url
                ));
            }
            Err(e) => tracing::warn!(conversation_id, error = %e, "no Salesforce session"),
        }
    }
    let since = query("since")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s <= now)
        .unwrap_or(now);
    let refresh = (now - since < page::PATIENCE.as_secs()).then(|| {
        format!(
            "{}&since={since}",
            signing::path_and_query(link, &signature)
        )
    });
    tracing::info!(
        conversation_id,
        outcome = "waiting",
        "case link opened before its Case exists"
    );
    http::html(page::waiting(&conversation_id, refresh.as_deref()))
}

async fn find_case(
    active: &Active,
    conversation_id: &str,
    digits: &str,
) -> Result<Option<CaseId>, SalesforceError> {
    let subject;
    let key = match &active.case_external_id_field {
        Some(field) => CaseKey::ExternalId {
            field,
            value: conversation_id,
        },
        None => {
            let number = CustomerNumber::parse(&format!("+{digits}"));
            subject = crate::case::fields::subject_of(&number, conversation_id);
            CaseKey::Subject(&subject)
        }
    };
    let rows: Vec<CaseRow> = active.client.query(&case_lookup_query(key)).await?;
    Ok(rows.into_iter().next().map(|r| r.id))
}
