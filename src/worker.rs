//! The worker: an SQS batch of close events → one Salesforce Case each.
//!
//! # Exactly once
//!
//! SQS delivers at least once, WitiOp retries deliveries, an operator may
//! redrive the DLQ, and a Lambda may die at any instruction. The worker is
//! therefore written so that running a conversation again converges on the
//! same Salesforce state instead of adding to it:
//!
//! 1. **Find before write.** Every run starts with one Composite of reads that
//!    looks the Case up by its key (the `case_external_id_field` when
//!    configured, else its Subject `<number> [<conversation id>]`) and, through
//!    a composite reference to that Case, reads the comments it already has.
//! 2. **Write atomically.** A new Case is written in one Composite with
//!    `allOrNone`: the Contact (when new), the Case and its comments either all
//!    exist afterwards or none does. A crash before or during that call leaves
//!    nothing behind; a crash after it is seen by the next run's reads.
//! 3. **Write only what is missing.** A Case that exists gets only the comments
//!    the reads did not find (compared as a multiset of bodies, so two identical
//!    messages still make two comments) and only the files not yet uploaded
//!    (each ContentVersion carries its attachment's key in `Description`).
//!    Conversations longer than one Composite can hold continue in further
//!    calls; if one of those fails, the next run resumes from what exists.
//! 4. **Upsert when possible.** With an External ID field the Case write is an
//!    upsert on it, so even two workers racing on duplicate deliveries of one
//!    conversation cannot create two Cases. Without one, the Subject lookup
//!    covers every sequential repeat (redelivery, redrive, WitiOp retry); two
//!    duplicates processed at the very same moment by two instances are the
//!    one case it cannot exclude, which is why the README recommends the field.
//!    Inside one batch, records of the same customer run one after the other,
//!    so a duplicate finds what its twin wrote.
//! 5. **A Contact is created only with its Case**, inside the same atomic
//!    write, so a repeat finds the Case (and its ContactId) rather than
//!    creating a second Contact.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::MessageAttributeValue;
use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::aws::SecretStore;
use crate::case::{self, AttachmentFate, Authors, CommentDraft};
use crate::config::SalesforceSettings;
use crate::event::{parse_body, CloseEvent, ParsedBody};
use crate::phone::CustomerNumber;
use crate::salesforce::client::count_calls;
use crate::salesforce::error::{HALTED, ROLLED_BACK};
use crate::salesforce::escape::{soql_like_suffix, soql_literal};
use crate::salesforce::{ErrorClass, SalesforceClient, SalesforceError, SubResponse, Subrequest};

/// Comments per sObject Collection, and collections per Composite.
const COLLECTION_SIZE: usize = 200;
const COLLECTIONS_PER_COMPOSITE: usize = 5;
/// Salesforce's limit for a multipart ContentVersion.
const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Time kept back from the invocation's deadline to report results.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// Where the Salesforce settings come from, so that a changed secret (a new
/// password, a new flow) is picked up without a redeploy.
pub struct SettingsSource {
    pub store: SecretStore,
    pub secret_id: String,
    pub token_secret_id: String,
    /// At most one re-read per interval, however many conversations fail.
    pub interval: Duration,
}

/// What the worker needs, built once per cold start.
pub struct Worker {
    salesforce: RwLock<Arc<SalesforceClient>>,
    settings_source: Option<SettingsSource>,
    last_reload: Mutex<Option<Instant>>,
    pub sqs: aws_sdk_sqs::Client,
    pub dlq_url: String,
    /// For attachment downloads from WitiOp.
    pub http: reqwest::Client,
    pub witiop_api_token: Option<SecretString>,
    /// Records of one batch processed at the same time.
    pub concurrency: usize,
    /// Where attachments wait between download and upload.
    pub spool_dir: PathBuf,
    /// Usernames → active user id, per cold start. Only users found are
    /// kept: one created after a failure is found on the next attempt.
    users: Mutex<HashMap<String, String>>,
}

impl Worker {
    /// The Salesforce client in force.
    pub fn salesforce(&self) -> Arc<SalesforceClient> {
        self.salesforce.read().expect("client lock").clone()
    }

    /// Enables re-reading the Salesforce secret after a refused login.
    pub fn with_settings_source(mut self, source: SettingsSource) -> Self {
        self.settings_source = Some(source);
        self
    }

