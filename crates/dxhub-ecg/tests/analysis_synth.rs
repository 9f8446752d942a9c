//! `analysis::analyse` on synthetic ECGs of known truth (`synth`): measurements within
//! tolerance, critical flags that fire when they should and stay quiet on normal and
//! noisy-but-normal records, QRS detection Se / +P ≥ 99.5 % on clean signals, and inputs
//! that must not panic.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::analysis::{Analysis, LABEL, QualityVerdict, analyse};
use dxhub_ecg::model::{Ecg, Lead, LeadCode};
use dxhub_ecg::synth::{SynthRhythm, SynthSpec, SynthTruth, generate};

/// QT for a rate, QTc (Bazett) 400 ms.
fn qt_for(hr: f64) -> f64 {
    400.0 * (60.0 / hr).sqrt()
}

fn sinus(hr: f64) -> SynthSpec {
    SynthSpec {
        qt_ms: qt_for(hr),
        ..SynthSpec::sinus(hr)
    }
}

fn run(spec: &SynthSpec) -> (Analysis, SynthTruth) {
    let (ecg, truth) = generate(spec);
    (analyse(&ecg), truth)
}

fn codes(a: &Analysis) -> Vec<&str> {
    a.critical.iter().map(|c| c.code.as_str()).collect()
}

fn within(what: &str, got: Option<f64>, want: Option<f64>, tol: f64, ctx: &str) {
    let (g, w) = (
        got.unwrap_or_else(|| panic!("{ctx}: {what} missing")),
        want.unwrap(),
    );
    assert!(
        (g - w).abs() <= tol,
        "{ctx}: {what} {g} vs truth {w} (±{tol})"
    );
}

fn angle_within(what: &str, got: Option<f64>, want: Option<f64>, tol: f64, ctx: &str) {
    let (g, w) = (
        got.unwrap_or_else(|| panic!("{ctx}: {what} missing")),
        want.unwrap(),
    );
    let d = ((g - w + 540.0) % 360.0) - 180.0;
    assert!(d.abs() <= tol, "{ctx}: {what} {g}° vs truth {w}° (±{tol})");
}

fn check_measurements(spec: &SynthSpec, ctx: &str) {
    let (a, t) = run(spec);
    assert_eq!(a.label, LABEL);
    within("heart rate", a.heart_rate_bpm, t.hr_bpm, 1.0, ctx);
    within("QRS", a.qrs_ms, t.qrs_ms, 10.0, ctx);
    within("QT", a.qt_ms, t.qt_ms, 20.0, ctx);
    within("PR", a.pr_ms, t.pr_ms, 20.0, ctx);
    angle_within("P axis", a.p_axis_deg, t.p_axis_deg, 15.0, ctx);
    angle_within("QRS axis", a.qrs_axis_deg, t.qrs_axis_deg, 15.0, ctx);
    angle_within("T axis", a.t_axis_deg, t.t_axis_deg, 15.0, ctx);
    let rr = 60.0 / t.hr_bpm.unwrap();
    let qtc = a.qt_ms.unwrap() / rr.sqrt();
    assert!(
        (a.qtc_bazett_ms.unwrap() - qtc).abs() < 1.0,
        "{ctx}: QTc Bazett"
    );
    assert!(
        a.rhythm.sinus_rhythm,
        "{ctx}: sinus rhythm expected: {:?}",
        a.rhythm
    );
    assert!(
        a.critical.is_empty() || ctx.contains("brady40"),
        "{ctx}: {:?}",
        a.critical
    );
}

#[test]
fn intervals_and_axes_at_several_rates() {
    for hr in [45.0, 60.0, 75.0, 100.0, 120.0] {
        check_measurements(&sinus(hr), &format!("sinus {hr}"));
    }
}

