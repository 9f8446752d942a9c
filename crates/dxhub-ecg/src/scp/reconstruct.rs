//! Turning decoded rhythm residuals back into rhythm data: difference decoding, bimodal
//! reconstruction (interpolation of the decimated stretches outside the protected zones and the
//! 3-sample smoothing that SCP-AV applies) and the addition of the reference beat in each QRS
//! subtraction zone.
//!
//! Sample numbers (`start`, `end`, `sb`, `fc`, `se`, `qb`, `qe`) are absolute, 1-based, at the
//! full sampling rate, as in sections 3 and 4.

/// One QRS complex of section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// Beat type; only type 0 beats had the reference beat subtracted.
    pub kind: u16,
    /// Start of the subtraction zone.
    pub sb: u64,
    /// Fiducial point.
    pub fc: u64,
    /// End of the subtraction zone.
    pub se: u64,
    /// Start of the protected zone (bimodal compression).
    pub qb: u64,
    /// End of the protected zone.
    pub qe: u64,
}

/// Undo first (1) or second (2) difference encoding in place; 0 leaves the values.
pub fn undo_differences(v: &mut [i64], encoding: u8) {
    match encoding {
        1 => {
            for i in 1..v.len() {
                v[i] = v[i].wrapping_add(v[i - 1]);
            }
        }
        2 => {
            for i in 2..v.len() {
                v[i] = v[i]
                    .wrapping_add(v[i - 1].wrapping_mul(2))
                    .wrapping_sub(v[i - 2]);
            }
        }
        _ => {}
    }
}

/// A stretch of one lead: decimated (outside the protected zones) or kept at full rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stretch {
    /// `len` full-rate samples stored as `len / k` decimated values then `len % k` samples.
    Decimated { len: u64 },
    /// `len` samples stored at full rate.
    Protected { len: u64 },
}

/// The stretches of the lead covering samples `start..=end`, from the protected zones of
/// `beats` (sorted, non-overlapping: checked by the caller) clipped to the lead.
fn stretches(start: u64, end: u64, beats: &[Beat]) -> Vec<Stretch> {
    let mut out = Vec::with_capacity(2 * beats.len() + 1);
    let mut cur = start;
    for b in beats {
        let qb = b.qb.max(start);
        let qe = b.qe.min(end);
        if qb > qe || qb < cur {
            continue;
        }
        if qb > cur {
            out.push(Stretch::Decimated { len: qb - cur });
        }
        out.push(Stretch::Protected { len: qe - qb + 1 });
        cur = qe + 1;
    }
    if cur <= end {
        out.push(Stretch::Decimated { len: end - cur + 1 });
    }
    out
}

/// Number of values stored in section 6 for a bimodally compressed lead.
pub fn bimodal_stored_count(start: u64, end: u64, beats: &[Beat], k: u64) -> u64 {
    stretches(start, end, beats)
        .iter()
        .map(|s| match *s {
            Stretch::Decimated { len } => len / k + len % k,
            Stretch::Protected { len } => len,
        })
        .sum()
}

/// Expand the stored values of one lead (`start..=end`) to the full rate. Outside the
/// protected zones each stored value stands for `k` samples; it is placed at the sample
/// `k / 2` of its block and the samples between two such centres are interpolated linearly
/// (truncated towards zero as SCP-AV does); the first `k / 2` samples of a stretch repeat its
/// first value and the samples after the last centre repeat the last one. The `len % k`
/// samples left at the end of a stretch are stored as they are, as are the protected zones.
pub fn bimodal_expand(stored: &[i64], start: u64, end: u64, beats: &[Beat], k: u64) -> Vec<i64> {
    let total = (end - start + 1) as usize;
    let mut out = Vec::with_capacity(total);
    let mut pos = 0usize;
    let take = |n: usize, pos: &mut usize| -> &[i64] {
        let from = (*pos).min(stored.len());
        let to = (*pos + n).min(stored.len());
        *pos += n;
        &stored[from..to]
    };
    for s in stretches(start, end, beats) {
        match s {
            Stretch::Protected { len } => out.extend_from_slice(take(len as usize, &mut pos)),
            Stretch::Decimated { len } => {
                let m = (len / k) as usize;
                let r = (len % k) as usize;
                let v = take(m, &mut pos).to_vec();
                let k = k as usize;
                let c0 = k / 2;
                if !v.is_empty() {
                    for p in 0..m * k {
                        let value = if p < c0 {
                            v[0]
                        } else {
                            let j = (p - c0) / k;
                            if j + 1 >= v.len() {
                                v[v.len() - 1]
                            } else {
                                let i = (p - c0 - j * k) as f64;
                                let d = (v[j + 1] - v[j]) as f64 / k as f64;
                                (v[j] as f64 + i * d).trunc() as i64
                            }
                        };
                        out.push(value);
                    }
                }
                out.extend_from_slice(take(r, &mut pos));
            }
        }
    }
    out.resize(total, 0);
    out
}

