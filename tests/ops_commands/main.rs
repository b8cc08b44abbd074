//! The operator commands of `ops/` (`make outputs`, `smoke`, `status`,
//! `pause`, `resume`, `check-salesforce`, `dlq`, `dlq-delete`, `redrive`,
//! `reconcile`, `rollback`), run as an operator runs them (`proof::operator`): POSIX
//! `sh`, the AWS CLI, curl and python3, against moto (a CloudFormation stack
//! with FIFO queues, Lambda functions and the worker's SQS trigger; secrets;
//! alarms; the webhook's log group), the local Salesforce and the real
//! webhook handler on loopback. Nothing stands in for an AWS service but
//! moto itself.
//!
//! One binary with a module per area, as `tests/integration/` is.

mod dlq;
mod harness;
mod reconcile;
mod redrive;
mod rollback;
mod salesforce;
mod stack;