#[test]
fn intervals_and_axes_vary_with_the_truth() {
    let cases = [
        (120.0, 80.0, 360.0, -30.0, 60.0, 10.0),
        (240.0, 110.0, 440.0, 100.0, 80.0, 60.0),
        (180.0, 100.0, 420.0, 10.0, 20.0, -10.0),
        (140.0, 70.0, 380.0, 75.0, 70.0, 80.0),
    ];
    for (pr, qrs, qt, qrs_ax, p_ax, t_ax) in cases {
        let spec = SynthSpec {
            pr_ms: pr,
            qrs_ms: qrs,
            qt_ms: qt,
            qrs_axis_deg: qrs_ax,
            p_axis_deg: p_ax,
            t_axis_deg: t_ax,
            ..SynthSpec::sinus(70.0)
        };
        let ctx = format!("PR {pr} QRS {qrs} QT {qt} axis {qrs_ax}");
        check_measurements(&spec, &ctx);
        let (a, _) = run(&spec);
        assert_eq!(
            a.rhythm.av_block_first_degree_suspected,
            pr > 200.0,
            "{ctx}"
        );
    }
}

#[test]
fn sampling_rates_125_to_1000_hz() {
    for fs in [125.0, 250.0, 360.0, 500.0, 1000.0] {
        let spec = SynthSpec {
            sample_rate_hz: fs,
            ..sinus(72.0)
        };
        let (a, t) = run(&spec);
        let ctx = format!("{fs} Hz");
        within("heart rate", a.heart_rate_bpm, t.hr_bpm, 1.0, &ctx);
        within("QRS", a.qrs_ms, t.qrs_ms, 10.0 + 1000.0 / fs, &ctx);
        within("QT", a.qt_ms, t.qt_ms, 20.0, &ctx);
        within("PR", a.pr_ms, t.pr_ms, 20.0, &ctx);
        assert_eq!(a.beats.len(), t.beats.len(), "{ctx}");
        assert!(a.critical.is_empty(), "{ctx}: {:?}", a.critical);
    }
}

#[test]
fn noisy_but_normal_measures_and_raises_nothing() {
    for (snr, seed) in [(20.0, 1), (15.0, 2), (10.0, 3), (5.0, 4)] {
        let spec = SynthSpec {
            snr_db: Some(snr),
            wander_uv: 400.0,
            mains_uv: 40.0,
            seed,
            ..sinus(80.0)
        };
        let (a, t) = run(&spec);
        let ctx = format!("SNR {snr} dB");
        within("heart rate", a.heart_rate_bpm, t.hr_bpm, 1.0, &ctx);
        assert!(a.critical.is_empty(), "{ctx}: {:?}", a.critical);
        if snr >= 15.0 {
            within("QRS", a.qrs_ms, t.qrs_ms, 10.0, &ctx);
            within("QT", a.qt_ms, t.qt_ms, 20.0, &ctx);
            within("PR", a.pr_ms, t.pr_ms, 20.0, &ctx);
        }
        assert_ne!(a.quality.verdict, QualityVerdict::Unusable, "{ctx}");
    }
}

#[test]
fn normal_sinus_rhythm_is_not_critical_at_any_normal_rate() {
    for hr in [42.0, 50.0, 60.0, 75.0, 90.0, 110.0, 130.0, 150.0, 175.0] {
        let (a, _) = run(&sinus(hr));
        assert!(a.critical.is_empty(), "sinus {hr}: {:?}", a.critical);
        assert!(!a.rhythm.atrial_fibrillation_suspected, "sinus {hr}");
        assert!(!a.rhythm.ventricular_fibrillation_suspected, "sinus {hr}");
        if hr < 60.0 {
            assert!(a.rhythm.sinus_bradycardia, "sinus {hr}: {:?}", a.rhythm);
        }
        if (100.0..=130.0).contains(&hr) && hr > 100.0 {
            assert!(a.rhythm.sinus_tachycardia, "sinus {hr}: {:?}", a.rhythm);
        }
    }
}

