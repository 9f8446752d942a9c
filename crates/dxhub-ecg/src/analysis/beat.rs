//! The representative (median) beat and its delineation.
//!
//! Baseline: per beat and lead, a knot is the mean over [fiducial − 100 ms, fiducial −
//! 80 ms]; the baseline is the straight line between successive knots, subtracted from
//! every beat window (wander removal that leaves the ST level alone). Beats of the dominant
//! morphology (QRS correlation ≥ 0.9 with the median of all) are averaged by a per-sample
//! median into one beat per lead, window [fiducial − 450 ms, fiducial + 650 ms].
//!
//! Delineation on that beat, over the usable leads:
//! - QRS onset/offset: the spatial velocity `Σ|dM/dt|` falls below 6 % (onset) / 10 %
//!   (offset) of its QRS peak above its floor and stays below for 10 ms;
//! - isoelectric level per lead: the mean of the flattest 16 ms in the 60 ms before onset;
//! - T end: tangent at the steepest descent of the spatial magnitude `√Σ(M − iso)²` after
//!   the T peak, meeting the magnitude's floor;
//! - P: the spatial-magnitude peak in the 320 ms before QRS onset (after the previous T),
//!   present when ≥ 40 µV and ≥ 3× the floor; onset/offset where the magnitude falls to
//!   8 % of the peak above the floor.

use super::dsp::{correlation, moving_average, quantile};

pub struct Template {
    /// Index of the fiducial in the window.
    pub pre: usize,
    /// One median beat per lead (unusable leads: zeros).
    pub leads: Vec<Vec<f32>>,
    /// Median correlation of the selected beats' QRS with the template.
    pub median_corr: f64,
    /// Number of beats averaged.
    pub n_beats: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Marks {
    pub qrs_on: usize,
    pub qrs_off: usize,
    pub t_end: Option<usize>,
    pub p_on: Option<usize>,
    pub p_off: Option<usize>,
    /// Isoelectric level per lead.
    pub iso: Vec<f32>,
}

/// Linear baseline through the per-beat knots; `knots[l][b]` for beat `b` of lead `l`.
pub fn knots(leads: &[&[f32]], beats: &[usize], fs: f64) -> Vec<Vec<f32>> {
    let a = (0.10 * fs) as usize;
    let b = ((0.08 * fs) as usize).min(a.saturating_sub(1));
    leads
        .iter()
        .map(|x| {
            beats
                .iter()
                .map(|&f| {
                    let lo = f.saturating_sub(a).min(x.len());
                    let hi = f.saturating_sub(b).min(x.len()).max(lo);
                    if hi > lo {
                        x[lo..hi].iter().sum::<f32>() / (hi - lo) as f32
                    } else {
                        x.get(f).copied().unwrap_or(0.0)
                    }
                })
                .collect()
        })
        .collect()
}

/// The baseline over one half of a beat window: the straight line from knot `j0` to knot
/// `j1` (constant when they are the same knot).
#[derive(Clone, Copy)]
struct Segment {
    j0: usize,
    j1: usize,
}

/// The baseline segments of beat `bi`'s window: before its fiducial the line from the
/// previous beat's knot, from the fiducial on the line to the next beat's.
fn segments(beats: &[usize], bi: usize) -> [Segment; 2] {
    [
        Segment {
            j0: bi.saturating_sub(1),
            j1: bi,
        },
        Segment {
            j0: bi,
            j1: (bi + 1).min(beats.len() - 1),
        },
    ]
}

/// Interpolation weights of the baseline for the samples `ts` (clamped to 0…1); unused
/// (left empty) for a constant segment. The weights do not depend on the lead.
fn weights(beats: &[usize], seg: Segment, ts: std::ops::Range<usize>, out: &mut Vec<f32>) {
    if seg.j0 == seg.j1 {
        return;
    }
    let (t0, t1) = (beats[seg.j0] as f32, beats[seg.j1] as f32);
    out.extend(ts.map(|t| ((t as f32 - t0) / (t1 - t0)).clamp(0.0, 1.0)));
}

/// `out = x − baseline` for one half window of one lead (`u`: that half's weights).
fn subtract_baseline(x: &[f32], knots: &[f32], seg: Segment, u: &[f32], out: &mut [f32]) {
    let k0 = knots[seg.j0];
    if seg.j0 == seg.j1 {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v - k0;
        }
    } else {
        let d = knots[seg.j1] - k0;
        for ((o, &v), &u) in out.iter_mut().zip(x).zip(u) {
            *o = v - (k0 + u * d);
        }
    }
}