    /// Re-reads the Salesforce secret (at most once per interval); true when
    /// it changed and a new client is now in force.
    async fn reload_salesforce(&self) -> bool {
        let Some(source) = &self.settings_source else {
            return false;
        };
        {
            let mut last = self.last_reload.lock().expect("reload lock");
            if last.is_some_and(|t| t.elapsed() < source.interval) {
                return false;
            }
            *last = Some(Instant::now());
        }
        let text = match source.store.current(&source.secret_id).await {
            Ok(Some(t)) => t,
            Ok(None) => return false,
            Err(e) => {
                tracing::warn!(error = %e, "could not re-read the Salesforce secret");
                return false;
            }
        };
        let settings = match SalesforceSettings::parse(&source.secret_id, &text) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the Salesforce secret is invalid; keeping the previous settings");
                return false;
            }
        };
        let current = self.salesforce();
        if format!("{settings:?}") == format!("{:?}", current.settings())
            && same_secrets(&settings, current.settings())
        {
            return false;
        }
        let client = SalesforceClient::new(
            current.http().clone(),
            Arc::new(settings),
            source.store.clone(),
            source.token_secret_id.clone(),
        );
        *self.salesforce.write().expect("client lock") = Arc::new(client);
        tracing::info!("the Salesforce secret changed; new settings in force");
        true
    }

    pub fn new(
        salesforce: Arc<SalesforceClient>,
        sqs: aws_sdk_sqs::Client,
        dlq_url: String,
        http: reqwest::Client,
        witiop_api_token: Option<SecretString>,
        concurrency: usize,
    ) -> Self {
        Self {
            salesforce: RwLock::new(salesforce),
            settings_source: None,
            last_reload: Mutex::new(None),
            sqs,
            dlq_url,
            http,
            witiop_api_token,
            concurrency: concurrency.max(1),
            spool_dir: std::env::temp_dir(),
            users: Mutex::new(HashMap::new()),
        }
    }
}

/// Why a record cannot be processed now.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the body is not a valid close event: {0}")]
    InvalidEvent(#[from] crate::event::InvalidEvent),
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error("configuration: {0}")]
    Configuration(String),
    #[error("not finished before the invocation's deadline")]
    OutOfTime,
}

impl RecordError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidEvent(_) | Self::Configuration(_) => ErrorClass::Permanent,
            Self::Salesforce(e) => e.class(),
            Self::OutOfTime => ErrorClass::RetryNow,
        }
    }

    fn code(&self) -> String {
        match self {
            Self::InvalidEvent(_) => "invalid_event".into(),
            Self::Configuration(_) => "configuration".into(),
            Self::Salesforce(e) => e.code().unwrap_or("salesforce_error").to_owned(),
            Self::OutOfTime => "out_of_time".into(),
        }
    }

    /// The same, in words an admin can act on.
    pub fn advice(&self) -> String {
        let code = self.code();
        match code.as_str() {
            "INVALID_FIELD_FOR_INSERT_UPDATE" => format!(
                "{self}. Enable \"Set Audit Fields upon Record Creation\" in Setup > User Interface and give the API user a permission set with it, or set \"set_audit_fields\": false"
            ),
            "INACTIVE_OWNER_OR_USER" => format!("{self}. Activate the user or change the agent's e-mail in Salesforce"),
            "invalid_grant" => format!("{self}. Check username, password and security token in the Salesforce secret (or that the password flow is allowed), then redrive"),
            "invalid_client_id" | "invalid_client" => format!("{self}. Check consumer_key/consumer_secret against the Connected App, then redrive"),
            "INVALID_FIELD" => format!("{self}. A field does not exist or the API user cannot see it: check field-level security (and case_external_id_field)"),
            _ => self.to_string(),
        }
    }
}

/// The result of one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOutcome {
    pub case_id: String,
    pub case_number: Option<String>,
    pub case_created: bool,
    pub contact_created: bool,
    pub comments_created: usize,
    pub attachments_uploaded: usize,
}

type Parsed = Result<ParsedBody, crate::event::InvalidEvent>;

/// Handles one SQS batch; the response lists exactly the records to retry.
pub async fn handle_batch(worker: &Worker, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let limit_hit = AtomicBool::new(false);
    // Records of one customer (and so of one conversation) run one after the
    // other: concurrent runs could each miss the other's new Contact or Case.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Vec<(SqsMessage, Parsed)>> = Vec::new();
    for record in event.records {
        // Each record is parsed on its own: one poison message fails alone.
        let parsed = parse_body(record.body.as_deref().unwrap_or("").as_bytes());
        let key = match &parsed {
            Ok(ParsedBody::Closed(e)) => {
                Some(CustomerNumber::parse(&e.conversation.customer.number).display())
            }
            _ => None,
        };
        match key.as_ref().and_then(|k| index.get(k)) {
            Some(&i) => groups[i].push((record, parsed)),
            None => {
                if let Some(k) = key {
                    index.insert(k, groups.len());
                }
                groups.push(vec![(record, parsed)]);
            }
        }
    }

    let results: Vec<Vec<(String, bool)>> = futures::stream::iter(groups)
        .map(|group| {
            let limit_hit = &limit_hit;
            async move {
                let mut out = Vec::with_capacity(group.len());
                for (record, parsed) in group {
                    let ok = process_record(worker, &record, parsed, deadline, limit_hit).await;
                    out.push((record.message_id.clone().unwrap_or_default(), ok));
                }
                out
            }
        })
        .buffer_unordered(worker.concurrency)
        .collect()
        .await;

    let mut response = SqsBatchResponse::default();
    for (id, ok) in results.into_iter().flatten() {
        if !ok {
            response.add_failure(id);
        }
    }
    response
}

