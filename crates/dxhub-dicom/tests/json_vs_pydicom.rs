//! `json::file_to_json` against pydicom's `Dataset.to_json_dict` on every file of the test
//! corpus: the entries of `manifest.json` plus every file under `chinese/` and `pydicom/`.
//!
//! The reference is `tests/py/to_json.py`, run with `DXHUB_TEST_PYTHON` (pydicom 3) on the
//! corpus in `DXHUB_TEST_CORPUS`. Without them the test is skipped, or fails under `CI=true`
//! (the pattern of `tests/src/peers.rs`).
//!
//! What is compared, and what is not:
//! - Threshold: pydicom's `bulk_data_threshold=1024` is on the base64 length, so it turns a
//!   value into bulk data above `(1024 / 4) * 3 = 768` bytes. Our side is serialized with
//!   `inline_binary_max = 768` so both sides make the same choice; then an element that is
//!   BulkDataURI on one side must be BulkDataURI on the other, and the URIs are not compared.
//! - Excluded: the value of elements whose bulk/inline choice is a dxhub rule rather than a
//!   size: Pixel Data, Float/Double Float Pixel Data, Encapsulated Document, Overlay Data,
//!   Spectroscopy Data (always bulk for us). When one side is bulk there, only the VR is
//!   compared. Waveform Data follows the size rule on both sides, so it is compared.
//! - Allowed: encapsulated Pixel Data is `OB` for us (PS3.5 A.4, dicom-rs normalizes it) where
//!   pydicom repeats a non-conforming `OW` from the file's header.
//! - Excluded: group length elements (gggg,0000), which pydicom prints and we omit.
//! - Equivalent by the standard, not differences: an empty sequence (`"Value": []` in pydicom,
//!   no `Value` for us); an empty value inside a multi-valued element (`""` in pydicom, `null`
//!   for us, PS3.18 F.2.5); a PN group that is absent on one side and empty on the other (we
//!   print only non-empty groups); integral DS printed as `1` by us and `1.0` by pydicom.
//! - InlineBinary is compared exactly. We always write little-endian bytes; pydicom writes
//!   the file's bytes, so a small OW/OF/OD/OL outside the rule-based elements in an Explicit
//!   VR Big Endian file would differ (the corpus's big-endian files have none).
//! - Numbers are compared as f64 with a relative tolerance of 1e-9; strings exactly, after
//!   removing trailing spaces and NULs on both sides.
//! - Known pydicom bug: with `ISO 2022 IR 58`, pydicom 3.0 leaves the escape sequences
//!   (`ESC $ ) A`) in the decoded text. For data sets declaring it, the escape sequences are
//!   removed from pydicom's strings before comparing, and the Patient Name is also checked
//!   against the manifest's `expected_patient_name` (checked for every file that has one).

#![allow(clippy::unwrap_used)]

use dxhub_dicom::json::{JsonOptions, file_to_json};
use serde_json::{Map, Value};
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

fn corpus() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_CORPUS")
        .map(PathBuf::from)
        .filter(|p| p.join("manifest.json").exists())
}

/// `to_json.py` in `DXHUB_TEST_PY_DIR` (set by scripts/test.sh), else in the repository's
/// `tests/py`.
fn script() -> PathBuf {
    std::env::var_os("DXHUB_TEST_PY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/py"))
        .join("to_json.py")
}

struct Case {
    rel: String,
    expected_patient_name: Option<String>,
}

/// Manifest entries, then any other file under `chinese/` and `pydicom/`.
fn cases(corpus: &Path) -> Vec<Case> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(corpus.join("manifest.json")).unwrap()).unwrap();
    let mut out: Vec<Case> = manifest
        .as_array()
        .expect("manifest.json is an array")
        .iter()
        .map(|e| Case {
            rel: e["path"].as_str().expect("entry has a path").to_owned(),
            expected_patient_name: e["expected_patient_name"].as_str().map(str::to_owned),
        })
        .collect();
    for sub in ["chinese", "pydicom"] {
        let Ok(dir) = std::fs::read_dir(corpus.join(sub)) else {
            continue;
        };
        let mut extra: Vec<String> = dir
            .filter_map(|d| d.ok())
            .filter(|d| d.path().is_file())
            .map(|d| format!("{sub}/{}", d.file_name().to_string_lossy()))
            .filter(|rel| !out.iter().any(|c| &c.rel == rel))
            .collect();
        extra.sort();
        out.extend(extra.into_iter().map(|rel| Case {
            rel,
            expected_patient_name: None,
        }));
    }
    out
}

struct Cmp {
    diffs: Vec<String>,
    strip_escapes: bool,
    skipped_rule_bulk: usize,
    elements: usize,
}

