//! WitiOp → Salesforce: every WhatsApp conversation an agent closes in WitiOp
//! becomes one Salesforce Case.
//!
//! Three Lambda functions are thin binaries over this crate: `webhook`
//! authenticates and validates WitiOp's close event and queues it in SQS;
//! `worker` turns each queued event into a Case; `links` takes the agent
//! from a signed link to that Case.
//!
//! # Layout
//!
//! - [`event`]: the WitiOp close event and its validation (shared by both functions).
//! - [`config`]: environment variables and secret values as typed settings.
//! - [`aws`]: SDK configuration and Secrets Manager access.
//! - [`deadline`]: the time a record has left, which bounds every call it makes.
//! - [`queue`]: the SQS message attributes both functions and the operator
//!   scripts of `ops/` share.
//! - [`webhook`]: request → auth → validation → SQS → explicit response.
//! - [`case`]: the domain: what a conversation becomes in Salesforce (pure).
//! - [`phone`]: customer numbers, normalised and matched with libphonenumber.
//! - [`salesforce`]: typed REST client (login, token cache, query, composite,
//!   files) and the records a conversation reads.
//! - [`settings`]: the secrets re-read by warm instances (worker and links).
//! - [`worker`]: SQS batch → one conversation each → Salesforce; exactly-once argument.
//! - [`links`]: the agent's signed link to the Case (the `links` function).
//! - [`telemetry`]: JSON logging and metrics set-up.
//! - [`startup`]: what each function does once per cold start.

pub mod aws;
pub(crate) mod case;
pub mod config;
pub mod deadline;
pub mod event;
pub mod links;
pub(crate) mod phone;
pub(crate) mod queue;
pub mod salesforce;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub(crate) mod text;
pub mod webhook;
pub mod worker;