#[test]
fn stemi_inferior_and_anterior() {
    let mut spec = sinus(75.0);
    spec.st_uv = [
        -80.0, 200.0, 250.0, -60.0, -150.0, 220.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    ];
    let (a, _) = run(&spec);
    let f = a
        .critical
        .iter()
        .find(|c| c.code == "stemi")
        .expect("stemi");
    assert_eq!(f.lead.as_deref(), Some("II, III, aVF"));
    assert!((f.value.unwrap() - 250.0).abs() < 30.0, "{f:?}");
    assert!(a.is_critical());

    let mut spec = sinus(75.0);
    spec.st_uv = [
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 150.0, 350.0, 380.0, 200.0, 0.0, 0.0,
    ];
    let (a, _) = run(&spec);
    let f = a
        .critical
        .iter()
        .find(|c| c.code == "stemi")
        .expect("stemi");
    assert_eq!(f.lead.as_deref(), Some("V2, V3, V4"));

    // 0.2 mV in V2–V3 is below the 0.3 mV threshold there; one elevated limb lead alone
    // is no contiguous pair.
    let mut spec = sinus(75.0);
    spec.st_uv = [
        0.0, 0.0, 0.0, 0.0, 150.0, 0.0, 0.0, 200.0, 200.0, 0.0, 0.0, 0.0,
    ];
    let (a, _) = run(&spec);
    assert!(!codes(&a).contains(&"stemi"), "{:?} {:?}", a.critical, a.st);
}

fn pause_spec(pause_ms: f64) -> SynthSpec {
    SynthSpec {
        rhythm: SynthRhythm::Rr {
            rr_ms: vec![800.0, 800.0, 800.0, pause_ms, 800.0, 800.0, 800.0, 800.0],
            p_waves: true,
        },
        qt_ms: 400.0,
        duration_s: 12.0,
        ..SynthSpec::default()
    }
}

#[test]
fn pauses_of_3_s_are_critical_and_of_2_to_3_s_are_rhythm_findings() {
    let (a, _) = run(&pause_spec(3400.0));
    let f = a
        .critical
        .iter()
        .find(|c| c.code == "pause-3s")
        .expect("pause-3s");
    assert!((f.value.unwrap() - 3400.0).abs() <= 20.0, "{f:?}");
    assert_eq!(f.unit.as_deref(), Some("ms"));
    assert_eq!(a.rhythm.pauses.len(), 1);

    assert!(!a.rhythm.pauses[0].artifact_suspected);

    // The same pause filled by an amplifier-blocking artefact (a 3 mV step decaying over
    // 0.8 s): reported, marked, not critical.
    let (mut ecg, _) = generate(&pause_spec(3400.0));
    let t0 = 2.884 + 0.4;
    for lead in ecg.leads.iter_mut() {
        for (i, v) in lead.samples_uv.iter_mut().enumerate() {
            let t = i as f64 / 500.0;
            if t >= t0 {
                *v += (3000.0 * (-(t - t0) / 0.8).exp()) as f32;
            }
        }
    }
    let a = analyse(&ecg);
    assert!(a.critical.is_empty(), "{:?}", a.critical);
    assert!(
        a.rhythm.pauses.iter().any(|p| p.artifact_suspected),
        "{:?}",
        a.rhythm.pauses
    );

    let (a, _) = run(&pause_spec(2400.0));
    assert!(a.critical.is_empty(), "{:?}", a.critical);
    assert_eq!(a.rhythm.pauses.len(), 1, "{:?}", a.rhythm);
    let p = &a.rhythm.pauses[0];
    assert!((p.length_ms - 2400.0).abs() <= 20.0, "{p:?}");
    assert!((p.start_s - 2.9).abs() < 0.1, "{p:?}");
}

