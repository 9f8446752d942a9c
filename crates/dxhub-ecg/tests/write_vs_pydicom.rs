//! What `write::to_dicom` stores, read by independent readers:
//!
//! - pydicom (`DXHUB_TEST_PYTHON`): `tests/py/ecg_dump.py` gives its `waveform_array` samples,
//!   which must equal `read_dicom`'s (relative 1e-3, absolute 1e-3 µV) and lie within half an
//!   LSB of the samples written; `tests/py/ecg_write_check.py` gives its decoding of the
//!   attributes (the Chinese patient name through ISO_IR 192, dates, device, channel
//!   definitions, annotations and their group references) and every warning it raised, which
//!   must be none. For a 12-lead, a General (15 leads, two of them beyond the standard 12)
//!   and an Ambulatory (3 leads at 128 Hz) ECG.
//! - DCMTK's `dcmdump` parses the same files and prints no warning or error.
//! - pydicom's `waveform_ecg.dcm` (`DXHUB_TEST_CORPUS`) → `read_dicom` → `to_dicom`: pydicom's
//!   samples of our file equal those of the original within half our LSB, and since the
//!   original's 1.25 µV quantum is kept, exactly.
//! - dicom3tools' `dciodvfy` (a scripts/test.sh peer) finds no IOD error.
//!
//! Without Python or the corpus a test is skipped, or fails under `CI=true`.

#![allow(clippy::unwrap_used)]

mod write_common;

use dxhub_ecg::dicom::{AMBULATORY_ECG, GENERAL_ECG, TWELVE_LEAD_ECG};
use dxhub_ecg::write::to_dicom;
use dxhub_ecg::{Ecg, Lead, LeadCode, read_dicom};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use write_common::*;

/// The three ECGs (12-lead, General, Ambulatory) written to `dir`, with their SOP class.
fn written(dir: &Path) -> Vec<(PathBuf, Ecg, Vec<u8>, &'static str)> {
    let twelve = synthetic_ecg();
    let mut general = twelve.clone();
    for name in ["V4R", "ECG1", "X"] {
        general.leads.push(Lead {
            code: LeadCode::Other(name.into()),
            samples_uv: general.leads[1].samples_uv.clone(),
        });
    }
    let mut ambulatory = twelve.clone();
    ambulatory.leads.truncate(3);
    ambulatory.sample_rate_hz = 128.0;
    [
        ("twelve.dcm", twelve, TWELVE_LEAD_ECG),
        ("general.dcm", general, GENERAL_ECG),
        ("ambulatory.dcm", ambulatory, AMBULATORY_ECG),
    ]
    .into_iter()
    .map(|(name, ecg, sop)| {
        let bytes = to_dicom(&ecg, &ids()).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        (path, ecg, bytes, sop)
    })
    .collect()
}

