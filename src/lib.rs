//! WitiOp → Salesforce: every WhatsApp conversation an agent closes in WitiOp
//! becomes one Salesforce Case.
//!
//! Two Lambda functions are thin binaries over this crate: `webhook`
//! authenticates and validates WitiOp's close event and queues it in SQS;
//! `worker` turns each queued event into a Case.
//!
//! # Layout
//!
//! - [`event`]: the WitiOp close event and its validation (shared by both functions).
//! - [`config`]: environment variables and secret values as typed settings.
//! - [`aws`]: SDK configuration and Secrets Manager access.
//! - [`salesforce`]: typed REST client (login, token cache, query, composite, files).
//! - [`webhook`]: request → auth → validation → SQS → explicit response.
//! - [`phone`]: customer numbers, normalised and matched with libphonenumber.
//! - [`case`]: the domain: what a conversation becomes in Salesforce (pure).
//! - [`worker`]: SQS batch → one conversation each → Salesforce; exactly-once argument.
//! - [`ops`]: dead-letter queue listing and redrive, for operators.
//! - [`telemetry`]: JSON logging set-up.

pub mod aws;
pub mod case;
pub mod config;
pub mod event;
pub mod ops;
pub mod phone;
pub mod salesforce;
pub mod telemetry;
pub mod webhook;
pub mod worker;