#[test]
fn ventricular_tachycardia() {
    for hr in [160.0, 200.0] {
        let spec = SynthSpec {
            rhythm: SynthRhythm::VentricularTachycardia { hr_bpm: hr },
            qrs_ms: 160.0,
            qt_ms: 250.0,
            ..SynthSpec::default()
        };
        let (a, _) = run(&spec);
        let c = codes(&a);
        assert!(
            c.contains(&"ventricular-tachycardia"),
            "VT {hr}: {:?} qrs {:?}",
            c,
            a.qrs_ms
        );
        assert!(!c.contains(&"vf-flutter"), "VT {hr}: {c:?}");
        assert!(!c.contains(&"stemi"), "VT {hr}: {c:?}");
    }
    // A wide-QRS rhythm at 120/min is not VT ≥ 150.
    let spec = SynthSpec {
        rhythm: SynthRhythm::VentricularTachycardia { hr_bpm: 120.0 },
        qrs_ms: 160.0,
        qt_ms: 320.0,
        ..SynthSpec::default()
    };
    let (a, _) = run(&spec);
    assert!(
        !codes(&a).contains(&"ventricular-tachycardia"),
        "{:?}",
        a.critical
    );
    assert!(a.rhythm.wide_qrs_tachycardia);
}

#[test]
fn ventricular_fibrillation_and_flutter() {
    for seed in [1, 2, 3] {
        let spec = SynthSpec {
            rhythm: SynthRhythm::VentricularFibrillation,
            seed,
            ..SynthSpec::default()
        };
        let (a, _) = run(&spec);
        assert_eq!(codes(&a), vec!["vf-flutter"], "VF seed {seed}");
    }
    let spec = SynthSpec {
        rhythm: SynthRhythm::VentricularFlutter { rate_bpm: 280.0 },
        ..SynthSpec::default()
    };
    let (a, _) = run(&spec);
    assert_eq!(codes(&a), vec!["vf-flutter"]);
    let f = &a.critical[0];
    assert!((f.value.unwrap() - 280.0).abs() < 15.0, "{f:?}");
    assert!(f.lead.as_deref().unwrap().contains("II"), "{f:?}");
}

#[test]
fn complete_av_block() {
    for (atrial, vent) in [(80.0, 38.0), (70.0, 45.0), (90.0, 50.0)] {
        let spec = SynthSpec {
            rhythm: SynthRhythm::CompleteAvBlock {
                atrial_bpm: atrial,
                ventricular_bpm: vent,
            },
            qt_ms: 460.0,
            ..SynthSpec::default()
        };
        let (a, _) = run(&spec);
        assert!(
            codes(&a).contains(&"av-block-3"),
            "CHB {atrial}/{vent}: {:?} {:?}",
            a.critical,
            a.rhythm
        );
        assert!(!a.rhythm.sinus_rhythm);
        let ar = a.rhythm.atrial_rate_bpm.unwrap();
        assert!((ar - atrial).abs() < 3.0, "atrial rate {ar}");
    }
}

#[test]
fn second_degree_av_block_is_suspected_but_not_critical() {
    for every in [3, 4] {
        let spec = SynthSpec {
            rhythm: SynthRhythm::SecondDegreeAvBlock {
                atrial_bpm: 90.0,
                every,
            },
            qt_ms: 400.0,
            duration_s: 12.0,
            ..SynthSpec::default()
        };
        let (a, t) = run(&spec);
        assert!(
            a.rhythm.av_block_second_degree_suspected,
            "{every}: {:?}",
            a.rhythm
        );
        assert!(!a.rhythm.av_block_third_degree_suspected);
        assert!(
            !a.rhythm.atrial_fibrillation_suspected,
            "{every}: {:?}",
            a.rhythm
        );
        assert!(a.critical.is_empty(), "{every}: {:?}", a.critical);
        within("PR", a.pr_ms, t.pr_ms, 20.0, "Mobitz II");
    }
}

