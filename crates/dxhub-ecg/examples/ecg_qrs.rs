//! Reads ECG samples and prints the QRS positions `analysis::analyse` detects, one sample
//! index per line (or the whole analysis as JSON with `--json`).
//!
//! ```sh
//! ecg_qrs --fs 360 [--format csv|i16|f32] [--scale UV_PER_UNIT] [--offset UNITS] [--json] FILE
//! ```
//! - `csv` (default): one row per sample, one column per lead, comma/semicolon/whitespace
//!   separated; a first row that does not parse as numbers names the leads (`I`, `II`,
//!   `V1`…; unknown names are kept as other leads). Without a header the columns are taken
//!   as II, V1, I, … in that order of preference for one, two, … columns.
//! - `i16` / `f32`: raw little-endian samples, `--leads N` interleaved leads (default 1).
//!
//! Values become µV as `(value - offset) * scale` (default scale 1, i.e. already µV).
//! `-` reads standard input.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::analysis::analyse;
use dxhub_ecg::model::{Ecg, Lead, LeadCode};
use std::io::Read;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut fs = 500.0;
    let mut format = "csv".to_owned();
    let mut scale = 1.0f64;
    let mut offset = 0.0f64;
    let mut nleads = 1usize;
    let mut json = false;
    let mut file = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--fs" => fs = it.next().and_then(|v| v.parse().ok()).expect("--fs HZ"),
            "--format" => format = it.next().expect("--format").clone(),
            "--scale" => scale = it.next().and_then(|v| v.parse().ok()).expect("--scale"),
            "--offset" => offset = it.next().and_then(|v| v.parse().ok()).expect("--offset"),
            "--leads" => nleads = it.next().and_then(|v| v.parse().ok()).expect("--leads"),
            "--json" => json = true,
            _ => file = Some(a.clone()),
        }
    }
    let path = file.expect("usage: ecg_qrs --fs HZ [--format csv|i16|f32] FILE");
    let mut bytes = Vec::new();
    if path == "-" {
        std::io::stdin().read_to_end(&mut bytes).unwrap();
    } else {
        bytes = std::fs::read(&path).unwrap();
    }
    let conv = |v: f64| ((v - offset) * scale) as f32;
    let default_codes = [LeadCode::II, LeadCode::V1, LeadCode::I, LeadCode::V5];
    let mut columns: Vec<Vec<f32>> = Vec::new();
    let mut codes: Vec<LeadCode> = Vec::new();
    match format.as_str() {
        "i16" | "f32" => {
            let width = if format == "i16" { 2 } else { 4 };
            let nleads = nleads.max(1);
            columns = vec![Vec::new(); nleads];
            for (k, c) in bytes.chunks_exact(width).enumerate() {
                let v = if width == 2 {
                    i16::from_le_bytes([c[0], c[1]]) as f64
                } else {
                    f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64
                };
                columns[k % nleads].push(conv(v));
            }
        }
        _ => {
            let text = String::from_utf8_lossy(&bytes);
            for (row, line) in text.lines().enumerate() {
                let cells: Vec<&str> = line
                    .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
                    .filter(|c| !c.is_empty())
                    .collect();
                if cells.is_empty() {
                    continue;
                }
                let nums: Vec<Option<f64>> = cells.iter().map(|c| c.parse().ok()).collect();
                if row == 0 && nums.iter().any(Option::is_none) {
                    codes = cells
                        .iter()
                        .map(|c| LeadCode::from_name(c).unwrap_or(LeadCode::Other(c.to_string())))
                        .collect();
                    continue;
                }
                if columns.is_empty() {
                    columns = vec![Vec::new(); cells.len()];
                }
                for (col, v) in columns.iter_mut().zip(nums) {
                    col.push(conv(v.unwrap_or(f64::NAN)));
                }
            }
        }
    }
    if codes.len() != columns.len() {
        codes = (0..columns.len())
            .map(|k| {
                default_codes
                    .get(k)
                    .cloned()
                    .unwrap_or(LeadCode::Other(format!("ECG{}", k + 1)))
            })
            .collect();
    }
    let ecg = Ecg {
        leads: codes
            .into_iter()
            .zip(columns)
            .map(|(code, samples_uv)| Lead { code, samples_uv })
            .collect(),
        sample_rate_hz: fs,
        ..Ecg::default()
    };
    let t = std::time::Instant::now();
    let a = analyse(&ecg);
    let took = t.elapsed();
    if json {
        println!("{}", serde_json::to_string_pretty(&a).unwrap());
    } else {
        for b in &a.beats {
            println!("{b}");
        }
    }
    eprintln!(
        "{} beats, {} samples x {} leads at {fs} Hz, analysed in {:.2} ms",
        a.beats.len(),
        ecg.samples_per_lead(),
        ecg.leads.len(),
        took.as_secs_f64() * 1000.0
    );
}
