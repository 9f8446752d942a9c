//! Analyses a synthetic ECG and prints the analysis as JSON, or times the analysis.
//!
//! ```sh
//! cargo run --release -p dxhub-ecg --example ecg_analyse -- json sinus 75
//! cargo run --release -p dxhub-ecg --example ecg_analyse -- json vt 180
//! cargo run --release -p dxhub-ecg --example ecg_analyse -- bench 200
//! ```
//! Rhythms: `sinus HR`, `af HR`, `vt HR`, `vf`, `flutter RATE`, `chb ATRIAL VENT`,
//! `pause MS`, `stemi`, `noisy HR SNR_DB`. `bench N` times `analyse` N times on 10 s,
//! 12 leads, 500 Hz sinus rhythm with noise and wander, and prints min/median/p90.
//! `accuracy` prints QRS Se / +P (±50 ms) on the synthetic set of bench/ecg/README.md.
//! `long HOURS` analyses HOURS of 3-lead 200 Hz sinus rhythm and prints the time taken.
//! `golden` prints the full analysis of a fixed, varied set of synthetic records (rates,
//! rhythms, noise, 250–1000 Hz, 12/3/1 leads, short to long, damaged leads), one JSON line
//! each, to check that a change to the analysis leaves every result bit for bit the same.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::analysis::analyse;
use dxhub_ecg::model::LeadCode;
use dxhub_ecg::synth::{SynthRhythm, SynthSpec, generate};
use std::time::Instant;

