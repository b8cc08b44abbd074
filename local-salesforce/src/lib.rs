//! A strict in-memory Salesforce REST API.
