//! Signal quality per lead: flat line, clipping, high-frequency noise, lead-off, wander.

use super::dsp::{order_keys, quantile, quantile_keys, subsample};
use super::{LeadQuality, QualityVerdict};

/// Robust peak-to-peak (0.5 %–99.5 %) below this: a flat line.
const FLAT_UV: f32 = 20.0;
/// A flat line this far from 0, or any median this far: lead off / rail.
const RAIL_UV: f32 = 1_000.0;
const HUGE_BASELINE_UV: f32 = 5_000.0;
/// Clipped fraction above this: saturated.
const CLIP_FRACTION: f64 = 0.005;
/// High-frequency noise (µV RMS) above these: acceptable / poor.
const NOISE_ACCEPTABLE_UV: f64 = 20.0;
const NOISE_POOR_UV: f64 = 60.0;
const WANDER_ACCEPTABLE_UV: f64 = 800.0;

/// Quality of one lead; `x` has non-finite samples already replaced.
pub fn lead_quality(name: &str, x: &[f32], non_finite: u64, fs: f64) -> LeadQuality {
    let n = x.len();
    let mut sub = order_keys(&subsample(x, 4_000));
    // Median first, then the tails within each half (the selection leaves them partitioned).
    let median = quantile_keys(&mut sub, 0.5);
    let k = sub.len() / 2;
    let (lower, upper) = sub.split_at_mut(k);
    // 0.5 % of the whole is 1 % of the lower half; 99.5 % is 99 % of the upper half.
    let lo = if lower.is_empty() {
        median
    } else {
        quantile_keys(lower, 0.01)
    };
    let hi = if upper.is_empty() {
        median
    } else {
        quantile_keys(upper, 0.99)
    };
    let amplitude = (hi - lo).max(0.0);

    // Clipping: runs of >= 3 equal samples at the lead's extreme values.
    let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
    for &v in x {
        min = min.min(v);
        max = max.max(v);
    }
    let mut clipped = 0usize;
    // An extreme at the baseline (a lead with no negative wave) is not a rail.
    let span = (max - min).max(f32::MIN_POSITIVE);
    if (median - min) / span < 0.1 {
        min = f32::NEG_INFINITY;
    }
    if (max - median) / span < 0.1 {
        max = f32::INFINITY;
    }
    // A run needs three samples at one extreme: most leads have fewer in all.
    let at_extremes = x.iter().filter(|&&v| v == max || v == min).count();
    if max > min && at_extremes >= 3 {
        let mut run = 0usize;
        let mut prev = f32::NAN;
        for &v in x {
            if (v == max || v == min) && v == prev {
                run += 1;
            } else {
                if run >= 2 {
                    clipped += run + 1;
                }
                run = 0;
            }
            prev = v;
        }
        if run >= 2 {
            clipped += run + 1;
        }
    }
    let clip_fraction = if n > 0 {
        clipped as f64 / n as f64
    } else {
        0.0
    };

    // High-frequency noise: MAD of the second-difference residual (robust to QRS).
    let stride = n.div_ceil(4_000).max(1);
    let mut resid: Vec<f32> = (1..n.saturating_sub(1))
        .step_by(stride)
        .map(|i| (x[i] - 0.5 * (x[i - 1] + x[i + 1])).abs())
        .collect();
    let noise_uv = if resid.is_empty() {
        0.0
    } else {
        1.4826 * quantile(&mut resid, 0.5) as f64 / 1.5f64.sqrt()
    };

    // Baseline wander: range (5–95 %) of 1-second block medians.
    let block = (fs.round() as usize).max(1);
    let mut medians: Vec<f32> = x
        .chunks(block)
        .step_by(n.div_ceil(block).div_ceil(2_000).max(1))
        .map(|c| {
            let mut c = subsample(c, 101);
            quantile(&mut c, 0.5)
        })
        .collect();
    let wander = if medians.len() >= 2 {
        (quantile(&mut medians, 0.95) - quantile(&mut medians, 0.05)) as f64
    } else {
        0.0
    };

    let flat = n < 2 || amplitude < FLAT_UV;
    let lead_off =
        (flat && median.abs() > RAIL_UV) || median.abs() > HUGE_BASELINE_UV || clip_fraction > 0.2;
    let saturated = clip_fraction > CLIP_FRACTION;
    let noisy = noise_uv > NOISE_ACCEPTABLE_UV;
    let verdict = if flat || lead_off || n < 2 {
        QualityVerdict::Unusable
    } else if saturated || noise_uv > NOISE_POOR_UV {
        QualityVerdict::Poor
    } else if noisy || wander > WANDER_ACCEPTABLE_UV || non_finite > 0 {
        QualityVerdict::Acceptable
    } else {
        QualityVerdict::Good
    };
    LeadQuality {
        lead: name.to_owned(),
        verdict,
        flat,
        saturated,
        noisy,
        lead_off,
        non_finite_samples: non_finite,
        amplitude_uv: round1(amplitude as f64),
        noise_uv: round1(noise_uv),
        baseline_wander_uv: round1(wander),
        clipped_fraction: (clip_fraction * 1e4).round() / 1e4,
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The overall verdict from the leads'.
pub fn overall(leads: &[LeadQuality]) -> QualityVerdict {
    let usable = leads
        .iter()
        .filter(|l| l.verdict != QualityVerdict::Unusable)
        .count();
    let good = leads
        .iter()
        .filter(|l| matches!(l.verdict, QualityVerdict::Good | QualityVerdict::Acceptable))
        .count();
    if usable == 0 {
        QualityVerdict::Unusable
    } else if good * 2 < leads.len() {
        QualityVerdict::Poor
    } else if leads.iter().any(|l| l.verdict != QualityVerdict::Good) {
        QualityVerdict::Acceptable
    } else {
        QualityVerdict::Good
    }
}
