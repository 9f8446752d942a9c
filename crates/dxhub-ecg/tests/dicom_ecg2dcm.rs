//! `read_dicom` on DICOM General ECGs made by a third-party PyPI converter, PyPI `ecg2dcm`
//! 1.3.1 (GE MUSE XML → General ECG Waveform Storage), against pydicom's reading.
//!
//! `tests/py/ecg2dcm_make.py`, run with `DXHUB_TEST_ECG2DCM_PYTHON` (the venv of
//! `tests/py/ecg2dcm_requirements.txt`: ecg2dcm needs pydicom < 3, the main venv has
//! pydicom 3), writes GE MUSE XML from the real samples of the corpus' `pydicom/
//! waveform_ecg.dcm` and converts it with ecg2dcm: an 8-lead rhythm + median-beat export with
//! measurements, statements and a Chinese patient name (ecg2dcm derives III, aVR, aVL, aVF and
//! scales by a Channel Sensitivity Correction Factor of 1.25), and a 12-lead 500 Hz export at
//! GE's 4.88 µV per bit. ecg2dcm's own IOD constraint check must pass on both.
//!
//! Compared with `tests/py/ecg_dump.py` under `DXHUB_TEST_PYTHON` (pydicom 3), as in
//! `dicom_vs_pydicom.rs`: the rhythm group (first group with ≥ 8 channels not labelled as
//! median beats), its sampling frequency, leads (by their CID 3001 code, ecg2dcm's MDC
//! `2:n`) and every sample (relative 1e-3, absolute 1e-3 µV), the median-beat flag, Patient
//! ID, statements and measurements; and, from what the XML said, the patient, the filters and
//! the acquisition time; and the samples against the source file's (exact for the 1.25 µV
//! export, within half of 4.88 µV for the other).
//!
//! Without the peers the test is skipped, or fails under `CI=true`.

#![allow(clippy::unwrap_used)]

mod write_common;

use dxhub_ecg::dicom::GENERAL_ECG;
use dxhub_ecg::{Filters, LeadCode, read_dicom};
use serde_json::Value;
use std::path::{Path, PathBuf};
use write_common::*;

fn ecg2dcm_python() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_ECG2DCM_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

fn opt_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn opt_str(v: &Value) -> Option<&str> {
    v.as_str()
}

