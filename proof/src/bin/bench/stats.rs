//! The few statistics the measurements report: percentiles by nearest rank
//! and durations in milliseconds.

use std::time::Duration;

/// The value at fraction `p` (0 to 1) of `sorted`, by nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let sorted: Vec<f64> = (1..=101).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.0), 1.0);
        assert_eq!(percentile(&sorted, 0.5), 51.0);
        assert_eq!(percentile(&sorted, 0.99), 100.0);
        assert_eq!(percentile(&sorted, 1.0), 101.0);
        assert_eq!(percentile(&[4.0], 0.99), 4.0);
    }

    #[test]
    fn the_median_sorts_first() {
        assert_eq!(median(&[9.0, 1.0, 5.0]), 5.0);
        // An even count rounds half up to the upper middle.
        assert_eq!(median(&[4.0, 3.0, 2.0, 1.0]), 3.0);
    }

    #[test]
    fn milliseconds_keep_the_fraction() {
        assert_eq!(ms(Duration::from_micros(2_500)), 2.5);
    }
}
