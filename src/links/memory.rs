//! What a warm links instance remembers so that opening links costs few
//! Salesforce calls: Cases found (for good), Cases found missing (briefly),
//! when each conversation was last asked about, and the budget of calls
//! left. Every map is bounded; an instance serves one request at a time,
//! so the locks are never contended.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::case::CaseId;

/// Entries kept per map before the stale ones, then all, are forgotten.
const MEMORY: usize = 10_000;

/// A per-instance token bucket: at most `capacity` calls at once, refilled
/// by one every `every`. No link traffic makes an instance exceed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallBudget {
    pub capacity: u32,
    pub every: Duration,
}

impl CallBudget {
    /// The most calls an instance can make in `window` (a full bucket at
    /// the start, then the refill).
    pub fn most_in(&self, window: Duration) -> u64 {
        let refills = window.as_nanos() / self.every.as_nanos().max(1);
        u64::from(self.capacity) + u64::try_from(refills).unwrap_or(u64::MAX)
    }
}

/// The bucket's state.
struct Bucket {
    /// Below zero after a lookup that made more calls than the one it took:
    /// the debt is repaid by the refill before the next call.
    tokens: i64,
    /// When the last token was added (or the bucket made).
    refilled: Instant,
}

pub(super) struct Memory {
    found: Mutex<HashMap<String, CaseId>>,
    missing: Mutex<HashMap<String, Instant>>,
    asked: Mutex<HashMap<String, Instant>>,
    bucket: Mutex<Bucket>,
}

impl Memory {
    pub(super) fn new(budget: CallBudget) -> Self {
        Self {
            found: Mutex::new(HashMap::new()),
            missing: Mutex::new(HashMap::new()),
            asked: Mutex::new(HashMap::new()),
            bucket: Mutex::new(Bucket {
                tokens: i64::from(budget.capacity),
                refilled: Instant::now(),
            }),
        }
    }

    /// The Case found earlier for this conversation.
    pub(super) fn found(&self, conversation_id: &str) -> Option<CaseId> {
        self.found
            .lock()
            .expect("found lock")
            .get(conversation_id)
            .cloned()
    }

    pub(super) fn remember_found(&self, conversation_id: &str, case_id: &CaseId) {
        let mut found = self.found.lock().expect("found lock");
        if found.len() >= MEMORY {
            found.clear();
        }
        found.insert(conversation_id.to_owned(), case_id.clone());
        self.missing
            .lock()
            .expect("missing lock")
            .remove(conversation_id);
    }

    /// Remembers that this conversation has no Case (or Salesforce did not
    /// say) for `period`.
    pub(super) fn remember_missing(&self, conversation_id: &str, period: Duration) {
        let mut missing = self.missing.lock().expect("missing lock");
        let now = Instant::now();
        if missing.len() >= MEMORY {
            missing.retain(|_, until| *until > now);
            if missing.len() >= MEMORY {
                missing.clear();
            }
        }
        missing.insert(conversation_id.to_owned(), now + period);
    }

    /// Whether this conversation was found missing less than its period ago.
    pub(super) fn known_missing(&self, conversation_id: &str) -> bool {
        self.missing
            .lock()
            .expect("missing lock")
            .get(conversation_id)
            .is_some_and(|until| *until > Instant::now())
    }

    /// True when this link may ask Salesforce now (and records that it
    /// did): at most once per `throttle` per conversation.
    pub(super) fn may_ask(&self, conversation_id: &str, throttle: Duration) -> bool {
        let mut asked = self.asked.lock().expect("throttle lock");
        let now = Instant::now();
        if asked
            .get(conversation_id)
            .is_some_and(|t| now.duration_since(*t) < throttle)
        {
            return false;
        }
        if asked.len() >= MEMORY {
            asked.retain(|_, t| now.duration_since(*t) < throttle);
        }
        asked.insert(conversation_id.to_owned(), now);
        true
    }

    /// Takes one call from the budget; false when it is spent.
    pub(super) fn take_call(&self, budget: CallBudget) -> bool {
        let mut bucket = self.bucket.lock().expect("budget lock");
        let now = Instant::now();
        let every = budget.every.max(Duration::from_nanos(1));
        let earned = now.duration_since(bucket.refilled).as_nanos() / every.as_nanos();
        if earned > 0 {
            let capacity = i64::from(budget.capacity);
            let earned_tokens = i64::try_from(earned).unwrap_or(capacity);
            bucket.tokens = bucket.tokens.saturating_add(earned_tokens).min(capacity);
            // Whole refills only, so a steady trickle of requests does not
            // lose the fractions in between.
            bucket.refilled += every * u32::try_from(earned).unwrap_or(u32::MAX);
        }
        if bucket.tokens <= 0 {
            return false;
        }
        bucket.tokens -= 1;
        true
    }

    /// Charges calls made beyond the one [`Self::take_call`] took.
    pub(super) fn charge_calls(&self, extra: u64) {
        if extra > 0 {
            let mut bucket = self.bucket.lock().expect("budget lock");
            bucket.tokens = bucket
                .tokens
                .saturating_sub(i64::try_from(extra).unwrap_or(i64::MAX));
        }
    }

    /// Forgets what was found: the settings now point at another org.
    pub(super) fn forget(&self) {
        self.found.lock().expect("found lock").clear();
        self.missing.lock().expect("missing lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_allows_its_capacity_then_nothing_until_a_refill() {
        let budget = CallBudget {
            capacity: 3,
            every: Duration::from_secs(3600),
        };
        let memory = Memory::new(budget);
        let taken = (0..10).filter(|_| memory.take_call(budget)).count();
        assert_eq!(taken, 3);
        assert_eq!(budget.most_in(Duration::from_secs(86_400)), 3 + 24);
    }

    #[test]
    fn calls_beyond_the_one_taken_are_paid_for() {
        let budget = CallBudget {
            capacity: 3,
            every: Duration::from_secs(3600),
        };
        let memory = Memory::new(budget);
        assert!(memory.take_call(budget));
        memory.charge_calls(1);
        assert!(memory.take_call(budget));
        assert!(
            !memory.take_call(budget),
            "3 calls made: the bucket is empty"
        );
    }

    #[test]
    fn a_missing_case_is_forgotten_when_found() {
        let memory = Memory::new(CallBudget {
            capacity: 1,
            every: Duration::from_secs(1),
        });
        memory.remember_missing("1793", Duration::from_secs(60));
        assert!(memory.known_missing("1793"));
        assert!(!memory.known_missing("1794"));
        memory.remember_found("1793", &CaseId::from("500000000000001"));
        assert!(!memory.known_missing("1793"));
        assert_eq!(memory.found("1793").as_deref(), Some("500000000000001"));
        memory.remember_missing("1794", Duration::ZERO);
        assert!(
            !memory.known_missing("1794"),
            "a zero period remembers nothing"
        );
    }
}