/// Every sample of pydicom's first group, per lead, in µV.
fn pydicom_leads(dump: &Value) -> Vec<(String, Vec<f64>)> {
    dump["groups"][0]["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                lead_name_of_meaning(l["meaning"].as_str().unwrap()),
                l["uv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn pydicom_reads_what_we_write() {
    let python = python();
    if !require("DXHUB_TEST_PYTHON (python with pydicom)", python.is_some()) {
        return;
    }
    let python = python.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files = written(dir.path());
    let paths: Vec<&Path> = files.iter().map(|f| f.0.as_path()).collect();
    let dumps = run_py(&python, "ecg_dump.py", &paths);
    let checks = run_py(&python, "ecg_write_check.py", &paths);
    assert_eq!((dumps.len(), checks.len()), (3, 3));

    for ((path, ecg, bytes, sop), (dump, check)) in files.iter().zip(dumps.iter().zip(&checks)) {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(dump.get("__error__").is_none(), "{name}: {dump}");
        assert!(check.get("__error__").is_none(), "{name}: {check}");
        assert_eq!(check["warnings"], json!([]), "{name}: pydicom warnings");

        // Samples: pydicom = read_dicom, and within half an LSB of what was written.
        let ours = read_dicom(bytes).unwrap();
        let lsb = sensitivities(bytes);
        let theirs = pydicom_leads(dump);
        assert_eq!(theirs.len(), ecg.leads.len(), "{name}: channels");
        let mut compared = 0usize;
        for (((lead, (theirs_name, uv)), ours_lead), q) in
            ecg.leads.iter().zip(&theirs).zip(&ours.leads).zip(&lsb)
        {
            assert_eq!(uv.len(), lead.samples_uv.len(), "{name}: {}", lead.code);
            // Lead names through the Code Meaning, as pydicom users see them; the local
            // code of a lead outside CID 3001 has the name itself as meaning.
            assert_eq!(theirs_name, lead.code.name(), "{name}: lead order");
            for (i, ((orig, mine), py)) in lead
                .samples_uv
                .iter()
                .zip(&ours_lead.samples_uv)
                .zip(uv)
                .enumerate()
            {
                let (orig, mine) = (f64::from(*orig), f64::from(*mine));
                assert!(
                    (mine - py).abs() <= (py.abs() * 1e-3).max(1e-3),
                    "{name}: {} sample {i}: read_dicom {mine} µV, pydicom {py} µV",
                    lead.code
                );
                assert!(
                    (orig - py).abs() <= q / 2.0 + 1e-6 * orig.abs().max(1.0),
                    "{name}: {} sample {i}: pydicom {py} µV, written {orig} µV (LSB {q})",
                    lead.code
                );
                compared += 1;
            }
        }
        assert_eq!(compared, ecg.leads.len() * ecg.samples_per_lead());

        // Attributes as pydicom decodes them.
        assert_eq!(check["transfer_syntax"], "1.2.840.10008.1.2.1", "{name}");
        assert_eq!(check["sop_class_uid"], *sop, "{name}");
        assert_eq!(check["specific_character_set"], "ISO_IR 192", "{name}");
        assert_eq!(check["modality"], "ECG", "{name}");
        assert_eq!(
            check["patient"],
            json!({"name": CHINESE_NAME, "id": "P-0042", "birth_date": "19700506", "sex": "F"}),
            "{name}"
        );
        assert_eq!(check["institution"], "北京协和医院", "{name}");
        assert_eq!(
            check["device"],
            json!({"manufacturer": "Acme Medical", "model": "CardioPro 12", "serial": "SN-2024-0001"}),
            "{name}"
        );
        assert_eq!(check["study"]["date"], "20240305", "{name}");
        assert_eq!(check["study"]["time"], "080910.5", "{name}");
        assert_eq!(check["study"]["accession"], "ACC-77", "{name}");
        assert_eq!(check["content_date"], "20240305", "{name}");
        assert_eq!(check["content_time"], "080910.5", "{name}");
        assert_eq!(check["acquisition_datetime"], "20240305080910.5+0800");
        assert_eq!(check["timezone_offset"], "+0800");
        assert_eq!(check["acquisition_context_items"], 0, "{name}");

        let groups = check["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{name}");
        let g = &groups[0];
        assert_eq!(g["label"], "RHYTHM");
        assert_eq!(g["originality"], "ORIGINAL");
        assert_eq!(g["interpretation"], "SS");
        assert_eq!(g["bits_allocated"], 16);
        assert_eq!(g["sampling_frequency"], ecg.sample_rate_hz, "{name}");
        assert_eq!(g["samples"], ecg.samples_per_lead(), "{name}");
        for (ch, (lead, q)) in g["channel_defs"]
            .as_array()
            .unwrap()
            .iter()
            .zip(ecg.leads.iter().zip(&lsb))
        {
            assert_eq!(ch["label"], lead.code.name(), "{name}");
            assert_eq!(ch["sensitivity"], *q, "{name}");
            assert_eq!(
                (&ch["unit"], &ch["unit_scheme"], &ch["unit_meaning"]),
                (&json!("uV"), &json!("UCUM"), &json!("microvolt"))
            );
            assert_eq!(
                (
                    &ch["correction"],
                    &ch["baseline"],
                    &ch["skew"],
                    &ch["bits_stored"]
                ),
                (&json!(1.0), &json!(0.0), &json!(0.0), &json!(16))
            );
            assert_eq!(
                (&ch["low"], &ch["high"], &ch["notch"]),
                (&json!(0.05), &json!(150.0), &json!(50.0))
            );
            let standard = !matches!(lead.code, LeadCode::Other(ref n) if n == "ECG1");
            assert_eq!(
                ch["scheme"],
                if standard { "SCPECG" } else { "99DXHUB" },
                "{name}: {}",
                lead.code
            );
            if standard {
                assert!(
                    ch["code"].as_str().unwrap().starts_with("5.6.3-9-"),
                    "{name}: {ch}"
                );
                assert_eq!(ch["version"], "1.3");
            }
        }

        let annotations = check["annotations"].as_array().unwrap();
        assert_eq!(annotations.len(), ecg.device_measurements.len() + 2);
        for (a, m) in annotations.iter().zip(&ecg.device_measurements) {
            assert_eq!(a["refs"], json!([1, 0]));
            assert_eq!(
                (&a["code"], &a["scheme"], &a["meaning"], &a["unit"]),
                (
                    &json!(m.code),
                    &json!(m.scheme),
                    &json!(m.meaning),
                    &json!(m.unit)
                )
            );
            assert_eq!(a["value"].as_f64().unwrap(), m.value);
        }
        let texts: Vec<&Value> = annotations[ecg.device_measurements.len()..]
            .iter()
            .map(|a| {
                assert_eq!(a["refs"], json!([1, 0]));
                &a["text"]
            })
            .collect();
        assert_eq!(texts, [&json!(STATEMENTS[0]), &json!(STATEMENTS[1])]);
        eprintln!("{name}: pydicom agrees on {compared} samples and the attributes");
    }
}

fn on_path(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() || !o.stdout.is_empty() || !o.stderr.is_empty())
}

#[test]
fn dcmdump_parses_what_we_write_without_warnings() {
    if !require("dcmdump (DCMTK)", on_path("dcmdump")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (path, _, _, sop) in written(dir.path()) {
        let out = Command::new("dcmdump").arg(&path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: dcmdump failed: {stderr}",
            path.display()
        );
        assert!(
            stderr.trim().is_empty(),
            "{}: dcmdump warnings: {stderr}",
            path.display()
        );
        let keyword = match sop {
            TWELVE_LEAD_ECG => "TwelveLeadECGWaveformStorage",
            GENERAL_ECG => "GeneralECGWaveformStorage",
            _ => "AmbulatoryECGWaveformStorage",
        };
        for expected in [
            keyword,
            "Little Endian Explicit",
            "[ISO_IR 192]",
            CHINESE_NAME,
            "WaveformData",
            "WaveformAnnotationSequence",
        ] {
            assert!(
                stdout.contains(expected),
                "{}: no {expected:?} in dcmdump's output",
                path.display()
            );
        }
    }
}

#[test]
fn dciodvfy_finds_no_iod_error() {
    if !on_path("dciodvfy") {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!(
                "peer dciodvfy (Debian dicom3tools) is missing (CI=true: a missing peer is a failure)"
            );
        }
        eprintln!("SKIPPING: dciodvfy (Debian dicom3tools) is not installed; run scripts/test.sh");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (path, _, _, sop) in written(dir.path()) {
        let out = Command::new("dciodvfy").arg(&path).output().unwrap();
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let iod = match sop {
            TWELVE_LEAD_ECG => "TwelveLeadECG",
            GENERAL_ECG => "GeneralECG",
            _ => "AmbulatoryECG",
        };
        assert!(
            report.lines().any(|l| l.trim() == iod),
            "{}: dciodvfy did not check it as {iod}: {report}",
            path.display()
        );
        let errors: Vec<&str> = report.lines().filter(|l| l.contains("Error")).collect();
        assert!(errors.is_empty(), "{}: {report}", path.display());
    }
}

#[test]
fn pydicom_corpus_ecg_survives_read_and_write() {
    let python = python();
    if !require("DXHUB_TEST_PYTHON (python with pydicom)", python.is_some()) {
        return;
    }
    let corpus = corpus();
    if !require("DXHUB_TEST_CORPUS (with pydicom/)", corpus.is_some()) {
        return;
    }
    let (python, corpus) = (python.unwrap(), corpus.unwrap());
    let original = corpus.join("pydicom").join("waveform_ecg.dcm");
    assert!(
        original.exists(),
        "pydicom/waveform_ecg.dcm is missing from the corpus"
    );
    let ecg = read_dicom(&std::fs::read(&original).unwrap()).unwrap();
    let bytes = to_dicom(&ecg, &ids()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.dcm");
    std::fs::write(&ours, &bytes).unwrap();

    let dumps = run_py(&python, "ecg_dump.py", &[&original, &ours]);
    let (before, after) = (&dumps[0], &dumps[1]);
    assert!(before.get("__error__").is_none(), "{before}");
    assert!(after.get("__error__").is_none(), "{after}");
    // The original's rhythm group is its first; ours has only that one.
    assert_eq!(before["groups"][0]["label"], "RHYTHM");
    assert_eq!(after["groups"].as_array().unwrap().len(), 1);
    assert_eq!(
        after["groups"][0]["sampling_frequency"],
        before["groups"][0]["sampling_frequency"]
    );
    assert_eq!(after["statements"], before["statements"]);
    assert_eq!(after["measurements"], before["measurements"]);
    assert_eq!(after["patient_id"], before["patient_id"]);

    let lsb = sensitivities(&bytes);
    let (a, b) = (pydicom_leads(before), pydicom_leads(after));
    assert_eq!(a.len(), 12);
    assert_eq!(
        a.iter().map(|l| &l.0).collect::<Vec<_>>(),
        b.iter().map(|l| &l.0).collect::<Vec<_>>(),
        "lead order"
    );
    let mut compared = 0usize;
    for (((lead, x), (_, y)), q) in a.iter().zip(&b).zip(&lsb) {
        assert_eq!(x.len(), y.len(), "{lead}");
        for (i, (x, y)) in x.iter().zip(y).enumerate() {
            assert!(
                (x - y).abs() <= q / 2.0,
                "{lead} sample {i}: {y} µV, {x} µV in the original (LSB {q})"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 12 * 10_000);
    // The original's own quantum (1.25 µV) is kept, so nothing was rounded.
    assert!(lsb.iter().all(|&q| q == 1.25), "{lsb:?}");
    assert_eq!(a, b);
    eprintln!("waveform_ecg.dcm: {compared} samples identical after read_dicom → to_dicom");
}
