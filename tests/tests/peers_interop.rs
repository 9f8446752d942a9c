//! Association-level interoperability with third-party peers: DCMTK's `echoscu` and
//! pynetdicom (`tests/py/pyn_send.py`), plus pynetdicom's catalogue of storage SOP classes
//! proposed through the harness SCU.

use dicom_dictionary_std::uids;
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::peers;
use dxhub_e2e::scu::Scu;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn pyn_send(python: &PathBuf) -> Command {
    let mut c = Command::new(python);
    c.arg(peers::py_dir().join("pyn_send.py"))
        .stdin(Stdio::null());
    c
}

fn echoscu(hub: &TestHub, calling: &str) -> Output {
    Command::new(peers::dcmtk("echoscu").expect("echoscu"))
        .env("TCP_NODELAY", "1")
        .args([
            "-aet",
            calling,
            "-aec",
            "DXHUB",
            "127.0.0.1",
            &hub.dicom.port().to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run echoscu")
}

#[test]
fn echoscu_verification() {
    if !peers::require("DCMTK echoscu", peers::dcmtk("echoscu").is_some()) {
        return;
    }
    let started = Instant::now();
    let hub = TestHub::spawn(HubOptions::default());

    let ok = echoscu(&hub, "CLINIC");
    assert!(
        ok.status.success(),
        "echoscu as CLINIC: {:?}\n{}",
        ok.status,
        output_text(&ok)
    );

    let refused = echoscu(&hub, "STRANGER");
    let text = output_text(&refused);
    assert!(
        !refused.status.success(),
        "echoscu as an unregistered AE must fail:\n{text}"
    );
    let lower = text.to_lowercase();
    assert!(
        lower.contains("calling ae title not recognized"),
        "echoscu should report the rejection reason (calling AE title not recognized):\n{text}"
    );
    eprintln!("echoscu: {:?}", started.elapsed());
}

/// DCMTK's `storescu` with a user name asking for a positive User Identity response
/// (`-usr … -rsp`): without the response DCMTK gives up on the association.
#[test]
fn storescu_with_user_identity_asking_a_positive_response() {
    let Some(storescu) = peers::dcmtk("storescu") else {
        peers::require("DCMTK storescu", false);
        return;
    };
    let Some(corpus) = peers::corpus() else {
        peers::require("DXHUB_TEST_CORPUS (pydicom corpus)", false);
        return;
    };
    let hub = TestHub::spawn(HubOptions::default());
    let out = Command::new(storescu)
        .env("TCP_NODELAY", "1")
        .args([
            "-aet",
            "CLINIC",
            "-aec",
            "DXHUB",
            "-usr",
            "clinic.pacs",
            "-rsp",
        ])
        .args(["127.0.0.1", &hub.dicom.port().to_string()])
        .arg(corpus.join("pydicom/CT_small.dcm"))
        .stdin(Stdio::null())
        .output()
        .expect("run storescu");
    assert!(out.status.success(), "{}", output_text(&out));
}

/// Storage SOP classes pynetdicom proposes that dxhub deliberately refuses, with the reason.
/// dxhub's rule (crates/dxhub-dicom/src/sop.rs) is "every storage SOP class of the DICOM
/// standard, current and retired", so this list is expected to stay empty.
const REFUSED_ON_PURPOSE: &[(&str, &str)] = &[];

#[test]
fn every_pynetdicom_storage_class_is_accepted() {
    let Some(python) = peers::python() else {
        peers::require("DXHUB_TEST_PYTHON (venv with pynetdicom)", false);
        return;
    };
    let started = Instant::now();
    let out = pyn_send(&python)
        .args(["--list-storage-classes", "--with-names"])
        .output()
        .expect("run pyn_send.py");
    assert!(
        out.status.success(),
        "pyn_send.py --list-storage-classes: {}",
        output_text(&out)
    );
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON list");
    let mut classes: Vec<(String, String)> = list
        .iter()
        .map(|v| {
            (
                v["uid"].as_str().expect("uid").to_owned(),
                v["keyword"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    classes.sort();
    classes.dedup_by(|a, b| a.0 == b.0);
    assert!(
        classes.len() > 100,
        "pynetdicom knows many storage classes: {}",
        classes.len()
    );

    let hub = TestHub::spawn(HubOptions::default());
    let ts = vec![
        uids::EXPLICIT_VR_LITTLE_ENDIAN.to_owned(),
        uids::IMPLICIT_VR_LITTLE_ENDIAN.to_owned(),
    ];
    let mut refused = Vec::new();
    for batch in classes.chunks(120) {
        let contexts: Vec<(String, Vec<String>)> = batch
            .iter()
            .map(|(uid, _)| (uid.clone(), ts.clone()))
            .collect();
        let scu = Scu::connect(hub.dicom, "CLINIC", "DXHUB", &contexts, 1 << 20)
            .expect("association accepted");
        for (i, (uid, keyword)) in batch.iter().enumerate() {
            let id = (i * 2 + 1) as u8;
            match scu.results.get(&id) {
                Some(0) => {
                    let (_, chosen) = &scu.accepted[&id];
                    assert!(
                        ts.contains(chosen),
                        "{keyword} ({uid}): accepted with unproposed TS {chosen}"
                    );
                }
                other => refused.push((uid.clone(), keyword.clone(), other.copied())),
            }
        }
        scu.release().expect("release");
    }
    let unexpected: Vec<_> = refused
        .iter()
        .filter(|(uid, _, _)| !REFUSED_ON_PURPOSE.iter().any(|(u, _)| u == uid))
        .collect();
    for (uid, keyword, result) in &refused {
        eprintln!("refused: {keyword} {uid} (result {result:?})");
    }
    assert!(
        unexpected.is_empty(),
        "{} of pynetdicom's {} storage SOP classes refused by dxhub:\n{}",
        unexpected.len(),
        classes.len(),
        unexpected
            .iter()
            .map(|(u, k, r)| format!("  {k} {u} (result {r:?})"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "{} storage classes accepted in {:?}",
        classes.len() - refused.len(),
        started.elapsed()
    );
}

#[test]
fn non_storage_class_is_refused_in_negotiation() {
    let Some(python) = peers::python() else {
        peers::require("DXHUB_TEST_PYTHON (venv with pynetdicom)", false);
        return;
    };
    let started = Instant::now();
    let hub = TestHub::spawn(HubOptions::default());
    let out = pyn_send(&python)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &hub.dicom.port().to_string(),
            "--aet",
            "CLINIC",
            "--aec",
            "DXHUB",
        ])
        .args(["--propose-only", "1.2.840.10008.5.1.4.31"]) // Modality Worklist Information Model – FIND
        .output()
        .expect("run pyn_send.py");
    let text = output_text(&out);
    assert!(
        out.status.success(),
        "the association itself is accepted: {text}"
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("pyn_send.py output {line:?}: {e}"));
    assert_eq!(v["accepted"], false, "{v}");
    assert_eq!(v["result"], 3, "abstract-syntax-not-supported: {v}");
    eprintln!("non-storage negotiation: {:?}", started.elapsed());
}
