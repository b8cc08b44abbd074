//! The worker: an SQS batch of close events → one Salesforce Case each.
//!
//! Orchestration only: what to write is decided by [`crate::case`]; how to
//! talk to Salesforce by [`crate::salesforce`]. One job per file:
//!
//! - [`batch`]: a batch's records, grouped by customer, each to a [`Disposition`].
//! - [`bulk`]: one Composite of reads for the whole batch, one atomic
//!   Composite writing every new Case that fits.
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
//! 7. **A batch's shared write keeps all of the above** ([`bulk`]). The
//!    batch's one Composite of reads comes before its one write (2); the
//!    write is `allOrNone`, so every Contact, Case and comment in it exists
//!    afterwards or none does (3, 6); only conversations whose Case the
//!    reads did not find join it, a conversation at most once per batch
//!    (4); and a customer joins with a prefix of their conversations in
//!    delivery order, sharing one new Contact, the rest of theirs following
//!    on their own path after the write (1). Whatever the shared write does
//!    not do, each conversation's own path does in the same invocation,
//!    starting from its own reads.

mod attachments;
mod backoff;
mod batch;
mod bulk;
mod conversation;
mod dead_letter;
mod error;
mod exchange;
mod health;
mod read;
mod settings;
mod write;

pub use crate::settings::SettingsSource;
pub use attachments::{Files, DEFAULT_MAX_FILE_BYTES};
pub use backoff::RetrySchedule;
pub use batch::{handle_batch, process_batch, BatchConfig, Disposition};
pub use conversation::CaseOutcome;
pub use error::RecordError;
pub use exchange::{Exchange, ExchangeSettings};
pub use health::{BatchFailed, BatchOutcome};
pub use settings::MediaAccess;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{CasePolicy, WorkerEnv};
use crate::salesforce::SalesforceClient;

/// What the worker needs, built once per cold start, in the three parts a
/// batch uses: its queues, the Salesforce exchange, and the file copies.
pub struct Worker {
    batch: BatchConfig,
    salesforce: Exchange,
    files: Files,
}

/// What a worker is built from.
pub struct WorkerSettings {
    /// The Salesforce client, Case policy and media access in force, and
    /// where they are re-read from.
    pub salesforce: ExchangeSettings,
    /// The queues and how a batch runs.
    pub batch: BatchConfig,
    /// Largest attachment downloaded ([`DEFAULT_MAX_FILE_BYTES`]).
    pub max_file_bytes: u64,
}

impl WorkerSettings {
    /// The Lambda's settings: its environment and the secrets read at cold
    /// start, re-read every `SETTINGS_REFRESH_SECONDS`.
    pub fn from_env(env: WorkerEnv, start: crate::startup::Salesforce) -> Self {
        let ids = env.secrets;
        let source = SettingsSource {
            store: start.store,
            secret_id: ids.salesforce,
            witiop_secret_id: Some(ids.witiop),
            token_secret_id: ids.salesforce_token,
            interval: Duration::from_secs(env.settings_refresh_seconds),
        };
        Self {
            salesforce: ExchangeSettings {
                client: Arc::new(source.salesforce_client(start.http, start.settings.connection)),
                policy: start.settings.policy,
                media: MediaAccess::from_secret(&start.witiop),
                source: Some(source),
            },
            batch: BatchConfig {
                sqs: aws_sdk_sqs::Client::new(&start.sdk),
                dlq_url: env.dlq_url,
                concurrency: env.record_concurrency,
                retry: RetrySchedule {
                    queue_url: env.queue_url,
                    base: Duration::from_secs(env.retry_base_seconds),
                    cap: Duration::from_secs(env.retry_cap_seconds),
                },
            },
            max_file_bytes: env.max_attachment_bytes,
        }
    }
}

impl Worker {
    pub fn new(settings: WorkerSettings) -> Self {
        let WorkerSettings {
            salesforce,
            mut batch,
            max_file_bytes,
        } = settings;
        batch.concurrency = batch.concurrency.max(1);
        Self {
            batch,
            salesforce: Exchange::new(salesforce),
            files: Files::new(max_file_bytes),
        }
    }

    /// The Salesforce client in force.
    pub fn salesforce(&self) -> Arc<SalesforceClient> {
        self.salesforce.active().client.clone()
    }

    /// The Case policy in force.
    pub fn policy(&self) -> Arc<CasePolicy> {
        self.salesforce.active().policy.clone()
    }

    /// Replaces the media settings (tests and local runs).
    pub fn set_media(&self, media: MediaAccess) {
        self.salesforce.set_media(media);
    }
}
