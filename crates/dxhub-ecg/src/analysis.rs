//! Automatic analysis of a resting ECG: signal quality, QRS detection, heart rate and RR
//! variability, intervals and axes from a median beat, rhythm statements, ST deviation and
//! critical values. Every result is a machine measurement, unconfirmed ([`LABEL`]).
//!
//! Pipeline ([`analyse`]):
//! 1. non-finite samples are replaced (by the previous finite sample, or 0) and counted;
//! 2. signal quality per lead ([`LeadQuality`]): flat line, clipping at the lead's extreme
//!    values, high-frequency noise (MAD of the second-difference residual), baseline
//!    wander, lead-off (flat away from 0, or a median beyond ±5 mV); unusable leads take no
//!    further part;
//! 3. QRS detection over all usable leads (see `detect`), linear in the samples; the beats
//!    are sample indices in the leads' own sampling;
//! 4. RR statistics over all beats: heart rate = 60000 / mean RR, SDNN, RMSSD, pauses;
//! 5. a median beat from the beats of dominant morphology in the first
//!    [`MEASURE_SECONDS`] of the record, and its delineation (see `beat`): PR, QRS, QT
//!    (QTc by Bazett and Fridericia with the mean RR), frontal axes from the net areas in I
//!    and aVF (III, aVR, aVL, aVF derived from I and II when missing, on a copy);
//! 6. ST deviation per lead at J + 60 ms from the isoelectric PR level, in µV;
//! 7. rhythm: sinus (P before QRS, P axis −30°…+100°, 1:1), brady/tachy (< 60, > 100/min),
//!    AF likelihood (RR irregularity and no P), AV block suspicion (1st degree: PR > 200 ms;
//!    2nd/3rd degree from P waves found after subtracting the median QRST from every
//!    beat), ventricular fibrillation/flutter (no isoelectric line, large amplitude, no
//!    repeating QRS);
//! 8. critical values after the 2017 Chinese expert consensus on ECG critical values, as
//!    far as a resting ECG shows them ([`CriticalFlag`]).
//!
//! It never panics and allocates in proportion to the input. Sync and CPU-bound.

// Index loops over several parallel buffers read better than zipped iterators here.
#![allow(clippy::needless_range_loop)]

mod beat;
mod detect;
mod dsp;
mod quality;

use crate::model::{Ecg, LeadCode, derive_limb_leads};
use serde::{Deserialize, Serialize};

/// Samples beyond ±10 V are treated like non-finite ones (replaced and counted).
const MAX_ABS_UV: f32 = 1e7;

/// The label every analysis carries.
pub const LABEL: &str = "machine measurements, unconfirmed";

/// Morphology (median beat, P-wave search, VF features) uses at most this much of the
/// record from its start; rate, RR and pauses use all of it.
pub const MEASURE_SECONDS: f64 = 60.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Always [`LABEL`].
    pub label: String,
    pub sample_rate_hz: f64,
    pub duration_s: f64,
    pub quality: SignalQuality,
    /// QRS fiducials (sample indices in the leads' sampling).
    pub beats: Vec<u32>,
    pub heart_rate_bpm: Option<f64>,
    pub rr_mean_ms: Option<f64>,
    pub rr_sdnn_ms: Option<f64>,
    pub rr_rmssd_ms: Option<f64>,
    pub pr_ms: Option<f64>,
    pub p_ms: Option<f64>,
    pub qrs_ms: Option<f64>,
    pub qt_ms: Option<f64>,
    pub qtc_bazett_ms: Option<f64>,
    pub qtc_fridericia_ms: Option<f64>,
    pub p_axis_deg: Option<f64>,
    pub qrs_axis_deg: Option<f64>,
    pub t_axis_deg: Option<f64>,
    /// Beats averaged into the median beat.
    pub median_beat_count: u32,
    pub rhythm: Rhythm,
    /// ST deviation at J + 60 ms per usable lead.
    pub st: Vec<StDeviation>,
    pub critical: Vec<CriticalFlag>,
}

