//! Timing of `render::svg` and `render::png` on a synthetic 10 s, 12-lead ECG.
//!
//! `cargo run --release -p dxhub-ecg --example render_bench [-- [--svg-only] [out_dir]]` prints the median
//! and minimum time per call for each layout at 500 and 1000 Hz, and with `out_dir` writes the SVGs and
//! PNGs there.

use dxhub_ecg::render::{Layout, RenderOptions, png, svg};
use dxhub_ecg::{Ecg, Filters, Lead, LeadCode};
use std::time::{Duration, Instant};

fn synthetic(fs: f64) -> Ecg {
    let n = (10.0 * fs) as usize;
    let leads = LeadCode::STANDARD_12
        .iter()
        .enumerate()
        .map(|(k, code)| Lead {
            code: code.clone(),
            samples_uv: (0..n)
                .map(|i| {
                    let t = i as f64 / fs;
                    let b = t % 0.85;
                    let p = (-((b - 0.1) / 0.025).powi(2)).exp() * 120.0;
                    let r = (-((b - 0.25) / 0.01).powi(2)).exp() * 1200.0;
                    let s = -(-((b - 0.275) / 0.01).powi(2)).exp() * 300.0;
                    let tw = (-((b - 0.5) / 0.05).powi(2)).exp() * 300.0;
                    let noise = ((i * 7919 + k * 104_729) % 41) as f64 - 20.0;
                    let sign = if k == 3 { -1.0 } else { 1.0 };
                    (sign * (p + r + s + tw) * (0.5 + k as f64 / 12.0) + noise) as f32
                })
                .collect(),
        })
        .collect();
    Ecg {
        leads,
        sample_rate_hz: fs,
        filters: Filters {
            low_hz: Some(0.05),
            high_hz: Some(150.0),
            notch_hz: Some(50.0),
        },
        ..Ecg::default()
    }
}

/// (minimum, median) of `runs` calls.
fn timed(mut f: impl FnMut(), runs: usize) -> (Duration, Duration) {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    (t[0], t[runs / 2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `--svg-only`: time the SVG writer alone (for profiling).
    let svg_only = std::env::args().any(|a| a == "--svg-only");
    let out = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(std::path::PathBuf::from);
    let header = vec![
        "张三 男 45岁   ID 0042   2026-01-05 10:31".to_owned(),
        "HR 71 /min   PR 160 ms   QRS 92 ms   QT/QTc 380/402 ms".to_owned(),
    ];
    for fs in [500.0, 1000.0] {
        let ecg = synthetic(fs);
        for (name, layout) in [("3x4", Layout::ThreeByFour), ("12x1", Layout::TwelveByOne)] {
            let opts = RenderOptions {
                layout,
                ..RenderOptions::default()
            };
            let s = svg(&ecg, &header, &opts)?;
            let (tmin, t) = timed(
                || {
                    std::hint::black_box(svg(&ecg, &header, &opts).ok());
                },
                201,
            );
            if svg_only {
                println!(
                    "{fs} Hz {name}: svg {:>6.3} ms median, {:>6.3} ms min ({} bytes)",
                    t.as_secs_f64() * 1e3,
                    tmin.as_secs_f64() * 1e3,
                    s.len()
                );
                continue;
            }
            let first = Instant::now();
            let p = png(&ecg, &header, &opts, 4.0)?;
            let first = first.elapsed();
            let (_, tp) = timed(
                || {
                    std::hint::black_box(png(&ecg, &header, &opts, 4.0).ok());
                },
                11,
            );
            println!(
                "{fs} Hz {name}: svg {:>6.3} ms median, {:>6.3} ms min ({} bytes); png 4 px/mm {:>7.1} ms ({} bytes; first call with font loading {:.1} ms)",
                t.as_secs_f64() * 1e3,
                tmin.as_secs_f64() * 1e3,
                s.len(),
                tp.as_secs_f64() * 1e3,
                p.len(),
                first.as_secs_f64() * 1e3,
            );
            if let Some(dir) = &out {
                std::fs::create_dir_all(dir)?;
                std::fs::write(dir.join(format!("bench_{fs}_{name}.svg")), &s)?;
                std::fs::write(dir.join(format!("bench_{fs}_{name}.png")), &p)?;
            }
        }
    }
    Ok(())
}
