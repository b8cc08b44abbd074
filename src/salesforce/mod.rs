//! The Salesforce REST API as the worker uses it.
//!
//! - [`client`]: login, the shared token cache, retries and the resources.
//! - [`error`]: one error type for both of Salesforce's error shapes, classified.
//! - [`escape`]: the only place where values enter SOQL or SOSL.

pub mod client;
pub mod error;
pub mod escape;

pub use client::{RetryPolicy, SalesforceClient, SaveResult, Session, SubResponse, Subrequest};
pub use error::{ApiError, ErrorClass, SalesforceError};
