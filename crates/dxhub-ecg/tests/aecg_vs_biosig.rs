//! `aecg::read_aecg` on HL7 aECG files written by a third party, Debian biosig-tools'
//! `save2gdf -f=HL7aECG`, from real ECG samples.
//!
//! For each variant (µV at 1000 Hz; mV at 500 Hz; µV with a 960 µV origin), at test time in
//! a temporary directory:
//! 1. `tests/py/aecg_peer.py edf` writes an EDF+ file of the rhythm of pydicom's
//!    `waveform_ecg.dcm` (12 leads, 10 s) and prints the source samples in µV (pydicom's
//!    `waveform_array`);
//! 2. `save2gdf -f=HL7aECG` converts it into an aECG;
//! 3. `read_aecg` reads that, and every sample is compared with the source (within half a
//!    quantisation step), with biosig reading the aECG back (`save2gdf -f=ASCII`, 1e-5
//!    relative) and with `tests/py/aecg_peer.py parse` (Python's xml.etree, 1e-6 relative);
//!    so are the sampling rate, lead order, patient ID, sex, birth date, acquisition time,
//!    manufacturer and filters.
//!
//! Needs `DXHUB_TEST_PYTHON` (pydicom, numpy), `DXHUB_TEST_CORPUS` (with pydicom/) and
//! `save2gdf` on PATH; without them the test is skipped, or fails under `CI=true`.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::aecg::{looks_like_aecg, read_aecg};
use dxhub_ecg::{Ecg, LeadCode};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Returns false (the test returns early) when a peer is missing outside CI; panics in CI.
fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if ci() {
        panic!(
            "peer {what} is missing (CI=true: a missing peer is a failure); run the tests with scripts/test.sh"
        );
    }
    eprintln!("SKIPPING: peer {what} is missing; run the tests with scripts/test.sh");
    false
}

fn python() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

fn source_dcm() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_CORPUS")
        .map(|c| PathBuf::from(c).join("pydicom").join("waveform_ecg.dcm"))
        .filter(|p| p.exists())
}

fn save2gdf() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("save2gdf"))
        .find(|p| p.is_file())
}

fn script() -> PathBuf {
    std::env::var_os("DXHUB_TEST_PY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/py"))
        .join("aecg_peer.py")
}

fn run_json(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// biosig's ASCII export of an aECG: sampling rate, and channel label → samples in µV (one
/// file per channel, one value a line, in the channel's physical unit).
fn biosig_ascii(save2gdf: &Path, xml: &Path, dir: &Path) -> (f64, Vec<(String, Vec<f64>)>) {
    let dest = dir.join("ascii");
    run(Command::new(save2gdf).arg("-f=ASCII").arg(xml).arg(&dest));
    let header = std::fs::read_to_string(&dest).unwrap();
    let mut rate = 0.0;
    let mut channels = Vec::new();
    // `[Header 2]` lists the channels, each block opening with its `Filename` line.
    let channel_part = header
        .split("[Header 2]")
        .nth(1)
        .unwrap_or_else(|| panic!("biosig ASCII header without [Header 2]: {header}"));
    let channel_part = channel_part.split("\n[").next().unwrap_or("");
    let mut blocks: Vec<String> = Vec::new();
    for line in channel_part.lines() {
        if line.trim_start().starts_with("Filename") {
            blocks.push(String::new());
        }
        if let Some(b) = blocks.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    for section in &blocks {
        let get = |key: &str| {
            section
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once('=')?;
                    (k.trim() == key).then(|| v.split('#').next().unwrap_or("").trim().to_owned())
                })
                .unwrap_or_else(|| panic!("biosig ASCII header: no {key} in {section}"))
        };
        rate = get("SamplingRate").parse().unwrap();
        let file = get("Filename");
        let to_uv = match get("PhysicalUnits").as_str() {
            "uV" => 1.0,
            "mV" => 1e3,
            "V" => 1e6,
            other => panic!("biosig ASCII: channel unit {other:?}"),
        };
        let values: Vec<f64> = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.trim().parse::<f64>().unwrap() * to_uv)
            .collect();
        channels.push((get("Label"), values));
    }
    (rate, channels)
}

fn close(ours: f64, theirs: f64, rel: f64) -> bool {
    (ours - theirs).abs() <= (theirs.abs() * rel).max(1e-3)
}