#[test]
fn heart_rate_limits() {
    let (a, _) = run(&sinus(36.0));
    assert_eq!(codes(&a), vec!["hr-below-40"]);
    let f = &a.critical[0];
    assert!((f.value.unwrap() - 36.0).abs() < 1.0);
    assert_eq!(f.unit.as_deref(), Some("/min"));
    assert!(!f.message_zh.is_empty());

    let (a, _) = run(&sinus(190.0));
    assert_eq!(
        codes(&a),
        vec!["hr-above-180"],
        "{:?} qrs {:?}",
        a.critical,
        a.qrs_ms
    );
}

#[test]
fn atrial_fibrillation_is_suspected_and_sinus_is_not() {
    for (hr, seed) in [(80.0, 1), (110.0, 2), (140.0, 3)] {
        let spec = SynthSpec {
            rhythm: SynthRhythm::AtrialFibrillation {
                mean_hr_bpm: hr,
                irregularity: 0.3,
            },
            qt_ms: qt_for(hr),
            seed,
            ..SynthSpec::default()
        };
        let (a, _) = run(&spec);
        assert!(
            a.rhythm.atrial_fibrillation_suspected,
            "AF {hr}: {:?}",
            a.rhythm
        );
        assert!(!a.rhythm.sinus_rhythm);
        assert!(a.critical.is_empty(), "AF {hr}: {:?}", a.critical);
    }
    let (a, _) = run(&sinus(80.0));
    assert!(!a.rhythm.atrial_fibrillation_suspected);
    assert!(a.rhythm.af_likelihood < 0.3);
}

/// Matches detections to truth within ±50 ms; returns (TP, FN, FP).
fn score(truth: &[u32], found: &[u32], fs: f64) -> (usize, usize, usize) {
    let w = (0.05 * fs) as i64;
    let mut used = vec![false; found.len()];
    let mut tp = 0;
    for &t in truth {
        if let Some(k) = (0..found.len())
            .filter(|&k| !used[k] && (found[k] as i64 - t as i64).abs() <= w)
            .min_by_key(|&k| (found[k] as i64 - t as i64).abs())
        {
            used[k] = true;
            tp += 1;
        }
    }
    (tp, truth.len() - tp, used.iter().filter(|u| !**u).count())
}

#[test]
fn qrs_detection_sensitivity_and_positive_predictivity_on_clean_signals() {
    let mut specs = Vec::new();
    for (k, fs) in [250.0, 360.0, 500.0].into_iter().enumerate() {
        for hr in [40.0, 60.0, 80.0, 110.0, 150.0, 180.0] {
            specs.push(SynthSpec {
                sample_rate_hz: fs,
                duration_s: 30.0,
                wander_uv: 300.0,
                seed: k as u64 + 1,
                ..sinus(hr)
            });
        }
        for hr in [70.0, 120.0] {
            specs.push(SynthSpec {
                sample_rate_hz: fs,
                duration_s: 30.0,
                rhythm: SynthRhythm::AtrialFibrillation {
                    mean_hr_bpm: hr,
                    irregularity: 0.35,
                },
                qt_ms: qt_for(hr),
                wander_uv: 300.0,
                seed: 10 + k as u64,
                ..SynthSpec::default()
            });
        }
        specs.push(SynthSpec {
            sample_rate_hz: fs,
            duration_s: 30.0,
            ..pause_spec(3200.0)
        });
        specs.push(SynthSpec {
            sample_rate_hz: fs,
            duration_s: 30.0,
            rhythm: SynthRhythm::VentricularTachycardia { hr_bpm: 170.0 },
            qrs_ms: 150.0,
            qt_ms: 260.0,
            ..SynthSpec::default()
        });
        specs.push(SynthSpec {
            sample_rate_hz: fs,
            duration_s: 30.0,
            rhythm: SynthRhythm::CompleteAvBlock {
                atrial_bpm: 75.0,
                ventricular_bpm: 40.0,
            },
            ..SynthSpec::default()
        });
    }
    let (mut tp, mut fneg, mut fpos) = (0, 0, 0);
    for spec in &specs {
        let (ecg, truth) = generate(spec);
        let a = analyse(&ecg);
        let (t, f, p) = score(&truth.beats, &a.beats, spec.sample_rate_hz);
        assert!(f + p <= 1, "{:?}: TP {t} FN {f} FP {p}", spec.rhythm);
        tp += t;
        fneg += f;
        fpos += p;
    }
    let se = tp as f64 / (tp + fneg) as f64;
    let ppv = tp as f64 / (tp + fpos) as f64;
    assert!(tp > 1500, "{tp} beats");
    eprintln!("clean synthetic: {tp} beats, Se {se:.4}, +P {ppv:.4}");
    assert!(se >= 0.995, "Se {se}");
    assert!(ppv >= 0.995, "+P {ppv}");
}