#[test]
fn ecg2dcm_general_ecgs_read_like_pydicom() {
    let maker = ecg2dcm_python();
    if !require(
        "DXHUB_TEST_ECG2DCM_PYTHON (python with ecg2dcm, tests/py/ecg2dcm_requirements.txt)",
        maker.is_some(),
    ) {
        return;
    }
    let python = python();
    if !require("DXHUB_TEST_PYTHON (python with pydicom)", python.is_some()) {
        return;
    }
    let corpus = corpus();
    if !require("DXHUB_TEST_CORPUS (with pydicom/)", corpus.is_some()) {
        return;
    }
    let (maker, python, corpus) = (maker.unwrap(), python.unwrap(), corpus.unwrap());
    let source = corpus.join("pydicom").join("waveform_ecg.dcm");
    assert!(
        source.exists(),
        "pydicom/waveform_ecg.dcm is missing from the corpus"
    );
    let source_ecg = read_dicom(&std::fs::read(&source).unwrap()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let made = run_py(&maker, "ecg2dcm_make.py", &[&source, dir.path()]);
    assert_eq!(made.len(), 2, "{made:?}");
    for m in &made {
        assert!(m.get("__error__").is_none(), "ecg2dcm_make.py: {m}");
    }
    let paths: Vec<PathBuf> = made
        .iter()
        .map(|m| PathBuf::from(m["path"].as_str().unwrap()))
        .collect();
    let path_refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let dumps = run_py(&python, "ecg_dump.py", &path_refs);
    assert_eq!(dumps.len(), made.len());

    for ((m, path), r) in made.iter().zip(&paths).zip(&dumps) {
        let name = path.file_name().unwrap().to_string_lossy();
        let expected = &m["expected"];
        assert_eq!(
            m["conformance"],
            serde_json::json!([]),
            "{name}: ecg2dcm's own IOD check"
        );
        assert!(r.get("__error__").is_none(), "{name}: pydicom: {r}");
        assert_eq!(r["sop_class_uid"], GENERAL_ECG, "{name}");
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
        assert_eq!(ecg.has_median_beats, groups.iter().any(is_median), "{name}");
        assert_eq!(
            ecg.has_median_beats,
            expected["has_median"].as_bool().unwrap()
        );
        assert_eq!(
            ecg.sample_rate_hz,
            rhythm["sampling_frequency"].as_f64().unwrap(),
            "{name}: sample rate"
        );
        assert_eq!(
            ecg.sample_rate_hz,
            expected["sampling_frequency"].as_f64().unwrap()
        );

        assert_eq!(
            ecg.patient.id.as_deref().unwrap_or(""),
            r["patient_id"].as_str().unwrap(),
            "{name}: patient ID"
        );
        let p = &expected["patient"];
        assert_eq!(ecg.patient.id.as_deref(), opt_str(&p["id"]), "{name}");
        assert_eq!(ecg.patient.name.as_deref(), opt_str(&p["name"]), "{name}");
        assert_eq!(ecg.patient.sex.as_deref(), opt_str(&p["sex"]), "{name}");
        assert_eq!(
            ecg.patient.birth_date.as_deref(),
            opt_str(&p["birth_date"]),
            "{name}"
        );
        let f = &expected["filters"];
        assert_eq!(
            ecg.filters,
            Filters {
                low_hz: opt_f64(&f["low"]),
                high_hz: opt_f64(&f["high"]),
                notch_hz: opt_f64(&f["notch"]),
            },
            "{name}: filters"
        );
        assert_eq!(
            ecg.acquired_at.as_deref(),
            opt_str(&expected["acquired_at"]),
            "{name}"
        );

        let statements: Vec<&str> = r["statements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ecg.statements, statements, "{name}: statements");
        assert_eq!(
            ecg.statements,
            expected["statements"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect::<Vec<_>>()
        );
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
        if expected["has_median"].as_bool().unwrap() {
            // Known content: the MUSE PR interval, coded by ecg2dcm from TID 3713.
            assert!(
                ecg.device_measurements.iter().any(|m| m.code == "2:15872"
                    && m.scheme == "MDC"
                    && m.value == 161.0
                    && m.unit == "ms"),
                "{name}: {:?}",
                ecg.device_measurements
            );
            assert_eq!(ecg.device_measurements.len(), 9, "{name}");
        }

        // Leads: ours, pydicom's code through CID 3001, and the XML's 12.
        let ref_leads = rhythm["leads"].as_array().unwrap();
        let theirs: Vec<LeadCode> = ref_leads
            .iter()
            .map(|l| {
                let code = l["code"].as_str().unwrap();
                LeadCode::from_cid3001(code).unwrap_or_else(|| panic!("{name}: code {code}"))
            })
            .collect();
        let ours: Vec<LeadCode> = ecg.leads.iter().map(|l| l.code.clone()).collect();
        assert_eq!(ours, theirs, "{name}: leads");
        let xml_leads: Vec<LeadCode> = expected["leads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| LeadCode::from_name(v.as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(ours, xml_leads, "{name}: leads of the XML");

        let mut compared = 0usize;
        for (lead, rl) in ecg.leads.iter().zip(ref_leads) {
            let uv = rl["uv"].as_array().unwrap();
            assert_eq!(lead.samples_uv.len(), uv.len(), "{name}: {}", lead.code);
            for (i, (ours, theirs)) in lead.samples_uv.iter().zip(uv).enumerate() {
                let theirs = theirs.as_f64().unwrap();
                let ours = f64::from(*ours);
                assert!(
                    (ours - theirs).abs() <= (theirs.abs() * 1e-3).max(1e-3),
                    "{name}: lead {} sample {i}: {ours} µV, pydicom {theirs} µV",
                    lead.code
                );
                compared += 1;
            }
        }
        let samples = expected["samples"].as_u64().unwrap() as usize;
        assert_eq!(compared, 12 * samples, "{name}: samples compared");

        // Against the source: the independent leads went through MUSE and ecg2dcm unchanged
        // but for the requantisation (none at 1.25 µV; ≤ 2.44 µV at 4.88).
        let step = (source_ecg.sample_rate_hz / ecg.sample_rate_hz).round() as usize;
        let quantum = expected["units_per_bit"].as_f64().unwrap();
        for code in [LeadCode::I, LeadCode::II, LeadCode::V1, LeadCode::V6] {
            let src = &source_ecg.lead(&code).unwrap().samples_uv;
            let got = &ecg.lead(&code).unwrap().samples_uv;
            assert_eq!(got.len(), src.len() / step, "{name}: {code}");
            for (i, (g, s)) in got.iter().zip(src.iter().step_by(step)).enumerate() {
                let tol = if quantum == 1.25 {
                    1e-3
                } else {
                    quantum / 2.0 + 1e-3
                };
                assert!(
                    (f64::from(*g) - f64::from(*s)).abs() <= tol,
                    "{name}: {code} sample {i}: {g} µV, source {s} µV"
                );
            }
        }
        eprintln!(
            "{name}: {} leads, {compared} samples equal to pydicom's",
            ecg.leads.len()
        );
    }
}