/// Baseline-corrected beat windows `[f − pre, f + post)` of the `chosen` beats, per lead:
/// one row of `pre + post` samples per chosen beat, row after row (empty for unusable
/// leads).
fn beat_windows(
    leads: &[&[f32]],
    usable: &[bool],
    beats: &[usize],
    knots: &[Vec<f32>],
    chosen: &[usize],
    pre: usize,
    post: usize,
) -> Vec<Vec<f32>> {
    let len = pre + post;
    // Per chosen beat: its two segments and their weights (shared by all leads).
    let mut u_pre = Vec::new();
    let mut u_post = Vec::new();
    let halves: Vec<([Segment; 2], std::ops::Range<usize>, std::ops::Range<usize>)> = chosen
        .iter()
        .map(|&bi| {
            let f = beats[bi];
            let [s0, s1] = segments(beats, bi);
            let (a, b) = (u_pre.len(), u_post.len());
            weights(beats, s0, f - pre..f, &mut u_pre);
            weights(beats, s1, f..f + post, &mut u_post);
            ([s0, s1], a..u_pre.len(), b..u_post.len())
        })
        .collect();
    leads
        .iter()
        .enumerate()
        .map(|(l, x)| {
            if !usable[l] {
                return Vec::new();
            }
            let mut rows = vec![0f32; chosen.len() * len];
            for ((row, &bi), (segs, r0, r1)) in rows.chunks_exact_mut(len).zip(chosen).zip(&halves)
            {
                let f = beats[bi];
                let (before, after) = row.split_at_mut(pre);
                subtract_baseline(
                    &x[f - pre..f],
                    &knots[l],
                    segs[0],
                    &u_pre[r0.clone()],
                    before,
                );
                subtract_baseline(
                    &x[f..f + post],
                    &knots[l],
                    segs[1],
                    &u_post[r1.clone()],
                    after,
                );
            }
            rows
        })
        .collect()
}

/// Builds the median beat from `beats` (fiducials) over the usable leads.
pub fn template(
    leads: &[&[f32]],
    usable: &[bool],
    beats: &[usize],
    knots: &[Vec<f32>],
    fs: f64,
    max_beats: usize,
) -> Option<Template> {
    let n = leads.iter().map(|l| l.len()).min()?;
    let pre = (0.45 * fs).round() as usize;
    let post = (0.65 * fs).round() as usize;
    let len = pre + post;
    let inside: Vec<usize> = (0..beats.len())
        .filter(|&i| beats[i] >= pre && beats[i] + post < n)
        .collect();
    if inside.is_empty() || len < 8 {
        return None;
    }
    let step = inside.len().div_ceil(max_beats.max(1)).max(1);
    let chosen: Vec<usize> = inside.iter().copied().step_by(step).collect();
    let windows = beat_windows(leads, usable, beats, knots, &chosen, pre, post);
    let row = |l: usize, k: usize| &windows[l][k * len..(k + 1) * len];
    // Dominant morphology: QRS region (±60 ms) of all usable leads, concatenated.
    let q = ((0.06 * fs) as usize).max(2);
    let qrs = pre - q.min(pre)..(pre + q).min(len);
    let vecs: Vec<Vec<f32>> = (0..chosen.len())
        .map(|k| {
            (0..leads.len())
                .filter(|&l| usable[l])
                .flat_map(|l| row(l, k)[qrs.clone()].iter().copied())
                .collect()
        })
        .collect();
    let dim = vecs.first().map_or(0, |v| v.len());
    let mut med = vec![0f32; dim];
    let mut scratch = Vec::new();
    let rows: Vec<&[f32]> = vecs.iter().map(Vec::as_slice).collect();
    column_medians(&rows, &mut med, &mut scratch);
    let corrs: Vec<f64> = vecs.iter().map(|v| correlation(v, &med)).collect();
    let mut sorted = corrs.clone();
    sorted.sort_by(f64::total_cmp);
    let median_corr = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let mut keep: Vec<usize> = (0..chosen.len()).filter(|&k| corrs[k] >= 0.9).collect();
    if keep.len() * 3 < chosen.len() {
        // No clear dominant beat: the better-matching half.
        let mut order: Vec<usize> = (0..chosen.len()).collect();
        order.sort_by(|&a, &b| corrs[b].total_cmp(&corrs[a]));
        keep = order[..chosen.len().div_ceil(2)].to_vec();
    }
    let mut out = Vec::with_capacity(leads.len());
    for l in 0..leads.len() {
        let mut m = vec![0f32; len];
        if usable[l] {
            let rows: Vec<&[f32]> = keep.iter().map(|&k| row(l, k)).collect();
            if rows.len() <= 2 {
                let mut col = Vec::with_capacity(2);
                for (t, mv) in m.iter_mut().enumerate() {
                    col.clear();
                    col.extend(rows.iter().map(|r| r[t]));
                    *mv = col.iter().sum::<f32>() / col.len().max(1) as f32;
                }
            } else {
                column_medians(&rows, &mut m, &mut scratch);
            }
        }
        out.push(m);
    }
    Some(Template {
        pre,
        leads: out,
        median_corr,
        n_beats: keep.len(),
    })
}

