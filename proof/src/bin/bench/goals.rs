//! The goals the figures are held to, and whether they are met.

use crate::cold_start::ColdStart;
use crate::sizes::Sizes;

/// The goal of each arm64 binary, in bytes.
pub const SIZE_GOAL: u64 = 10_000_000;
pub const SIZE_GOAL_TEXT: &str = "10 MB";
/// The goal of the webhook's cold start less its secret round trip, in
/// multiples of the echo function's.
pub const COLD_GOAL: f64 = 3.0;

pub struct Goals {
    /// The arm64 webhook and worker, bytes, when both were built.
    pub arm64: Option<(u64, u64)>,
    /// Both arm64 binaries built and under [`SIZE_GOAL`].
    pub sizes_met: bool,
    /// The webhook's cold start less its secret round trip over the echo
    /// function's.
    pub cold_ratio: f64,
    /// [`Goals::cold_ratio`] within [`COLD_GOAL`].
    pub cold_met: bool,
}

/// Both arm64 binaries built and under [`SIZE_GOAL`].
pub fn under_size_goal(webhook: Option<u64>, worker: Option<u64>) -> bool {
    webhook.is_some_and(|s| s < SIZE_GOAL) && worker.is_some_and(|s| s < SIZE_GOAL)
}

pub fn judge(sizes: &Sizes, cold: &ColdStart) -> Goals {
    let cold_ratio = cold.webhook_init_less_secret / cold.echo_init;
    Goals {
        arm64: sizes.webhook.arm64.zip(sizes.worker.arm64),
        sizes_met: under_size_goal(sizes.webhook.arm64, sizes.worker.arm64),
        cold_ratio,
        cold_met: cold_ratio <= COLD_GOAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_binaries_must_be_built_and_under_the_goal() {
        assert!(under_size_goal(Some(9_999_999), Some(1)));
        assert!(!under_size_goal(Some(SIZE_GOAL), Some(1)));
        assert!(!under_size_goal(Some(1), Some(SIZE_GOAL + 1)));
        assert!(!under_size_goal(None, Some(1)));
    }
}