fn ecg_of(leads: Vec<(LeadCode, Vec<f32>)>, fs: f64) -> Ecg {
    Ecg {
        leads: leads
            .into_iter()
            .map(|(code, samples_uv)| Lead { code, samples_uv })
            .collect(),
        sample_rate_hz: fs,
        ..Ecg::default()
    }
}

#[test]
fn hostile_inputs_do_not_panic() {
    let (good, _) = generate(&sinus(70.0));
    let lead_ii = good.lead(&LeadCode::II).unwrap().samples_uv.clone();
    let mut cases = vec![
        Ecg::default(),
        ecg_of(vec![(LeadCode::II, vec![])], 500.0),
        ecg_of(vec![(LeadCode::II, vec![1.0, 2.0])], 500.0),
        ecg_of(vec![(LeadCode::II, vec![0.0; 5000])], 500.0),
        ecg_of(vec![(LeadCode::II, vec![3000.0; 5000])], 500.0),
        ecg_of(vec![(LeadCode::II, vec![f32::NAN; 5000])], 500.0),
        ecg_of(vec![(LeadCode::II, lead_ii.clone())], 0.0),
        ecg_of(vec![(LeadCode::II, lead_ii.clone())], f64::NAN),
        ecg_of(vec![(LeadCode::II, lead_ii.clone())], 1e9),
        ecg_of(vec![(LeadCode::II, lead_ii.clone())], 1.0),
        ecg_of(
            vec![
                (LeadCode::I, vec![f32::INFINITY; 10]),
                (LeadCode::II, lead_ii.clone()),
            ],
            500.0,
        ),
        ecg_of(
            vec![
                (LeadCode::I, lead_ii[..100].to_vec()),
                (LeadCode::II, lead_ii.clone()),
            ],
            500.0,
        ),
    ];
    let mut with_nan = good.clone();
    for lead in with_nan.leads.iter_mut() {
        for k in (0..lead.samples_uv.len()).step_by(7) {
            lead.samples_uv[k] = f32::NAN;
        }
    }
    cases.push(with_nan);
    let mut clipped = good.clone();
    for lead in clipped.leads.iter_mut() {
        for v in lead.samples_uv.iter_mut() {
            *v = v.clamp(-300.0, 300.0);
        }
    }
    cases.push(clipped);
    let mut huge = good.clone();
    for lead in huge.leads.iter_mut() {
        for v in lead.samples_uv.iter_mut() {
            *v *= 1e30;
        }
    }
    cases.push(huge);
    for (k, ecg) in cases.iter().enumerate() {
        let a = analyse(ecg);
        assert_eq!(a.label, LABEL, "case {k}");
        let json = serde_json::to_string(&a).unwrap();
        let back: Analysis = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a, "case {k}");
    }
    // Flat and lead-off leads are reported, and a flat record raises nothing.
    let a = analyse(&cases[3]);
    assert!(a.quality.leads[0].flat);
    assert_eq!(a.quality.verdict, QualityVerdict::Unusable);
    assert!(a.critical.is_empty());
    let a = analyse(&cases[4]);
    assert!(a.quality.leads[0].lead_off);
    let a = analyse(&cases[13]);
    assert!(
        a.quality.leads.iter().any(|l| l.saturated),
        "{:?}",
        a.quality
    );
    let a = analyse(&cases[12]);
    assert!(a.quality.leads.iter().all(|l| l.non_finite_samples > 0));
    assert!((a.heart_rate_bpm.unwrap() - 70.0).abs() < 1.0);
}

