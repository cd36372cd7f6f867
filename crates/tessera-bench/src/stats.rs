//! Percentiles and medians. Pure arithmetic over samples: no clock, so it is unit
//! tested; the timings themselves are never asserted anywhere.

use std::time::Duration;

/// One run's named figures, as they go into the JSON line of results.
pub type Metrics = std::collections::BTreeMap<String, f64>;

pub fn put(m: &mut Metrics, key: impl Into<String>, value: f64) {
    m.insert(key.into(), value);
}

/// The figure, or NaN when the run did not record it.
pub fn get(m: &Metrics, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(f64::NAN)
}

/// The `p`-th percentile (0 < p <= 100) of `sorted` by the nearest-rank method: the
/// smallest sample such that at least `p` percent of the samples are at or below it.
/// `None` for no samples or a `p` outside (0, 100].
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The median of `values` (mean of the two middle values for an even count); `None`
/// when there is none. NaNs are ignored.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
}

/// Latency figures of one series of timed operations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    pub count: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Operations per second of time spent inside the operations (count / sum).
    pub per_sec: f64,
}

impl Latency {
    /// Summarizes `samples` (sorted in place). `None` for no samples.
    pub fn of(samples: &mut [Duration]) -> Option<Latency> {
        samples.sort_unstable();
        let us = |d: Duration| d.as_nanos() as f64 / 1e3;
        let total: Duration = samples.iter().sum();
        Some(Latency {
            count: samples.len(),
            p50_us: us(percentile(samples, 50.0)?),
            p99_us: us(percentile(samples, 99.0)?),
            max_us: us(*samples.last()?),
            per_sec: samples.len() as f64 / total.as_secs_f64().max(1e-12),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 99.5), Some(100));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.1), Some(1));
        let small = [10u32, 20, 30];
        assert_eq!(percentile(&small, 50.0), Some(20));
        assert_eq!(percentile(&small, 99.0), Some(30));
        assert_eq!(percentile(&[7u32], 1.0), Some(7));
        assert_eq!(percentile(&[7u32], 100.0), Some(7));
    }

    #[test]
    fn percentile_refuses_empty_input_and_bad_ranks() {
        assert_eq!(percentile::<u32>(&[], 50.0), None);
        assert_eq!(percentile(&[1u32, 2], 0.0), None);
        assert_eq!(percentile(&[1u32, 2], 100.1), None);
        assert_eq!(percentile(&[1u32, 2], f64::NAN), None);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn latency_summary_of_known_samples() {
        let mut samples: Vec<Duration> = (1..=200).rev().map(Duration::from_micros).collect();
        let l = Latency::of(&mut samples).unwrap();
        assert_eq!(l.count, 200);
        assert_eq!(l.p50_us, 100.0);
        assert_eq!(l.p99_us, 198.0);
        assert_eq!(l.max_us, 200.0);
        // 200 operations in 20_100 µs.
        assert!((l.per_sec - 200.0 / 0.0201).abs() < 1e-6);
        assert_eq!(Latency::of(&mut []), None);
    }
}
