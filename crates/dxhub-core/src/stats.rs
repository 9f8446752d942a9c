//! Pure rules of the alliance indicators (`/api/v1/stats/…`): calendar days in the hub's
//! fixed UTC+8 zone (China Standard Time, no daylight saving time) and nearest-rank
//! percentiles.
//!
//! A *day* is a day number: days since 1970-01-01 of the local (UTC+8) calendar, so the
//! local day of an instant is `(epoch_us + 8 h) div 86 400 s` and day `d` starts at
//! `d × 86 400 s − 8 h` UTC.

use crate::worklist::{SHANGHAI_OFFSET_US, US_PER_S};

/// Microseconds per day.
pub const US_PER_DAY: i64 = 86_400 * US_PER_S;

/// The local (UTC+8) day number of an instant (epoch µs).
pub const fn local_day(at_us: i64) -> i64 {
    (at_us + SHANGHAI_OFFSET_US).div_euclid(US_PER_DAY)
}

/// The instant (epoch µs) local day `day` starts at (00:00 UTC+8).
pub const fn day_start_us(day: i64) -> i64 {
    day * US_PER_DAY - SHANGHAI_OFFSET_US
}

/// The day number of a `YYYY-MM-DD` date (exactly that form, a valid calendar date).
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let y = i32::try_from(digits(0..4)?).ok()?;
    crate::recognition::days_from_civil(y, digits(5..7)?, digits(8..10)?)
}

/// `YYYY-MM-DD` of a day number (proleptic Gregorian; Howard Hinnant's civil_from_days).
pub fn format_date(day: i64) -> String {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted` (ascending): the value at
/// rank ⌈p/100 × n⌉ (at least 1). `None` for no values.
pub fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // the rank in integer arithmetic over per-mille to avoid 0.95 × 20 = 19.000000000000004
    let permille = (p * 10.0).round().clamp(1.0, 1000.0) as usize;
    let rank = (permille * n).div_ceil(1000).clamp(1, n);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_days_turn_at_utc8_midnight() {
        // 2026-11-22T16:00:00Z is 2026-11-23 00:00 in UTC+8
        let midnight = 1_795_363_200 * US_PER_S;
        assert_eq!(format_date(local_day(midnight)), "2026-11-23");
        assert_eq!(format_date(local_day(midnight - 1)), "2026-11-22");
        assert_eq!(day_start_us(local_day(midnight)), midnight);
        assert_eq!(parse_date("2026-11-23"), Some(local_day(midnight)));
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(-1), "1969-12-31");
        assert_eq!(format_date(parse_date("2000-02-29").unwrap()), "2000-02-29");
    }

    #[test]
    fn dates_are_strict() {
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "2026/11/01",
            "20261101",
            "2026-11-01T00",
            "+026-11-01",
            "",
            "２０２6-11-01",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert!(parse_date("2024-02-29").is_some());
        assert_eq!(parse_date("2023-02-29"), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&v, 50.0), Some(10.0));
        assert_eq!(nearest_rank(&v, 90.0), Some(18.0));
        assert_eq!(nearest_rank(&v, 95.0), Some(19.0));
        assert_eq!(nearest_rank(&v, 100.0), Some(20.0));
        assert_eq!(nearest_rank(&[7.0], 50.0), Some(7.0));
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0, 4.0], 50.0), Some(2.0));
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0], 50.0), Some(2.0));
        assert_eq!(nearest_rank(&[1.0, 2.0, 3.0], 90.0), Some(3.0));
        assert_eq!(nearest_rank(&[], 50.0), None);
    }
}
