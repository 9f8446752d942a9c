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

#![allow(clippy::unwrap_used)]

use dxhub_ecg::analysis::analyse;
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
