//! Multi-lead QRS detection: a Pan–Tompkins-style energy detector over all usable leads.
//!
//! Each lead is band-passed (two 2nd-order Butterworth sections, 5–18 Hz, designed for the
//! record's own sampling rate, so 125–1000 Hz need no resampling), differentiated over
//! ~8 ms and squared; the squares are normalised by the lead's 99th percentile (so no lead
//! dominates by gain) and summed, then integrated over a centred 120 ms window. Candidate
//! peaks are the maxima of that envelope within ±200 ms. They are accepted against adaptive
//! signal and noise levels (threshold = noise + 0.25·(signal − noise)), with search-back at
//! half the threshold when no beat came for 1.66 mean RR, and a T-wave test (a candidate
//! within 360 ms of the last beat and below half its energy is not a beat). The beat's
//! fiducial is then the sample of largest deflection from the local baseline, summed over
//! leads, within ±80 ms of the envelope peak. Linear in the number of samples.

use super::dsp::{Biquad, moving_average, quantile, run_cascade, subsample};
use std::collections::VecDeque;

/// QRS fiducials (sample indices, increasing) in `leads` (equal lengths) at `fs` Hz.
pub fn detect(leads: &[&[f32]], fs: f64) -> Vec<usize> {
    let n = leads.iter().map(|l| l.len()).min().unwrap_or(0);
    if n < (0.5 * fs) as usize || leads.is_empty() {
        return Vec::new();
    }
    let env = envelope(leads, n, fs);
    let peaks = accept(&env, fs);
    peaks.into_iter().map(|p| fiducial(leads, n, fs, p)).fold(
        Vec::new(),
        |mut acc: Vec<usize>, p| {
            // Keep increasing and at least 150 ms apart after refinement.
            if acc.last().is_none_or(|&l| p > l + (0.15 * fs) as usize) {
                acc.push(p);
            }
            acc
        },
    )
}

/// The integrated, normalised multi-lead QRS energy.
fn envelope(leads: &[&[f32]], n: usize, fs: f64) -> Vec<f32> {
    let hp = Biquad::highpass(fs, 5.0);
    let lp = Biquad::lowpass(fs, 18.0);
    let k = ((0.004 * fs).round() as usize).max(1);
    let mut sum = vec![0f32; n];
    let mut a = vec![0f32; n];
    let mut b = vec![0f32; n];
    // Band-pass, central difference over 2k samples, squared, into `b`.
    let energy = |x: &[f32], a: &mut [f32], b: &mut [f32]| {
        run_cascade(&[hp, lp, lp], x, a);
        squared_difference(a, k, b);
    };
    // Each lead's 99th percentile; a lead's weight is capped so that a lead with a small
    // QRS (and relatively large T) cannot outweigh the others. Energies are kept for the
    // second pass when they fit in 4 M samples, else recomputed.
    let keep = leads.len() * n <= 4_000_000;
    let mut kept: Vec<Vec<f32>> = Vec::new();
    let scales: Vec<f32> = leads
        .iter()
        .map(|lead| {
            energy(&lead[..n], &mut a, &mut b);
            let mut s = subsample(&b, 4_000);
            if keep {
                kept.push(b.clone());
            }
            quantile(&mut s, 0.99)
        })
        .collect();
    let top = scales.iter().copied().fold(0f32, f32::max);
    for (k, (lead, &scale)) in leads.iter().zip(&scales).enumerate() {
        let scale = scale.max(0.3 * top);
        if !(scale > 0.0 && scale.is_finite()) {
            continue;
        }
        let e: &[f32] = if keep {
            &kept[k]
        } else {
            energy(&lead[..n], &mut a, &mut b);
            &b
        };
        let inv = 1.0 / scale;
        for (acc, v) in sum.iter_mut().zip(e) {
            *acc += v * inv;
        }
    }
    let mut env = Vec::with_capacity(n);
    moving_average(&sum, ((0.06 * fs) as usize).max(1), &mut env);
    env
}

/// `out[i] = (x[i + k] − x[i − k])²`, the indices clamped to `x`.
fn squared_difference(x: &[f32], k: usize, out: &mut [f32]) {
    let n = x.len();
    let at = |i: usize| {
        let d = x[(i + k).min(n - 1)] - x[i.saturating_sub(k)];
        d * d
    };
    // Unclamped in the middle (a plain loop that vectorises), clamped at the ends.
    let (head, tail) = (k.min(n), n.saturating_sub(k).max(k.min(n)));
    for i in (0..head).chain(tail..n) {
        out[i] = at(i);
    }
    if tail > head {
        let mid = out[head..tail].iter_mut();
        for ((o, &hi), &lo) in mid.zip(&x[head + k..]).zip(&x[head - k..]) {
            let d = hi - lo;
            *o = d * d;
        }
    }
}