/// Processes one record; true when it may be deleted from the queue
/// (done, ignored, or parked in the DLQ with its reason).
async fn process_record(
    worker: &Worker,
    record: &SqsMessage,
    parsed: Parsed,
    deadline: Instant,
    limit_hit: &AtomicBool,
) -> bool {
    let message_id = record.message_id.as_deref().unwrap_or("");
    let started = Instant::now();
    let event = match parsed {
        Ok(ParsedBody::Closed(e)) => e,
        Ok(ParsedBody::Ignored { event_type }) => {
            tracing::info!(
                message_id,
                event_type,
                outcome = "ignored",
                "not a close event"
            );
            return true;
        }
        Err(e) => return park(worker, record, None, &RecordError::InvalidEvent(e)).await,
    };
    let conversation_id = event.conversation.id.to_string();
    if limit_hit.load(Ordering::Relaxed) {
        tracing::warn!(
            message_id,
            conversation_id,
            outcome = "deferred",
            "Salesforce API limit reached earlier in this batch"
        );
        return false;
    }
    let Some(remaining) = deadline.checked_duration_since(Instant::now() + DEADLINE_MARGIN) else {
        return false;
    };
    let run = async {
        let attempt = || async {
            match tokio::time::timeout(remaining, process_conversation(worker, &event)).await {
                Ok(r) => r,
                Err(_) => Err(RecordError::OutOfTime),
            }
        };
        match attempt().await {
            // A refused login may mean the secret was fixed since the cold start.
            Err(RecordError::Salesforce(SalesforceError::Login { .. }))
                if worker.reload_salesforce().await =>
            {
                attempt().await
            }
            other => other,
        }
    };
    let (result, calls) = count_calls(run).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(o) => {
            // The org's allowance as Salesforce last reported it (Sforce-Limit-Info).
            let usage = worker
                .salesforce()
                .api_usage()
                .map(|(used, max)| format!("{used}/{max}"));
            let lag_s = event.conversation.closed_at.map(|t| {
                (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64
                    / 1000.0
            });
            tracing::info!(
                message_id,
                conversation_id,
                outcome = if o.case_created {
                    "case_created"
                } else {
                    "case_updated"
                },
                case_id = o.case_id,
                case_number = o.case_number.as_deref().unwrap_or(""),
                contact_created = o.contact_created,
                comments_created = o.comments_created,
                attachments_uploaded = o.attachments_uploaded,
                salesforce_calls = calls,
                api_usage = usage.as_deref().unwrap_or(""),
                latency_ms,
                lag_s,
                "conversation processed"
            );
            if o.case_created {
                metrics::counter!("cases_created").increment(1);
                if let Some(lag) = lag_s {
                    metrics::histogram!("case_lag_seconds").record(lag);
                }
            }
            metrics::counter!("comments_created").increment(o.comments_created as u64);
            metrics::counter!("attachments_uploaded").increment(o.attachments_uploaded as u64);
            true
        }
        Err(e) => match e.class() {
            ErrorClass::Permanent => park(worker, record, Some(&event), &e).await,
            _ => {
                // The org's allowance is spent: calling on for the rest of the
                // batch would only spend what is left of it.
                if e.code() == "REQUEST_LIMIT_EXCEEDED" {
                    limit_hit.store(true, Ordering::Relaxed);
                }
                tracing::warn!(
                    message_id,
                    conversation_id,
                    outcome = "retry",
                    error_code = e.code(),
                    error = %e,
                    salesforce_calls = calls,
                    latency_ms,
                    "conversation left in the queue for a later attempt"
                );
                metrics::counter!("conversations_retried").increment(1);
                false
            }
        },
    }
}