fn arg(args: &[String], i: usize, default: f64) -> f64 {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn spec(args: &[String]) -> SynthSpec {
    let kind = args.get(2).map(String::as_str).unwrap_or("sinus");
    let mut s = SynthSpec::default();
    match kind {
        "sinus" => {
            s.rhythm = SynthRhythm::Sinus {
                hr_bpm: arg(args, 3, 75.0),
            }
        }
        "af" => {
            s.rhythm = SynthRhythm::AtrialFibrillation {
                mean_hr_bpm: arg(args, 3, 90.0),
                irregularity: 0.3,
            }
        }
        "vt" => {
            s.rhythm = SynthRhythm::VentricularTachycardia {
                hr_bpm: arg(args, 3, 180.0),
            };
            s.qrs_ms = 160.0;
            s.qt_ms = 260.0;
            s.qrs_ms = arg(args, 4, 160.0);
        }
        "vf" => s.rhythm = SynthRhythm::VentricularFibrillation,
        "flutter" => {
            s.rhythm = SynthRhythm::VentricularFlutter {
                rate_bpm: arg(args, 3, 280.0),
            }
        }
        "chb" => {
            s.rhythm = SynthRhythm::CompleteAvBlock {
                atrial_bpm: arg(args, 3, 80.0),
                ventricular_bpm: arg(args, 4, 38.0),
            };
            s.qt_ms = 480.0;
        }
        "pause" => {
            s.rhythm = SynthRhythm::Rr {
                rr_ms: vec![800.0, 800.0, 800.0, arg(args, 3, 3200.0), 800.0, 800.0],
                p_waves: true,
            }
        }
        "axis" => {
            s.pr_ms = 140.0;
            s.qrs_ms = 70.0;
            s.qt_ms = 380.0;
            s.qrs_axis_deg = 75.0;
            s.p_axis_deg = 70.0;
            s.t_axis_deg = 80.0;
            s.rhythm = SynthRhythm::Sinus { hr_bpm: 70.0 };
        }
        "stemi" => {
            s.st_uv = [
                0.0, 200.0, 250.0, -50.0, -150.0, 220.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            ];
        }
        "noisy" => {
            s.rhythm = SynthRhythm::Sinus {
                hr_bpm: arg(args, 3, 75.0),
            };
            s.snr_db = Some(arg(args, 4, 15.0));
            s.wander_uv = 300.0;
            s.mains_uv = 30.0;
        }
        _ => {}
    }
    s
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("bench") => {
            let n = arg(&args, 2, 200.0) as usize;
            let s = SynthSpec {
                snr_db: Some(25.0),
                wander_uv: 200.0,
                ..SynthSpec::default()
            };
            let (ecg, _) = generate(&s);
            let mut times: Vec<f64> = (0..n.max(1))
                .map(|_| {
                    let t = Instant::now();
                    let a = analyse(&ecg);
                    std::hint::black_box(a);
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!(
                "analyse, 10 s x 12 leads x 500 Hz, {} runs: min {:.3} ms, median {:.3} ms, p90 {:.3} ms",
                times.len(),
                times[0],
                times[times.len() / 2],
                times[times.len() * 9 / 10]
            );
        }
        Some("accuracy") => accuracy(),
        Some("golden") => golden(),
        Some("long") => {
            let hours = arg(&args, 2, 24.0);
            let spec = SynthSpec {
                sample_rate_hz: 200.0,
                duration_s: hours * 3600.0,
                snr_db: Some(25.0),
                ..SynthSpec::sinus(70.0)
            };
            let (mut ecg, truth) = generate(&spec);
            ecg.leads
                .retain(|l| matches!(l.code, LeadCode::I | LeadCode::II | LeadCode::V5));
            let t = Instant::now();
            let a = analyse(&ecg);
            let (tp, f, p) = score(&truth.beats, &a.beats, 200.0);
            println!(
                "{hours} h, 3 leads, 200 Hz ({} samples/lead): analysed in {:.2} s; TP {tp} FN {f} FP {p}",
                ecg.samples_per_lead(),
                t.elapsed().as_secs_f64()
            );
        }
        _ => {
            let s = spec(&args);
            let (ecg, truth) = generate(&s);
            let a = analyse(&ecg);
            eprintln!("truth beats {:?}", &truth.beats[..truth.beats.len().min(6)]);
            eprintln!("found beats {:?}", &a.beats[..a.beats.len().min(6)]);
            eprintln!(
                "truth: hr {:?} pr {:?} qrs {:?} qt {:?} axes {:?}/{:?}/{:?} beats {}",
                truth.hr_bpm,
                truth.pr_ms,
                truth.qrs_ms,
                truth.qt_ms,
                truth.p_axis_deg,
                truth.qrs_axis_deg,
                truth.t_axis_deg,
                truth.beats.len()
            );
            let mut a2 = a.clone();
            a2.quality.leads.clear();
            println!("{}", serde_json::to_string_pretty(&a2).unwrap());
        }
    }
}

/// Matches detections to truth within ±50 ms; (TP, FN, FP).
fn score(truth: &[u32], found: &[u32], fs: f64) -> (usize, usize, usize) {
    let w = (0.05 * fs) as i64;
    let mut used = vec![false; found.len()];
    let mut tp = 0;
    let mut j = 0usize;
    for &t in truth {
        while j < found.len() && (found[j] as i64) < t as i64 - w {
            j += 1;
        }
        let best = (j..found.len())
            .take_while(|&k| (found[k] as i64) <= t as i64 + w)
            .filter(|&k| !used[k])
            .min_by_key(|&k| (found[k] as i64 - t as i64).abs());
        if let Some(k) = best {
            used[k] = true;
            tp += 1;
        }
    }
    (tp, truth.len() - tp, used.iter().filter(|u| !**u).count())
}

fn rhythms() -> Vec<(&'static str, SynthSpec)> {
    let qt = |hr: f64| 400.0 * (60.0f64 / hr).sqrt();
    let mut v: Vec<(&'static str, SynthSpec)> = Vec::new();
    for hr in [40.0, 60.0, 80.0, 110.0, 150.0, 180.0] {
        v.push((
            "sinus",
            SynthSpec {
                qt_ms: qt(hr),
                ..SynthSpec::sinus(hr)
            },
        ));
    }
    for (hr, irr) in [(70.0, 0.35), (100.0, 0.3), (130.0, 0.25)] {
        v.push((
            "AF",
            SynthSpec {
                rhythm: SynthRhythm::AtrialFibrillation {
                    mean_hr_bpm: hr,
                    irregularity: irr,
                },
                qt_ms: qt(hr),
                ..SynthSpec::default()
            },
        ));
    }
    v.push((
        "pauses",
        SynthSpec {
            rhythm: SynthRhythm::Rr {
                rr_ms: vec![800.0, 800.0, 3200.0, 800.0, 700.0, 2400.0, 900.0],
                p_waves: true,
            },
            ..SynthSpec::default()
        },
    ));
    v.push((
        "VT",
        SynthSpec {
            rhythm: SynthRhythm::VentricularTachycardia { hr_bpm: 170.0 },
            qrs_ms: 150.0,
            qt_ms: 260.0,
            ..SynthSpec::default()
        },
    ));
    v.push((
        "3rd-degree AVB",
        SynthSpec {
            rhythm: SynthRhythm::CompleteAvBlock {
                atrial_bpm: 80.0,
                ventricular_bpm: 38.0,
            },
            qt_ms: 460.0,
            ..SynthSpec::default()
        },
    ));
    v
}

fn accuracy() {
    let conditions: [(&str, Option<f64>, f64, f64, bool); 10] = [
        ("12 leads, clean", None, 0.0, 0.0, false),
        ("12 leads, clean + wander 0.5 mV", None, 500.0, 0.0, false),
        (
            "12 leads, SNR 10 dB + wander + 50 Hz",
            Some(10.0),
            500.0,
            50.0,
            false,
        ),
        (
            "12 leads, SNR 5 dB + wander + 50 Hz",
            Some(5.0),
            500.0,
            50.0,
            false,
        ),
        (
            "12 leads, SNR 0 dB + wander + 50 Hz",
            Some(0.0),
            500.0,
            50.0,
            false,
        ),
        (
            "lead II only, clean + wander 0.5 mV",
            None,
            500.0,
            0.0,
            true,
        ),
        (
            "lead II only, SNR 20 dB + wander + 50 Hz",
            Some(20.0),
            500.0,
            50.0,
            true,
        ),
        (
            "lead II only, SNR 10 dB + wander + 50 Hz",
            Some(10.0),
            500.0,
            50.0,
            true,
        ),
        (
            "lead II only, SNR 5 dB + wander + 50 Hz",
            Some(5.0),
            500.0,
            50.0,
            true,
        ),
        (
            "lead II only, SNR 0 dB + wander + 50 Hz",
            Some(0.0),
            500.0,
            50.0,
            true,
        ),
    ];
    println!("| condition | records | beats | TP | FN | FP | Se % | +P % |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, snr, wander, hum, single) in conditions {
        let (mut recs, mut beats, mut tp, mut fneg, mut fpos) = (0, 0, 0, 0, 0);
        for fs in [250.0, 360.0, 500.0] {
            for (k, (_, base)) in rhythms().into_iter().enumerate() {
                let spec = SynthSpec {
                    sample_rate_hz: fs,
                    duration_s: 60.0,
                    snr_db: snr,
                    wander_uv: wander,
                    mains_uv: hum,
                    seed: 1 + k as u64 + (fs as u64) * 100,
                    ..base
                };
                let (mut ecg, truth) = generate(&spec);
                if single {
                    ecg.leads.retain(|l| l.code == LeadCode::II);
                }
                let a = analyse(&ecg);
                let (t, f, p) = score(&truth.beats, &a.beats, fs);
                recs += 1;
                beats += truth.beats.len();
                tp += t;
                fneg += f;
                fpos += p;
            }
        }
        println!(
            "| {name} | {recs} | {beats} | {tp} | {fneg} | {fpos} | {:.2} | {:.2} |",
            100.0 * tp as f64 / (tp + fneg).max(1) as f64,
            100.0 * tp as f64 / (tp + fpos).max(1) as f64
        );
    }
}

/// A damage applied to a synthetic record for the golden set.
#[derive(Clone, Copy)]
enum Damage {
    None,
    /// NaN / infinite / huge samples sprinkled over lead V1.
    NonFinite,
    /// V2 clipped at ±600 µV, V3 flat at 0, V4 offset by 6 mV.
    BadLeads,
}

fn damage(ecg: &mut dxhub_ecg::model::Ecg, d: Damage) {
    let find =
        |ecg: &mut dxhub_ecg::model::Ecg, c: LeadCode| ecg.leads.iter().position(|l| l.code == c);
    match d {
        Damage::None => {}
        Damage::NonFinite => {
            if let Some(p) = find(ecg, LeadCode::V1) {
                let x = &mut ecg.leads[p].samples_uv;
                let len = x.len();
                for (k, i) in (0..len).step_by(997).enumerate() {
                    x[i] = [f32::NAN, f32::INFINITY, 2e7, f32::NEG_INFINITY][k % 4];
                }
            }
        }
        Damage::BadLeads => {
            if let Some(p) = find(ecg, LeadCode::V2) {
                for v in &mut ecg.leads[p].samples_uv {
                    *v = v.clamp(-600.0, 600.0);
                }
            }
            if let Some(p) = find(ecg, LeadCode::V3) {
                ecg.leads[p].samples_uv.iter_mut().for_each(|v| *v = 0.0);
            }
            if let Some(p) = find(ecg, LeadCode::V4) {
                ecg.leads[p]
                    .samples_uv
                    .iter_mut()
                    .for_each(|v| *v += 6000.0);
            }
        }
    }
}

fn golden_specs() -> Vec<(String, SynthSpec, &'static [LeadCode], Damage)> {
    const ALL: &[LeadCode] = &[];
    const THREE: &[LeadCode] = &[LeadCode::I, LeadCode::II, LeadCode::V5];
    const II: &[LeadCode] = &[LeadCode::II];
    let mut v = Vec::new();
    let mut extra: Vec<(&str, SynthSpec)> = rhythms();
    extra.push((
        "vf",
        SynthSpec {
            rhythm: SynthRhythm::VentricularFibrillation,
            ..SynthSpec::default()
        },
    ));
    extra.push((
        "flutter",
        SynthSpec {
            rhythm: SynthRhythm::VentricularFlutter { rate_bpm: 280.0 },
            ..SynthSpec::default()
        },
    ));
    extra.push((
        "avb2",
        SynthSpec {
            rhythm: SynthRhythm::SecondDegreeAvBlock {
                atrial_bpm: 90.0,
                every: 3,
            },
            ..SynthSpec::default()
        },
    ));
    extra.push((
        "stemi",
        SynthSpec {
            st_uv: [
                0.0, 200.0, 250.0, -50.0, -150.0, 220.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            ],
            ..SynthSpec::default()
        },
    ));
    for fs in [250.0, 360.0, 500.0, 1000.0] {
        for (k, (name, base)) in extra.iter().enumerate() {
            for (snr, wander, hum) in [
                (None, 0.0, 0.0),
                (Some(15.0), 300.0, 30.0),
                (Some(3.0), 600.0, 60.0),
            ] {
                for (ln, leads) in [("12", ALL), ("3", THREE), ("1", II)] {
                    let spec = SynthSpec {
                        sample_rate_hz: fs,
                        snr_db: snr,
                        wander_uv: wander,
                        mains_uv: hum,
                        seed: 7 + k as u64 + fs as u64,
                        ..base.clone()
                    };
                    v.push((
                        format!("{name} fs={fs} snr={snr:?} leads={ln}"),
                        spec,
                        leads,
                        Damage::None,
                    ));
                }
            }
        }
    }
    for (d, dn) in [
        (Damage::NonFinite, "nonfinite"),
        (Damage::BadLeads, "badleads"),
    ] {
        for fs in [250.0, 500.0] {
            v.push((
                format!("{dn} fs={fs}"),
                SynthSpec {
                    sample_rate_hz: fs,
                    snr_db: Some(20.0),
                    wander_uv: 300.0,
                    ..SynthSpec::sinus(70.0)
                },
                ALL,
                d,
            ));
        }
    }
    for dur in [0.3, 1.0, 2.5, 90.0] {
        for fs in [360.0, 500.0] {
            v.push((
                format!("dur={dur} fs={fs}"),
                SynthSpec {
                    sample_rate_hz: fs,
                    duration_s: dur,
                    snr_db: Some(20.0),
                    ..SynthSpec::sinus(95.0)
                },
                ALL,
                Damage::None,
            ));
        }
    }
    v.push((
        "af 120s".to_owned(),
        SynthSpec {
            duration_s: 120.0,
            snr_db: Some(15.0),
            wander_uv: 400.0,
            rhythm: SynthRhythm::AtrialFibrillation {
                mean_hr_bpm: 110.0,
                irregularity: 0.3,
            },
            ..SynthSpec::default()
        },
        ALL,
        Damage::None,
    ));
    // More than 4 M samples in all: the detector recomputes energies instead of keeping them.
    v.push((
        "long 3 leads 250 Hz".to_owned(),
        SynthSpec {
            sample_rate_hz: 250.0,
            duration_s: 5600.0,
            snr_db: Some(20.0),
            ..SynthSpec::sinus(66.0)
        },
        THREE,
        Damage::None,
    ));
    v
}

fn golden() {
    for (name, spec, leads, d) in golden_specs() {
        let (mut ecg, _) = generate(&spec);
        if !leads.is_empty() {
            ecg.leads.retain(|l| leads.contains(&l.code));
        }
        damage(&mut ecg, d);
        let a = analyse(&ecg);
        println!("{name}\t{}", serde_json::to_string(&a).unwrap());
    }
    let mut ecg = generate(&SynthSpec::default()).0;
    ecg.sample_rate_hz = f64::NAN;
    println!("fs=NaN\t{}", serde_json::to_string(&analyse(&ecg)).unwrap());
    ecg.leads.clear();
    println!(
        "no leads\t{}",
        serde_json::to_string(&analyse(&ecg)).unwrap()
    );
}
