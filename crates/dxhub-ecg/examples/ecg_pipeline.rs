//! Parse + analyse + render of one ECG, timed: what the hub does for every upload and
//! rendering (issue #5 target: median < 5 ms for 10 s, 12 leads, 500 Hz).
//!
//!   cargo run --release -p dxhub-ecg --example ecg_pipeline -- [N] [FILE…]
//!
//! Always measures a synthetic 10 s / 12-lead / 500 Hz sinus ECG as the JSON form and as a
//! DICOM 12-lead ECG (written by `write::to_dicom`); each FILE (an SCP-ECG or HL7 aECG
//! written by biosig, say) is measured too. Per input and step: median and p90 over N runs
//! (default 300), as a Markdown table.

use std::time::Instant;

use dxhub_ecg::render::{RenderOptions, svg};
use dxhub_ecg::synth::{SynthSpec, generate};
use dxhub_ecg::write::{WriteIds, to_dicom};
use dxhub_ecg::{analysis, derive_limb_leads, json, read};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(300)
        .max(1);
    let files: Vec<String> = args.collect();

    let mut spec = SynthSpec::sinus(72.0);
    spec.snr_db = Some(25.0);
    spec.wander_uv = 150.0;
    let (ecg, _) = generate(&spec);
    let json_bytes = serde_json::to_vec(&json::to_json_form(&ecg, 1.0)).expect("json form");
    let ids = WriteIds {
        study_instance_uid: "2.25.1".into(),
        series_instance_uid: "2.25.2".into(),
        sop_instance_uid: "2.25.3".into(),
        series_number: 1,
        instance_number: 1,
        ..Default::default()
    };
    let dicom_bytes = to_dicom(&ecg, &ids).expect("dicom");
    let mut inputs: Vec<(String, Vec<u8>)> = vec![
        ("synthetic JSON form".into(), json_bytes),
        ("synthetic DICOM 12-lead".into(), dicom_bytes),
    ];
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{f}: {e}"));
        inputs.push((f, bytes));
    }

    println!(
        "| input | format | leads × samples | parse ms (median / p90) | analyse ms | render SVG ms | total ms (median / p90) |"
    );
    println!("|---|---|---|---:|---:|---:|---:|");
    let header = vec!["张三  M  19580314  ID P1".to_owned(), "HR 72".to_owned()];
    let opts = RenderOptions::default();
    for (name, bytes) in &inputs {
        let (mut p, mut a, mut r, mut t) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut shape = String::new();
        let mut fmt = "";
        for _ in 0..n {
            let t0 = Instant::now();
            let (format, mut e) = read::read(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            derive_limb_leads(&mut e);
            let t1 = Instant::now();
            let an = analysis::analyse(&e);
            let t2 = Instant::now();
            let s = svg(&e, &header, &opts).expect("svg");
            let t3 = Instant::now();
            std::hint::black_box((&an, &s));
            p.push((t1 - t0).as_secs_f64() * 1e3);
            a.push((t2 - t1).as_secs_f64() * 1e3);
            r.push((t3 - t2).as_secs_f64() * 1e3);
            t.push((t3 - t0).as_secs_f64() * 1e3);
            shape = format!("{} × {}", e.leads.len(), e.samples_per_lead());
            fmt = format.as_str();
        }
        println!(
            "| {name} | {fmt} | {shape} | {:.2} / {:.2} | {:.2} | {:.2} | **{:.2}** / {:.2} |",
            percentile(&mut p, 0.5),
            percentile(&mut p, 0.9),
            percentile(&mut a, 0.5),
            percentile(&mut r, 0.5),
            percentile(&mut t, 0.5),
            percentile(&mut t, 0.9),
        );
    }
}
