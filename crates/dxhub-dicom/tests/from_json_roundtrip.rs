//! `from_json::part10_from_json` against `json::to_json` on every file of the test corpus
//! (the entries of `manifest.json` plus every file under `chinese/` and `pydicom/`):
//! JSON of the file → Part 10 file from that JSON (bulk data served from the original
//! object) → JSON of the new file, which must equal the first.
//!
//! - Native files are written in Explicit VR Little Endian. Encapsulated files are written in
//!   their own transfer syntax, with Pixel Data served as the concatenated fragments and the
//!   fragment lengths as the frames; the new fragments must equal the original ones (checked
//!   where there is one fragment per frame).
//! - The one difference allowed: where the data set has non-ASCII text, (0008,0005) becomes
//!   `ISO_IR 192` (JSON text is Unicode, the file is written in UTF-8); (0008,0005) is then
//!   compared separately and removed before the rest is compared.
//! - With `DXHUB_TEST_PYTHON` (pydicom 3), pydicom must read a produced file with Chinese
//!   text and find the same Patient Name.
//!
//! The corpus comes from `DXHUB_TEST_CORPUS`; without it the test is skipped, or fails under
//! `CI=true` (the pattern of `tests/json_vs_pydicom.rs`).

#![allow(clippy::unwrap_used)]

use dicom_core::Tag;
use dicom_core::value::{PrimitiveValue, Value as DicomValue};
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use dxhub_dicom::from_json::{part10_from_json, part10_from_json_with_frames};
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

fn corpus() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_CORPUS")
        .map(PathBuf::from)
        .filter(|p| p.join("manifest.json").exists())
}

fn python() -> Option<PathBuf> {
    std::env::var_os("DXHUB_TEST_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

/// Manifest entries, then any other file under `chinese/` and `pydicom/`.
fn cases(corpus: &Path) -> Vec<String> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(corpus.join("manifest.json")).unwrap()).unwrap();
    let mut out: Vec<String> = manifest
        .as_array()
        .expect("manifest.json is an array")
        .iter()
        .map(|e| e["path"].as_str().expect("entry has a path").to_owned())
        .collect();
    for sub in ["chinese", "pydicom"] {
        let Ok(dir) = std::fs::read_dir(corpus.join(sub)) else {
            continue;
        };
        let mut extra: Vec<String> = dir
            .filter_map(|d| d.ok())
            .filter(|d| d.path().is_file())
            .map(|d| format!("{sub}/{}", d.file_name().to_string_lossy()))
            .filter(|rel| !out.contains(rel))
            .collect();
        extra.sort();
        out.extend(extra);
    }
    out
}

const PREFIX: &str = "dxhub-bulk:";