fn trim(s: &str) -> &str {
    s.trim_end_matches([' ', '\0'])
}

/// Remove ISO 2022 escape sequences (ESC, intermediates 0x20–0x2F, a final byte).
fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            while it.peek().is_some_and(|c| ('\u{20}'..='\u{2f}').contains(c)) {
                it.next();
            }
            it.next();
            continue;
        }
        out.push(c);
    }
    out
}

fn tag_of(key: &str) -> (u16, u16) {
    let g = u16::from_str_radix(&key[..4], 16).unwrap_or(0);
    let e = u16::from_str_radix(&key[4..], 16).unwrap_or(0);
    (g, e)
}

/// dxhub's rule-based bulk/inline choice (see the module docs).
fn rule_based(key: &str) -> bool {
    let (g, e) = tag_of(key);
    (g, e) == (0x7FE0, 0x0010)
        || (g, e) == (0x7FE0, 0x0008)
        || (g, e) == (0x7FE0, 0x0009)
        || (g, e) == (0x0042, 0x0011)
        || (g, e) == (0x5600, 0x0020)
        || ((0x6000..=0x60FF).contains(&g) && g % 2 == 0 && e == 0x3000)
}

impl Cmp {
    fn diff(&mut self, path: &str, what: String) {
        self.diffs.push(format!("{path}: {what}"));
    }

    fn dataset(&mut self, path: &str, ours: &Map<String, Value>, theirs: &Map<String, Value>) {
        let mut keys: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let p = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match (ours.get(key), theirs.get(key)) {
                (Some(o), Some(t)) => self.element(&p, key, o, t),
                (None, Some(_)) if key.ends_with("0000") => {} // group length
                (Some(o), None) => self.diff(&p, format!("only in dxhub: {o}")),
                (None, Some(t)) => self.diff(&p, format!("only in pydicom: {t}")),
                (None, None) => {}
            }
        }
    }

    fn element(&mut self, path: &str, key: &str, o: &Value, t: &Value) {
        self.elements += 1;
        let (ovr, tvr) = (o["vr"].as_str(), t["vr"].as_str());
        // encapsulated Pixel Data is OB (PS3.5 A.4) whatever the file's header says;
        // pydicom repeats the header (OW in some of its test files)
        let encapsulated_ow = key == "7FE00010"
            && ovr == Some("OB")
            && tvr == Some("OW")
            && o.get("BulkDataURI").is_some();
        if ovr != tvr && !encapsulated_ow {
            self.diff(path, format!("VR dxhub {ovr:?} pydicom {tvr:?}"));
            return;
        }
        let obulk = o.get("BulkDataURI").is_some();
        let tbulk = t.get("BulkDataURI").is_some();
        if obulk || tbulk {
            if rule_based(key) {
                self.skipped_rule_bulk += 1;
            } else if obulk != tbulk {
                self.diff(
                    path,
                    format!("bulk in one side only: dxhub {o} pydicom {}", short(t)),
                );
            }
            return;
        }
        if o.get("InlineBinary") != t.get("InlineBinary") {
            self.diff(
                path,
                format!(
                    "InlineBinary dxhub {} pydicom {}",
                    short(&o["InlineBinary"]),
                    short(&t["InlineBinary"])
                ),
            );
            return;
        }
        let empty = Vec::new();
        let ov = o.get("Value").and_then(Value::as_array).unwrap_or(&empty);
        let tv = t.get("Value").and_then(Value::as_array).unwrap_or(&empty);
        if ov.len() != tv.len() {
            self.diff(
                path,
                format!(
                    "value count dxhub {} pydicom {}: {o} vs {}",
                    ov.len(),
                    tv.len(),
                    short(t)
                ),
            );
            return;
        }
        for (i, (a, b)) in ov.iter().zip(tv).enumerate() {
            let p = format!("{path}.{i}");
            match ovr {
                Some("SQ") => match (a.as_object(), b.as_object()) {
                    (Some(a), Some(b)) => self.dataset(&p, a, b),
                    _ => self.diff(&p, format!("item dxhub {a} pydicom {b}")),
                },
                Some("PN") => self.person_name(&p, a, b),
                _ => self.scalar(&p, a, b),
            }
        }
    }

    fn text(&self, s: &str) -> String {
        let s = trim(s);
        if self.strip_escapes {
            strip_escapes(s)
        } else {
            s.to_owned()
        }
    }

    fn person_name(&mut self, path: &str, a: &Value, b: &Value) {
        for group in ["Alphabetic", "Ideographic", "Phonetic"] {
            let x = a.get(group).and_then(Value::as_str).map(trim).unwrap_or("");
            let y = b.get(group).and_then(Value::as_str).unwrap_or("");
            let y = self.text(y);
            if x != y {
                self.diff(path, format!("PN {group} dxhub {x:?} pydicom {y:?}"));
            }
        }
    }

    fn scalar(&mut self, path: &str, a: &Value, b: &Value) {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                let tol = 1e-9 * x.abs().max(y.abs());
                if (x - y).abs() > tol {
                    self.diff(path, format!("number dxhub {x} pydicom {y}"));
                }
            }
            (Value::String(x), Value::String(y)) => {
                let (x, y) = (trim(x), self.text(y));
                if x != y {
                    self.diff(path, format!("text dxhub {x:?} pydicom {y:?}"));
                }
            }
            (Value::Null, Value::Null) => {}
            (Value::Null, Value::String(y)) if trim(y).is_empty() => {}
            _ => self.diff(path, format!("value dxhub {a} pydicom {b}")),
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// Patient Name as PN text (`Alphabetic=Ideographic=Phonetic`, trailing empty groups dropped).
fn patient_name(json: &Map<String, Value>) -> Option<String> {
    let v = json.get("00100010")?.get("Value")?.get(0)?;
    let groups: Vec<&str> = ["Alphabetic", "Ideographic", "Phonetic"]
        .iter()
        .map(|g| v.get(*g).and_then(Value::as_str).unwrap_or(""))
        .collect();
    Some(groups.join("=").trim_end_matches('=').to_owned())
}