/// Delineates the median beat. `rr_s`: the median RR (bounds the T and P searches).
pub fn delineate(tpl: &Template, usable: &[bool], fs: f64, rr_s: Option<f64>) -> Option<Marks> {
    let len = tpl.leads.first()?.len();
    let ls: Vec<&Vec<f32>> = tpl
        .leads
        .iter()
        .zip(usable)
        .filter(|(_, u)| **u)
        .map(|(l, _)| l)
        .collect();
    if ls.is_empty() || len < 8 {
        return None;
    }
    let ms = |v: f64| ((v / 1000.0 * fs).round() as usize).max(1);
    // Smoothed copies against noise: ~10 ms for slopes, ~20 ms for P/T magnitudes.
    let smooth = |half: usize| -> Vec<Vec<f32>> {
        ls.iter()
            .map(|l| {
                let mut o = Vec::new();
                moving_average(l, half, &mut o);
                o
            })
            .collect()
    };
    let s10 = smooth((0.005 * fs).floor() as usize);
    let s20 = smooth((0.01 * fs).round() as usize);
    let mut sv = vec![0f32; len];
    for t in 1..len - 1 {
        sv[t] = s10.iter().map(|l| (l[t + 1] - l[t - 1]).abs()).sum::<f32>() * 0.5;
    }
    sv[0] = sv[1];
    sv[len - 1] = sv[len - 2];
    let pre = tpl.pre;
    let w = ms(80.0);
    let lo = pre.saturating_sub(w).max(1);
    let hi = (pre + w).min(len - 2);
    let peak = (lo..=hi).max_by(|&a, &b| sv[a].total_cmp(&sv[b]))?;
    let mut s = sv.clone();
    let floor = quantile(&mut s, 0.1);
    let top = sv[peak];
    if top.is_nan() || top <= floor {
        return None;
    }
    let hold = ms(10.0);
    let th_on = floor + 0.06 * (top - floor);
    let th_off = floor + 0.10 * (top - floor);
    let lim_on = pre.saturating_sub(ms(200.0)).max(hold);
    let mut on = lim_on;
    let mut t = peak;
    while t > lim_on {
        if (t.saturating_sub(hold)..=t).all(|k| sv[k] < th_on) {
            on = t;
            break;
        }
        t -= 1;
    }
    let lim_off = (pre + ms(220.0)).min(len - 1 - hold);
    let mut off = lim_off;
    let mut t = peak;
    while t < lim_off {
        if (t..=t + hold).all(|k| sv[k] < th_off) {
            off = t;
            break;
        }
        t += 1;
    }
    // Isoelectric level: flattest 16 ms in the 60 ms before onset.
    let seg = ms(16.0);
    let s0 = on.saturating_sub(ms(60.0));
    let mut best = (f32::INFINITY, on.saturating_sub(seg));
    let mut a = s0;
    while a + seg <= on {
        let v: f32 = sv[a..a + seg].iter().sum();
        if v < best.0 {
            best = (v, a);
        }
        a += 1;
    }
    let (i0, i1) = (best.1, (best.1 + seg).min(len));
    let iso: Vec<f32> = tpl
        .leads
        .iter()
        .map(|l| {
            if i1 > i0 {
                l[i0..i1].iter().sum::<f32>() / (i1 - i0) as f32
            } else {
                0.0
            }
        })
        .collect();
    let isos: Vec<f32> = iso
        .iter()
        .zip(usable)
        .filter(|(_, u)| **u)
        .map(|(v, _)| *v)
        .collect();
    let mag = |t: usize| -> f32 {
        s20.iter()
            .zip(&isos)
            .map(|(l, b)| (l[t] - b).powi(2))
            .sum::<f32>()
            .sqrt()
    };
    let mags: Vec<f32> = (0..len).map(mag).collect();

    // T wave.
    let rr = rr_s.unwrap_or(1.0).clamp(0.25, 3.0);
    let t_lo = (off + ms(40.0)).min(len - 1);
    let t_hi = (pre + ms((0.8 * rr * 1000.0).clamp(300.0, 620.0))).min(len - 1);
    let mut t_end = None;
    if t_hi > t_lo + ms(40.0) {
        let tp = (t_lo..=t_hi).max_by(|&a, &b| mags[a].total_cmp(&mags[b]))?;
        let k = ms(4.0);
        let mut steep = (0f32, tp);
        for t in tp + k..t_hi.saturating_sub(k) {
            let slope = (mags[t + k] - mags[t - k]) / (2 * k) as f32;
            if slope < steep.0 {
                steep = (slope, t);
            }
        }
        let floor_t = mags[steep.1..=t_hi]
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min);
        if mags[tp] > 30.0 && steep.0 < 0.0 {
            let end = steep.1 as f64 + ((mags[steep.1] - floor_t) / -steep.0) as f64;
            if end.is_finite() && end <= t_hi as f64 + ms(20.0) as f64 {
                t_end = Some((end.round() as usize).min(len - 1));
            }
        }
    }

    // P wave.
    let mut p_on = None;
    let mut p_off = None;
    let p_hi = on.saturating_sub(ms(20.0));
    let mut p_lo = on.saturating_sub(ms(320.0));
    if let Some(te) = t_end {
        let prev_te = (te as f64 - rr * fs + ms(20.0) as f64).max(0.0) as usize;
        p_lo = p_lo.max(prev_te);
    }
    if p_hi > p_lo + ms(40.0) {
        let pp = (p_lo..=p_hi).max_by(|&a, &b| mags[a].total_cmp(&mags[b]))?;
        let mut fl: Vec<f32> = mags[p_lo..on].to_vec();
        let pfloor = quantile(&mut fl, 0.2);
        let ppk = mags[pp];
        if ppk >= 40.0 && ppk >= 3.0 * pfloor && pp > p_lo && pp < p_hi {
            let th = pfloor + 0.08 * (ppk - pfloor);
            let mut a = pp;
            while a > p_lo.saturating_sub(ms(60.0)) && mags[a] > th {
                a -= 1;
            }
            let mut b = pp;
            while b < on && mags[b] > th {
                b += 1;
            }
            p_on = Some(a);
            p_off = Some(b);
        }
    }
    Some(Marks {
        qrs_on: on,
        qrs_off: off,
        t_end,
        p_on,
        p_off,
        iso,
    })
}

