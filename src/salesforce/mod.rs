//! The Salesforce REST API as the integration uses it.
//!
//! - [`client`]: the transport: retries, API-call accounting, `Sforce-Limit-Info`.
//! - [`auth`]: login flows and the token cache shared by all instances.
//! - [`assertion`]: the signed JWT of the JWT bearer flow.
//! - [`resources`]: query, sObject Collections, Composite, ContentVersion.
//! - [`composite`]: Composite's subrequest and response shapes.
//! - [`records`]: the User, Contact, Case and comment reads of a conversation.
//! - [`error`]: one error type for both of Salesforce's error shapes, classified.
//! - [`escape`]: the only place where values enter SOQL.

pub mod assertion;
pub mod auth;
pub mod client;
pub mod composite;
pub mod error;
pub mod escape;
pub mod instance;
pub mod records;
pub mod resources;

pub use auth::Session;
pub use client::{RetryPolicy, SalesforceClient};
pub use composite::{RefId, SubMethod, SubResponse, Subrequest};
pub use error::{ApiError, ErrorClass, SalesforceError};
pub use resources::SaveResult;
