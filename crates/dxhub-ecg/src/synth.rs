//! Synthetic 12-lead ECGs with known ground truth, for tests and benchmarks.
//!
//! The heart is one moving dipole `H(t) = (x: left, y: inferior, z: anterior)`, the sum of
//! P, Q, R, S and T waves, each a smooth bump of compact support with a fixed direction.
//! Lead I = `Hx`, lead II = `Hx/2 + (√3/2)·Hy` (Einthoven's triangle with unit leads); III,
//! aVR, aVL and aVF follow from I and II by [`crate::model::derive_limb_leads`]'s relations;
//! V1…V6 project `H` on directions in the horizontal plane (115°, 95°, 75°, 55°, 30°, 10°
//! from left towards anterior) with a small inferior part. Q and S lie on the QRS axis (with
//! opposite sign), so the frontal net-area QRS axis is exactly `qrs_axis_deg`; likewise for P
//! and T.
//!
//! Ground truth ([`SynthTruth`]): every QRS (its R-peak sample), every P wave onset, PR =
//! P onset → QRS onset, QRS = the QRS bumps' support, QT = QRS onset → the point where the
//! tangent at the T wave's steepest descent meets the baseline (the usual manual method;
//! the T bump's support ends `0.18 × its fall` later).
//!
//! Per-lead ST offsets (`st_uv`) are added after the limb leads are derived, so they need
//! not obey Einthoven's law: a test can place elevation in exactly the leads it wants.
//!
//! Deterministic: the same [`SynthSpec`] (with its `seed`) gives the same samples; the random
//! numbers come from a xorshift64* generator.

#![allow(clippy::needless_range_loop)]

use crate::model::{Ecg, Lead, LeadCode, derive_limb_leads};
use std::f64::consts::PI;

/// The rhythm to synthesise.
#[derive(Debug, Clone, PartialEq)]
pub enum SynthRhythm {
    /// Regular sinus rhythm at this rate.
    Sinus { hr_bpm: f64 },
    /// Beats at these RR intervals (ms), cycled until the end; sinus P waves before each QRS
    /// when `p_waves` (a pause is one long RR).
    Rr { rr_ms: Vec<f64>, p_waves: bool },
    /// Irregularly irregular RR (uniform ±`irregularity` around the mean), no P waves,
    /// fibrillatory waves of about 6 Hz and 40 µV.
    AtrialFibrillation { mean_hr_bpm: f64, irregularity: f64 },
    /// Regular wide-QRS tachycardia without P waves (QRS `qrs_ms`, at least 140 ms is used),
    /// superior axis, discordant T.
    VentricularTachycardia { hr_bpm: f64 },
    /// Chaotic 4–7 Hz activity of varying amplitude, no QRS.
    VentricularFibrillation,
    /// A sinusoid at this rate (per minute), no isoelectric line.
    VentricularFlutter { rate_bpm: f64 },
    /// Third-degree AV block: P waves at `atrial_bpm` and an independent regular escape
    /// rhythm at `ventricular_bpm`.
    CompleteAvBlock {
        atrial_bpm: f64,
        ventricular_bpm: f64,
    },
    /// Second-degree AV block, Mobitz II: sinus P waves at `atrial_bpm` with a fixed PR,
    /// every `every`-th P not conducted (`every` = 3: 3:2 block).
    SecondDegreeAvBlock { atrial_bpm: f64, every: u32 },
}

