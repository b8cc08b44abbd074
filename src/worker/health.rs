//! What a batch says of the worker's health: when an invocation fails, and
//! the count of unexpected failures.
//!
//! Powertools' rule is "if every record fails, fail the invocation", so
//! that a broken function shows in Lambda's `Errors` metric. Applied as it
//! is, it also failed every invocation through the waits this integration
//! expects and rides out: a Salesforce outage, the org's API allowance
//! spent, a refused login. Each of those has its own alarm, and its records
//! wait in the queue whether the invocation fails or not (they are listed in
//! `batchItemFailures`, so nothing is lost): counting them as errors only
//! made the worker-errors alarm fire through every one of them, and hid a
//! real fault behind them. So the rule is kept where it means something is
//! broken: every record stayed in the queue, and at least one of them for
//! an unexpected reason ([`Disposition::Unexpected`]). Each unexpected
//! failure is also counted (`conversations_failed_unexpectedly`), because
//! in a batch where other records succeed it fails no invocation.

use aws_lambda_events::sqs::SqsBatchResponse;

use super::batch::Disposition;

/// A batch's answer to Lambda, and what it says of the worker's health.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// The records SQS delivers again (`batchItemFailures`).
    pub response: SqsBatchResponse,
    /// Records in the batch.
    pub records: usize,
    /// Records left in the queue by an unexpected failure.
    pub unexpected: usize,
}

impl BatchOutcome {
    /// The outcome of records with these dispositions (message id first);
    /// counts the unexpected failures in the worker's metric.
    pub(crate) fn of(dispositions: impl IntoIterator<Item = (String, Disposition)>) -> Self {
        let mut outcome = Self::default();
        for (id, disposition) in dispositions {
            outcome.records += 1;
            if disposition == Disposition::Unexpected {
                outcome.unexpected += 1;
            }
            if !disposition.leaves_the_queue() {
                outcome.response.add_failure(id);
            }
        }
        if outcome.unexpected > 0 {
            metrics::counter!("conversations_failed_unexpectedly")
                .increment(outcome.unexpected as u64);
        }
        outcome
    }

    /// Every record stayed in the queue, at least one for an unexpected
    /// reason: the worker is broken, not waiting.
    pub fn is_broken(&self) -> bool {
        self.unexpected > 0 && self.response.batch_item_failures.len() == self.records
    }

    /// The answer to Lambda: an error when the worker is broken, so that it
    /// shows in the function's error metric; otherwise the records to retry.
    pub fn into_result(self) -> Result<SqsBatchResponse, BatchFailed> {
        if self.is_broken() {
            Err(BatchFailed {
                records: self.records,
                unexpected: self.unexpected,
            })
        } else {
            Ok(self.response)
        }
    }
}

/// Every record of a batch stayed in the queue, at least one for an
/// unexpected reason: the invocation reports this error so that it shows in
/// the function's error metric. Its records return to the queue.
#[derive(Debug, thiserror::Error)]
#[error(
    "all {records} records of the batch failed, {unexpected} for an unexpected reason; they return to the queue"
)]
pub struct BatchFailed {
    pub records: usize,
    pub unexpected: usize,
}

impl From<BatchFailed> for lambda_runtime::Diagnostic {
    /// A stable error type an operator can search the logs and traces for.
    fn from(e: BatchFailed) -> Self {
        Self {
            error_type: "BatchFailed".into(),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Disposition::{Done, Ignored, Parked, RetryLater, Unexpected};

    /// Waits fail no invocation, however many; a batch that only failed,
    /// once anything failed unexpectedly, does.
    #[test]
    fn only_a_batch_that_failed_unexpectedly_throughout_fails_the_invocation() {
        for (dispositions, broken, retried) in [
            (vec![], false, 0),
            (vec![RetryLater; 10], false, 10),
            (vec![Done, RetryLater], false, 1),
            (vec![Unexpected, Done], false, 1),
            (vec![Unexpected, Parked, Ignored], false, 1),
            (vec![Unexpected], true, 1),
            (vec![Unexpected, RetryLater, RetryLater], true, 3),
        ] {
            let outcome = BatchOutcome::of(
                dispositions
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (format!("m{i}"), *d)),
            );
            assert_eq!(outcome.is_broken(), broken, "{dispositions:?}");
            assert_eq!(
                outcome.response.batch_item_failures.len(),
                retried,
                "{dispositions:?}"
            );
            assert_eq!(outcome.into_result().is_err(), broken, "{dispositions:?}");
        }
    }
}