#[test]
fn random_inputs_do_not_panic() {
    let mut rng = dxhub_ecg::synth::XorShift::new(7);
    for case in 0..200 {
        let fs = [50.0, 60.0, 125.0, 360.0, 500.0, 1000.0, 2000.0][case % 7];
        let n = (rng.uniform() * 4.0 * fs) as usize;
        let nleads = 1 + (rng.uniform() * 13.0) as usize;
        let leads = (0..nleads)
            .map(|k| {
                let code = LeadCode::STANDARD_12
                    .get(k)
                    .cloned()
                    .unwrap_or(LeadCode::Other(format!("X{k}")));
                let kind = (rng.uniform() * 4.0) as usize;
                let samples = (0..n)
                    .map(|i| match kind {
                        0 => (rng.normal() * 500.0) as f32,
                        1 => {
                            if i % 97 == 0 {
                                5000.0
                            } else {
                                0.0
                            }
                        }
                        2 => ((i as f64 * 0.3).sin() * 2000.0) as f32,
                        _ => {
                            if rng.uniform() < 0.01 {
                                f32::NAN
                            } else {
                                (rng.uniform() * 1e6) as f32
                            }
                        }
                    })
                    .collect();
                (code, samples)
            })
            .collect();
        let a = analyse(&ecg_of(leads, fs));
        assert_eq!(a.label, LABEL);
    }
}

#[test]
fn single_lead_and_limb_leads_from_i_and_ii() {
    let (ecg, truth) = generate(&sinus(66.0));
    // Lead II alone: rate and intervals, no axes.
    let only_ii = ecg_of(
        vec![(
            LeadCode::II,
            ecg.lead(&LeadCode::II).unwrap().samples_uv.clone(),
        )],
        500.0,
    );
    let a = analyse(&only_ii);
    within("heart rate", a.heart_rate_bpm, truth.hr_bpm, 1.0, "II only");
    within("QRS", a.qrs_ms, truth.qrs_ms, 10.0, "II only");
    assert_eq!(a.qrs_axis_deg, None);
    // I, II, V1–V6 (8-lead storage): axes from derived aVF.
    let mut eight = ecg.clone();
    eight.leads.retain(|l| {
        !matches!(
            l.code,
            LeadCode::III | LeadCode::AVR | LeadCode::AVL | LeadCode::AVF
        )
    });
    let a = analyse(&eight);
    angle_within(
        "QRS axis",
        a.qrs_axis_deg,
        truth.qrs_axis_deg,
        15.0,
        "8-lead",
    );
    assert!(a.st.iter().any(|s| s.lead == "aVF"));
}

#[test]
fn long_three_lead_recording_is_linear() {
    // 2 h of 3 leads at 200 Hz (the 24 h case is in the example `ecg_analyse long`).
    let spec = SynthSpec {
        sample_rate_hz: 200.0,
        duration_s: 2.0 * 3600.0,
        ..sinus(70.0)
    };
    let (mut ecg, truth) = generate(&spec);
    ecg.leads
        .retain(|l| matches!(l.code, LeadCode::I | LeadCode::II | LeadCode::V5));
    let t = std::time::Instant::now();
    let a = analyse(&ecg);
    let took = t.elapsed();
    let (tp, f, p) = score(&truth.beats, &a.beats, 200.0);
    assert!(f + p <= 2, "TP {tp} FN {f} FP {p}");
    assert!(took.as_secs() < 60, "{took:?}");
}