/// Sends a record that can never succeed to the DLQ, body intact, with the
/// reason in message attributes. False (retry) if even that fails.
async fn park(
    worker: &Worker,
    record: &SqsMessage,
    event: Option<&CloseEvent>,
    error: &RecordError,
) -> bool {
    let message_id = record.message_id.as_deref().unwrap_or("");
    let conversation_id = event
        .map(|e| e.conversation.id.to_string())
        .or_else(|| {
            record
                .message_attributes
                .get("conversation_id")
                .and_then(|a| a.string_value.clone())
        })
        .unwrap_or_default();
    let advice = error.advice();
    let attr = |v: &str| {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .expect("data type is set")
    };
    let mut request = worker
        .sqs
        .send_message()
        .queue_url(&worker.dlq_url)
        .message_body(record.body.clone().unwrap_or_default())
        .message_attributes("error_code", attr(&error.code()))
        .message_attributes("error_message", attr(&truncate(&advice, 1000)))
        .message_attributes("failed_at", attr(&chrono::Utc::now().to_rfc3339()))
        .message_attributes(
            "original_message_id",
            attr(if message_id.is_empty() {
                "unknown"
            } else {
                message_id
            }),
        );
    if !conversation_id.is_empty() {
        request = request.message_attributes("conversation_id", attr(&conversation_id));
    }
    if let Some(id) = event.and_then(|e| e.event_id.as_deref()) {
        request = request.message_attributes("event_id", attr(id));
    }
    match request.send().await {
        Ok(_) => {
            tracing::error!(
                message_id,
                conversation_id,
                outcome = "dead_lettered",
                error_code = error.code(),
                error = advice,
                "conversation moved to the dead-letter queue: fix the cause, then redrive"
            );
            metrics::counter!("conversations_dead_lettered", "code" => error.code()).increment(1);
            true
        }
        Err(e) => {
            tracing::error!(message_id, conversation_id, error = %DisplayErrorContext(&e), "could not move the record to the DLQ; it stays in the queue");
            false
        }
    }
}

