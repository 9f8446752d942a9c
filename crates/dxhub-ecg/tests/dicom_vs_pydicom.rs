//! `dicom::read_dicom` against pydicom on the DICOM ECG waveforms of the test corpus
//! (`pydicom/waveform_ecg*.dcm`: 12-lead, General and Ambulatory ECG).
//!
//! The reference is `tests/py/ecg_dump.py`, run with `DXHUB_TEST_PYTHON` (pydicom 3) on the
//! corpus in `DXHUB_TEST_CORPUS`. Without them the test is skipped, or fails under `CI=true`
//! (the pattern of `crates/dxhub-dicom/tests/json_vs_pydicom.rs`).
//!
//! Compared: the rhythm group pydicom reports (first group with ≥ 8 channels not labelled
//! as median beats) — its sampling frequency, the number and order of leads (by the lead
//! name in pydicom's code meaning), and every sample in µV (pydicom's `waveform_array`,
//! converted from the Channel Sensitivity Units to µV by the script) with a relative
//! tolerance of 1e-3 (absolute 1e-3 µV near zero); the presence of a median-beat group;
//! the Patient ID; the device's statements and measurements (code, value, unit) of the
//! Waveform Annotation Sequence.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::read_dicom;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: &[&str] = &[
    "waveform_ecg.dcm",
    "waveform_ecg_general.dcm",
    "waveform_ecg_ambulatory.dcm",
];

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

fn corpus() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_CORPUS")
        .map(PathBuf::from)
        .filter(|p| p.join("pydicom").is_dir())
}

/// `ecg_dump.py` in `DXHUB_TEST_PY_DIR` (set by scripts/test.sh), else in the repository's
/// `tests/py`.
fn script() -> PathBuf {
    std::env::var_os("DXHUB_TEST_PY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/py"))
        .join("ecg_dump.py")
}

/// "Lead I (Einthoven)" → "I", "Lead aVR" → "aVR".
fn lead_name_of_meaning(meaning: &str) -> String {
    let m = meaning.trim();
    let m = m.strip_prefix("Lead ").unwrap_or(m);
    m.split('(').next().unwrap_or(m).trim().to_owned()
}

fn reference(python: &Path, files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(python)
        .arg(script())
        .args(files)
        .output()
        .expect("run ecg_dump.py");
    assert!(
        out.status.success(),
        "ecg_dump.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn dicom_ecg_samples_match_pydicom() {
    let python = python();
    if !require("DXHUB_TEST_PYTHON (python with pydicom)", python.is_some()) {
        return;
    }
    let corpus = corpus();
    if !require("DXHUB_TEST_CORPUS (with pydicom/)", corpus.is_some()) {
        return;
    }
    let (python, corpus) = (python.unwrap(), corpus.unwrap());
    let files: Vec<PathBuf> = FILES
        .iter()
        .map(|f| corpus.join("pydicom").join(f))
        .filter(|p| p.exists())
        .collect();
    assert!(
        files.iter().any(|p| p.ends_with("waveform_ecg.dcm")),
        "pydicom/waveform_ecg.dcm is missing from the corpus"
    );
    let refs = reference(&python, &files);
    assert_eq!(refs.len(), files.len());

    for (path, r) in files.iter().zip(&refs) {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(r.get("__error__").is_none(), "{name}: pydicom: {r}");
        let ecg =
            read_dicom(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));

        let groups = r["groups"].as_array().unwrap();
        let is_median = |g: &Value| {
            g["label"]
                .as_str()
                .unwrap()
                .to_ascii_uppercase()
                .contains("MEDIAN")
        };
        let rhythm = groups
            .iter()
            .find(|g| !is_median(g) && g["channels"].as_u64().unwrap() >= 8)
            .unwrap_or_else(|| panic!("{name}: no rhythm group in pydicom's reading"));
        assert_eq!(
            ecg.has_median_beats,
            groups.iter().any(is_median),
            "{name}: median beats"
        );

        assert_eq!(
            ecg.sample_rate_hz,
            rhythm["sampling_frequency"].as_f64().unwrap(),
            "{name}: sample rate"
        );
        assert_eq!(
            ecg.patient.id.as_deref().unwrap_or(""),
            r["patient_id"].as_str().unwrap(),
            "{name}: patient ID"
        );

        let statements: Vec<&str> = r["statements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ecg.statements, statements, "{name}: statements");
        let measurements: Vec<(String, f64, String)> = r["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["code"].as_str().unwrap().to_owned(),
                    m["value"].as_f64().unwrap(),
                    m["unit"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let ours: Vec<(String, f64, String)> = ecg
            .device_measurements
            .iter()
            .map(|m| (m.code.clone(), m.value, m.unit.clone()))
            .collect();
        assert_eq!(ours, measurements, "{name}: device measurements");
        if name == "waveform_ecg.dcm" {
            // Known content, so that equal-but-empty lists cannot pass unnoticed.
            assert_eq!(ecg.statements, ["RITMO SINUSALE", "ECG NORMALE"]);
            assert!(
                ecg.device_measurements
                    .iter()
                    .any(|m| m.meaning == "PR Interval" && m.value == 161.0 && m.unit == "ms")
            );
        }

        let ref_leads = rhythm["leads"].as_array().unwrap();
        let names: Vec<String> = ecg.leads.iter().map(|l| l.code.to_string()).collect();
        let ref_names: Vec<String> = ref_leads
            .iter()
            .map(|l| lead_name_of_meaning(l["meaning"].as_str().unwrap()))
            .collect();
        assert_eq!(names, ref_names, "{name}: lead order");

        let mut compared = 0usize;
        for (lead, rl) in ecg.leads.iter().zip(ref_leads) {
            let uv = rl["uv"].as_array().unwrap();
            assert_eq!(
                lead.samples_uv.len(),
                uv.len(),
                "{name}: lead {}: sample count",
                lead.code
            );
            for (i, (ours, theirs)) in lead.samples_uv.iter().zip(uv).enumerate() {
                let theirs = theirs.as_f64().unwrap();
                let ours = f64::from(*ours);
                let tol = (theirs.abs() * 1e-3).max(1e-3);
                assert!(
                    (ours - theirs).abs() <= tol,
                    "{name}: lead {} sample {i}: {ours} µV, pydicom {theirs} µV",
                    lead.code
                );
                compared += 1;
            }
        }
        // The corpus files are 12 leads × 10 s at 1000 Hz; a reader returning nothing
        // would pass the loop above vacuously.
        assert!(
            compared >= 12 * 1000,
            "{name}: only {compared} samples compared"
        );
        eprintln!(
            "{name}: {} leads, {compared} samples equal to pydicom's",
            ecg.leads.len()
        );
    }
}