/// What to synthesise. `SynthSpec::default()` is 10 s of 12-lead sinus rhythm at 75/min,
/// 500 Hz, PR 160 ms, QRS 90 ms, QT 400 ms, no noise.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSpec {
    pub sample_rate_hz: f64,
    pub duration_s: f64,
    pub rhythm: SynthRhythm,
    /// P onset to QRS onset.
    pub pr_ms: f64,
    /// P wave duration.
    pub p_ms: f64,
    pub qrs_ms: f64,
    /// QRS onset to T end by the tangent method (see the module doc).
    pub qt_ms: f64,
    pub p_axis_deg: f64,
    pub qrs_axis_deg: f64,
    pub t_axis_deg: f64,
    /// Amplitude of the dipole's P, R and T waves (µV along their direction).
    pub p_uv: f64,
    pub r_uv: f64,
    pub t_uv: f64,
    /// ST offset per lead (I, II, III, aVR, aVL, aVF, V1…V6), µV, from the J point to the T
    /// peak, tapering to 0 at the T end.
    pub st_uv: [f64; 12],
    /// White Gaussian noise at this SNR per lead (signal power = the clean lead's mean power).
    pub snr_db: Option<f64>,
    /// Baseline wander (two sinusoids near 0.15 and 0.35 Hz), peak µV.
    pub wander_uv: f64,
    /// Mains hum, peak µV, at `mains_hz`.
    pub mains_uv: f64,
    pub mains_hz: f64,
    /// Time of the first QRS onset.
    pub first_qrs_s: f64,
    pub seed: u64,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            sample_rate_hz: 500.0,
            duration_s: 10.0,
            rhythm: SynthRhythm::Sinus { hr_bpm: 75.0 },
            pr_ms: 160.0,
            p_ms: 100.0,
            qrs_ms: 90.0,
            qt_ms: 400.0,
            p_axis_deg: 50.0,
            qrs_axis_deg: 45.0,
            t_axis_deg: 40.0,
            p_uv: 150.0,
            r_uv: 1200.0,
            t_uv: 350.0,
            st_uv: [0.0; 12],
            snr_db: None,
            wander_uv: 0.0,
            mains_uv: 0.0,
            mains_hz: 50.0,
            first_qrs_s: 0.45,
            seed: 1,
        }
    }
}

impl SynthSpec {
    /// Sinus rhythm at `hr_bpm`, everything else default.
    pub fn sinus(hr_bpm: f64) -> Self {
        SynthSpec {
            rhythm: SynthRhythm::Sinus { hr_bpm },
            ..SynthSpec::default()
        }
    }
}

/// The known truth of a synthetic ECG. Sample indices are in the ECG's sampling.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SynthTruth {
    /// R-peak sample of every QRS (the fiducial a QRS detector should find).
    pub beats: Vec<u32>,
    pub qrs_onsets: Vec<u32>,
    /// Onset sample of every P wave (conducted or not).
    pub p_onsets: Vec<u32>,
    /// 60000 / mean RR (None with fewer than 2 QRS).
    pub hr_bpm: Option<f64>,
    pub pr_ms: Option<f64>,
    pub qrs_ms: Option<f64>,
    pub qt_ms: Option<f64>,
    pub p_axis_deg: Option<f64>,
    pub qrs_axis_deg: Option<f64>,
    pub t_axis_deg: Option<f64>,
    pub st_uv: [f64; 12],
}

/// xorshift64* — small, deterministic, good enough for noise.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

#[derive(Clone, Copy)]
enum Shape {
    /// sin²(πu)
    Hann,
    /// sin² rise over `rise` of the support, cos² fall over the rest.
    Skewed { rise: f64 },
}

impl Shape {
    fn at(self, u: f64) -> f64 {
        match self {
            Shape::Hann => (PI * u).sin().powi(2),
            Shape::Skewed { rise } => {
                if u < rise {
                    (0.5 * PI * u / rise).sin().powi(2)
                } else {
                    (0.5 * PI * (u - rise) / (1.0 - rise)).cos().powi(2)
                }
            }
        }
    }
}

/// Direction of a wave: frontal angle (0° = left, 90° = inferior) and an anterior part.
fn dir(frontal_deg: f64, anterior: f64) -> [f64; 3] {
    let a = frontal_deg.to_radians();
    [a.cos(), a.sin(), anterior]
}

struct Dipole {
    h: [Vec<f64>; 3],
    fs: f64,
}

impl Dipole {
    /// Adds `amp × shape` along `d` over [t0, t0 + dur) seconds.
    fn add(&mut self, t0: f64, dur: f64, amp: f64, d: [f64; 3], shape: Shape) {
        if dur <= 0.0 {
            return;
        }
        let n = self.h[0].len();
        let s0 = (t0 * self.fs).ceil().max(0.0);
        let s1 = ((t0 + dur) * self.fs).floor().min(n as f64 - 1.0);
        if s1 < s0 {
            return;
        }
        for s in s0 as usize..=s1 as usize {
            let u = (s as f64 / self.fs - t0) / dur;
            let v = amp * shape.at(u.clamp(0.0, 1.0));
            for k in 0..3 {
                self.h[k][s] += v * d[k];
            }
        }
    }
}

