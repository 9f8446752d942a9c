//! Small signal-processing helpers: biquads, moving sums, percentiles. All O(n).

use std::f64::consts::PI;

/// A second-order IIR section (RBJ cookbook), direct form I in f64.
#[derive(Debug, Clone, Copy)]
pub struct Biquad {
    b: [f64; 3],
    a: [f64; 2],
}

impl Biquad {
    /// Butterworth (Q = 1/√2) low-pass at `fc` Hz for sampling rate `fs`.
    pub fn lowpass(fs: f64, fc: f64) -> Biquad {
        let w = 2.0 * PI * (fc / fs).clamp(1e-4, 0.49);
        let (s, c) = w.sin_cos();
        let alpha = s / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        Biquad {
            b: [(1.0 - c) / 2.0 / a0, (1.0 - c) / a0, (1.0 - c) / 2.0 / a0],
            a: [-2.0 * c / a0, (1.0 - alpha) / a0],
        }
    }

    /// Butterworth high-pass at `fc` Hz.
    pub fn highpass(fs: f64, fc: f64) -> Biquad {
        let w = 2.0 * PI * (fc / fs).clamp(1e-4, 0.49);
        let (s, c) = w.sin_cos();
        let alpha = s / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        Biquad {
            b: [(1.0 + c) / 2.0 / a0, -(1.0 + c) / a0, (1.0 + c) / 2.0 / a0],
            a: [-2.0 * c / a0, (1.0 - alpha) / a0],
        }
    }
}

/// The state of one [`Biquad`] running over a signal.
struct Section {
    b: [f64; 3],
    a: [f64; 2],
    x1: f64,
    x2: f64,
    y1: f64,
    y2: f64,
}

impl Section {
    /// At rest at the level of the first input `x0` for a low-pass, at 0 for a high-pass.
    fn new(bq: &Biquad, x0: f32) -> Section {
        let dc = bq.b.iter().sum::<f64>() / (1.0 + bq.a[0] + bq.a[1]);
        let x0 = x0 as f64;
        let (y1, y2) = if dc.abs() > 0.5 { (x0, x0) } else { (0.0, 0.0) };
        Section {
            b: bq.b,
            a: bq.a,
            x1: x0,
            x2: x0,
            y1,
            y2,
        }
    }

    /// The next output (rounded to f32, as stored) for the next input.
    #[inline]
    fn step(&mut self, xi: f32) -> f32 {
        let xi = xi as f64;
        let y = self.b[0] * xi + self.b[1] * self.x1 + self.b[2] * self.x2
            - self.a[0] * self.y1
            - self.a[1] * self.y2;
        self.x2 = self.x1;
        self.x1 = xi;
        self.y2 = self.y1;
        self.y1 = y;
        y as f32
    }
}

/// Filters `x` into `out` (same length) by the `sections` in turn, each section's output
/// rounded to f32 as the next one's input, and each starting from rest at its first
/// input's level for a low-pass (so a DC offset does not ring) and from 0 for a high-pass.
/// One pass over the signal for all sections, so that their recurrences overlap instead of
/// each waiting on its own latency.
pub fn run_cascade<const N: usize>(sections: &[Biquad; N], x: &[f32], out: &mut [f32]) {
    let (Some(&x0), Some(o0)) = (x.first(), out.first_mut()) else {
        return;
    };
    let mut v = x0;
    let mut state = sections.map(|bq| {
        let mut s = Section::new(&bq, v);
        v = s.step(v);
        s
    });
    *o0 = v;
    for (o, &xi) in out[1..].iter_mut().zip(&x[1..]) {
        *o = state.iter_mut().fold(xi, |v, s| s.step(v));
    }
}

/// Centered moving average of width `2·half + 1` (shrinking at the edges).
pub fn moving_average(x: &[f32], half: usize, out: &mut Vec<f32>) {
    out.clear();
    let n = x.len();
    if n == 0 {
        return;
    }
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0f64);
    let mut acc = 0.0f64;
    for &v in x {
        acc += v as f64;
        prefix.push(acc);
    }
    out.extend((0..n).map(|i| {
        let lo = i.saturating_sub(half);
        let hi = (i + half + 1).min(n);
        ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32
    }));
}

/// Above this length [`quantile`] selects on [`order_key`]s, which compare faster.
const KEYED_SELECT: usize = 256;

/// The `q`-quantile (0..=1) of `v` in the order of `f32::total_cmp` (`v` may be
/// reordered); NaN-free input assumed; 0 if empty.
pub fn quantile(v: &mut [f32], q: f64) -> f32 {
    if v.len() > KEYED_SELECT {
        return quantile_keys(&mut order_keys(v), q);
    }
    if v.is_empty() {
        return 0.0;
    }
    let (_, x, _) = v.select_nth_unstable_by(rank(v.len(), q), f32::total_cmp);
    *x
}

/// The index of the `q`-quantile in `len` sorted values.
fn rank(len: usize, q: f64) -> usize {
    ((len - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize
}

/// An integer that orders as `f32::total_cmp` orders `x`.
fn order_key(x: f32) -> i32 {
    flip_negative(x.to_bits() as i32)
}

/// The value whose [`order_key`] is `key`.
fn from_order_key(key: i32) -> f32 {
    f32::from_bits(flip_negative(key) as u32)
}

/// For a negative `bits`, all bits but the sign flipped (so that larger magnitudes order
/// first); its own inverse.
fn flip_negative(bits: i32) -> i32 {
    bits ^ (((bits >> 31) as u32) >> 1) as i32
}

/// The [`order_key`]s of `v`.
pub fn order_keys(v: &[f32]) -> Vec<i32> {
    v.iter().map(|&x| order_key(x)).collect()
}

/// The `q`-quantile (0..=1) of the values whose [`order_key`]s are `keys`, which are left
/// partitioned around it (smaller before, larger after); 0 if empty.
pub fn quantile_keys(keys: &mut [i32], q: f64) -> f32 {
    if keys.is_empty() {
        return 0.0;
    }
    let (_, k, _) = keys.select_nth_unstable(rank(keys.len(), q));
    from_order_key(*k)
}

/// Quantile of an f64 slice (copied).
pub fn quantile_f64(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut c: Vec<f64> = v.to_vec();
    let k = ((c.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    let (_, x, _) = c.select_nth_unstable_by(k, f64::total_cmp);
    Some(*x)
}

pub fn median_f64(v: &[f64]) -> Option<f64> {
    quantile_f64(v, 0.5)
}

pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

pub fn std_dev(v: &[f64]) -> Option<f64> {
    let m = mean(v)?;
    (v.len() >= 2)
        .then(|| (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt())
}

/// At most `max` samples of `x`, evenly strided (a copy), for quantiles of long signals.
pub fn subsample(x: &[f32], max: usize) -> Vec<f32> {
    let stride = x.len().div_ceil(max.max(1)).max(1);
    x.iter().step_by(stride).copied().collect()
}

/// Pearson correlation of two equal-length slices (0 when either is constant).
pub fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let ma = a[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let mb = b[..n].iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let da = a[i] as f64 - ma;
        let db = b[i] as f64 - mb;
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}
