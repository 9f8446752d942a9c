//! Helpers shared by the writer tests (`write_*.rs`) and the ecg2dcm cross-check
//! (`dicom_ecg2dcm.rs`): the synthetic ECG, the identifiers, the peers (Python with pydicom,
//! the test corpus) with the skip-outside-CI / fail-under-CI rule of `dicom_vs_pydicom.rs`,
//! and reading back what the writer stored.

#![allow(dead_code, clippy::unwrap_used)]

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dxhub_ecg::write::WriteIds;
use dxhub_ecg::{Device, Ecg, Filters, Lead, LeadCode, Measurement, Patient};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Returns false (the test returns early) when a peer is missing outside CI; panics in CI.
pub fn require(what: &str, present: bool) -> bool {
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

pub fn python() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

pub fn corpus() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_CORPUS")
        .map(PathBuf::from)
        .filter(|p| p.join("pydicom").is_dir())
}

/// A script of `tests/py` (`DXHUB_TEST_PY_DIR` when scripts/test.sh sets it).
pub fn py_script(name: &str) -> PathBuf {
    std::env::var_os("DXHUB_TEST_PY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/py"))
        .join(name)
}

/// Run a `tests/py` script with `python`; its stdout, one JSON value a line.
pub fn run_py(python: &Path, script: &str, args: &[&Path]) -> Vec<Value> {
    let out = Command::new(python)
        .arg(py_script(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{script}: {e}: {l}")))
        .collect()
}

/// "Lead I (Einthoven)" → "I", "Lead aVR" → "aVR".
pub fn lead_name_of_meaning(meaning: &str) -> String {
    let m = meaning.trim();
    let m = m.strip_prefix("Lead ").unwrap_or(m);
    m.split('(').next().unwrap_or(m).trim().to_owned()
}

pub fn ids() -> WriteIds {
    WriteIds {
        study_instance_uid: "2.25.301894532473621497305276493121846752934".into(),
        series_instance_uid: "2.25.301894532473621497305276493121846752935".into(),
        sop_instance_uid: "2.25.301894532473621497305276493121846752936".into(),
        series_number: 7,
        instance_number: 3,
        accession_number: Some("ACC-77".into()),
        institution_name: Some("北京协和医院".into()),
        study_description: Some("Resting ECG".into()),
        series_description: Some("ECG from SCP-ECG".into()),
    }
}

pub const CHINESE_NAME: &str = "王^小明";
pub const STATEMENTS: [&str; 2] = ["窦性心律", "Normal ECG"];

/// 12 leads, 500 Hz, 10 s: smooth waveforms with fractional µV values (so the writer must
/// round), amplitudes from 1 to 6 mV (so the channels need different sensitivities), aVR on
/// an exact 2.5 µV grid (so its sensitivity is that quantum), a Chinese patient name, device,
/// filters, measurements and statements.
pub fn synthetic_ecg() -> Ecg {
    let rate = 500.0;
    let n = 5000;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % 10_000) as f64 / 10_000.0 - 0.5
    };
    let leads = LeadCode::STANDARD_12
        .iter()
        .enumerate()
        .map(|(k, code)| {
            let amp = match code {
                LeadCode::V2 => 3600.0,
                LeadCode::V3 => 6000.0,
                _ => 1000.0,
            };
            let samples_uv = (0..n)
                .map(|i| {
                    let t = i as f64 / rate;
                    let v = amp * (2.0 * std::f64::consts::PI * 1.2 * t + k as f64).sin()
                        + 0.08 * amp * (2.0 * std::f64::consts::PI * 17.0 * t).sin()
                        + 3.3 * k as f64
                        + 7.0 * noise();
                    if *code == LeadCode::AVR {
                        ((v / 2.5).round() * 2.5) as f32
                    } else {
                        v as f32
                    }
                })
                .collect();
            Lead {
                code: code.clone(),
                samples_uv,
            }
        })
        .collect();
    let m = |code: &str, scheme: &str, meaning: &str, value: f64, unit: &str| Measurement {
        code: code.into(),
        scheme: scheme.into(),
        meaning: meaning.into(),
        value,
        unit: unit.into(),
    };
    Ecg {
        leads,
        sample_rate_hz: rate,
        filters: Filters {
            low_hz: Some(0.05),
            high_hz: Some(150.0),
            notch_hz: Some(50.0),
        },
        device_measurements: vec![
            m("5.13.5-7", "SCPECG", "PR Interval", 161.0, "ms"),
            m("5.13.5-9", "SCPECG", "QRS Duration", 75.0, "ms"),
            m("2:15876", "MDC", "QTc interval global", 412.5, "ms"),
            m("2:16016", "MDC", "Ventricular Heart Rate", 72.0, "/min"),
            m("2:16132", "MDC", "QRS axis", -30.5, "deg"),
        ],
        statements: STATEMENTS.iter().map(|s| s.to_string()).collect(),
        patient: Patient {
            id: Some("P-0042".into()),
            name: Some(CHINESE_NAME.into()),
            birth_date: Some("1970-05-06".into()),
            sex: Some("F".into()),
        },
        device: Device {
            serial: Some("SN-2024-0001".into()),
            model: Some("CardioPro 12".into()),
            manufacturer: Some("Acme Medical".into()),
        },
        acquired_at: Some("2024-03-05T08:09:10.5+08:00".into()),
        has_median_beats: false,
    }
}

pub fn open(bytes: &[u8]) -> DefaultDicomObject {
    OpenFileOptions::new().from_reader(bytes).unwrap()
}

/// Channel Sensitivity (µV per LSB) of each channel of the first multiplex group.
pub fn sensitivities(bytes: &[u8]) -> Vec<f64> {
    let obj = open(bytes);
    let group = &obj.get(tags::WAVEFORM_SEQUENCE).unwrap().items().unwrap()[0];
    group
        .get(tags::CHANNEL_DEFINITION_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()
        .iter()
        .map(|ch| {
            let units = &ch
                .get(tags::CHANNEL_SENSITIVITY_UNITS_SEQUENCE)
                .unwrap()
                .items()
                .unwrap()[0];
            assert_eq!(units.get(tags::CODE_VALUE).unwrap().to_str().unwrap(), "uV");
            ch.get(tags::CHANNEL_SENSITIVITY)
                .unwrap()
                .to_float64()
                .unwrap()
        })
        .collect()
}

/// Every sample of `ours` is within half an LSB (plus f32 rounding) of `original`.
pub fn assert_within_half_lsb(original: &Ecg, ours: &Ecg, lsb: &[f64], what: &str) {
    assert_eq!(ours.leads.len(), original.leads.len(), "{what}: leads");
    assert_eq!(lsb.len(), original.leads.len(), "{what}: sensitivities");
    let mut compared = 0usize;
    for ((a, b), q) in original.leads.iter().zip(&ours.leads).zip(lsb) {
        assert_eq!(a.code, b.code, "{what}: lead order");
        assert_eq!(
            a.samples_uv.len(),
            b.samples_uv.len(),
            "{what}: lead {}",
            a.code
        );
        for (i, (x, y)) in a.samples_uv.iter().zip(&b.samples_uv).enumerate() {
            let (x, y) = (f64::from(*x), f64::from(*y));
            assert!(
                (x - y).abs() <= q / 2.0 + 1e-6 * x.abs().max(1.0),
                "{what}: lead {} sample {i}: {y} µV, {x} µV before (LSB {q} µV)",
                a.code
            );
            compared += 1;
        }
    }
    assert!(compared > 0, "{what}: nothing compared");
}
