//! The integration tests, one binary: each module drives the real handlers
//! against moto (SQS, Secrets Manager) and the local Salesforce over HTTP.
//!
//! - [`webhook`]: the webhook handler, its answers and what it queues.
//! - [`edges`]: what crosses a trust boundary: hostile identifiers, the
//!   heartbeat, deduplication, attachment URLs, `instance_url`, refusals.
//! - [`worker`]: conversations to Cases, real-org rules, attachments.
//! - [`health`]: which failures fail the worker's invocation.
//! - [`resilience`]: FIFO ordering, backoff, parking and redrive, revocation.
//! - [`operations`]: the runbook's procedures: rotations, fixes, redrive.
//! - [`links`]: the agent's signed link to the Case.
//! - [`browser`]: that link opened in headless Chromium, through its refresh.
//! - [`salesforce`]: the REST client against the local Salesforce.
//! - [`properties`]: property tests (`PROPTEST_CASES` raises the count).

mod batch;
mod browser;
mod edges;
mod health;
mod helpers;
mod links;
mod operations;
mod properties;
mod resilience;
mod salesforce;
mod webhook;
mod worker;
