//! Backoff that outlasts outages: a record that failed for a transient
//! reason is hidden by the worker itself (`ChangeMessageVisibility`), for
//! longer after each failure, so a Salesforce outage of days or an API
//! allowance spent until tomorrow waits in the queue instead of reaching the
//! DLQ. On a FIFO queue this also holds back the rest of the customer's
//! messages, which must not overtake it.

use std::time::Duration;

use aws_lambda_events::sqs::SqsMessage;
use aws_sdk_sqs::error::DisplayErrorContext;

use super::batch::BatchConfig;
pub use crate::salesforce::error::Wait;

/// SQS refuses to hide a message more than 12 hours after it was received;
/// the record was received moments before the worker backs it off, so five
/// minutes of margin keep the longest backoff within that.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60 - 5 * 60);
/// The rolling 24-hour API allowance recovers slowly: no point looking
/// again sooner than this.
const ALLOWANCE_WAIT: Duration = Duration::from_secs(60 * 60);

/// When to look at a failed record again.
#[derive(Debug, Clone)]
pub struct RetrySchedule {
    /// The queue the records come from; `None` leaves the queue's own
    /// visibility timeout in charge.
    pub queue_url: Option<String>,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            queue_url: None,
            base: Duration::from_secs(60),
            cap: MAX_VISIBILITY,
        }
    }
}

impl RetrySchedule {
    /// The delay before delivery `receive_count + 1`: doubling from the base,
    /// capped, with "equal jitter" (between half and all of it) so that a
    /// batch failing together does not come back together. `jitter` ∈ [0, 1].
    /// A spent allowance waits at least [`ALLOWANCE_WAIT`] whatever the
    /// jitter drew: the floor applies to the jittered delay, never before it.
    pub fn delay(&self, receive_count: u32, wait: Wait, jitter: f64) -> Duration {
        let cap = self.cap.min(MAX_VISIBILITY);
        let doubling = 2u32.saturating_pow(receive_count.saturating_sub(1).min(30));
        let delay = self.base.saturating_mul(doubling).min(cap);
        let half = delay / 2;
        let jittered = half + half.mul_f64(jitter.clamp(0.0, 1.0));
        match wait {
            Wait::Backoff => jittered,
            Wait::ForAllowance => jittered.max(ALLOWANCE_WAIT.min(cap)),
        }
    }
}

impl BatchConfig {
    /// A record held back behind its customer's failed conversation. On a
    /// FIFO queue it is made visible again at once: SQS delivers none of the
    /// group while the head is hidden, so the group waits exactly the head's
    /// backoff rather than the queue's visibility timeout. On a standard
    /// queue it backs off like the head.
    pub(crate) async fn hold_back(&self, message: &SqsMessage) {
        let (Some(queue_url), Some(receipt)) =
            (&self.retry.queue_url, message.receipt_handle.as_deref())
        else {
            return;
        };
        if !queue_url.ends_with(".fifo") {
            return self.back_off(message, Wait::Backoff).await;
        }
        if let Err(e) = self
            .sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
        {
            tracing::warn!(error = %DisplayErrorContext(&e), "could not release a held-back record; it returns after the queue's visibility timeout");
        }
    }

    /// Hides `message` for its next backoff; on failure the queue's own
    /// visibility timeout applies, which is only sooner.
    pub(crate) async fn back_off(&self, message: &SqsMessage, wait: Wait) {
        let (Some(queue_url), Some(receipt)) =
            (&self.retry.queue_url, message.receipt_handle.as_deref())
        else {
            return;
        };
        let receive_count = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let delay = self.retry.delay(receive_count, wait, fastrand::f64());
        let result = self
            .sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(delay.as_secs().max(1) as i32)
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::info!(
                    receive_count,
                    retry_in_s = delay.as_secs(),
                    "conversation backed off"
                );
                metrics::counter!("conversations_backed_off").increment(1);
            }
            Err(e) => {
                tracing::warn!(error = %DisplayErrorContext(&e), "could not back off; the queue's visibility timeout applies")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_wait_for_the_allowance() {
        let s = RetrySchedule {
            queue_url: None,
            base: Duration::from_secs(60),
            cap: Duration::from_secs(43_200),
        };
        let full = |n, wait| s.delay(n, wait, 1.0).as_secs();
        assert_eq!(full(1, Wait::Backoff), 60);
        assert_eq!(full(2, Wait::Backoff), 120);
        assert_eq!(full(5, Wait::Backoff), 960);
        assert_eq!(full(11, Wait::Backoff), 42_900);
        assert_eq!(full(400, Wait::Backoff), 42_900);
        assert_eq!(s.delay(1, Wait::Backoff, 0.0).as_secs(), 30);
        // A spent allowance: at least the hour at either end of the jitter,
        // and the doubling's own jitter above it.
        for n in [1, 2, 5, 6] {
            assert_eq!(s.delay(n, Wait::ForAllowance, 0.0).as_secs(), 3_600, "{n}");
            assert_eq!(s.delay(n, Wait::ForAllowance, 1.0).as_secs(), 3_600, "{n}");
        }
        assert_eq!(s.delay(8, Wait::ForAllowance, 0.0).as_secs(), 3_840);
        assert_eq!(s.delay(8, Wait::ForAllowance, 1.0).as_secs(), 7_680);
        assert_eq!(s.delay(11, Wait::ForAllowance, 0.0).as_secs(), 21_450);
        let short = RetrySchedule {
            cap: Duration::from_secs(5),
            ..s
        };
        assert_eq!(short.delay(1, Wait::ForAllowance, 1.0).as_secs(), 5);
    }
}