/// Candidate peaks (local maxima within ±200 ms) accepted by adaptive thresholds.
fn accept(env: &[f32], fs: f64) -> Vec<usize> {
    let n = env.len();
    let half = ((0.2 * fs) as usize).max(1);
    // Sliding maximum with a monotone deque over [i - half, i + half].
    let mut cands: Vec<usize> = Vec::new();
    let mut dq: VecDeque<usize> = VecDeque::new();
    let mut next = 0usize;
    for i in 0..n {
        while next < n && next <= i + half {
            while dq.back().is_some_and(|&j| env[j] <= env[next]) {
                dq.pop_back();
            }
            dq.push_back(next);
            next += 1;
        }
        while dq.front().is_some_and(|&j| j + half < i) {
            dq.pop_front();
        }
        if dq.front() == Some(&i) && env[i] > 0.0 {
            cands.push(i);
        }
    }
    if cands.is_empty() {
        return Vec::new();
    }
    // Initial levels from the first 2 s (or all).
    let learn = ((2.0 * fs) as usize).min(n);
    let max0 = env[..learn].iter().copied().fold(0f32, f32::max) as f64;
    let mean0 = env[..learn].iter().map(|&v| v as f64).sum::<f64>() / learn.max(1) as f64;
    let mut spk = 0.5 * max0;
    let mut npk = 0.5 * mean0;
    let refractory = (0.2 * fs) as usize;
    let t_window = (0.36 * fs) as usize;
    let mut beats: Vec<usize> = Vec::new();
    let mut last_val = 0f64;
    let mut rr: VecDeque<usize> = VecDeque::new();
    let mut ci = 0usize;
    // Index in `cands` of the first candidate after the last beat (for search-back).
    let mut after_last = 0usize;
    while ci < cands.len() {
        let i = cands[ci];
        let v = env[i] as f64;
        let th1 = npk + 0.25 * (spk - npk);
        // Search-back: a long gap since the last beat.
        if let Some(&lb) = beats.last() {
            let mean_rr = if rr.is_empty() {
                fs
            } else {
                rr.iter().sum::<usize>() as f64 / rr.len() as f64
            };
            let limit = lb + (1.66 * mean_rr) as usize;
            if i > limit {
                let best = cands[after_last..ci]
                    .iter()
                    .copied()
                    .filter(|&c| {
                        let cv = env[c] as f64;
                        c > lb + refractory
                            && cv > 0.5 * th1
                            && !(c < lb + t_window && cv < 0.5 * last_val)
                    })
                    .max_by(|&a, &b| env[a].total_cmp(&env[b]));
                if let Some(c) = best {
                    let cv = env[c] as f64;
                    spk = 0.25 * cv + 0.75 * spk;
                    push_rr(&mut rr, c - lb);
                    beats.push(c);
                    last_val = cv;
                    after_last = cands[..ci].partition_point(|&x| x <= c);
                    continue; // re-examine candidate ci against the new beat
                }
            }
        }
        let since = beats.last().map(|&lb| i - lb);
        let is_beat = v > th1
            && since.is_none_or(|s| s > refractory)
            && !(since.is_some_and(|s| s < t_window) && v < 0.5 * last_val);
        if is_beat {
            spk = 0.125 * v + 0.875 * spk;
            if let Some(s) = since {
                push_rr(&mut rr, s);
            }
            beats.push(i);
            last_val = v;
            after_last = ci + 1;
        } else {
            npk = 0.125 * v + 0.875 * npk;
        }
        ci += 1;
    }
    beats
}

fn push_rr(rr: &mut VecDeque<usize>, v: usize) {
    rr.push_back(v);
    if rr.len() > 8 {
        rr.pop_front();
    }
}

/// Centre of mass of the fourth power of the summed deflection from the local level (each
/// lead's median over ±250 ms, the lead weighted by its range there) within ±80 ms of
/// `p`: near the R peak, and stable from beat to beat when two waves are of similar size.
fn fiducial(leads: &[&[f32]], n: usize, fs: f64, p: usize) -> usize {
    let w = ((0.08 * fs) as usize).max(1);
    let lo = p.saturating_sub(w);
    let hi = (p + w).min(n - 1);
    if hi <= lo {
        return p;
    }
    let wide = ((0.25 * fs) as usize).max(1);
    let (wlo, whi) = (p.saturating_sub(wide), (p + wide).min(n - 1));
    let mut score = vec![0f32; hi - lo + 1];
    let mut tmp = Vec::new();
    for lead in leads {
        tmp.clear();
        let stride = ((whi - wlo) / 64).max(1);
        tmp.extend(lead[wlo..=whi].iter().step_by(stride));
        let base = quantile(&mut tmp, 0.5);
        let seg = &lead[lo..=hi];
        let range = seg.iter().map(|&v| (v - base).abs()).fold(0f32, f32::max);
        if range.is_nan() || range <= 0.0 {
            continue;
        }
        let inv = 1.0 / range;
        for (s, &v) in score.iter_mut().zip(seg) {
            *s += (v - base).abs() * inv;
        }
    }
    let (mut num, mut den) = (0f64, 0f64);
    for (k, &s) in score.iter().enumerate() {
        let w = (s as f64).powi(4);
        num += w * k as f64;
        den += w;
    }
    if den > 0.0 && (num / den).is_finite() {
        lo + (num / den).round() as usize
    } else {
        p
    }
}