#[test]
fn json_matches_pydicom_on_the_corpus() {
    let py = python();
    if !require("python with pydicom (DXHUB_TEST_PYTHON)", py.is_some()) {
        return;
    }
    let corpus = corpus();
    if !require("test corpus (DXHUB_TEST_CORPUS)", corpus.is_some()) {
        return;
    }
    let (py, corpus) = (py.unwrap(), corpus.unwrap());
    let cases = cases(&corpus);
    assert!(
        cases.len() > 10,
        "the corpus lists only {} files",
        cases.len()
    );

    let out = Command::new(&py)
        .arg(script())
        .args(cases.iter().map(|c| corpus.join(&c.rel)))
        .output()
        .expect("run tests/py/to_json.py");
    assert!(
        out.status.success(),
        "to_json.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("to_json.py prints UTF-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        cases.len(),
        "one line per file from to_json.py"
    );

    let opts = JsonOptions {
        inline_binary_max: 768,
        ..JsonOptions::default()
    };
    let mut report = Vec::new();
    let mut compared = 0;
    let mut skipped_rule_bulk = 0;
    let mut elements = 0;
    assert!(
        !lines.is_empty() && lines.len() == cases.len(),
        "to_json.py printed nothing"
    );
    for (case, line) in cases.iter().zip(lines) {
        let theirs: Value = serde_json::from_str(line).expect("to_json.py prints JSON");
        let bytes = std::fs::read(corpus.join(&case.rel)).unwrap();
        let ours = match file_to_json(&bytes, &opts) {
            Ok(j) => j,
            Err(e) => {
                report.push(format!("{}: dxhub cannot read it: {e}", case.rel));
                continue;
            }
        };
        if let Some(err) = theirs.get("__error__") {
            report.push(format!("{}: pydicom cannot read it: {err}", case.rel));
            continue;
        }
        let theirs = theirs.as_object().unwrap();
        let ir58 = theirs
            .get("00080005")
            .and_then(|e| e.get("Value"))
            .and_then(Value::as_array)
            .is_some_and(|v| v.iter().any(|c| c.as_str() == Some("ISO 2022 IR 58")));
        let mut cmp = Cmp {
            diffs: Vec::new(),
            strip_escapes: ir58,
            skipped_rule_bulk: 0,
            elements: 0,
        };
        cmp.dataset("", &ours, theirs);
        if let Some(expected) = &case.expected_patient_name {
            let got = patient_name(&ours);
            if got.as_deref() != Some(expected.as_str()) {
                cmp.diffs.push(format!(
                    "00100010: expected_patient_name {expected:?}, dxhub {got:?}"
                ));
            }
        }
        compared += 1;
        skipped_rule_bulk += cmp.skipped_rule_bulk;
        elements += cmp.elements;
        report.extend(cmp.diffs.into_iter().map(|d| format!("{}: {d}", case.rel)));
    }
    eprintln!(
        "compared {compared} of {} files ({elements} elements) with pydicom; \
         {skipped_rule_bulk} rule-based bulk/inline values not compared",
        cases.len()
    );
    assert!(elements > 0, "nothing was compared");
    assert!(
        report.is_empty(),
        "{} differences from pydicom (the first 200):\n{}",
        report.len(),
        report
            .iter()
            .take(200)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
