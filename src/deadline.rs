//! The time a unit of work has left: every Salesforce and media call is
//! bounded by it, so that a hanging peer costs one call's timeout rather
//! than the invocation, and a record that runs out of time is still backed
//! off before Lambda's deadline.
//!
//! The deadline travels as a task-local, set once per record by the batch,
//! so the clients need no extra parameter on every call. Outside such a
//! scope (operator commands, the links function) calls get their own
//! timeout and nothing else.

use std::future::Future;
use std::time::{Duration, Instant};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `deadline` as the time its calls must end by.
pub async fn scope<F: Future>(deadline: Instant, work: F) -> F::Output {
    DEADLINE.scope(deadline, work).await
}

/// The time left before the current deadline; `None` outside a scope.
pub fn left() -> Option<Duration> {
    DEADLINE
        .try_with(|d| d.saturating_duration_since(Instant::now()))
        .ok()
}

/// A call's timeout: its own `cap`, shortened to the time left.
pub fn bound(cap: Duration) -> Duration {
    left().map_or(cap, |left| left.min(cap))
}

/// Whether there is time to wait `wait` and then make a call that may take
/// up to `call`: retries only start when they can finish.
pub fn allows(wait: Duration, call: Duration) -> bool {
    left().is_none_or(|left| left > wait + call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_bounded_by_the_time_left_only_inside_a_scope() {
        let cap = Duration::from_secs(20);
        assert_eq!(left(), None);
        assert_eq!(bound(cap), cap);
        assert!(allows(Duration::from_secs(3600), cap));
        scope(Instant::now() + Duration::from_secs(5), async {
            let b = bound(cap);
            assert!(
                b <= Duration::from_secs(5) && b > Duration::from_secs(4),
                "{b:?}"
            );
            assert!(allows(Duration::from_secs(1), Duration::from_secs(2)));
            assert!(!allows(Duration::from_secs(1), Duration::from_secs(4)));
        })
        .await;
        scope(Instant::now() - Duration::from_secs(1), async {
            assert_eq!(bound(cap), Duration::ZERO);
            assert!(!allows(Duration::ZERO, Duration::ZERO));
        })
        .await;
    }
}