fn same_secrets(a: &SalesforceSettings, b: &SalesforceSettings) -> bool {
    let expose = |s: &Option<SecretString>| s.as_ref().map(|v| v.expose_secret().to_owned());
    a.consumer_secret.expose_secret() == b.consumer_secret.expose_secret()
        && expose(&a.password) == expose(&b.password)
        && expose(&a.security_token) == expose(&b.security_token)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserRow {
    id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContactRow {
    id: String,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    mobile_phone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CaseRow {
    id: String,
    #[serde(default)]
    case_number: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CommentRow {
    #[serde(default)]
    comment_body: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FileRow {
    #[serde(default)]
    description: Option<String>,
}

/// What the reads found.
struct Found {
    agent_user: Option<String>,
    default_owner: Option<String>,
    customer_user: Option<String>,
    contact: Option<String>,
    case: Option<CaseRow>,
    comments: Vec<String>,
}

/// Turns one close event into its Case (see the module's exactly-once notes).
pub async fn process_conversation(
    worker: &Worker,
    event: &CloseEvent,
) -> Result<CaseOutcome, RecordError> {
    let sf = &worker.salesforce();
    let settings = sf.settings();
    let conversation = &event.conversation;
    let subject = case::subject(conversation);
    let found = read_state(worker, event, &subject).await?;

    if settings.set_audit_fields && found.customer_user.is_none() {
        return Err(RecordError::Configuration(format!(
            "customer_comment_username {} is not an active Salesforce user",
            settings
                .customer_comment_username
                .as_deref()
                .unwrap_or("(unset)")
        )));
    }
    if found.agent_user.is_none() {
        tracing::warn!(
            conversation_id = %conversation.id,
            agent_email = conversation.agent.email,
            "no active Salesforce user has the agent's e-mail: the Case goes to the default owner"
        );
    }

    // Attachments: fetched before anything is written, so each comment can
    // say truthfully what became of its files.
    let uploaded_keys = match (
        &found.case,
        settings.add_attachments && has_attachments(event),
    ) {
        (Some(c), true) => existing_file_keys(sf, &c.id).await?,
        _ => HashSet::new(),
    };
    let files = if settings.add_attachments {
        fetch_attachments(worker, event, &uploaded_keys).await
    } else {
        Vec::new()
    };
    let fate = |m: usize, a: usize| -> AttachmentFate {
        if !settings.add_attachments {
            return AttachmentFate::Linked;
        }
        match files.iter().find(|f| f.message == m && f.attachment == a) {
            Some(Spooled {
                status: Err(reason),
                ..
            }) => AttachmentFate::NotUploaded(reason.clone()),
            _ => AttachmentFate::Uploaded,
        }
    };
    let authors = Authors {
        set_audit_fields: settings.set_audit_fields,
        agent_user_id: found.agent_user.clone(),
        customer_user_id: found.customer_user.clone(),
    };
    let planned = case::plan_comments(conversation, &authors, &fate);
    let missing = case::missing_comments(planned, &found.comments);
    let owner = found.agent_user.clone().or(found.default_owner.clone());

    let mut outcome = CaseOutcome {
        case_id: String::new(),
        case_number: found.case.as_ref().and_then(|c| c.case_number.clone()),
        case_created: false,
        contact_created: false,
        comments_created: 0,
        attachments_uploaded: 0,
    };
    let mut remaining: &[CommentDraft] = &missing;
    match &found.case {
        Some(existing) => outcome.case_id = existing.id.clone(),
        None => {
            let first = write_new_case(
                worker,
                event,
                &subject,
                owner,
                found.contact.clone(),
                remaining,
            )
            .await?;
            outcome.case_id = first.case_id;
            outcome.case_number = first.case_number;
            outcome.case_created = first.created;
            outcome.contact_created = first.contact_created;
            outcome.comments_created = first.comments_written;
            remaining = &remaining[first.comments_written..];
        }
    }
    while !remaining.is_empty() {
        let written = write_comments(sf, &outcome.case_id, remaining).await?;
        outcome.comments_created += written;
        remaining = &remaining[written..];
    }
    outcome.attachments_uploaded =
        upload_attachments(worker, event, &outcome.case_id, &files).await?;
    Ok(outcome)
}

/// One Composite of reads: users, contact candidates, the Case, its comments.
async fn read_state(
    worker: &Worker,
    event: &CloseEvent,
    subject: &str,
) -> Result<Found, RecordError> {
    let sf = &worker.salesforce();
    let settings = sf.settings();
    let conversation = &event.conversation;
    let path = sf.data_path();
    let number = CustomerNumber::parse(&conversation.customer.number);

    // Usernames whose ids do not change: cached per cold start.
    let mut wanted: Vec<String> = Vec::new();
    if let Some(u) = &settings.default_owner_username {
        wanted.push(u.to_lowercase());
    }
    if settings.set_audit_fields {
        if let Some(u) = &settings.customer_comment_username {
            wanted.push(u.to_lowercase());
        }
    }
    let uncached: Vec<String> = {
        let cache = worker.users.lock().expect("user cache");
        wanted
            .iter()
            .filter(|u| !cache.contains_key(*u))
            .cloned()
            .collect()
    };
    let mut user_filter = format!("Email = {}", soql_literal(&conversation.agent.email));
    if !uncached.is_empty() {
        let list: Vec<String> = uncached.iter().map(|u| soql_literal(u)).collect();
        user_filter = format!("({user_filter} OR Username IN ({}))", list.join(", "));
    }
    let mut reads = vec![Subrequest::query(
        &path,
        "users",
        &format!("SELECT Id, Email, Username FROM User WHERE IsActive = true AND {user_filter} ORDER BY CreatedDate, Id LIMIT 50"),
    )];
    let variants: Vec<String> = number
        .typed_variants()
        .iter()
        .map(|v| soql_literal(v))
        .collect();
    let list = variants.join(", ");
    reads.push(Subrequest::query(
        &path,
        "contacts",
        &format!("SELECT Id, Phone, MobilePhone FROM Contact WHERE Phone IN ({list}) OR MobilePhone IN ({list}) ORDER BY CreatedDate, Id LIMIT 200"),
    ));
    if let Some(last) = number.last_digits() {
        let like = soql_like_suffix(&last);
        reads.push(Subrequest::query(
            &path,
            "similar",
            &format!("SELECT Id, Phone, MobilePhone FROM Contact WHERE Phone LIKE {like} OR MobilePhone LIKE {like} ORDER BY CreatedDate, Id LIMIT 200"),
        ));
    }
    let case_filter = match &settings.case_external_id_field {
        Some(field) => format!("{field} = {}", soql_literal(conversation.id.as_str())),
        None => format!("Subject = {}", soql_literal(subject)),
    };
    reads.push(Subrequest::query(
        &path,
        "existing",
        &format!(
            "SELECT Id, CaseNumber FROM Case WHERE {case_filter} ORDER BY CreatedDate, Id LIMIT 1"
        ),
    ));
    // Resolved by Salesforce only when the Case exists; otherwise this
    // subrequest fails on its reference, which means "no comments".
    reads.push(Subrequest::query_with_references(
        &path,
        "comments",
        "SELECT CommentBody FROM CaseComment WHERE ParentId = '@{existing.records[0].Id}'",
    ));
    let answers = sf.composite(&reads, false).await?;
    let by_ref = |r: &str| answers.iter().find(|a| a.reference_id == r);

    let users: Vec<UserRow> = by_ref("users")
        .map(|a| a.records())
        .transpose()?
        .unwrap_or_default();
    let email = conversation.agent.email.to_lowercase();
    let agent_matches: Vec<&UserRow> = users
        .iter()
        .filter(|u| {
            u.email
                .as_deref()
                .is_some_and(|e| e.to_lowercase() == email)
        })
        .collect();
    if agent_matches.len() > 1 {
        tracing::warn!(
            agent_email = conversation.agent.email,
            chosen = agent_matches[0].id,
            candidates = agent_matches.len(),
            "several active users share the agent's e-mail; the oldest is used"
        );
    }
    let agent_user = agent_matches.first().map(|u| u.id.clone());
    {
        let mut cache = worker.users.lock().expect("user cache");
        for name in &uncached {
            let id = users
                .iter()
                .find(|u| {
                    u.username
                        .as_deref()
                        .is_some_and(|n| n.to_lowercase() == *name)
                })
                .map(|u| u.id.clone());
            if let Some(id) = id {
                cache.insert(name.clone(), id);
            }
        }
    }
    let cached = |name: &Option<String>| -> Option<String> {
        let name = name.as_ref()?.to_lowercase();
        worker.users.lock().expect("user cache").get(&name).cloned()
    };
    let default_owner = cached(&settings.default_owner_username);
    if settings.default_owner_username.is_some() && default_owner.is_none() {
        tracing::warn!(
            username = settings.default_owner_username.as_deref().unwrap_or(""),
            "default_owner_username is not an active user; Cases without an agent user go to the API user"
        );
    }
    let customer_user = if settings.set_audit_fields {
        cached(&settings.customer_comment_username)
    } else {
        None
    };

    let contact = choose_contact(&number, by_ref("contacts"), by_ref("similar"))?;
    let case: Option<CaseRow> = by_ref("existing")
        .map(|a| a.records::<CaseRow>())
        .transpose()?
        .and_then(|mut v| {
            if v.is_empty() {
                None
            } else {
                Some(v.remove(0))
            }
        });
    let comments = match (&case, by_ref("comments")) {
        (Some(_), Some(answer)) => sf
            .rest_of_query::<CommentRow>(answer)
            .await?
            .into_iter()
            .filter_map(|c| c.comment_body)
            .collect(),
        _ => Vec::new(),
    };
    Ok(Found {
        agent_user,
        default_owner,
        customer_user,
        contact,
        case,
        comments,
    })
}

fn choose_contact(
    number: &CustomerNumber,
    exact: Option<&crate::salesforce::SubResponse>,
    similar: Option<&crate::salesforce::SubResponse>,
) -> Result<Option<String>, RecordError> {
    let mut candidates: Vec<ContactRow> =
        exact.map(|a| a.records()).transpose()?.unwrap_or_default();
    if let Some(similar) = similar {
        // The suffix query scans; on a very large org it may time out. The
        // exact query has already answered for the common formats.
        match similar.records::<ContactRow>() {
            Ok(rows) => candidates.extend(rows),
            Err(e) => {
                tracing::warn!(error = %e, "the phone suffix query failed; using exact formats only")
            }
        }
    }
    let mut seen = HashSet::new();
    let matching: Vec<&ContactRow> = candidates
        .iter()
        .filter(|c| seen.insert(c.id.clone()))
        .filter(|c| {
            [&c.phone, &c.mobile_phone]
                .iter()
                .any(|p| p.as_deref().is_some_and(|p| number.matches(p)))
        })
        .collect();
    if matching.len() > 1 {
        tracing::warn!(
            customer_number = number.display(),
            chosen = matching[0].id,
            candidates = matching.len(),
            "several Contacts have the customer's number; the oldest is used"
        );
    }
    Ok(matching.first().map(|c| c.id.clone()))
}

struct FirstWrite {
    case_id: String,
    case_number: Option<String>,
    created: bool,
    contact_created: bool,
    comments_written: usize,
}

/// One atomic Composite: Contact (if new), Case, and as many comments as fit.
async fn write_new_case(
    worker: &Worker,
    event: &CloseEvent,
    subject: &str,
    owner: Option<String>,
    contact: Option<String>,
    comments: &[CommentDraft],
) -> Result<FirstWrite, RecordError> {
    let sf = &worker.salesforce();
    let settings = sf.settings();
    let conversation = &event.conversation;
    let path = sf.data_path();
    let mut requests = Vec::new();
    let contact_created = contact.is_none();
    let contact_ref = match contact {
        Some(id) => id,
        None => {
            requests.push(Subrequest::create(
                &path,
                "contact",
                "Contact",
                case::new_contact(conversation),
            ));
            "@{contact.id}".to_owned()
        }
    };
    let mut fields = json!({
        "Subject": subject,
        "Description": case::description(conversation),
        "ContactId": contact_ref,
    });
    if let Some(origin) = &settings.case_origin {
        fields["Origin"] = json!(origin);
    }
    if let Some(owner) = owner {
        fields["OwnerId"] = json!(owner);
    }
    if settings.set_audit_fields {
        // The Case dates from the conversation's opening, like its first comment.
        if let Some(t) = conversation.opened_at {
            fields["CreatedDate"] = json!(case::salesforce_datetime(t));
        }
    }
    match &settings.case_external_id_field {
        Some(field) => requests.push(Subrequest::upsert(
            &path,
            "case",
            "Case",
            field,
            conversation.id.as_str(),
            fields,
        )),
        None => requests.push(Subrequest::create(&path, "case", "Case", fields)),
    }
    let chunks: Vec<&[CommentDraft]> = comments.chunks(COLLECTION_SIZE).collect();
    // One slot of five goes to reading the CaseNumber when it is free.
    let collections = chunks.len().min(COLLECTIONS_PER_COMPOSITE);
    for (i, chunk) in chunks.iter().take(collections).enumerate() {
        let records = chunk.iter().map(|c| c.record("@{case.id}")).collect();
        requests.push(Subrequest::collection(
            &path,
            &format!("comments{i}"),
            records,
        ));
    }
    let read_number = collections < COLLECTIONS_PER_COMPOSITE;
    if read_number {
        requests.push(Subrequest::query_with_references(
            &path,
            "number",
            "SELECT CaseNumber FROM Case WHERE Id = '@{case.id}'",
        ));
    }
    let answers = sf.composite(&requests, true).await?;
    // Under allOrNone, the subrequest that really failed is the one whose
    // error is not PROCESSING_HALTED.
    composite_failure(&answers)?;
    let case_answer = answers
        .iter()
        .find(|a| a.reference_id == "case")
        .ok_or_else(|| {
            RecordError::Salesforce(SalesforceError::Decode("no answer for the Case".into()))
        })?;
    let case_id = case_answer
        .body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            RecordError::Salesforce(SalesforceError::Decode("the Case answer has no id".into()))
        })?
        .to_owned();
    let created = case_answer
        .body
        .get("created")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let case_number = answers
        .iter()
        .find(|a| a.reference_id == "number")
        .and_then(|a| a.records::<CaseRow>().ok())
        .and_then(|mut v| {
            if v.is_empty() {
                None
            } else {
                v.remove(0).case_number
            }
        });
    let comments_written = chunks.iter().take(collections).map(|c| c.len()).sum();
    Ok(FirstWrite {
        case_id,
        case_number,
        created,
        contact_created,
        comments_written,
    })
}

/// The error of an `allOrNone` Composite: the subrequest that really failed,
/// not those Salesforce halted or rolled back because of it.
fn composite_failure(answers: &[SubResponse]) -> Result<(), RecordError> {
    let mut errors: Vec<SalesforceError> = answers.iter().filter_map(SubResponse::error).collect();
    if errors.is_empty() {
        return Ok(());
    }
    let cause = errors
        .iter()
        .position(|e| !matches!(e.code(), Some(ROLLED_BACK | HALTED)))
        .unwrap_or(0);
    Err(RecordError::Salesforce(errors.swap_remove(cause)))
}

/// Further comments of an existing Case: one atomic Composite of collections.
async fn write_comments(
    sf: &SalesforceClient,
    case_id: &str,
    comments: &[CommentDraft],
) -> Result<usize, RecordError> {
    let path = sf.data_path();
    let chunks: Vec<&[CommentDraft]> = comments
        .chunks(COLLECTION_SIZE)
        .take(COLLECTIONS_PER_COMPOSITE)
        .collect();
    let requests: Vec<Subrequest> = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            Subrequest::collection(
                &path,
                &format!("comments{i}"),
                chunk.iter().map(|c| c.record(case_id)).collect(),
            )
        })
        .collect();
    let answers = sf.composite(&requests, true).await?;
    composite_failure(&answers)?;
    Ok(chunks.iter().map(|c| c.len()).sum())
}

fn has_attachments(event: &CloseEvent) -> bool {
    event
        .conversation
        .messages
        .iter()
        .any(|m| !m.attachments.is_empty())
}

/// The key stored in a ContentVersion's Description to recognise it later.
fn file_key(event: &CloseEvent, message: usize, attachment: usize) -> String {
    let m = &event.conversation.messages[message];
    format!(
        "WitiOp conversation {} message {} attachment {}",
        event.conversation.id,
        m.id.clone().unwrap_or_else(|| message.to_string()),
        attachment
    )
}

async fn existing_file_keys(
    sf: &SalesforceClient,
    case_id: &str,
) -> Result<HashSet<String>, RecordError> {
    let rows: Vec<FileRow> = sf
        .query(&format!(
            "SELECT Description FROM ContentVersion WHERE FirstPublishLocationId = {}",
            soql_literal(case_id)
        ))
        .await?;
    Ok(rows.into_iter().filter_map(|r| r.description).collect())
}

/// An attachment downloaded to the spool directory, or why it could not be.
struct Spooled {
    message: usize,
    attachment: usize,
    key: String,
    status: Result<Option<SpoolFile>, String>,
}

/// `None` inside `Ok` means: already uploaded by an earlier run.
struct SpoolFile {
    path: PathBuf,
    file_name: String,
    content_type: String,
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn fetch_attachments(
    worker: &Worker,
    event: &CloseEvent,
    uploaded: &HashSet<String>,
) -> Vec<Spooled> {
    let mut out = Vec::new();
    for (m, message) in event.conversation.messages.iter().enumerate() {
        for (a, attachment) in message.attachments.iter().enumerate() {
            let key = file_key(event, m, a);
            let status = if uploaded.contains(&key) {
                Ok(None)
            } else {
                download(worker, attachment, m, a).await.map(Some)
            };
            if let Err(reason) = &status {
                tracing::warn!(conversation_id = %event.conversation.id, url = attachment.url, reason, "attachment not uploaded; the comment links to WitiOp");
            }
            out.push(Spooled {
                message: m,
                attachment: a,
                key,
                status,
            });
        }
    }
    out
}

async fn download(
    worker: &Worker,
    attachment: &crate::event::Attachment,
    m: usize,
    a: usize,
) -> Result<SpoolFile, String> {
    use tokio::io::AsyncWriteExt;
    if attachment.size.is_some_and(|s| s > MAX_FILE_BYTES) {
        return Err("larger than Salesforce's 2 GB file limit".into());
    }
    let mut request = worker
        .http
        .get(&attachment.url)
        .timeout(Duration::from_secs(120));
    if let Some(token) = &worker.witiop_api_token {
        request = request.bearer_auth(token.expose_secret());
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("download failed: {}", e.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("WitiOp answered HTTP {}", status.as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|l| l > MAX_FILE_BYTES)
    {
        return Err("larger than Salesforce's 2 GB file limit".into());
    }
    let content_type = attachment
        .content_type
        .clone()
        .or_else(|| {
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "application/octet-stream".into());
    let path = worker.spool_dir.join(format!(
        "witiop-{}-{m}-{a}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let spool = SpoolFile {
        path: path.clone(),
        file_name: attachment
            .file_name
            .clone()
            .unwrap_or_else(|| case::file_name_from_url(&attachment.url)),
        content_type,
    };
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| format!("spool: {e}"))?;
    let mut stream = response.bytes_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("download interrupted: {}", e.without_url()))?;
        total += chunk.len() as u64;
        if total > MAX_FILE_BYTES {
            return Err("larger than Salesforce's 2 GB file limit".into());
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("spool: {e}"))?;
    }
    file.flush().await.map_err(|e| format!("spool: {e}"))?;
    Ok(spool)
}

/// A spool file name unique within the process.
fn rand_suffix() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

async fn upload_attachments(
    worker: &Worker,
    event: &CloseEvent,
    case_id: &str,
    files: &[Spooled],
) -> Result<usize, RecordError> {
    let mut uploaded = 0;
    for f in files {
        let Ok(Some(spool)) = &f.status else { continue };
        let entity = json!({
            "Title": spool.file_name,
            "PathOnClient": spool.file_name,
            "FirstPublishLocationId": case_id,
            "Description": f.key,
        });
        let path = spool.path.clone();
        worker
            .salesforce()
            .upload_content_version(&entity, &spool.file_name, &spool.content_type, move || {
                // Re-opened on every attempt, so a retry streams the file again.
                match std::fs::File::open(&path) {
                    Ok(file) => reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(
                        tokio::fs::File::from_std(file),
                    )),
                    Err(_) => reqwest::Body::from(Vec::new()),
                }
            })
            .await?;
        uploaded += 1;
        tracing::debug!(conversation_id = %event.conversation.id, file = spool.file_name, "attachment uploaded");
    }
    Ok(uploaded)
}