impl Analysis {
    /// True when any critical value was found.
    pub fn is_critical(&self) -> bool {
        !self.critical.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityVerdict {
    Good,
    Acceptable,
    Poor,
    Unusable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalQuality {
    pub verdict: QualityVerdict,
    pub usable_leads: u32,
    pub leads: Vec<LeadQuality>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeadQuality {
    pub lead: String,
    pub verdict: QualityVerdict,
    pub flat: bool,
    pub saturated: bool,
    pub noisy: bool,
    pub lead_off: bool,
    /// Samples that were NaN, infinite or beyond ±10 V (replaced by the previous sample).
    pub non_finite_samples: u64,
    /// Robust peak-to-peak (0.5–99.5 %).
    pub amplitude_uv: f64,
    /// High-frequency noise, RMS estimate.
    pub noise_uv: f64,
    pub baseline_wander_uv: f64,
    pub clipped_fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pause {
    /// The beat before the pause.
    pub start_sample: u32,
    pub start_s: f64,
    pub length_ms: f64,
    /// The gap holds a large baseline step or swing (in most leads, a range above the
    /// lead's median QRS amplitude), as an amplifier blocking or electrode artefact does:
    /// then the pause is not reported as critical.
    pub artifact_suspected: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Rhythm {
    pub sinus_rhythm: bool,
    pub sinus_bradycardia: bool,
    pub sinus_tachycardia: bool,
    /// RR irregular (median successive difference ≥ 6 % of the median RR).
    pub irregular: bool,
    /// P waves in the median beat.
    pub p_waves_present: Option<bool>,
    /// 0…1 from RR irregularity and absent P waves.
    pub af_likelihood: f64,
    pub atrial_fibrillation_suspected: bool,
    /// RR ≥ 2 s.
    pub pauses: Vec<Pause>,
    /// P waves found independently of the QRS (after QRST subtraction).
    pub p_wave_count: u32,
    pub atrial_rate_bpm: Option<f64>,
    pub av_block_first_degree_suspected: bool,
    pub av_block_second_degree_suspected: bool,
    pub av_block_third_degree_suspected: bool,
    pub wide_qrs_tachycardia: bool,
    pub ventricular_fibrillation_suspected: bool,
    /// Leads that showed it (no isoelectric line, large amplitude).
    pub vf_leads: Option<String>,
    /// Dominant oscillation rate of that activity (half the level crossings per minute).
    pub vf_rate_per_min: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StDeviation {
    pub lead: String,
    pub st_uv: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriticalFlag {
    /// Stable kebab-case code: `pause-3s`, `ventricular-tachycardia`, `vf-flutter`,
    /// `av-block-3`, `stemi`, `hr-below-40`, `hr-above-180`.
    pub code: String,
    pub message: String,
    pub message_zh: String,
    /// The lead(s) that showed it, comma-separated; None for rhythm-wide findings.
    pub lead: Option<String>,
    pub value: Option<f64>,
    /// UCUM unit of `value` (`ms`, `/min`, `uV`).
    pub unit: Option<String>,
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Analyses one ECG. Never panics.
pub fn analyse(ecg: &Ecg) -> Analysis {
    let fs = if ecg.sample_rate_hz.is_finite() && ecg.sample_rate_hz > 0.0 {
        ecg.sample_rate_hz
    } else {
        0.0
    };
    let n = ecg
        .leads
        .iter()
        .map(|l| l.samples_uv.len())
        .min()
        .unwrap_or(0);
    let mut a = Analysis {
        label: LABEL.to_owned(),
        sample_rate_hz: fs,
        duration_s: if fs > 0.0 { n as f64 / fs } else { 0.0 },
        quality: SignalQuality {
            verdict: QualityVerdict::Unusable,
            usable_leads: 0,
            leads: Vec::new(),
        },
        beats: Vec::new(),
        heart_rate_bpm: None,
        rr_mean_ms: None,
        rr_sdnn_ms: None,
        rr_rmssd_ms: None,
        pr_ms: None,
        p_ms: None,
        qrs_ms: None,
        qt_ms: None,
        qtc_bazett_ms: None,
        qtc_fridericia_ms: None,
        p_axis_deg: None,
        qrs_axis_deg: None,
        t_axis_deg: None,
        median_beat_count: 0,
        rhythm: Rhythm::default(),
        st: Vec::new(),
        critical: Vec::new(),
    };
    // 1. Sanitised copies (equal length n), with I/II-derived limb leads when missing.
    let mut work = Ecg {
        leads: Vec::with_capacity(ecg.leads.len() + 4),
        sample_rate_hz: fs,
        ..Ecg::default()
    };
    let mut non_finite = Vec::new();
    for lead in &ecg.leads {
        let mut bad = 0u64;
        let mut last = 0f32;
        let samples: Vec<f32> = lead.samples_uv[..n]
            .iter()
            .map(|&v| {
                if v.is_finite() && v.abs() <= MAX_ABS_UV {
                    last = v;
                    v
                } else {
                    bad += 1;
                    last
                }
            })
            .collect();
        non_finite.push(bad);
        work.leads.push(crate::model::Lead {
            code: lead.code.clone(),
            samples_uv: samples,
        });
    }
    // Quality of the source leads.
    a.quality.leads = work
        .leads
        .iter()
        .zip(&non_finite)
        .map(|(l, &bad)| quality::lead_quality(l.code.name(), &l.samples_uv, bad, fs.max(1.0)))
        .collect();
    a.quality.verdict = quality::overall(&a.quality.leads);
    a.quality.usable_leads = a
        .quality
        .leads
        .iter()
        .filter(|l| l.verdict != QualityVerdict::Unusable)
        .count() as u32;
    if fs < 50.0 || n < 2 || a.quality.usable_leads == 0 {
        return a;
    }
    let mut usable: Vec<bool> = a
        .quality
        .leads
        .iter()
        .map(|l| l.verdict != QualityVerdict::Unusable)
        .collect();
    let i_ok = lead_usable(&work, &usable, &LeadCode::I);
    let ii_ok = lead_usable(&work, &usable, &LeadCode::II);
    if i_ok && ii_ok && derive_limb_leads(&mut work) {
        // derive_limb_leads inserts the four after I/II: recompute the mask by code.
        usable = work
            .leads
            .iter()
            .map(|l| {
                let derived = matches!(
                    l.code,
                    LeadCode::III | LeadCode::AVR | LeadCode::AVL | LeadCode::AVF
                );
                derived
                    || ecg
                        .leads
                        .iter()
                        .position(|o| o.code == l.code)
                        .is_some_and(|p| a.quality.leads[p].verdict != QualityVerdict::Unusable)
            })
            .collect();
    }
    let leads: Vec<&[f32]> = work.leads.iter().map(|l| l.samples_uv.as_slice()).collect();
    // Detection uses the source's usable leads (derived ones add no information).
    let det_leads: Vec<&[f32]> = work
        .leads
        .iter()
        .zip(&usable)
        .filter(|(l, u)| {
            **u && !(ecg.lead(&l.code).is_none()
                && matches!(
                    l.code,
                    LeadCode::III | LeadCode::AVR | LeadCode::AVL | LeadCode::AVF
                ))
        })
        .map(|(l, _)| l.samples_uv.as_slice())
        .collect();

    // 3. QRS detection.
    let beats = detect::detect(&det_leads, fs);
    a.beats = beats
        .iter()
        .map(|&b| b.min(u32::MAX as usize) as u32)
        .collect();

    // 4. RR statistics and pauses.
    let rr_ms: Vec<f64> = beats
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 * 1000.0 / fs)
        .collect();
    let rr_mean = dsp::mean(&rr_ms);
    a.rr_mean_ms = rr_mean.map(round1);
    a.heart_rate_bpm = rr_mean.map(|m| round1(60_000.0 / m));
    a.rr_sdnn_ms = dsp::std_dev(&rr_ms).map(round1);
    if rr_ms.len() >= 2 {
        let d: Vec<f64> = rr_ms.windows(2).map(|w| (w[1] - w[0]).powi(2)).collect();
        a.rr_rmssd_ms = dsp::mean(&d).map(|m| round1(m.sqrt()));
    }
    let mut qrs_amp: Option<Vec<f32>> = None;
    for (k, &rr) in rr_ms.iter().enumerate() {
        if rr >= 2000.0 {
            let amps = qrs_amp.get_or_insert_with(|| qrs_amplitudes(&det_leads, &beats, fs));
            a.rhythm.pauses.push(Pause {
                start_sample: a.beats[k],
                start_s: round3(beats[k] as f64 / fs),
                length_ms: round1(rr),
                artifact_suspected: gap_artifact(&det_leads, amps, beats[k], beats[k + 1], fs),
            });
        }
    }
    let rr_med = dsp::median_f64(&rr_ms);
    if rr_ms.len() >= 4 {
        let succ: Vec<f64> = rr_ms.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
        let irr = dsp::median_f64(&succ).unwrap_or(0.0) / rr_med.unwrap_or(1.0).max(1.0);
        a.rhythm.irregular = irr >= 0.06;
        a.rhythm.af_likelihood = ((irr - 0.03) / 0.07).clamp(0.0, 1.0);
    }

    // 5. Median beat over the measurement segment.
    let seg_end = ((MEASURE_SECONDS * fs) as usize).min(n);
    let seg_beats: Vec<usize> = beats.iter().copied().take_while(|&b| b < seg_end).collect();
    let seg_leads: Vec<&[f32]> = leads.iter().map(|l| &l[..seg_end]).collect();
    let knots = beat::knots(&seg_leads, &seg_beats, fs);
    let tpl = beat::template(&seg_leads, &usable, &seg_beats, &knots, fs, 60);
    let marks = tpl
        .as_ref()
        .and_then(|t| beat::delineate(t, &usable, fs, rr_med.map(|m| m / 1000.0)));
    let ms_of = |s: usize| s as f64 * 1000.0 / fs;
    let code_idx = |c: &LeadCode| work.leads.iter().position(|l| &l.code == c);
    if let (Some(t), Some(m)) = (&tpl, &marks) {
        a.median_beat_count = t.n_beats as u32;
        let qrs = ms_of(m.qrs_off.saturating_sub(m.qrs_on));
        a.qrs_ms = Some(round1(qrs));
        if let (Some(po), Some(pf)) = (m.p_on, m.p_off) {
            a.pr_ms = Some(round1(ms_of(m.qrs_on.saturating_sub(po))));
            a.p_ms = Some(round1(ms_of(pf.saturating_sub(po))));
        }
        if let Some(te) = m.t_end {
            let qt = ms_of(te.saturating_sub(m.qrs_on));
            a.qt_ms = Some(round1(qt));
            if let Some(rr) = rr_mean {
                let rr_s = rr / 1000.0;
                a.qtc_bazett_ms = Some(round1(qt / rr_s.sqrt()));
                a.qtc_fridericia_ms = Some(round1(qt / rr_s.cbrt()));
            }
        }
        // Axes from net areas in I and aVF.
        let axis = |from: usize, to: usize| -> Option<f64> {
            let i = code_idx(&LeadCode::I)?;
            let f = code_idx(&LeadCode::AVF)?;
            if !(usable[i] && usable[f]) || to <= from {
                return None;
            }
            let area = |l: usize| -> f64 {
                t.leads[l][from..to.min(t.leads[l].len())]
                    .iter()
                    .map(|&v| (v - m.iso[l]) as f64)
                    .sum::<f64>()
            };
            let (ai, af) = (area(i), area(f));
            if ai.abs() + af.abs() < 1e-6 {
                return None;
            }
            Some(round1((2.0 * af / 3f64.sqrt()).atan2(ai).to_degrees()))
        };
        a.qrs_axis_deg = axis(m.qrs_on, m.qrs_off);
        if let (Some(po), Some(pf)) = (m.p_on, m.p_off) {
            a.p_axis_deg = axis(po, pf);
        }
        if let Some(te) = m.t_end {
            a.t_axis_deg = axis(m.qrs_off, te);
        }
        // 6. ST at J + 60 ms.
        let j60 = m.qrs_off + (0.06 * fs).round() as usize;
        let h = (0.004 * fs).round() as usize;
        if j60 + h < t.leads[0].len() {
            for (l, lead) in work.leads.iter().enumerate() {
                if !usable[l] {
                    continue;
                }
                let w = &t.leads[l][j60 - h..=j60 + h];
                let v = w.iter().sum::<f32>() / w.len() as f32 - m.iso[l];
                a.st.push(StDeviation {
                    lead: lead.code.name().to_owned(),
                    st_uv: round1(v as f64),
                });
            }
        }
        a.rhythm.p_waves_present = Some(m.p_on.is_some());
    }

    // 7. Rhythm.
    let hr = a.heart_rate_bpm;
    let irregularity = a.rhythm.af_likelihood;
    a.rhythm.af_likelihood = 0.0;
    // Independent P waves (AV conduction).
    if let (Some(t), Some(m)) = (&tpl, &marks) {
        let src_usable: Vec<bool> = work
            .leads
            .iter()
            .zip(&usable)
            .map(|(l, u)| *u && ecg.lead(&l.code).is_some())
            .collect();
        let av = atrial_activity(&seg_leads, &src_usable, &seg_beats, &knots, t, m, fs);
        a.rhythm.p_wave_count = av.p_count as u32;
        // P in the median beat counts only with a fixed P–QRS relation beat by beat.
        if a.rhythm.p_waves_present == Some(true)
            && !(av.conducted_fraction >= 0.7 && av.ppr_sd_ms <= 40.0)
        {
            a.rhythm.p_waves_present = Some(false);
            a.pr_ms = None;
            a.p_ms = None;
            a.p_axis_deg = None;
        }
        a.rhythm.atrial_rate_bpm = av.atrial_rate.map(round1);
        let vent = hr.unwrap_or(0.0);
        let rr_cv = match (dsp::std_dev(&rr_ms), rr_mean) {
            (Some(s), Some(m)) if m > 0.0 => s / m,
            _ => 1.0,
        };
        if let Some(ar) = av.atrial_rate
            && av.p_count >= 4
            && av.pp_cv < 0.1
            && ar > 1.1 * vent
        {
            let dissociated = av.ppr_sd_ms > 60.0 || av.conducted_fraction < 0.5;
            if dissociated && ar > 1.2 * vent && rr_cv < 0.12 && vent < 60.0 && vent > 0.0 {
                a.rhythm.av_block_third_degree_suspected = true;
            } else if av.non_conducted >= 1 && !dissociated {
                a.rhythm.av_block_second_degree_suspected = true;
            }
        }
        let p_present = a.rhythm.p_waves_present == Some(true);
        a.rhythm.af_likelihood = round2(if p_present {
            0.3 * irregularity
        } else {
            irregularity
        });
        a.rhythm.atrial_fibrillation_suspected =
            a.rhythm.af_likelihood >= 0.6 && rr_ms.len() >= 6 && !p_present;
        let pr_ok = a.pr_ms.is_some_and(|pr| (80.0..=400.0).contains(&pr));
        let p_axis_ok = a.p_axis_deg.is_none_or(|ax| (-30.0..=100.0).contains(&ax));
        a.rhythm.sinus_rhythm = p_present
            && pr_ok
            && p_axis_ok
            && !a.rhythm.atrial_fibrillation_suspected
            && !a.rhythm.av_block_third_degree_suspected
            && !a.rhythm.av_block_second_degree_suspected
            && (av.p_count == 0 || av.conducted_fraction >= 0.8);
        a.rhythm.av_block_first_degree_suspected =
            a.rhythm.sinus_rhythm && a.pr_ms.is_some_and(|pr| pr > 200.0);
    }
    if a.rhythm.sinus_rhythm {
        a.rhythm.sinus_bradycardia = hr.is_some_and(|h| h < 60.0);
        a.rhythm.sinus_tachycardia = hr.is_some_and(|h| h > 100.0);
    }
    let wide = a.qrs_ms.is_some_and(|q| q >= 120.0);
    a.rhythm.wide_qrs_tachycardia = wide && hr.is_some_and(|h| h > 100.0);
    let median_corr = tpl.as_ref().map_or(0.0, |t| t.median_corr);
    let vf = vf_suspected(&seg_leads, &usable, fs, hr, beats.len(), median_corr);
    a.rhythm.ventricular_fibrillation_suspected = vf.is_some();
    if let Some((leads, rate)) = vf {
        let names: Vec<&str> = leads.iter().map(|&l| work.leads[l].code.name()).collect();
        a.rhythm.vf_leads = Some(names.join(", "));
        a.rhythm.vf_rate_per_min = Some(round1(rate));
    }
    if a.rhythm.ventricular_fibrillation_suspected {
        a.rhythm.sinus_rhythm = false;
        a.rhythm.sinus_bradycardia = false;
        a.rhythm.sinus_tachycardia = false;
        a.rhythm.atrial_fibrillation_suspected = false;
    }

    // 8. Critical values.
    a.critical = critical(&a);
    a
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn lead_usable(ecg: &Ecg, usable: &[bool], code: &LeadCode) -> bool {
    ecg.leads
        .iter()
        .position(|l| &l.code == code)
        .is_some_and(|p| usable.get(p).copied().unwrap_or(false))
}

struct AtrialActivity {
    p_count: usize,
    atrial_rate: Option<f64>,
    /// Median absolute deviation of PP over the median PP.
    pp_cv: f64,
    /// Fraction of QRS with a P 40–450 ms before its onset.
    conducted_fraction: f64,
    /// SD of those P-peak → QRS-onset intervals.
    ppr_sd_ms: f64,
    /// P waves with no QRS onset 40–450 ms after them.
    non_conducted: usize,
}

/// P waves found after subtracting the median QRST (QRS onset − 10 ms … T end + 30 ms)
/// from every beat: peaks of the smoothed spatial magnitude of the residual, ≥ 240 ms
/// apart, above max(30 µV, 4 × its median, 35 % of the 90th-percentile peak).
fn atrial_activity(
    leads: &[&[f32]],
    usable: &[bool],
    beats: &[usize],
    knots: &[Vec<f32>],
    tpl: &beat::Template,
    m: &beat::Marks,
    fs: f64,
) -> AtrialActivity {
    let n = leads.first().map_or(0, |l| l.len());
    let none = AtrialActivity {
        p_count: 0,
        atrial_rate: None,
        pp_cv: 1.0,
        conducted_fraction: 0.0,
        ppr_sd_ms: 0.0,
        non_conducted: 0,
    };
    if n == 0 || beats.is_empty() {
        return none;
    }
    let ms = |v: f64| (v / 1000.0 * fs).round() as usize;
    let pre = tpl.pre;
    let tlen = tpl.leads[0].len();
    let s0 = m.qrs_on.saturating_sub(ms(10.0));
    let s1 = (m.t_end.unwrap_or(m.qrs_off + ms(300.0)) + ms(30.0)).min(tlen);
    let mut mag2 = vec![0f32; n];
    let mut resid = vec![0f32; n];
    let mut prefix: Vec<f64> = Vec::with_capacity(n + 1);
    let (mut smooth, mut level) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (hs, hb) = (ms(20.0).max(1), ms(100.0).max(1));
    for (l, x) in leads.iter().enumerate() {
        if !usable[l] {
            continue;
        }
        // Baseline-corrected residual: the straight line between the beats' knots, flat
        // before the first and after the last.
        let kn = &knots[l];
        let (first, last) = (beats[0].min(n), beats[beats.len() - 1].min(n));
        for t in 0..first {
            resid[t] = x[t] - kn[0];
        }
        for j in 0..beats.len() - 1 {
            let (t0, t1) = (beats[j].min(n), beats[j + 1].min(n));
            let slope = (kn[j + 1] - kn[j]) / (t1 - t0).max(1) as f32;
            for t in t0..t1 {
                resid[t] = x[t] - (kn[j] + slope * (t - t0) as f32);
            }
        }
        for t in last..n {
            resid[t] = x[t] - kn[beats.len() - 1];
        }
        // Less the median QRST, beat by beat.
        for &f in beats {
            // Template samples k land on t = f + k − pre, kept within the signal.
            let k0 = s0.max(pre.saturating_sub(f));
            let k1 = s1.min((n + pre).saturating_sub(f));
            if k1 > k0 {
                let at = f + k0 - pre;
                let qrst = &tpl.leads[l][k0..k1];
                for (r, &q) in resid[at..at + (k1 - k0)].iter_mut().zip(qrst) {
                    *r -= q - m.iso[l];
                }
            }
        }
        // Smooth (40 ms) less the local level (200 ms): one prefix sum for both.
        prefix.clear();
        prefix.push(0f64);
        let mut acc = 0f64;
        for &v in &resid {
            acc += v as f64;
            prefix.push(acc);
        }
        box_means(&prefix, hs, &mut smooth);
        box_means(&prefix, hb, &mut level);
        for ((m2, &s), &b) in mag2.iter_mut().zip(&smooth).zip(&level) {
            let v = (s - b) as f32;
            *m2 += v * v;
        }
    }
    let mag: Vec<f32> = mag2.iter().map(|v| v.sqrt()).collect();
    // Peaks: maxima within ±120 ms.
    let half = ms(120.0).max(1);
    let mut peaks = Vec::new();
    let mut t = 0;
    while t < n {
        let lo = t.saturating_sub(half);
        let hi = (t + half + 1).min(n);
        let v = mag[t];
        // The neighbours first: most samples are not local maxima.
        let near = &mag[t.saturating_sub(1)..(t + 2).min(n)];
        if v > 0.0 && near.iter().all(|&u| u <= v) && mag[lo..hi].iter().all(|&u| u <= v) {
            peaks.push(t);
            t += half;
        } else {
            t += 1;
        }
    }
    let mut med = mag.clone();
    let floor = dsp::quantile(&mut med, 0.5);
    let mut hs: Vec<f32> = peaks.iter().map(|&p| mag[p]).collect();
    let p90 = dsp::quantile(&mut hs, 0.9);
    let th = 30f32.max(4.0 * floor).max(0.35 * p90);
    let ps: Vec<usize> = peaks.into_iter().filter(|&p| mag[p] >= th).collect();
    if ps.len() < 2 {
        return AtrialActivity {
            p_count: ps.len(),
            ..none
        };
    }
    let pp: Vec<f64> = ps.windows(2).map(|w| (w[1] - w[0]) as f64 / fs).collect();
    let pp_med = dsp::median_f64(&pp).unwrap_or(1.0);
    // Robust: a P hidden in a QRS doubles one PP without making the atria irregular.
    let dev: Vec<f64> = pp.iter().map(|v| (v - pp_med).abs()).collect();
    let pp_cv = dsp::median_f64(&dev).unwrap_or(1.0) / pp_med.max(1e-6);
    let onset_shift = pre.saturating_sub(m.qrs_on);
    let onsets: Vec<usize> = beats
        .iter()
        .map(|&b| b.saturating_sub(onset_shift))
        .collect();
    let (lo_w, hi_w) = (ms(40.0), ms(450.0));
    let mut ppr = Vec::new();
    for &q in &onsets {
        if let Some(&p) = ps.iter().rev().find(|&&p| p + lo_w <= q && q <= p + hi_w) {
            ppr.push((q - p) as f64 * 1000.0 / fs);
        }
    }
    let non_conducted = ps
        .iter()
        .filter(|&&p| p + hi_w < n && !onsets.iter().any(|&q| p + lo_w <= q && q <= p + hi_w))
        .count();
    AtrialActivity {
        p_count: ps.len(),
        atrial_rate: Some(60.0 / pp_med),
        pp_cv,
        conducted_fraction: ppr.len() as f64 / onsets.len().max(1) as f64,
        ppr_sd_ms: dsp::std_dev(&ppr).unwrap_or(0.0),
        non_conducted,
    }
}

/// `out[t]` = the mean over `[t − h, t + h]` (clipped to the signal) of the signal whose
/// running sums (from 0) are `prefix`, for every sample `t`.
fn box_means(prefix: &[f64], h: usize, out: &mut Vec<f64>) {
    let n = prefix.len().saturating_sub(1);
    let at = |t: usize| {
        let lo = t.saturating_sub(h);
        let hi = (t + h + 1).min(n);
        (prefix[hi] - prefix[lo]) / (hi - lo) as f64
    };
    // Full windows in the middle (a plain loop that vectorises), clipped ones at the ends.
    let (head, tail) = (h.min(n), n.saturating_sub(h).max(h.min(n)));
    out.clear();
    out.extend((0..head).map(at));
    if tail > head {
        let w = (2 * h + 1) as f64;
        let ends = prefix[head + h + 1..].iter().zip(&prefix[head - h..]);
        out.extend(ends.take(tail - head).map(|(b, a)| (b - a) / w));
    }
    out.extend((tail..n).map(at));
}

/// Median QRS peak-to-peak (±60 ms around the fiducial, up to 64 beats) per lead.
fn qrs_amplitudes(leads: &[&[f32]], beats: &[usize], fs: f64) -> Vec<f32> {
    let w = ((0.06 * fs) as usize).max(1);
    let step = beats.len().div_ceil(64).max(1);
    leads
        .iter()
        .map(|x| {
            let mut amps: Vec<f32> = beats
                .iter()
                .step_by(step)
                .map(|&b| {
                    let seg = &x[b.saturating_sub(w)..(b + w + 1).min(x.len())];
                    let (mn, mx) = seg
                        .iter()
                        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, c), &v| {
                            (a.min(v), c.max(v))
                        });
                    mx - mn
                })
                .collect();
            dsp::quantile(&mut amps, 0.5)
        })
        .collect()
}

/// True when, in most leads, the signal between two beats (from 500 ms after the first,
/// past its T wave, to 350 ms before the second, before its P wave) spans more than the
/// lead's median QRS amplitude (and at least 300 µV).
fn gap_artifact(leads: &[&[f32]], amps: &[f32], from: usize, to: usize, fs: f64) -> bool {
    let (lo, hi) = (
        from + (0.5 * fs) as usize,
        to.saturating_sub((0.35 * fs) as usize),
    );
    if hi <= lo || leads.is_empty() {
        return false;
    }
    let swinging = leads
        .iter()
        .zip(amps)
        .filter(|(x, amp)| {
            let seg = &x[lo.min(x.len())..hi.min(x.len())];
            let (mn, mx) = seg
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, c), &v| {
                    (a.min(v), c.max(v))
                });
            mx - mn > amp.max(300.0)
        })
        .count();
    swinging * 2 > leads.len()
}

/// Ventricular fibrillation / flutter: in most usable leads no isoelectric line (< 35 % of
/// samples within 5 % of the robust range from the median, after removing a 400 ms local
/// mean) and a range ≥ 300 µV, and no repeating QRS (median QRS correlation < 0.7, a rate
/// ≥ 240/min, or fewer than 3 beats).
fn vf_suspected(
    leads: &[&[f32]],
    usable: &[bool],
    fs: f64,
    hr: Option<f64>,
    n_beats: usize,
    median_corr: f64,
) -> Option<(Vec<usize>, f64)> {
    let organised = n_beats >= 3 && median_corr >= 0.7 && hr.is_some_and(|h| h < 240.0);
    if organised {
        return None;
    }
    let mut voters = Vec::new();
    let mut rates = Vec::new();
    let mut votes = 0;
    let mut total = 0;
    let mut local = Vec::new();
    for (l, x) in leads.iter().enumerate() {
        if !usable[l] || x.len() < (2.0 * fs) as usize {
            continue;
        }
        total += 1;
        dsp::moving_average(x, (0.2 * fs) as usize, &mut local);
        let hp: Vec<f32> = x.iter().zip(&local).map(|(a, b)| a - b).collect();
        let mut s = dsp::subsample(&hp, 20_000);
        let lo = dsp::quantile(&mut s, 0.005);
        let hi = dsp::quantile(&mut s, 0.995);
        let med = dsp::quantile(&mut s, 0.5);
        let range = hi - lo;
        if range < 300.0 {
            continue;
        }
        let near = s
            .iter()
            .filter(|&&v| (v - med).abs() < 0.05 * range)
            .count();
        if (near as f64) < 0.35 * s.len() as f64 {
            votes += 1;
            voters.push(l);
            // Level crossings with 10 % hysteresis around the median.
            let h = 0.1 * range;
            let mut state = 0i8;
            let mut crossings = 0usize;
            for &v in hp.iter() {
                let st = if v > med + h {
                    1
                } else if v < med - h {
                    -1
                } else {
                    0
                };
                if st != 0 && st != state {
                    if state != 0 {
                        crossings += 1;
                    }
                    state = st;
                }
            }
            rates.push(crossings as f64 / 2.0 / (hp.len() as f64 / fs) * 60.0);
        }
    }
    (total > 0 && votes * 2 > total).then(|| (voters, dsp::median_f64(&rates).unwrap_or(0.0)))
}

fn flag(code: &str, message: String, message_zh: String) -> CriticalFlag {
    CriticalFlag {
        code: code.to_owned(),
        message,
        message_zh,
        lead: None,
        value: None,
        unit: None,
    }
}

/// Leads of which any two adjacent ones form a contiguous pair, with their thresholds.
const CONTIGUOUS: &[(&[&str], f64)] = &[(&["I", "aVL"], 100.0), (&["II", "III", "aVF"], 100.0)];
/// Precordial leads in order and their elevation thresholds (µV).
const PRECORDIAL: &[(&str, f64)] = &[
    ("V1", 300.0),
    ("V2", 300.0),
    ("V3", 300.0),
    ("V4", 100.0),
    ("V5", 100.0),
    ("V6", 100.0),
];

/// Leads whose ST elevation meets the STEMI criteria (≥ 2 contiguous leads).
fn stemi_leads(st: &[StDeviation]) -> Vec<(String, f64)> {
    let get = |name: &str| st.iter().find(|s| s.lead == name).map(|s| s.st_uv);
    let mut hits: Vec<(String, f64)> = Vec::new();
    let mut add = |name: &str, v: f64| {
        if !hits.iter().any(|(n, _)| n == name) {
            hits.push((name.to_owned(), v));
        }
    };
    for (group, th) in CONTIGUOUS {
        let elevated: Vec<(&str, f64)> = group
            .iter()
            .filter_map(|&g| get(g).filter(|v| *v >= *th).map(|v| (g, v)))
            .collect();
        if elevated.len() >= 2 {
            for (g, v) in elevated {
                add(g, v);
            }
        }
    }
    for w in PRECORDIAL.windows(2) {
        let (a, ta) = w[0];
        let (b, tb) = w[1];
        if let (Some(va), Some(vb)) = (get(a), get(b))
            && va >= ta
            && vb >= tb
        {
            add(a, va);
            add(b, vb);
        }
    }
    hits
}

fn critical(a: &Analysis) -> Vec<CriticalFlag> {
    let mut out = Vec::new();
    if a.quality.verdict == QualityVerdict::Unusable {
        return out;
    }
    let vf = a.rhythm.ventricular_fibrillation_suspected;
    if vf {
        let rate = a.rhythm.vf_rate_per_min.unwrap_or(0.0);
        let mut f = flag(
            "vf-flutter",
            format!(
                "Ventricular fibrillation or flutter suspected: no discernible QRS, continuous \
                 high-amplitude activity at about {rate:.0}/min"
            ),
            format!("疑似心室颤动/心室扑动：无可辨认的QRS波，持续大振幅波动，约 {rate:.0} 次/分"),
        );
        f.lead = a.rhythm.vf_leads.clone();
        f.value = Some(rate);
        f.unit = Some("/min".to_owned());
        out.push(f);
        return out;
    }
    if let Some(p) = a
        .rhythm
        .pauses
        .iter()
        .filter(|p| p.length_ms >= 3000.0 && !p.artifact_suspected)
        .max_by(|x, y| x.length_ms.total_cmp(&y.length_ms))
    {
        let count = a
            .rhythm
            .pauses
            .iter()
            .filter(|p| p.length_ms >= 3000.0 && !p.artifact_suspected)
            .count();
        let mut f = flag(
            "pause-3s",
            format!(
                "Pause of {:.1} s at {:.1} s ({count} pause(s) ≥ 3 s)",
                p.length_ms / 1000.0,
                p.start_s
            ),
            format!(
                "心脏停搏 {:.1} 秒（{:.1} 秒处；≥3 秒停搏共 {count} 次）",
                p.length_ms / 1000.0,
                p.start_s
            ),
        );
        f.value = Some(p.length_ms);
        f.unit = Some("ms".to_owned());
        out.push(f);
    }
    let hr = a.heart_rate_bpm;
    if let (Some(h), Some(q)) = (hr, a.qrs_ms)
        && h >= 150.0
        && q >= 120.0
    {
        let mut f = flag(
            "ventricular-tachycardia",
            format!(
                "Wide-QRS tachycardia {h:.0}/min (QRS {q:.0} ms): ventricular tachycardia suspected"
            ),
            format!("宽QRS心动过速 {h:.0} 次/分（QRS {q:.0} ms），疑似室性心动过速"),
        );
        f.value = Some(h);
        f.unit = Some("/min".to_owned());
        out.push(f);
    }
    if a.rhythm.av_block_third_degree_suspected {
        let ar = a.rhythm.atrial_rate_bpm.unwrap_or(0.0);
        let vr = hr.unwrap_or(0.0);
        let mut f = flag(
            "av-block-3",
            format!(
                "Third-degree AV block suspected: P waves {ar:.0}/min dissociated from QRS {vr:.0}/min"
            ),
            format!("疑似三度房室传导阻滞：P波 {ar:.0} 次/分与QRS波 {vr:.0} 次/分无关"),
        );
        f.value = Some(vr);
        f.unit = Some("/min".to_owned());
        out.push(f);
    }
    if a.qrs_ms.is_some_and(|q| q < 120.0) {
        let hits = stemi_leads(&a.st);
        if !hits.is_empty() {
            let names: Vec<&str> = hits.iter().map(|(n, _)| n.as_str()).collect();
            let max = hits.iter().map(|(_, v)| *v).fold(f64::MIN, f64::max);
            let leads = names.join(", ");
            let mut f = flag(
                "stemi",
                format!(
                    "ST elevation in contiguous leads {leads} (max {:.2} mV): STEMI pattern",
                    max / 1000.0
                ),
                format!(
                    "{leads} 导联ST段抬高（最大 {:.2} mV），符合ST段抬高型心肌梗死图形",
                    max / 1000.0
                ),
            );
            f.lead = Some(leads);
            f.value = Some(max);
            f.unit = Some("uV".to_owned());
            out.push(f);
        }
    }
    if let Some(h) = hr {
        if h < 40.0 {
            let mut f = flag(
                "hr-below-40",
                format!("Heart rate {h:.0}/min, below 40/min"),
                format!("心率 {h:.0} 次/分，低于 40 次/分"),
            );
            f.value = Some(h);
            f.unit = Some("/min".to_owned());
            out.push(f);
        } else if h > 180.0 {
            let mut f = flag(
                "hr-above-180",
                format!("Heart rate {h:.0}/min, above 180/min"),
                format!("心率 {h:.0} 次/分，高于 180 次/分"),
            );
            f.value = Some(h);
            f.unit = Some("/min".to_owned());
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(pairs: &[(&str, f64)]) -> Vec<StDeviation> {
        pairs
            .iter()
            .map(|(l, v)| StDeviation {
                lead: (*l).to_owned(),
                st_uv: *v,
            })
            .collect()
    }

    #[test]
    fn contiguity() {
        assert!(stemi_leads(&st(&[("II", 150.0), ("aVF", 120.0)])).len() == 2);
        assert!(stemi_leads(&st(&[("II", 150.0), ("aVL", 120.0)])).is_empty());
        assert!(stemi_leads(&st(&[("V2", 250.0), ("V3", 250.0)])).is_empty());
        assert_eq!(stemi_leads(&st(&[("V2", 350.0), ("V3", 320.0)])).len(), 2);
        assert_eq!(stemi_leads(&st(&[("V3", 320.0), ("V4", 120.0)])).len(), 2);
        assert!(stemi_leads(&st(&[("V4", 120.0), ("V6", 120.0)])).is_empty());
    }
}
