//! `scp::read_scp` on SCP-ECG records written by a third party: Debian biosig-tools'
//! `save2gdf`, fed with the 12-lead rhythm of pydicom's `waveform_ecg.dcm` as an EDF file
//! (`tests/py/scp_make_edf.py`), converted at test time in a temporary directory.
//!
//! biosig 2.5.0's writer of SCP-ECG 1.x/2.x (`-f=SCP_ECG`, `-f=SCP2`) crashes or overwrites
//! its own sections on file input, so the record is written as SCP-ECG 3 (`-f=SCP3`): sections
//! 0, 1, 3 and 12 (long-term rhythm data: uncompressed, multiplexed 16-bit samples with one AVM
//! per lead). The reference readings
//! are biosig's own reading of that record (`save2gdf -CSV`, which writes the whole CSV and
//! then crashes on exit: the exit status is ignored, the row count checked) and the original
//! samples × 1251/1250 (biosig rounds the AVM of 1250 nV up to 1251 nV and keeps the digital
//! values: a 0.08 % gain error of biosig's, not ours).
//!
//! Peers: `DXHUB_TEST_PYTHON` (pydicom, numpy), `DXHUB_TEST_CORPUS` (with pydicom/) and
//! `save2gdf` on PATH; missing → skipped, or a failure under `CI=true`.

#![allow(clippy::unwrap_used)]

use dxhub_ecg::LeadCode;
use dxhub_ecg::scp::{ScpError, crc_ccitt, looks_like_scp, read_scp};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

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

fn script(name: &str) -> PathBuf {
    std::env::var_os("DXHUB_TEST_PY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/py"))
        .join(name)
}

fn on_path(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// biosig's reading: a CSV with a header `"I [uV]",…` and one row per sample.
fn biosig_csv(save2gdf_input: &Path, dir: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let csv = dir.join("biosig.csv");
    // Exit status ignored: save2gdf 2.5.0 writes the CSV, then crashes in sclose.
    let _ = Command::new("save2gdf")
        .arg("-CSV")
        .arg(save2gdf_input)
        .arg(&csv)
        .output()
        .unwrap();
    let text = std::fs::read_to_string(&csv).expect("save2gdf -CSV wrote no CSV");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|h| h.trim_matches('"').trim_end_matches(" [uV]").to_owned())
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect())
        .collect();
    (header, rows)
}

#[test]
fn scp3_from_save2gdf_matches_biosig_and_the_original_samples() {
    let python = python();
    if !require("DXHUB_TEST_PYTHON (python with pydicom)", python.is_some()) {
        return;
    }
    let corpus = corpus();
    if !require("DXHUB_TEST_CORPUS (with pydicom/)", corpus.is_some()) {
        return;
    }
    if !require("save2gdf (biosig-tools)", on_path("save2gdf")) {
        return;
    }
    let (python, corpus) = (python.unwrap(), corpus.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (edf, truth_path, scp) = (
        dir.path().join("in.edf"),
        dir.path().join("truth.json"),
        dir.path().join("out.scp"),
    );
    run(Command::new(&python)
        .arg(script("scp_make_edf.py"))
        .arg(corpus.join("pydicom/waveform_ecg.dcm"))
        .arg(&edf)
        .arg(&truth_path));
    run(Command::new("save2gdf").arg("-f=SCP3").arg(&edf).arg(&scp));
    let bytes = std::fs::read(&scp).unwrap();
    let truth: Value = serde_json::from_slice(&std::fs::read(&truth_path).unwrap()).unwrap();

    assert!(looks_like_scp(&bytes));
    let ecg = read_scp(&bytes).unwrap_or_else(|e| panic!("read_scp: {e}"));
    assert_eq!(ecg.sample_rate_hz, 1000.0);
    let names: Vec<&str> = ecg.leads.iter().map(|l| l.code.name()).collect();
    let truth_leads = truth["leads"].as_array().unwrap();
    let truth_names: Vec<&str> = truth_leads
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, truth_names, "lead order");
    assert_eq!(ecg.leads[2].code, LeadCode::III);
    assert_eq!(ecg.patient.id.as_deref(), Some("642341 F 23-JAN-1971 X"));
    assert_eq!(ecg.acquired_at.as_deref(), Some("20130125105918+0000"));
    assert_eq!(ecg.device.model.as_deref(), Some("Cart1"));
    assert_eq!(ecg.device.manufacturer.as_deref(), Some("Manufacturer"));

    let (header, rows) = biosig_csv(&scp, dir.path());
    assert_eq!(header, truth_names, "biosig's lead order");
    assert_eq!(rows.len(), 10_000, "biosig's sample count");
    let mut compared = 0;
    for (j, (lead, tl)) in ecg.leads.iter().zip(truth_leads).enumerate() {
        let uv = tl["uv"].as_array().unwrap();
        assert_eq!(lead.samples_uv.len(), uv.len(), "lead {}", lead.code);
        // biosig keeps the EDF's digital values (steps of 1.25 µV) but declares an AVM of
        // 1251 nV (it rounds the AVM up without rescaling): every sample is the original
        // × 1251/1250, exactly.
        let scale = 1251.0 / 1250.0;
        for (i, (ours, orig)) in lead.samples_uv.iter().zip(uv).enumerate() {
            let ours = f64::from(*ours);
            let theirs = rows[i][j];
            assert!(
                (ours - theirs).abs() <= (theirs.abs() * 1e-4).max(2e-3),
                "lead {} sample {i}: {ours} µV, biosig {theirs} µV",
                lead.code
            );
            let orig = orig.as_f64().unwrap();
            assert!(
                (ours - orig * scale).abs() <= 1e-3,
                "lead {} sample {i}: {ours} µV, original {orig} µV × 1251/1250",
                lead.code
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 12 * 10_000);

    // The same record, one sample byte changed: the record CRC catches it; with the record CRC
    // fixed, section 12's does.
    let mut bad = bytes.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0x40;
    assert!(matches!(read_scp(&bad), Err(ScpError::RecordCrc { .. })));
    let crc = crc_ccitt(&bad[2..]);
    bad[..2].copy_from_slice(&crc.to_le_bytes());
    let e = read_scp(&bad).unwrap_err().to_string();
    assert!(e.starts_with("section 12: CRC mismatch"), "{e}");
    eprintln!("save2gdf SCP3: 12 leads x 10000 samples equal to biosig's reading and the original");
}