/// Median by insertion sort (the columns here hold at most a few dozen values).
fn small_median(v: &mut [f32]) -> f32 {
    if v.len() > 64 {
        return quantile(v, 0.5);
    }
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Columns sorted at a time by [`column_medians`] (the block stays in L1).
const BLOCK: usize = 128;

/// `out[t]` = [`small_median`] of column `t` of `rows` (equal lengths ≥ `out.len()`).
///
/// The columns are sorted a block at a time by a sorting network applied to whole rows
/// (branch-free and vectorised). The median's value is the same whatever sorts it; only
/// a zero's sign could depend on the order of equal values, so zero medians are recomputed
/// by [`small_median`] itself, and so are all columns when any value is NaN (unordered).
fn column_medians(rows: &[&[f32]], out: &mut [f32], scratch: &mut Vec<f32>) {
    let m = rows.len();
    let mut col = Vec::with_capacity(m);
    let mut exact = |t: usize| {
        col.clear();
        col.extend(rows.iter().map(|r| r[t]));
        small_median(&mut col)
    };
    let nan = rows
        .iter()
        .any(|r| r[..out.len()].iter().any(|v| v.is_nan()));
    if m > 64 || nan {
        for (t, o) in out.iter_mut().enumerate() {
            *o = exact(t);
        }
        return;
    }
    let network = merge_exchange(m);
    for c0 in (0..out.len()).step_by(BLOCK) {
        let w = BLOCK.min(out.len() - c0);
        scratch.clear();
        for r in rows {
            scratch.extend_from_slice(&r[c0..c0 + w]);
        }
        for &(i, j) in &network {
            let (a, b) = scratch.split_at_mut(j * w);
            compare_exchange(&mut a[i * w..(i + 1) * w], &mut b[..w]);
        }
        out[c0..c0 + w].copy_from_slice(&scratch[m / 2 * w..(m / 2 + 1) * w]);
    }
    for (t, o) in out.iter_mut().enumerate() {
        if *o == 0.0 {
            *o = exact(t);
        }
    }
}

/// Element-wise: the smaller value into `lo`, the larger into `hi`.
fn compare_exchange(lo: &mut [f32], hi: &mut [f32]) {
    for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
        let (x, y) = (*a, *b);
        *a = x.min(y);
        *b = x.max(y);
    }
}