fn check_variant(python: &Path, save2gdf: &Path, dcm: &Path, name: &str, args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let edf = dir.path().join("in.edf");
    let xml = dir.path().join("out.xml");
    let src = run_json(
        Command::new(python)
            .arg(script())
            .arg("edf")
            .arg(dcm)
            .arg(&edf)
            .args(args),
    );
    run(Command::new(save2gdf).arg("-f=HL7aECG").arg(&edf).arg(&xml));
    let bytes = std::fs::read(&xml).unwrap();
    assert!(looks_like_aecg(&bytes), "{name}: sniff");
    let ecg: Ecg = read_aecg(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));

    // --- against the source samples (pydicom) ---
    let rate = src["sample_rate"].as_f64().unwrap();
    assert_eq!(ecg.sample_rate_hz, rate, "{name}: sample rate");
    let src_leads = src["leads"].as_array().unwrap();
    let names: Vec<&str> = ecg.leads.iter().map(|l| l.code.name()).collect();
    let src_names: Vec<&str> = src_leads
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, src_names, "{name}: lead order");
    assert_eq!(ecg.leads.len(), 12, "{name}: 12 leads");
    assert!(ecg.lead(&LeadCode::AVF).is_some());
    let half_step = src["step_uv"].as_f64().unwrap() / 2.0;
    let mut compared = 0usize;
    for (lead, sl) in ecg.leads.iter().zip(src_leads) {
        let uv = floats(&sl["uv"]);
        assert_eq!(
            lead.samples_uv.len(),
            uv.len(),
            "{name}: lead {} sample count",
            lead.code
        );
        for (i, (ours, theirs)) in lead.samples_uv.iter().zip(&uv).enumerate() {
            let ours = f64::from(*ours);
            assert!(
                (ours - theirs).abs() <= half_step,
                "{name}: lead {} sample {i}: {ours} µV, source {theirs} µV",
                lead.code
            );
            compared += 1;
        }
    }
    assert!(
        compared >= 12 * 5000,
        "{name}: only {compared} samples compared"
    );
    // The samples are not all alike (a reader returning zeros must fail).
    let lead_ii = &ecg.lead(&LeadCode::II).unwrap().samples_uv;
    let (lo, hi) = lead_ii
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(hi - lo > 500.0, "{name}: lead II spans only {lo}..{hi} µV");

    assert_eq!(
        ecg.patient.id.as_deref(),
        src["patient_id"].as_str(),
        "{name}: patient ID"
    );
    assert_eq!(
        ecg.patient.sex.as_deref(),
        src["sex"].as_str(),
        "{name}: sex"
    );
    assert_eq!(
        ecg.patient.birth_date.as_deref(),
        src["birth_date"].as_str(),
        "{name}: birth date"
    );
    assert_eq!(
        ecg.device.manufacturer.as_deref(),
        src["manufacturer"].as_str(),
        "{name}: manufacturer"
    );
    assert_eq!(
        ecg.filters.low_hz,
        src["high_pass_hz"].as_f64(),
        "{name}: high-pass"
    );
    assert_eq!(
        ecg.filters.high_hz,
        src["low_pass_hz"].as_f64(),
        "{name}: low-pass"
    );
    assert_eq!(
        ecg.filters.notch_hz, None,
        "{name}: biosig writes notch \"nan\""
    );
    assert!(!ecg.has_median_beats);

    // --- against biosig reading its own aECG back ---
    let (b_rate, b_channels) = biosig_ascii(save2gdf, &xml, dir.path());
    assert_eq!(ecg.sample_rate_hz, b_rate, "{name}: biosig sample rate");
    let b_names: Vec<&str> = b_channels.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(names, b_names, "{name}: biosig lead labels");
    for (lead, (_, values)) in ecg.leads.iter().zip(&b_channels) {
        assert_eq!(lead.samples_uv.len(), values.len(), "{name}: biosig count");
        for (i, (ours, theirs)) in lead.samples_uv.iter().zip(values).enumerate() {
            assert!(
                close(f64::from(*ours), *theirs, 1e-5),
                "{name}: lead {} sample {i}: {ours} µV, biosig {theirs} µV",
                lead.code
            );
        }
    }

    // --- against an independent parse of the XML (Python's xml.etree) ---
    let py = run_json(Command::new(python).arg(script()).arg("parse").arg(&xml));
    assert_eq!(
        ecg.sample_rate_hz,
        py["sample_rate"].as_f64().unwrap().round(),
        "{name}: etree sample rate"
    );
    let py_leads = py["leads"].as_array().unwrap();
    assert_eq!(py_leads.len(), ecg.leads.len());
    for (lead, pl) in ecg.leads.iter().zip(py_leads) {
        let code = pl["code"].as_str().unwrap();
        assert_eq!(
            code.strip_prefix("MDC_ECG_LEAD_")
                .and_then(LeadCode::from_name)
                .as_ref(),
            Some(&lead.code),
            "{name}: etree code {code}"
        );
        let uv = floats(&pl["uv"]);
        assert_eq!(lead.samples_uv.len(), uv.len());
        for (i, (ours, theirs)) in lead.samples_uv.iter().zip(&uv).enumerate() {
            assert!(
                close(f64::from(*ours), *theirs, 1e-6),
                "{name}: lead {} sample {i}: {ours} µV, etree {theirs} µV",
                lead.code
            );
        }
    }
    assert_eq!(ecg.acquired_at.as_deref(), py["effective_low"].as_str());
    let birth = py["birth_time"].as_str().unwrap();
    assert_eq!(ecg.patient.birth_date.as_deref(), birth.get(..8));
    assert_eq!(ecg.filters.high_hz, py["low_pass_hz"].as_f64());
    assert_eq!(ecg.filters.low_hz, py["high_pass_hz"].as_f64());
    eprintln!(
        "{name}: {} leads × {} samples at {} Hz equal to the source, biosig and etree",
        ecg.leads.len(),
        ecg.samples_per_lead(),
        ecg.sample_rate_hz
    );
}

#[test]
fn biosig_aecg_matches_source_samples() {
    let python = python();
    if !require(
        "DXHUB_TEST_PYTHON (python with pydicom, numpy)",
        python.is_some(),
    ) {
        return;
    }
    let dcm = source_dcm();
    if !require(
        "DXHUB_TEST_CORPUS (with pydicom/waveform_ecg.dcm)",
        dcm.is_some(),
    ) {
        return;
    }
    let save2gdf = save2gdf();
    if !require(
        "save2gdf (apt-get install biosig-tools)",
        save2gdf.is_some(),
    ) {
        return;
    }
    let (python, dcm, save2gdf) = (python.unwrap(), dcm.unwrap(), save2gdf.unwrap());
    check_variant(&python, &save2gdf, &dcm, "uV 1000 Hz", &[]);
    check_variant(
        &python,
        &save2gdf,
        &dcm,
        "mV 500 Hz",
        &["--unit", "mV", "--decimate", "2"],
    );
    check_variant(
        &python,
        &save2gdf,
        &dcm,
        "uV origin 960",
        &["--offset-uv", "960"],
    );
}