/// Horizontal-plane angles of V1…V6 (from left towards anterior) and their gains.
const PRECORDIAL: [(f64, f64); 6] = [
    (115.0, 1.0),
    (95.0, 1.2),
    (75.0, 1.3),
    (55.0, 1.3),
    (30.0, 1.2),
    (10.0, 1.0),
];

/// T wave rise fraction of its support.
const T_RISE: f64 = 0.6;

/// One ventricular complex: QRS onset `on` (s), `wide` for a ventricular (VT/escape) beat.
/// Returns the R-peak time.
fn add_qrst(dp: &mut Dipole, spec: &SynthSpec, on: f64, qrs_s: f64, qt_s: f64, vt: bool) -> f64 {
    let ax = spec.qrs_axis_deg;
    let r = spec.r_uv;
    let r_peak = if vt {
        // Broad monophasic complex, superior axis, small terminal S.
        let d = dir(-80.0, -0.5);
        dp.add(on, 0.7 * qrs_s, r, d, Shape::Hann);
        dp.add(on + 0.55 * qrs_s, 0.45 * qrs_s, -0.3 * r, d, Shape::Hann);
        on + 0.35 * qrs_s
    } else {
        dp.add(on, 0.2 * qrs_s, -0.1 * r, dir(ax, -0.8), Shape::Hann);
        dp.add(
            on + 0.15 * qrs_s,
            0.45 * qrs_s,
            r,
            dir(ax, -0.3),
            Shape::Hann,
        );
        dp.add(
            on + 0.55 * qrs_s,
            0.45 * qrs_s,
            -0.25 * r,
            dir(ax, -0.9),
            Shape::Hann,
        );
        on + 0.375 * qrs_s
    };
    let (td, tax) = t_geometry(qrs_s, qt_s);
    let t_dir = if vt {
        dir(100.0, 0.4)
    } else {
        dir(spec.t_axis_deg, 0.3)
    };
    dp.add(
        on + tax,
        td,
        spec.t_uv,
        t_dir,
        Shape::Skewed { rise: T_RISE },
    );
    r_peak
}

/// T wave (duration, start after QRS onset) so that the tangent end is at `qt_s`.
fn t_geometry(qrs_s: f64, qt_s: f64) -> (f64, f64) {
    // Support end = start + td; tangent end = start + td·(rise + (1−rise)·(0.5 + 1/π)).
    let tangent_frac = T_RISE + (1.0 - T_RISE) * (0.5 + 1.0 / PI);
    let td = (0.55 * (qt_s - qrs_s)).max(0.06);
    let start = qt_s - td * tangent_frac;
    (td, start.max(qrs_s))
}