/// Batcher's merge-exchange sorting network for `n` elements (Knuth, TAOCP 5.2.2,
/// Algorithm M): compare-exchange pairs `(i, j)`, `i < j`, in order.
fn merge_exchange(n: usize) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    if n < 2 {
        return pairs;
    }
    let top = n.next_power_of_two() / 2;
    let mut p = top;
    while p > 0 {
        let (mut q, mut r, mut d) = (top, 0, p);
        loop {
            pairs.extend((0..n - d).filter(|&i| i & p == r).map(|i| (i, i + d)));
            if q == p {
                break;
            }
            d = q - p;
            q /= 2;
            r = p;
        }
        p /= 2;
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_exchange_sorts_all_zero_one_inputs() {
        for n in 0..=16usize {
            let net = merge_exchange(n);
            for bits in 0u32..(1 << n) {
                let mut v: Vec<u8> = (0..n).map(|i| (bits >> i & 1) as u8).collect();
                for &(i, j) in &net {
                    if v[j] < v[i] {
                        v.swap(i, j);
                    }
                }
                assert!(v.windows(2).all(|w| w[0] <= w[1]), "n {n} input {bits:b}");
            }
        }
    }

    #[test]
    fn column_medians_match_small_median() {
        let mut rng = crate::synth::XorShift::new(3);
        let mut scratch = Vec::new();
        for m in [1usize, 2, 3, 5, 11, 17, 32, 60, 64, 65, 70] {
            let w = 300;
            let data: Vec<Vec<f32>> = (0..m)
                .map(|_| {
                    (0..w)
                        .map(|_| match rng.next_u64() % 6 {
                            0 => 0.0,
                            1 => -0.0,
                            2 => 1.5,
                            _ => (rng.normal() * 100.0) as f32,
                        })
                        .collect()
                })
                .collect();
            let rows: Vec<&[f32]> = data.iter().map(Vec::as_slice).collect();
            let mut out = vec![0f32; w];
            column_medians(&rows, &mut out, &mut scratch);
            for t in 0..w {
                let mut col: Vec<f32> = rows.iter().map(|r| r[t]).collect();
                let want = small_median(&mut col);
                assert_eq!(out[t].to_bits(), want.to_bits(), "m {m} column {t}");
            }
        }
    }
}