/// SCP-AV's low-pass after bimodal interpolation: in each stretch between the boundaries of
/// the protected zones and of the subtraction zones of type 0 beats, every sample but the
/// first and the last of the stretch becomes the mean of itself and its two neighbours,
/// rounded away from zero ((s + sign) / 3); the inside of the protected zones is kept.
pub fn bimodal_smooth(samples: &mut [i64], start: u64, end: u64, beats: &[Beat]) {
    let input = samples.to_vec();
    let mut filter = |a: u64, b: u64| {
        if b < a || a < start || b > end {
            return;
        }
        let (a, b) = ((a - start) as usize, (b - start) as usize);
        for p in a + 1..b {
            let mut v = input[p - 1] + input[p] + input[p + 1];
            v += if v >= 0 { 1 } else { -1 };
            samples[p] = v / 3;
        }
    };
    let clip = |v: u64| v.clamp(start, end);
    if beats.is_empty() {
        filter(start, end);
        return;
    }
    let n = beats.len();
    let mut a = start;
    let b0 = &beats[0];
    if b0.kind == 0 {
        filter(a, clip(b0.sb).saturating_sub(1));
        a = clip(b0.sb);
    }
    filter(a, clip(b0.qb));
    for z in 1..n {
        let prev = &beats[z - 1];
        let cur = &beats[z];
        a = clip(prev.qe);
        if prev.kind == 0 {
            filter(a, clip(prev.se));
            a = clip(prev.se) + 1;
        }
        if cur.kind == 0 {
            filter(a, clip(cur.sb).saturating_sub(1));
            a = clip(cur.sb);
        }
        filter(a, clip(cur.qb));
    }
    let last = &beats[n - 1];
    a = clip(last.qe);
    if last.kind == 0 {
        filter(a, clip(last.se));
        a = clip(last.se) + 1;
    }
    filter(a, end);
}

/// Add the reference beat (values in nV) to a lead (values in nV, samples `start..=end`) in
/// the subtraction zone of each type 0 beat: sample `t` gets reference sample
/// `fiducial - 1 + t - fc`, `fiducial` being the 1-based sample of the reference beat's
/// fiducial point (section 4).
pub fn add_reference_beat(
    lead_nv: &mut [f64],
    start: u64,
    reference_nv: &[f64],
    fiducial: u64,
    beats: &[Beat],
) {
    for b in beats.iter().filter(|b| b.kind == 0) {
        for t in b.sb..=b.se {
            let Some(i) = (t + fiducial).checked_sub(b.fc + 1) else {
                continue;
            };
            let (Some(out), Some(r)) = (
                t.checked_sub(start)
                    .and_then(|o| lead_nv.get_mut(o as usize)),
                reference_nv.get(i as usize),
            ) else {
                continue;
            };
            *out += r;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn differences() {
        let mut v = vec![5, 1, 1, -2];
        undo_differences(&mut v, 1);
        assert_eq!(v, [5, 6, 7, 5]);
        // x = 1, 3, 6, 10, 15: second differences 1, 3, 1, 1, 1.
        let mut v = vec![1, 3, 1, 1, 1];
        undo_differences(&mut v, 2);
        assert_eq!(v, [1, 3, 6, 10, 15]);
    }

    fn beat(sb: u64, fc: u64, se: u64, qb: u64, qe: u64) -> Beat {
        Beat {
            kind: 0,
            sb,
            fc,
            se,
            qb,
            qe,
        }
    }

    #[test]
    fn bimodal_layout_and_interpolation() {
        // Lead 1..=20, protected zone 9..=12, k = 4: 8 samples → 2 values, zone 4 samples,
        // 8 samples → 2 values: 8 stored values.
        let beats = [beat(7, 10, 14, 9, 12)];
        assert_eq!(bimodal_stored_count(1, 20, &beats, 4), 8);
        let stored = [0, 8, 100, 101, 102, 103, 40, 0];
        let out = bimodal_expand(&stored, 1, 20, &beats, 4);
        assert_eq!(
            out,
            [
                0, 0, 0, 2, 4, 6, 8, 8, 100, 101, 102, 103, 40, 40, 40, 30, 20, 10, 0, 0
            ]
        );
        // Remainder samples are stored as they are: 1..=10 with k = 4 → 2 values + 2 samples.
        assert_eq!(bimodal_stored_count(1, 10, &[], 4), 4);
        assert_eq!(
            bimodal_expand(&[4, 8, -1, -2], 1, 10, &[], 4),
            [4, 4, 4, 5, 6, 7, 8, 8, -1, -2]
        );
    }

    #[test]
    fn smoothing_keeps_zone_boundaries() {
        let beats = [Beat {
            kind: 1,
            sb: 5,
            fc: 6,
            se: 7,
            qb: 5,
            qe: 7,
        }];
        let mut v = vec![0, 3, 0, 3, 9, 9, 9, 3, 0, 3];
        bimodal_smooth(&mut v, 1, 10, &beats);
        // Stretch 1..=5: inner 2..=4 smoothed ((0+3+0+1)/3 = 1, (3+0+3+1)/3 = 2, (0+3+9+1)/3 = 4);
        // 6 kept; stretch 7..=10: inner 8, 9 smoothed ((9+3+0+1)/3 = 4, (3+0+3+1)/3 = 2).
        assert_eq!(v, [0, 1, 2, 4, 9, 9, 9, 4, 2, 3]);
    }

    #[test]
    fn reference_beat_is_added_at_the_fiducial() {
        // Reference beat of 5 samples, fiducial at its 3rd sample; QRS with fc = 10 and
        // subtraction zone 9..=11 in a lead starting at sample 1.
        let mut lead = vec![0.0; 15];
        let reference = [1.0, 2.0, 3.0, 4.0, 5.0];
        add_reference_beat(&mut lead, 1, &reference, 3, &[beat(9, 10, 11, 9, 11)]);
        assert_eq!(lead[7..12], [0.0, 2.0, 3.0, 4.0, 0.0]);
        // Type 1 beats are left alone.
        let mut other = vec![0.0; 15];
        let b = Beat {
            kind: 1,
            ..beat(9, 10, 11, 9, 11)
        };
        add_reference_beat(&mut other, 1, &reference, 3, &[b]);
        assert!(other.iter().all(|v| *v == 0.0));
    }
}