fn le_bytes(v: &PrimitiveValue) -> Vec<u8> {
    match v {
        PrimitiveValue::Empty => Vec::new(),
        PrimitiveValue::U8(x) => x.to_vec(),
        PrimitiveValue::I16(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::U16(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::I32(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::U32(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::I64(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::U64(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::F32(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        PrimitiveValue::F64(x) => x.iter().flat_map(|n| n.to_le_bytes()).collect(),
        other => other.to_bytes().into_owned(),
    }
}

fn parse_tag(s: &str) -> Tag {
    Tag(
        u16::from_str_radix(&s[..4], 16).unwrap(),
        u16::from_str_radix(&s[4..], 16).unwrap(),
    )
}

/// The bytes a BulkDataURI of `to_json` names (`{prefix}{tag}[.{item}.{tag}]*`): a native
/// value's little-endian bytes, or the concatenated fragments of encapsulated Pixel Data.
fn bulk_of(obj: &InMemDicomObject, uri: &str) -> Option<Vec<u8>> {
    let path = uri.strip_prefix(PREFIX)?;
    let steps: Vec<&str> = path.split('.').collect();
    let mut cur = obj;
    let mut i = 0;
    loop {
        let e = cur.get(parse_tag(steps[i]))?;
        if i + 1 == steps.len() {
            return match e.value() {
                DicomValue::Primitive(v) => Some(le_bytes(v)),
                DicomValue::PixelSequence(ps) => Some(ps.fragments().concat()),
                DicomValue::Sequence(_) => None,
            };
        }
        let item: usize = steps[i + 1].parse().ok()?;
        cur = e.value().items()?.get(item)?;
        i += 2;
    }
}

/// Remove every (0008,0005), at every level.
fn without_charset(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| k.as_str() != "00080005")
        .map(|(k, v)| {
            let mut v = v.clone();
            if v["vr"] == "SQ"
                && let Some(items) = v.get_mut("Value").and_then(Value::as_array_mut)
            {
                for item in items.iter_mut() {
                    *item = Value::Object(without_charset(item.as_object().unwrap()));
                }
            }
            (k.clone(), v)
        })
        .collect()
}

fn has_non_ascii(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.is_ascii(),
        Value::Array(a) => a.iter().any(has_non_ascii),
        Value::Object(o) => o.values().any(has_non_ascii),
        _ => false,
    }
}

/// The first difference between two JSON values, as a path.
fn first_diff(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_diff(&format!("{path}.{k}"), p, q),
                (p, q) => Some(format!("{path}.{k}: {p:?} vs {q:?}")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_diff(&format!("{path}[{i}]"), p, q)),
        _ if a == b => None,
        _ => {
            let s = |v: &Value| v.to_string().chars().take(200).collect::<String>();
            Some(format!("{path}: {} vs {}", s(a), s(b)))
        }
    }
}

#[test]
fn json_to_part10_round_trips_on_the_corpus() {
    let corpus = corpus();
    if !require("test corpus (DXHUB_TEST_CORPUS)", corpus.is_some()) {
        return;
    }
    let corpus = corpus.unwrap();
    let cases = cases(&corpus);
    assert!(cases.len() > 10, "the corpus lists only {}", cases.len());
    let opts = JsonOptions::default();

    let mut report = Vec::new();
    let (mut native, mut encapsulated, mut utf8_rewritten) = (0, 0, 0);
    let mut chinese_file: Option<(Vec<u8>, String)> = None;
    for rel in &cases {
        let bytes = std::fs::read(corpus.join(rel)).unwrap();
        let Ok(original) = OpenFileOptions::new().from_reader(&bytes[..]) else {
            continue; // unreadable files are json_vs_pydicom's business
        };
        let first = file_to_json(&bytes, &opts).unwrap();
        let ts = original.meta().transfer_syntax().trim_end_matches('\0');
        let mut bulk = |uri: &str| bulk_of(&original, uri);
        let pixel_fragments = match original.get(tags::PIXEL_DATA).map(|e| e.value()) {
            Some(DicomValue::PixelSequence(ps)) => Some(ps.fragments().to_vec()),
            _ => None,
        };
        let produced = match &pixel_fragments {
            None => {
                native += 1;
                part10_from_json(&first, "1.2.840.10008.1.2.1", &mut bulk)
            }
            Some(frags) => {
                encapsulated += 1;
                let lengths: Vec<usize> = frags.iter().map(Vec::len).collect();
                part10_from_json_with_frames(&first, ts, &mut bulk, Some(&lengths))
            }
        };
        let produced = match produced {
            Ok(p) => p,
            Err(e) => {
                report.push(format!("{rel}: part10_from_json: {e}"));
                continue;
            }
        };
        let reread = match OpenFileOptions::new().from_reader(&produced[..]) {
            Ok(o) => o,
            Err(e) => {
                report.push(format!(
                    "{rel}: dicom-object cannot read the produced file: {e}"
                ));
                continue;
            }
        };
        let want_ts = if pixel_fragments.is_some() {
            ts
        } else {
            "1.2.840.10008.1.2.1"
        };
        assert_eq!(
            reread.meta().transfer_syntax().trim_end_matches('\0'),
            want_ts,
            "{rel}"
        );
        let sop = |o: &InMemDicomObject, t: Tag| o.get(t).map(|e| e.to_str().unwrap().to_string());
        assert_eq!(
            reread
                .meta()
                .media_storage_sop_instance_uid()
                .trim_end_matches('\0'),
            sop(&original, tags::SOP_INSTANCE_UID)
                .unwrap()
                .trim_end_matches('\0'),
            "{rel}"
        );
        if let Some(frags) = &pixel_fragments {
            match reread.get(tags::PIXEL_DATA).map(|e| e.value()) {
                Some(DicomValue::PixelSequence(ps)) => {
                    // fragments of even length are served back unchanged
                    if ps.fragments() != &frags[..] {
                        report.push(format!("{rel}: Pixel Data fragments differ"));
                    }
                }
                _ => report.push(format!("{rel}: Pixel Data is not encapsulated")),
            }
        }

        let second = file_to_json(&produced, &opts).unwrap();
        let (a, b) = if has_non_ascii(&Value::Object(first.clone())) {
            let cs = &second["00080005"];
            if cs != &serde_json::json!({"vr": "CS", "Value": ["ISO_IR 192"]}) {
                report.push(format!("{rel}: non-ASCII text but (0008,0005) is {cs}"));
            }
            if first.get("00080005") != second.get("00080005") {
                utf8_rewritten += 1;
            }
            if chinese_file.is_none() && rel.starts_with("chinese/") {
                let name = second["00100010"]["Value"][0]["Alphabetic"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                chinese_file = Some((produced.clone(), name));
            }
            (without_charset(&first), without_charset(&second))
        } else {
            (first.clone(), second)
        };
        if let Some(d) = first_diff("", &Value::Object(a), &Value::Object(b)) {
            report.push(format!("{rel}: {d}"));
        }
    }
    eprintln!(
        "round-tripped {native} native and {encapsulated} encapsulated files of {}; \
         (0008,0005) rewritten to ISO_IR 192 in {utf8_rewritten}",
        cases.len()
    );
    assert!(native > 10, "only {native} native files");
    assert!(
        report.is_empty(),
        "{} round-trip differences:\n{}",
        report.len(),
        report.join("\n")
    );

    // pydicom reads a produced file with Chinese text (optional peer)
    let (Some(py), Some((file, name))) = (python(), chinese_file) else {
        eprintln!("pydicom check skipped (no DXHUB_TEST_PYTHON or no Chinese file)");
        return;
    };
    assert!(!name.is_empty() && !name.is_ascii(), "{name:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("from_json.dcm");
    std::fs::write(&path, &file).unwrap();
    let out = Command::new(py)
        .arg("-c")
        .arg(
            "import sys, pydicom\n\
             ds = pydicom.dcmread(sys.argv[1])\n\
             sys.stdout.buffer.write(str(ds.PatientName.alphabetic).encode('utf-8'))",
        )
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pydicom: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), name);
    eprintln!("pydicom read the produced file: Patient Name {name:?}");
}