/// Generates the 12-lead ECG (µV) and its truth.
pub fn generate(spec: &SynthSpec) -> (Ecg, SynthTruth) {
    let fs = if spec.sample_rate_hz.is_finite() && spec.sample_rate_hz > 0.0 {
        spec.sample_rate_hz
    } else {
        500.0
    };
    let dur = if spec.duration_s.is_finite() {
        spec.duration_s.clamp(0.0, 86_400.0)
    } else {
        0.0
    };
    let n = (dur * fs).round() as usize;
    let mut rng = XorShift::new(spec.seed);
    let mut dp = Dipole {
        h: [vec![0.0; n], vec![0.0; n], vec![0.0; n]],
        fs,
    };
    let mut truth = SynthTruth {
        st_uv: spec.st_uv,
        ..SynthTruth::default()
    };
    let qrs_s = spec.qrs_ms / 1000.0;
    let qt_s = spec.qt_ms / 1000.0;
    let pr_s = spec.pr_ms / 1000.0;
    let p_s = spec.p_ms / 1000.0;
    let p_dir = dir(spec.p_axis_deg, 0.2);
    let to_sample = |t: f64| (t * fs).round().max(0.0) as u32;
    let in_range = |t: f64| t >= 0.0 && t * fs < n as f64;
    // Times of QRS onsets, and whether each has a sinus P before it.
    let mut onsets: Vec<f64> = Vec::new();
    let mut with_p = false;
    let mut vt = false;
    let mut extra_p: Vec<f64> = Vec::new();
    let mut qrs_used = qrs_s;
    let mut conducted_pr = false;
    match &spec.rhythm {
        SynthRhythm::Sinus { hr_bpm } => {
            let rr = 60.0 / hr_bpm.clamp(5.0, 400.0);
            let mut t = spec.first_qrs_s;
            while t < dur {
                onsets.push(t);
                t += rr;
            }
            with_p = true;
        }
        SynthRhythm::Rr { rr_ms, p_waves } => {
            let list: Vec<f64> = rr_ms
                .iter()
                .copied()
                .filter(|v| v.is_finite() && *v >= 100.0)
                .collect();
            let mut t = spec.first_qrs_s;
            let mut i = 0;
            while t < dur {
                onsets.push(t);
                if list.is_empty() {
                    break;
                }
                t += list[i % list.len()] / 1000.0;
                i += 1;
            }
            with_p = *p_waves;
        }
        SynthRhythm::AtrialFibrillation {
            mean_hr_bpm,
            irregularity,
        } => {
            let rr = 60.0 / mean_hr_bpm.clamp(5.0, 400.0);
            let irr = irregularity.clamp(0.0, 0.8);
            let mut t = spec.first_qrs_s;
            while t < dur {
                onsets.push(t);
                t += rr * (1.0 + irr * (2.0 * rng.uniform() - 1.0));
            }
            // Fibrillatory waves: ~6 Hz with wandering phase, mostly along the atria's axis.
            let mut phase = 0.0;
            for s in 0..n {
                phase += 2.0 * PI * (6.0 + 1.5 * (s as f64 / fs * 0.7).sin()) / fs;
                let v = 40.0 * phase.sin();
                dp.h[0][s] += 0.3 * v;
                dp.h[1][s] += 0.5 * v;
                dp.h[2][s] += 0.9 * v;
            }
        }
        SynthRhythm::VentricularTachycardia { hr_bpm } => {
            let rr = 60.0 / hr_bpm.clamp(5.0, 400.0);
            let mut t = spec.first_qrs_s.min(0.2);
            while t < dur {
                onsets.push(t);
                t += rr;
            }
            vt = true;
            qrs_used = qrs_s.max(0.14);
        }
        SynthRhythm::VentricularFibrillation => {
            let mut parts = [(4.3, 0.0, 1.0), (5.6, 1.0, 0.7), (6.8, 2.0, 0.5)];
            for p in parts.iter_mut() {
                p.1 = 2.0 * PI * rng.uniform();
            }
            let mut env_phase = 2.0 * PI * rng.uniform();
            for s in 0..n {
                let t = s as f64 / fs;
                env_phase += 2.0 * PI * 0.3 / fs;
                let env = 0.6 + 0.4 * env_phase.sin();
                let mut v = [0.0; 3];
                for (k, (f, ph, a)) in parts.iter().enumerate() {
                    let drift = 0.4 * (t * (0.17 + 0.05 * k as f64)).sin();
                    let x = a * (2.0 * PI * f * t + ph + drift * 6.0).sin();
                    v[k] = x;
                }
                let amp = 0.6 * spec.r_uv * env;
                dp.h[0][s] += amp * (v[0] + 0.5 * v[2]);
                dp.h[1][s] += amp * (v[1] - 0.4 * v[0]);
                dp.h[2][s] += amp * (v[2] + 0.6 * v[1]);
            }
        }
        SynthRhythm::VentricularFlutter { rate_bpm } => {
            let f = rate_bpm.clamp(60.0, 600.0) / 60.0;
            let d = dir(-60.0, 0.5);
            for s in 0..n {
                let v = 0.8 * spec.r_uv * (2.0 * PI * f * s as f64 / fs).sin();
                for k in 0..3 {
                    dp.h[k][s] += v * d[k];
                }
            }
        }
        SynthRhythm::SecondDegreeAvBlock { atrial_bpm, every } => {
            let pp = 60.0 / atrial_bpm.clamp(5.0, 400.0);
            let every = (*every).max(2) as usize;
            let mut p = spec.first_qrs_s - pr_s;
            let mut k = 0usize;
            while p < dur {
                extra_p.push(p);
                if k % every != every - 1 {
                    onsets.push(p + pr_s);
                }
                p += pp;
                k += 1;
            }
            conducted_pr = true;
        }
        SynthRhythm::CompleteAvBlock {
            atrial_bpm,
            ventricular_bpm,
        } => {
            let rr = 60.0 / ventricular_bpm.clamp(5.0, 400.0);
            let pp = 60.0 / atrial_bpm.clamp(5.0, 400.0);
            let mut t = spec.first_qrs_s;
            while t < dur {
                onsets.push(t);
                t += rr;
            }
            let mut t = 0.05 + 0.37 * pp;
            while t < dur {
                extra_p.push(t);
                t += pp;
            }
        }
    }
    let qt_used = if vt { qt_s.max(qrs_used + 0.16) } else { qt_s };
    for &on in &onsets {
        if with_p {
            extra_p.push(on - pr_s);
        }
        let r = add_qrst(&mut dp, spec, on, qrs_used, qt_used, vt);
        if in_range(r) {
            truth.beats.push(to_sample(r));
            truth.qrs_onsets.push(to_sample(on.max(0.0)));
        }
    }
    extra_p.sort_by(f64::total_cmp);
    for &p in &extra_p {
        dp.add(p, p_s, spec.p_uv, p_dir, Shape::Hann);
        if in_range(p) {
            truth.p_onsets.push(to_sample(p));
        }
    }
    let ventricular = !onsets.is_empty();
    if truth.beats.len() >= 2 {
        let first = truth.beats[0] as f64;
        let last = truth.beats[truth.beats.len() - 1] as f64;
        let mean_rr = (last - first) / (truth.beats.len() - 1) as f64 / fs;
        truth.hr_bpm = Some(60.0 / mean_rr);
    }
    if ventricular {
        truth.qrs_ms = Some(qrs_used * 1000.0);
        truth.qt_ms = Some(qt_used * 1000.0);
        truth.qrs_axis_deg = Some(if vt { -80.0 } else { spec.qrs_axis_deg });
        truth.t_axis_deg = Some(if vt { 100.0 } else { spec.t_axis_deg });
    }
    if with_p || conducted_pr {
        truth.pr_ms = Some(spec.pr_ms);
    }
    if !extra_p.is_empty() {
        truth.p_axis_deg = Some(spec.p_axis_deg);
    }

    // Leads from the dipole.
    let [hx, hy, hz] = &dp.h;
    let s3 = 3f64.sqrt() / 2.0;
    let lead_i: Vec<f32> = hx.iter().map(|&v| v as f32).collect();
    let lead_ii: Vec<f32> = hx
        .iter()
        .zip(hy)
        .map(|(&x, &y)| (0.5 * x + s3 * y) as f32)
        .collect();
    let mut ecg = Ecg {
        leads: vec![
            Lead {
                code: LeadCode::I,
                samples_uv: lead_i,
            },
            Lead {
                code: LeadCode::II,
                samples_uv: lead_ii,
            },
        ],
        sample_rate_hz: fs,
        ..Ecg::default()
    };
    for (k, (ang, gain)) in PRECORDIAL.iter().enumerate() {
        let a = ang.to_radians();
        let (c, s) = (a.cos(), a.sin());
        let samples_uv = (0..n)
            .map(|i| (gain * (c * hx[i] + 0.25 * hy[i] + s * hz[i])) as f32)
            .collect();
        ecg.leads.push(Lead {
            code: LeadCode::STANDARD_12[6 + k].clone(),
            samples_uv,
        });
    }
    derive_limb_leads(&mut ecg);

    // ST offsets per lead: J point to T peak, cos² taper to the T end.
    if ventricular && spec.st_uv.iter().any(|v| *v != 0.0) {
        let (td, tstart) = t_geometry(qrs_used, qt_used);
        for &on in &onsets {
            let j = on + qrs_used;
            let tpeak = on + tstart + T_RISE * td;
            let tend = on + tstart + td;
            let s0 = ((j - 0.01) * fs).ceil().max(0.0) as usize;
            let s1 = ((tend * fs).floor().max(0.0) as usize).min(n.saturating_sub(1));
            for s in s0..=s1.max(s0) {
                if s >= n {
                    break;
                }
                let t = s as f64 / fs;
                let w = if t < j {
                    ((t - (j - 0.01)) / 0.01).clamp(0.0, 1.0)
                } else if t <= tpeak {
                    1.0
                } else {
                    (0.5 * PI * (t - tpeak) / (tend - tpeak).max(1e-6))
                        .cos()
                        .powi(2)
                };
                for lead in ecg.leads.iter_mut() {
                    if let Some(idx) = LeadCode::STANDARD_12.iter().position(|c| c == &lead.code) {
                        lead.samples_uv[s] += (spec.st_uv[idx] * w) as f32;
                    }
                }
            }
        }
    }

    // Noise, wander, hum.
    let wander: Vec<(f64, f64, f64)> = (0..2)
        .map(|k| {
            (
                [0.15, 0.35][k] * (0.8 + 0.4 * rng.uniform()),
                2.0 * PI * rng.uniform(),
                [1.0, 0.5][k],
            )
        })
        .collect();
    for lead in ecg.leads.iter_mut() {
        let power = if n > 0 {
            lead.samples_uv
                .iter()
                .map(|&v| (v as f64).powi(2))
                .sum::<f64>()
                / n as f64
        } else {
            0.0
        };
        let sigma = spec
            .snr_db
            .map_or(0.0, |snr| (power / 10f64.powf(snr / 10.0)).sqrt());
        let w_gain = 0.5 + 0.5 * rng.uniform();
        let hum_phase = 2.0 * PI * rng.uniform();
        for (s, v) in lead.samples_uv.iter_mut().enumerate() {
            let t = s as f64 / fs;
            let mut add = 0.0;
            if sigma > 0.0 {
                add += sigma * rng.normal();
            }
            if spec.wander_uv != 0.0 {
                for (f, ph, a) in &wander {
                    add += spec.wander_uv * w_gain * a * (2.0 * PI * f * t + ph).sin();
                }
            }
            if spec.mains_uv != 0.0 {
                add += spec.mains_uv * (2.0 * PI * spec.mains_hz * t + hum_phase).sin();
            }
            *v += add as f32;
        }
    }
    (ecg, truth)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sinus_truth_and_einthoven() {
        let (ecg, truth) = generate(&SynthSpec::sinus(60.0));
        assert_eq!(ecg.leads.len(), 12);
        assert_eq!(ecg.samples_per_lead(), 5000);
        assert_eq!(truth.beats.len(), 10);
        assert!((truth.hr_bpm.unwrap_or(0.0) - 60.0).abs() < 0.1);
        let i = &ecg.leads[0].samples_uv;
        let ii = &ecg.leads[1].samples_uv;
        let iii = &ecg.lead(&LeadCode::III).unwrap().samples_uv;
        for k in 0..5000 {
            assert!((iii[k] - (ii[k] - i[k])).abs() < 1e-2);
        }
        // R peak in lead II is near the truth fiducial.
        let b = truth.beats[3] as usize;
        let peak = (b - 20..b + 20)
            .max_by(|&x, &y| ii[x].total_cmp(&ii[y]))
            .unwrap();
        assert!((peak as i64 - b as i64).abs() <= 3, "{peak} vs {b}");
    }

    #[test]
    fn deterministic_with_seed() {
        let spec = SynthSpec {
            snr_db: Some(20.0),
            ..SynthSpec::default()
        };
        assert_eq!(generate(&spec).0, generate(&spec).0);
        let other = SynthSpec { seed: 2, ..spec };
        assert_ne!(generate(&other).0, generate(&SynthSpec::default()).0);
    }

    #[test]
    fn degenerate_specs_do_not_panic() {
        for spec in [
            SynthSpec {
                duration_s: 0.0,
                ..SynthSpec::default()
            },
            SynthSpec {
                sample_rate_hz: f64::NAN,
                duration_s: 0.01,
                ..SynthSpec::default()
            },
            SynthSpec {
                rhythm: SynthRhythm::Rr {
                    rr_ms: vec![],
                    p_waves: true,
                },
                ..SynthSpec::default()
            },
        ] {
            let _ = generate(&spec);
        }
    }
}
