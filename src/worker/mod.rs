//! The worker: an SQS batch of close events → one Salesforce Case each.
//!
//! Orchestration only: what to write is decided by [`crate::case`]; how to
//! talk to Salesforce by [`crate::salesforce`]. One job per file:
//!
//! - [`batch`]: a batch's records, grouped by customer, each to a [`Disposition`].
//! - [`conversation`]: one conversation: read → plan → write → files.
//! - [`read`]: the one Composite of reads (users, Contact, Case, comments).
//! - [`write`]: the atomic Composite that creates the Case, and further comments.
//! - [`attachments`]: downloads from WitiOp and uploads as ContentVersions.
//! - [`dead_letter`]: parking a record that can never succeed, with its reason.
//! - [`backoff`]: how long a record that failed for a transient reason waits.
//! - [`settings`]: the Salesforce secret re-read when a login is refused.
//! - [`error`]: why a record failed, its class, and advice for an admin.
//! - [`health`]: when a batch fails the invocation, and the unexpected failures.
//!
//! # Exactly once
//!
//! SQS delivers at least once, WitiOp retries deliveries, an operator may
//! redrive the DLQ, and a Lambda may die at any instruction. The worker is
//! therefore written so that running a conversation again converges on the
//! same Salesforce state instead of adding to it:
//!
//! 1. **One customer at a time.** The queue is FIFO and each event's message
//!    group is its customer (the webhook sets it), so SQS never has two
//!    records of one customer in flight: not across batches, not across
//!    instances. Inside a batch a group's records run in order, and a failed
//!    one holds back the rest of its group. Retries of one event within five
//!    minutes are dropped by SQS's deduplication before they reach the worker.
//! 2. **Find before write.** Every run starts with one Composite of reads that
//!    looks the Case up by its key (the `case_external_id_field` when
//!    configured, else its Subject `<number> [<conversation id>]`) and, through
//!    a composite reference to that Case, reads the comments it already has.
//!    Because of 1, nothing of the same customer is written between this
//!    read and the writes below: no second Case and no second Contact,
//!    External ID field or not.
//! 3. **Write atomically.** A new Case is written in one Composite with
//!    `allOrNone`: the Contact (when new), the Case and its comments either all
//!    exist afterwards or none does. A crash before or during that call leaves
//!    nothing behind; a crash after it is seen by the next run's reads.
//!    (Text containing `@{` is written outside a Composite, where Salesforce
//!    would read it as a reference: then the Contact, the Case and the
//!    comments are separate calls, and a crash between them leaves a Contact
//!    or a Case that the next run finds and completes.)
//! 4. **Write only what is missing.** A Case that exists gets only the comments
//!    the reads did not find (compared as a multiset of bodies, so two identical
//!    messages still make two comments) and only the files not yet uploaded
//!    (each ContentVersion carries its attachment's key in `Description`).
//!    Conversations longer than one Composite can hold continue in further
//!    calls; if one of those fails, the next run resumes from what exists.
//! 5. **A Unique External ID as a second lock.** With `case_external_id_field`
//!    the Case is inserted with the conversation id in that Unique field (never
//!    upserted: an upsert refuses audit fields). Should two runs of one
//!    conversation ever overlap anyway (a standard queue, a redrive racing a
//!    late delivery), the second insert is refused with `DUPLICATE_VALUE`; the
//!    worker then reads again and writes only what that Case lacks.
//! 6. **A Contact is created only with its Case**, inside the same atomic
//!    write, so a repeat finds the Case (and its ContactId) rather than
//!    creating a second Contact.

mod attachments;
mod backoff;
mod batch;
mod conversation;
mod dead_letter;
mod error;
mod health;
mod read;
mod settings;
mod write;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

pub use crate::settings::SettingsSource;
pub use backoff::RetrySchedule;
pub use batch::{handle_batch, process_batch, Disposition};
pub use conversation::CaseOutcome;
pub use error::RecordError;
pub use health::{BatchFailed, BatchOutcome};
pub use settings::MediaAccess;

use crate::case::CaseFieldRules;
use crate::config::CasePolicy;
use crate::salesforce::{SalesforceClient, SalesforceError};
use crate::settings::Refresher;

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

/// What the worker needs, built once per cold start.
pub struct Worker {
    active: RwLock<Arc<Active>>,
    settings_source: Option<Refresher>,
    pub sqs: aws_sdk_sqs::Client,
    pub dlq_url: String,
    /// For attachment downloads: follows no redirect by itself.
    http: reqwest::Client,
    /// Largest attachment downloaded.
    pub max_file_bytes: u64,
    /// Records of one batch processed at the same time.
    pub concurrency: usize,
    /// Where attachments wait between download and upload.
    pub spool_dir: PathBuf,
    /// How long a record that failed for a transient reason stays hidden.
    pub retry: RetrySchedule,
    /// Usernames → active user id, per cold start. Only users found are
    /// kept: one created after a failure is found on the next attempt.
    users: Mutex<HashMap<String, String>>,
}

impl Worker {
    pub fn new(
        salesforce: Arc<SalesforceClient>,
        policy: CasePolicy,
        sqs: aws_sdk_sqs::Client,
        dlq_url: String,
        media: MediaAccess,
        concurrency: usize,
    ) -> Self {
        if policy.add_attachments && media.hosts.is_none() {
            settings::warn_no_media_hosts();
        }
        Self {
            active: RwLock::new(Arc::new(Active::new(
                salesforce,
                Arc::new(policy),
                Arc::new(media),
            ))),
            settings_source: None,
            sqs,
            dlq_url,
            http: attachments::download_client(),
            max_file_bytes: attachments::DEFAULT_MAX_FILE_BYTES,
            concurrency: concurrency.max(1),
            spool_dir: std::env::temp_dir(),
            retry: RetrySchedule::default(),
            users: Mutex::new(HashMap::new()),
        }
    }

    /// Caps the size of a downloaded attachment.
    pub fn with_max_file_bytes(mut self, max: u64) -> Self {
        self.max_file_bytes = max;
        self
    }

    /// Backs off records that failed for a transient reason.
    pub fn with_retry_schedule(mut self, retry: RetrySchedule) -> Self {
        self.retry = retry;
        self
    }

    /// Enables re-reading the Salesforce secret after a refused login.
    pub fn with_settings_source(mut self, source: SettingsSource) -> Self {
        self.settings_source = Some(Refresher::new(source));
        self
    }

    /// The Salesforce client in force.
    pub fn salesforce(&self) -> Arc<SalesforceClient> {
        self.active().client.clone()
    }

    /// The Case policy in force.
    pub fn policy(&self) -> Arc<CasePolicy> {
        self.active().policy.clone()
    }

    /// Replaces the media settings (tests and local runs).
    pub fn set_media(&self, media: MediaAccess) {
        let current = self.active();
        *self.active.write().expect("settings lock") = Arc::new(Active::new(
            current.client.clone(),
            current.policy.clone(),
            Arc::new(media),
        ));
    }

    fn active(&self) -> Arc<Active> {
        self.active.read().expect("settings lock").clone()
    }
}
