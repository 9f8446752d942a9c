//! DICOMweb's pixel and metadata paths end to end, over HTTP against a real `dxhub serve`
//! with the test corpus imported by `dxhub import`, checked against pydicom:
//!
//! - `/metadata` (instance and series level) of every manifest file the hub stores equals
//!   pydicom's `Dataset.to_json_dict()` (`tests/py/to_json.py`) under the rules of
//!   `crates/dxhub-dicom/tests/json_vs_pydicom.rs`, and every BulkDataURI resolves to the
//!   value's bytes (Pixel Data: pydicom's frames);
//! - `/frames` decoded (Explicit VR Little Endian) equal pydicom's arrays and as stored
//!   (`transfer-syntax=*`) equal `pydicom.encaps.generate_frames` (`tests/py/decode_frames.py`);
//! - `/rendered` applies the requested window to the rescaled values; `/thumbnail` and
//!   `viewport` bound the size;
//! - retrieve with `transfer-syntax=*` gives the stored file back byte for byte, without it a
//!   Part 10 file in Explicit VR Little Endian that pydicom decodes to the same pixels, and
//!   406 with a JSON error when dxhub cannot decode the pixel data;
//! - bulk data answers `Range` with 206 and the right slice.
//!
//! Needs DXHUB_TEST_PYTHON (pydicom) and DXHUB_TEST_CORPUS: skipped when missing, a failure
//! under `CI=true` (tests/src/peers.rs).

use dxhub_e2e::api::{Api, PASSWORD, add_user, issue_token};
use dxhub_e2e::dicomweb::{Part, media_essence, media_param, parse_multipart};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::peers;
use dxhub_store::Catalog;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const COUNTY: &str = "县人民医院";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Lossy JPEG (Baseline, Extended): decoders round the IDCT differently; the tolerance of
/// crates/dxhub-dicom/tests/pixel_vs_pydicom.rs (at most 3, at most 1% off by 2 or more).
const OCTETS: &str = "application/octet-stream";
const LOSSY_JPEG: &[&str] = &["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51"];
const LOSSY_JPEG_TOLERANCE: i64 = 3;
const LOSSY_JPEG_SHARE_OFF_BY_2: f64 = 0.01;
/// What the hub inlines (`JsonOptions::default().inline_binary_max`, the index's metadata)
/// and what pydicom inlines with `bulk_data_threshold=1024` (on the base64 length).
const HUB_INLINE_MAX: usize = 1024;
const PYDICOM_INLINE_MAX: usize = 768;

// ---------------------------------------------------------------------------------------
// peers, corpus, pydicom

struct Peers {
    corpus: PathBuf,
    python: PathBuf,
    py_dir: PathBuf,
    /// manifest path → SOP Instance UID
    manifest: Vec<(String, String)>,
}

impl Peers {
    fn get() -> Option<Peers> {
        let corpus = peers::corpus();
        if !peers::require(
            "DXHUB_TEST_CORPUS (generated corpus with manifest.json)",
            corpus.is_some(),
        ) {
            return None;
        }
        let python = peers::python();
        if !peers::require("DXHUB_TEST_PYTHON (venv with pydicom)", python.is_some()) {
            return None;
        }
        let corpus = corpus?;
        let list: Vec<Value> = serde_json::from_slice(
            &std::fs::read(corpus.join("manifest.json")).expect("read manifest.json"),
        )
        .expect("parse manifest.json");
        let manifest = list
            .iter()
            .map(|e| {
                (
                    e["path"].as_str().expect("path").to_owned(),
                    e["sop_instance"].as_str().expect("sop_instance").to_owned(),
                )
            })
            .collect();
        Some(Peers {
            corpus,
            python: python?,
            py_dir: peers::py_dir(),
            manifest,
        })
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.corpus.join(rel)
    }

    fn sop_of(&self, rel: &str) -> String {
        self.manifest
            .iter()
            .find(|(p, _)| p == rel)
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("{rel} is not in manifest.json"))
    }

    fn py(&self, script: &str) -> Command {
        let mut c = Command::new(&self.python);
        c.arg(self.py_dir.join(script)).stdin(Stdio::null());
        c
    }

    /// `to_json.py`: pydicom's DICOM JSON of each file, in order.
    fn to_json(&self, files: &[PathBuf]) -> Vec<Value> {
        let out = self
            .py("to_json.py")
            .args(files)
            .output()
            .expect("run to_json.py");
        assert!(
            out.status.success(),
            "to_json.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("to_json.py prints UTF-8");
        let list: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("to_json.py prints JSON"))
            .collect();
        assert_eq!(list.len(), files.len(), "one line per file from to_json.py");
        list
    }

    /// `decode_frames.py`: pydicom's frames of each file, in order.
    fn decode_frames(&self, files: &[PathBuf]) -> Decoded {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = self
            .py("decode_frames.py")
            .arg(dir.path())
            .args(files)
            .output()
            .expect("run decode_frames.py");
        assert!(
            out.status.success(),
            "decode_frames.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("decode_frames JSON");
        assert_eq!(
            list.len(),
            files.len(),
            "decode_frames.py: one entry per file"
        );
        Decoded {
            files: list.into_iter().map(PyFrames).collect(),
            _dir: dir,
        }
    }
}

struct Decoded {
    files: Vec<PyFrames>,
    _dir: tempfile::TempDir,
}

/// One file as decode_frames.py saw it.
struct PyFrames(Value);

impl PyFrames {
    fn error(&self) -> Option<&str> {
        self.0.get("error").and_then(Value::as_str)
    }
    fn ts(&self) -> &str {
        self.0["transfer_syntax_uid"].as_str().unwrap_or_default()
    }
    fn frames(&self) -> usize {
        self.0["frames"].as_u64().unwrap_or(0) as usize
    }
    fn read(&self, key: &str) -> Option<Vec<Vec<u8>>> {
        self.0.get(key)?.as_array().map(|l| {
            l.iter()
                .map(|p| std::fs::read(p["path"].as_str().expect("path")).expect("read frame"))
                .collect()
        })
    }
    /// pydicom's decoded frames (Explicit VR Little Endian layout).
    fn decoded(&self) -> Vec<Vec<u8>> {
        self.read("decoded").unwrap_or_default()
    }
    /// `generate_frames` of encapsulated files, else None.
    fn original(&self) -> Option<Vec<Vec<u8>>> {
        self.read("original")
    }
    fn bytes_per_sample(&self) -> usize {
        match self.0["dtype"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches(['<', '>', '=', '|'])
        {
            "uint8" | "int8" | "u1" | "i1" | "bool" => 1,
            "uint32" | "int32" | "u4" | "i4" => 4,
            _ => 2,
        }
    }
}

// ---------------------------------------------------------------------------------------
// hub

struct Instance {
    rel: String,
    study: String,
    series: String,
    sop: String,
    ts: String,
}

impl Instance {
    fn path(&self) -> String {
        format!(
            "/dicomweb/studies/{}/series/{}/instances/{}",
            self.study, self.series, self.sop
        )
    }
}

struct Fixture {
    hub: TestHub,
    api: Api,
    token: String,
    /// by manifest path; files the hub did not store are absent
    instances: BTreeMap<String, Instance>,
}

impl Fixture {
    /// A hub with `files` (manifest paths) imported by `dxhub import` and a superadmin
    /// token (imported studies belong to no institution: hub scope).
    async fn new(p: &Peers, files: &[&str]) -> Fixture {
        let hub = TestHub::spawn(HubOptions::default());
        add_user(&hub, COUNTY, "root.px", "superadmin", PASSWORD);
        let token = issue_token(&hub, "root.px", "1h");
        let paths: Vec<String> = files
            .iter()
            .map(|f| p.file(f).to_string_lossy().into_owned())
            .collect();
        let mut args = vec!["import"];
        args.extend(paths.iter().map(String::as_str));
        let out = hub.cli(&args);
        assert!(
            out.status.success(),
            "dxhub import failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let catalog = hub.catalog().await;
        let mut instances = BTreeMap::new();
        for f in files {
            let sop = p.sop_of(f);
            if let Some(row) = catalog.get_instance(&sop).await.expect("get_instance") {
                instances.insert(
                    (*f).to_owned(),
                    Instance {
                        rel: (*f).to_owned(),
                        study: row.study_instance_uid,
                        series: row.series_instance_uid,
                        sop,
                        ts: row.transfer_syntax_uid,
                    },
                );
            }
        }
        let api = Api::new(&hub);
        Fixture {
            hub,
            api,
            token,
            instances,
        }
    }

    fn inst(&self, rel: &str) -> &Instance {
        self.instances
            .get(rel)
            .unwrap_or_else(|| panic!("the hub did not store {rel}"))
    }

    /// GET with the token and an optional Accept, read to the end.
    async fn get(&self, url_or_path: &str, accept: Option<&str>, range: Option<&str>) -> Got {
        let url = if url_or_path.starts_with("http") {
            url_or_path.to_owned()
        } else {
            self.api.url(url_or_path)
        };
        let mut r = self.api.http.get(&url).bearer_auth(&self.token);
        if let Some(a) = accept {
            r = r.header(reqwest::header::ACCEPT, a);
        }
        if let Some(range) = range {
            r = r.header(reqwest::header::RANGE, range);
        }
        let resp = r.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map(|b| b.to_vec());
        Got {
            url,
            status,
            headers,
            body,
        }
    }
}

/// A response; `body` is an error when the body could not be read to its end.
struct Got {
    url: String,
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Result<Vec<u8>, reqwest::Error>,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn describe(&self) -> String {
        let body = match &self.body {
            Ok(b) => String::from_utf8_lossy(&b[..b.len().min(400)]).into_owned(),
            Err(e) => format!("<body not read to its end: {e}>"),
        };
        format!(
            "GET {} → {} ({}) {body}",
            self.url,
            self.status,
            self.header("content-type").unwrap_or("no content type")
        )
    }

    /// The body of a 200 response (else a description of what came instead).
    fn ok_body(&self) -> Result<&[u8], String> {
        match (&self.body, self.status) {
            (Ok(b), 200) => Ok(b),
            _ => Err(self.describe()),
        }
    }

    /// The parts of a 200 multipart/related response.
    fn parts(&self) -> Result<Vec<Part>, String> {
        let body = self.ok_body()?;
        let ct = self.header("content-type").unwrap_or_default();
        parse_multipart(ct, body).map_err(|e| format!("{}: {e}", self.describe()))
    }

    fn json(&self) -> Result<Value, String> {
        let body = self.ok_body()?;
        serde_json::from_slice(body).map_err(|e| format!("{}: not JSON: {e}", self.describe()))
    }
}

/// PS3.18 Table 8.7.3-2: the single-frame media type of a compressed transfer syntax.
fn frame_media_type(ts: &str) -> Option<&'static str> {
    let t = ts.strip_prefix("1.2.840.10008.1.2.")?;
    Some(match t {
        "4.50" | "4.51" | "4.57" | "4.70" => "image/jpeg",
        "5" => "image/dicom-rle",
        "4.80" | "4.81" => "image/jls",
        "4.90" | "4.91" => "image/jp2",
        "4.92" | "4.93" => "image/jpx",
        "4.201" | "4.202" | "4.203" => "image/jphc",
        _ => return None,
    })
}

fn accept_frames(ts: &str) -> String {
    format!("multipart/related; type=\"application/octet-stream\"; transfer-syntax={ts}")
}

fn accept_dicom(ts: Option<&str>) -> String {
    match ts {
        Some(ts) => format!("multipart/related; type=\"application/dicom\"; transfer-syntax={ts}"),
        None => "multipart/related; type=\"application/dicom\"".to_owned(),
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// Compare a decoded frame with pydicom's: exact, or within the lossy JPEG tolerance.
fn same_pixels(
    got: &[u8],
    want: &[u8],
    bytes_per_sample: usize,
    lossy: bool,
) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!("{} bytes, pydicom {}", got.len(), want.len()));
    }
    if !lossy {
        return match first_difference(got, want) {
            None => Ok(()),
            Some(i) => Err(format!("differs from pydicom at byte {i}")),
        };
    }
    let v = |c: &[u8]| c.iter().rev().fold(0i64, |acc, &b| acc << 8 | i64::from(b));
    let diffs: Vec<i64> = got
        .chunks(bytes_per_sample)
        .zip(want.chunks(bytes_per_sample))
        .map(|(x, y)| (v(x) - v(y)).abs())
        .collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let off = diffs.iter().filter(|d| **d > 1).count() as f64 / diffs.len().max(1) as f64;
    if max <= LOSSY_JPEG_TOLERANCE && off <= LOSSY_JPEG_SHARE_OFF_BY_2 {
        Ok(())
    } else {
        Err(format!(
            "max abs difference {max} (at most {LOSSY_JPEG_TOLERANCE}), {off:.4} of the \
             samples off by 2 or more (at most {LOSSY_JPEG_SHARE_OFF_BY_2})"
        ))
    }
}

fn fail_if_any(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problems (the first 100):\n{}",
        problems.len(),
        problems
            .iter()
            .take(100)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// DICOM JSON comparison: the rules of crates/dxhub-dicom/tests/json_vs_pydicom.rs (see its
// module docs), with two more:
// - the hub's index inlines binary values up to 1024 bytes, pydicom (threshold 1024 on the
//   base64 length) up to 768, so a value of 769..=1024 bytes may be InlineBinary for the
//   hub and bulk for pydicom;
// - Data Set Trailing Padding (FFFC,FFFC) "has no meaning" (PS3.10 7.2): the index reads a
//   data set up to Pixel Data and does not keep it; pydicom prints it.

struct Cmp {
    diffs: Vec<String>,
    strip_escapes: bool,
    elements: usize,
    /// values inline for the hub and bulk for pydicom (769..=1024 bytes)
    threshold: usize,
    trailing_padding: usize,
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
    let g = u16::from_str_radix(key.get(..4).unwrap_or("0"), 16).unwrap_or(0);
    let e = u16::from_str_radix(key.get(4..).unwrap_or("0"), 16).unwrap_or(0);
    (g, e)
}

/// dxhub's rule-based bulk/inline choice.
fn rule_based(key: &str, in_waveform: bool) -> bool {
    let (g, e) = tag_of(key);
    in_waveform
        || (g, e) == (0x5400, 0x1010)
        || (g, e) == (0x7FE0, 0x0010)
        || (g, e) == (0x7FE0, 0x0008)
        || (g, e) == (0x7FE0, 0x0009)
        || (g, e) == (0x0042, 0x0011)
        || (g, e) == (0x5600, 0x0020)
        || ((0x6000..=0x60FF).contains(&g) && g % 2 == 0 && e == 0x3000)
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s
    }
}

/// Decoded length of an InlineBinary value (base64 with padding).
fn inline_len(v: &Value) -> Option<usize> {
    let s = v.get("InlineBinary")?.as_str()?;
    let pad = s.bytes().rev().take_while(|b| *b == b'=').count();
    (s.len() % 4 == 0).then(|| s.len() / 4 * 3 - pad)
}

impl Cmp {
    fn diff(&mut self, path: &str, what: String) {
        self.diffs.push(format!("{path}: {what}"));
    }

    fn dataset(
        &mut self,
        path: &str,
        ours: &Map<String, Value>,
        theirs: &Map<String, Value>,
        wf: bool,
    ) {
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
                (Some(o), Some(t)) => self.element(&p, key, o, t, wf),
                (None, Some(_)) if key.ends_with("0000") => {} // group length
                (None, Some(_)) if path.is_empty() && key == "FFFCFFFC" => {
                    self.trailing_padding += 1;
                }
                (Some(o), None) => self.diff(&p, format!("only in dxhub: {}", short(o))),
                (None, Some(t)) => self.diff(&p, format!("only in pydicom: {}", short(t))),
                (None, None) => {}
            }
        }
    }

    fn element(&mut self, path: &str, key: &str, o: &Value, t: &Value, in_waveform: bool) {
        self.elements += 1;
        let (ovr, tvr) = (o["vr"].as_str(), t["vr"].as_str());
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
            if rule_based(key, in_waveform) || obulk == tbulk {
                return;
            }
            let threshold = inline_len(o)
                .is_some_and(|n| (PYDICOM_INLINE_MAX + 1..=HUB_INLINE_MAX).contains(&n));
            if tbulk && threshold {
                self.threshold += 1;
            } else {
                self.diff(
                    path,
                    format!(
                        "bulk in one side only: dxhub {} pydicom {}",
                        short(o),
                        short(t)
                    ),
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
                    "value count dxhub {} pydicom {}: {} vs {}",
                    ov.len(),
                    tv.len(),
                    short(o),
                    short(t)
                ),
            );
            return;
        }
        let waveform = in_waveform || key == "54000100";
        for (i, (a, b)) in ov.iter().zip(tv).enumerate() {
            let p = format!("{path}.{i}");
            match ovr {
                Some("SQ") => match (a.as_object(), b.as_object()) {
                    (Some(a), Some(b)) => self.dataset(&p, a, b, waveform),
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
            let y = self.text(b.get(group).and_then(Value::as_str).unwrap_or(""));
            if x != y {
                self.diff(path, format!("PN {group} dxhub {x:?} pydicom {y:?}"));
            }
        }
    }

    fn scalar(&mut self, path: &str, a: &Value, b: &Value) {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (
                    x.as_f64().unwrap_or(f64::NAN),
                    y.as_f64().unwrap_or(f64::NAN),
                );
                let tol = 1e-9 * x.abs().max(y.abs());
                if (x - y).abs() > tol || x.is_nan() || y.is_nan() {
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

/// Every BulkDataURI in a data set: (element path, VR, URI).
fn bulk_uris(ds: &Map<String, Value>, path: &str, out: &mut Vec<(String, String, String)>) {
    for (key, e) in ds {
        let p = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let vr = e["vr"].as_str().unwrap_or_default().to_owned();
        if let Some(uri) = e.get("BulkDataURI").and_then(Value::as_str) {
            out.push((p.clone(), vr.clone(), uri.to_owned()));
        }
        if vr == "SQ" {
            for (i, item) in e
                .get("Value")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(item) = item.as_object() {
                    bulk_uris(item, &format!("{p}.{i}"), out);
                }
            }
        }
    }
}

fn int_of(ds: &Map<String, Value>, key: &str) -> Option<i64> {
    let v = ds.get(key)?.get("Value")?.get(0)?;
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// A JSON error response (`{"error":{"code":…,"message":…}}`) with this status.
fn json_error(got: &Got, status: u16) -> Result<(), String> {
    let body: Option<Value> = got
        .body
        .as_ref()
        .ok()
        .and_then(|b| serde_json::from_slice(b).ok());
    let code = body
        .as_ref()
        .and_then(|v| v["error"]["code"].as_str())
        .unwrap_or_default();
    let message = body
        .as_ref()
        .and_then(|v| v["error"]["message"].as_str())
        .unwrap_or_default();
    if got.status == status
        && got.header("content-type").map(media_essence).as_deref() == Some("application/json")
        && !code.is_empty()
        && !message.is_empty()
    {
        Ok(())
    } else {
        Err(format!(
            "expected {status} with {{\"error\":{{\"code\",\"message\"}}}}, got {}",
            got.describe()
        ))
    }
}

// ---------------------------------------------------------------------------------------
// 1. metadata

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_matches_pydicom_and_bulk_data_resolves() {
    let Some(p) = Peers::get() else { return };
    let all: Vec<&str> = p.manifest.iter().map(|(rel, _)| rel.as_str()).collect();
    let fx = Fixture::new(&p, &all).await;
    assert!(
        fx.instances.len() * 10 >= all.len() * 9,
        "the hub stored only {} of {} manifest files",
        fx.instances.len(),
        all.len()
    );
    let stored: Vec<&Instance> = fx.instances.values().collect();
    let files: Vec<PathBuf> = stored.iter().map(|i| p.file(&i.rel)).collect();
    let pydicom_json = p.to_json(&files);
    let pydicom_frames = p.decode_frames(&files);
    let base = fx.hub.http_url("/dicomweb");

    let mut problems = Vec::new();
    let mut by_sop: HashMap<String, Value> = HashMap::new();
    let (mut elements, mut bulk_checked, mut pixel_bytes_checked) = (0, 0, 0);
    let (mut threshold, mut trailing_padding) = (0, 0);
    for ((inst, theirs), frames) in stored.iter().zip(&pydicom_json).zip(&pydicom_frames.files) {
        let got = fx
            .get(
                &format!("{}/metadata", inst.path()),
                Some("application/dicom+json"),
                None,
            )
            .await;
        if got
            .header("content-type")
            .is_none_or(|c| media_essence(c) != "application/dicom+json")
        {
            problems.push(format!(
                "{}: not application/dicom+json: {}",
                inst.rel,
                got.describe()
            ));
        }
        let ours = match got.json() {
            Ok(Value::Array(mut a)) if a.len() == 1 => a.remove(0),
            Ok(other) => {
                problems.push(format!("{}: not one data set: {}", inst.rel, short(&other)));
                continue;
            }
            Err(e) => {
                problems.push(format!("{}: {e}", inst.rel));
                continue;
            }
        };
        let Some(ours_map) = ours.as_object() else {
            problems.push(format!("{}: not an object", inst.rel));
            continue;
        };
        if let Some(err) = theirs.get("__error__") {
            problems.push(format!("{}: pydicom cannot read it: {err}", inst.rel));
            continue;
        }
        let theirs_map = theirs.as_object().expect("object");
        let ir58 = theirs_map
            .get("00080005")
            .and_then(|e| e.get("Value"))
            .and_then(Value::as_array)
            .is_some_and(|v| v.iter().any(|c| c.as_str() == Some("ISO 2022 IR 58")));
        let mut cmp = Cmp {
            diffs: Vec::new(),
            strip_escapes: ir58,
            elements: 0,
            threshold: 0,
            trailing_padding: 0,
        };
        cmp.dataset("", ours_map, theirs_map, false);
        elements += cmp.elements;
        threshold += cmp.threshold;
        trailing_padding += cmp.trailing_padding;
        problems.extend(cmp.diffs.into_iter().map(|d| format!("{}: {d}", inst.rel)));

        // every BulkDataURI resolves to the value
        let mut uris = Vec::new();
        bulk_uris(ours_map, "", &mut uris);
        let prefix = format!(
            "{base}/studies/{}/series/{}/instances/{}/bulk/",
            inst.study, inst.series, inst.sop
        );
        for (path, vr, uri) in uris {
            if uri != format!("{prefix}{path}") {
                problems.push(format!(
                    "{}: {path}: BulkDataURI {uri}, expected {prefix}{path}",
                    inst.rel
                ));
                continue;
            }
            let got = fx
                .get(
                    &uri,
                    Some("multipart/related; type=\"application/octet-stream\""),
                    None,
                )
                .await;
            let parts = match got.parts() {
                Ok(parts) if parts.len() == 1 => parts,
                Ok(parts) => {
                    problems.push(format!("{}: {path}: {} parts", inst.rel, parts.len()));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("{}: {path}: {e}", inst.rel));
                    continue;
                }
            };
            bulk_checked += 1;
            let value = &parts[0].body;
            if path != "7FE00010" {
                if !rule_based(path.rsplit('.').next().unwrap_or(&path), false)
                    && value.len() <= HUB_INLINE_MAX
                {
                    problems.push(format!(
                        "{}: {path} ({vr}) is bulk data of {} bytes, at most {HUB_INLINE_MAX} are inlined",
                        inst.rel,
                        value.len()
                    ));
                }
                if value.is_empty() {
                    problems.push(format!("{}: {path}: empty bulk data", inst.rel));
                }
                continue;
            }
            // Pixel Data: the frames pydicom sees (native: its decoded frames, unless
            // planar; encapsulated: generate_frames)
            if frames.error().is_some() || frames.frames() == 0 {
                if value.is_empty() {
                    problems.push(format!("{}: empty Pixel Data", inst.rel));
                }
                continue;
            }
            let planar = int_of(ours_map, "00280006") == Some(1);
            let want: Vec<u8> = match frames.original() {
                Some(orig) => orig.concat(),
                None => frames.decoded().concat(),
            };
            let ok = if planar && frames.original().is_none() {
                value.len() == want.len() || value.len() == want.len() + 1
            } else {
                value[..] == want[..]
                    || (value.len() == want.len() + 1 && value[..want.len()] == want[..])
            };
            if ok {
                pixel_bytes_checked += 1;
            } else {
                problems.push(format!(
                    "{}: Pixel Data bulk {} bytes, pydicom's frames {} bytes, first difference at {:?}",
                    inst.rel,
                    value.len(),
                    want.len(),
                    first_difference(value, &want)
                ));
            }
        }
        by_sop.insert(inst.sop.clone(), ours);
    }

    // series level: the same data sets, one per stored instance of the series
    let mut series: BTreeMap<(String, String), Vec<&Instance>> = BTreeMap::new();
    for inst in &stored {
        series
            .entry((inst.study.clone(), inst.series.clone()))
            .or_default()
            .push(inst);
    }
    for ((study, se), members) in &series {
        let got = fx
            .get(
                &format!("/dicomweb/studies/{study}/series/{se}/metadata"),
                None,
                None,
            )
            .await;
        let list = match got.json() {
            Ok(Value::Array(a)) => a,
            Ok(other) => {
                problems.push(format!("series {se}: not an array: {}", short(&other)));
                continue;
            }
            Err(e) => {
                problems.push(format!("series {se}: {e}"));
                continue;
            }
        };
        if list.len() != members.len() {
            problems.push(format!(
                "series {se}: {} data sets, {} instances stored",
                list.len(),
                members.len()
            ));
        }
        for ds in &list {
            let sop = ds["00080018"]["Value"][0].as_str().unwrap_or_default();
            match by_sop.get(sop) {
                Some(inst_level) if inst_level == ds => {}
                Some(_) => problems.push(format!(
                    "series {se}: {sop} differs from its instance-level metadata"
                )),
                None => problems.push(format!(
                    "series {se}: unexpected or unchecked instance {sop:?}"
                )),
            }
        }
    }
    eprintln!(
        "metadata: {} instances ({elements} elements) and {} series compared with pydicom; \
         {bulk_checked} BulkDataURIs fetched, {pixel_bytes_checked} Pixel Data values equal pydicom's frames; \
         {threshold} values inline for dxhub and bulk for pydicom, {trailing_padding} trailing paddings not compared",
        stored.len(),
        series.len()
    );
    assert!(elements > 1000, "only {elements} elements compared");
    assert!(
        pixel_bytes_checked >= 20,
        "only {pixel_bytes_checked} Pixel Data values checked"
    );
    fail_if_any(&problems);
}

// ---------------------------------------------------------------------------------------
// 2. frames

/// Uncompressed (LE explicit, implicit, big endian), RLE, JPEG lossless and baseline,
/// JPEG-LS, JPEG 2000, HTJ2K (lossless; lossy with 2 frames), and multi-frame (rtdose: 15 native frames; examples_ybr_color: 30
/// JPEG baseline frames).
const FRAME_FILES: &[&str] = &[
    "pydicom/CT_small.dcm",
    "pydicom/MR_small.dcm",
    "pydicom/MR_small_implicit.dcm",
    "pydicom/MR_small_bigendian.dcm",
    "pydicom/MR_small_RLE.dcm",
    "pydicom/SC_rgb_rle.dcm",
    "pydicom/SC_rgb_jpeg_gdcm.dcm",
    "pydicom/MR_small_jpeg_ls_lossless.dcm",
    "pydicom/MR_small_jp2klossless.dcm",
    "pydicom/JPEG2000.dcm",
    "pydicom/rtdose.dcm",
    "pydicom/examples_ybr_color.dcm",
    "generated/ct_htj2k_lossless.dcm",
    "generated/xa_htj2k_lossy.dcm",
];

/// Check the parts of a frames response against `want` (frame bytes in order), each part
/// of media type `want_media` (`application/octet-stream` unless asked otherwise).
#[allow(clippy::too_many_arguments)]
fn check_frame_parts(
    what: &str,
    got: &Got,
    want: &[&[u8]],
    want_media: &str,
    want_ts: &str,
    bytes_per_sample: usize,
    lossy: bool,
    problems: &mut Vec<String>,
) {
    let ct = got.header("content-type").unwrap_or_default().to_owned();
    if media_essence(&ct) != "multipart/related"
        || media_param(&ct, "type").as_deref() != Some(want_media)
    {
        problems.push(format!("{what}: response Content-Type {ct:?}"));
    }
    let parts = match got.parts() {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("{what}: {e}"));
            return;
        }
    };
    if parts.len() != want.len() {
        problems.push(format!(
            "{what}: {} parts for {} frames",
            parts.len(),
            want.len()
        ));
        return;
    }
    for (i, (part, want)) in parts.iter().zip(want).enumerate() {
        let pct = part.content_type().unwrap_or_default();
        if media_essence(pct) != want_media
            || media_param(pct, "transfer-syntax").as_deref() != Some(want_ts)
        {
            problems.push(format!(
                "{what}: part {} Content-Type {pct:?}, expected {want_media}; transfer-syntax={want_ts}",
                i + 1
            ));
        }
        if let Err(e) = same_pixels(&part.body, want, bytes_per_sample, lossy) {
            problems.push(format!("{what}: part {}: {e}", i + 1));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_decoded_and_as_stored_equal_pydicom() {
    let Some(p) = Peers::get() else { return };
    let unsupported = "pydicom/JPGExtended.dcm"; // 12-bit JPEG Extended: dxhub cannot decode it
    let mut all = FRAME_FILES.to_vec();
    all.push(unsupported);
    let fx = Fixture::new(&p, &all).await;
    let files: Vec<PathBuf> = FRAME_FILES.iter().map(|f| p.file(f)).collect();
    let py = p.decode_frames(&files);
    let mut problems = Vec::new();
    let mut frames_checked = 0;
    let mut images_checked = 0;
    for (rel, exp) in FRAME_FILES.iter().zip(&py.files) {
        if let Some(e) = exp.error() {
            problems.push(format!("{rel}: pydicom cannot decode it: {e}"));
            continue;
        }
        let inst = fx.inst(rel);
        let n = exp.frames();
        assert!(n >= 1, "{rel}: no frames");
        let decoded = exp.decoded();
        assert_eq!(decoded.len(), n, "{rel}: decode_frames.py frames");
        let list = (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let url = format!("{}/frames/{list}", inst.path());
        let bps = exp.bytes_per_sample();

        // decoded: Explicit VR Little Endian, equal to pydicom's array
        let got = fx
            .get(&url, Some(&accept_frames(EXPLICIT_VR_LE)), None)
            .await;
        let want: Vec<&[u8]> = decoded.iter().map(Vec::as_slice).collect();
        let lossy = LOSSY_JPEG.contains(&exp.ts());
        check_frame_parts(
            &format!("{rel} decoded"),
            &got,
            &want,
            OCTETS,
            EXPLICIT_VR_LE,
            bps,
            lossy,
            &mut problems,
        );

        // as stored: the stored fragments with the stored transfer syntax (native frames:
        // little-endian bytes, labelled Explicit VR Little Endian)
        let got = fx.get(&url, Some(&accept_frames("*")), None).await;
        let original = exp.original();
        let (want, want_ts): (Vec<&[u8]>, &str) = match &original {
            Some(o) => (o.iter().map(Vec::as_slice).collect(), exp.ts()),
            None => (decoded.iter().map(Vec::as_slice).collect(), EXPLICIT_VR_LE),
        };
        if original.is_some() && inst.ts != exp.ts() {
            problems.push(format!(
                "{rel}: stored as {}, pydicom reads {}",
                inst.ts,
                exp.ts()
            ));
        }
        check_frame_parts(
            &format!("{rel} as stored"),
            &got,
            &want,
            OCTETS,
            want_ts,
            bps,
            false,
            &mut problems,
        );
        frames_checked += n;

        // compressed frames under their single-frame media type (PS3.18 Table 8.7.3-2):
        // the same stored fragments; a media type that is not theirs is 406
        if let (Some(o), Some(media)) = (&original, frame_media_type(exp.ts())) {
            let want: Vec<&[u8]> = o.iter().map(Vec::as_slice).collect();
            let got = fx
                .get(
                    &url,
                    Some(&format!("multipart/related; type=\"{media}\"")),
                    None,
                )
                .await;
            check_frame_parts(
                &format!("{rel} as {media}"),
                &got,
                &want,
                media,
                exp.ts(),
                bps,
                false,
                &mut problems,
            );
            images_checked += 1;
            let other = if media == "image/jls" {
                "image/jp2"
            } else {
                "image/jls"
            };
            let got = fx
                .get(
                    &url,
                    Some(&format!("multipart/related; type=\"{other}\"")),
                    None,
                )
                .await;
            if let Err(e) = json_error(&got, 406) {
                problems.push(format!("{rel} as {other}: {e}"));
            }
        }

        // one past the last frame
        let past = fx
            .get(
                &format!("{}/frames/{}", inst.path(), n + 1),
                Some(&accept_frames("*")),
                None,
            )
            .await;
        if past.status != 404 {
            problems.push(format!(
                "{rel}: frame {} of {n}: {}",
                n + 1,
                past.describe()
            ));
        }
    }

    // a frame list in the order asked, not the stored order
    for rel in ["pydicom/rtdose.dcm", "pydicom/examples_ybr_color.dcm"] {
        let i = FRAME_FILES.iter().position(|f| *f == rel).expect("listed");
        let exp = &py.files[i];
        let decoded = exp.decoded();
        let url = format!("{}/frames/3,1", fx.inst(rel).path());
        let got = fx
            .get(&url, Some(&accept_frames(EXPLICIT_VR_LE)), None)
            .await;
        let want = [decoded[2].as_slice(), decoded[0].as_slice()];
        let lossy = LOSSY_JPEG.contains(&exp.ts());
        check_frame_parts(
            &format!("{rel} frames 3,1"),
            &got,
            &want,
            OCTETS,
            EXPLICIT_VR_LE,
            exp.bytes_per_sample(),
            lossy,
            &mut problems,
        );
    }
    // pixel data dxhub cannot decode: decoded → 406 with a JSON error; as stored → the
    // fragments, as for any encapsulated file
    let inst = fx.inst(unsupported);
    let url = format!("{}/frames/1", inst.path());
    let got = fx
        .get(&url, Some(&accept_frames(EXPLICIT_VR_LE)), None)
        .await;
    if let Err(e) = json_error(&got, 406) {
        problems.push(format!("{unsupported} frame 1 decoded: {e}"));
    }
    let py_unsupported = p.decode_frames(&[p.file(unsupported)]);
    match py_unsupported.files[0].original() {
        Some(original) => {
            let got = fx.get(&url, Some(&accept_frames("*")), None).await;
            check_frame_parts(
                &format!("{unsupported} as stored"),
                &got,
                &[original[0].as_slice()],
                OCTETS,
                &inst.ts,
                1,
                false,
                &mut problems,
            );
            // decoded preferred, as stored (image/jpeg) acceptable at a lower weight
            let both = format!(
                "{}, multipart/related; type=\"image/jpeg\";q=0.5",
                accept_frames(EXPLICIT_VR_LE)
            );
            let got = fx.get(&url, Some(&both), None).await;
            check_frame_parts(
                &format!("{unsupported} decoded or else as image/jpeg"),
                &got,
                &[original[0].as_slice()],
                "image/jpeg",
                &inst.ts,
                1,
                false,
                &mut problems,
            );
        }
        None => problems.push(format!(
            "{unsupported}: pydicom gives no frames: {:?}",
            py_unsupported.files[0].error()
        )),
    }

    eprintln!(
        "frames: {frames_checked} frames of {} files compared with pydicom, decoded and as stored",
        FRAME_FILES.len()
    );
    assert!(frames_checked >= FRAME_FILES.len() + 14 + 29);
    // RLE ×2, JPEG, JPEG-LS, JPEG 2000 ×2, HTJ2K ×2
    assert!(
        images_checked >= 8,
        "{images_checked} files checked as image/*"
    );
    fail_if_any(&problems);
}

// ---------------------------------------------------------------------------------------
// 3. rendered, thumbnail

/// PS3.3 C.11.2.1.2.1 LINEAR.
fn linear(x: f64, c: f64, w: f64) -> u8 {
    if x <= c - 0.5 - (w - 1.0) / 2.0 {
        0
    } else if x > c - 0.5 + (w - 1.0) / 2.0 {
        255
    } else {
        (((x - (c - 0.5)) / (w - 1.0) + 0.5) * 255.0).round() as u8
    }
}

/// Rescale Slope and Intercept of a file, read with dicom-object.
fn rescale(file: &Path) -> (f64, f64) {
    let obj = dicom_object::open_file(file).expect("open with dicom-object");
    let f = |t| obj.element(t).ok().and_then(|e| e.to_float64().ok());
    (
        f(dicom_dictionary_std::tags::RESCALE_SLOPE).unwrap_or(1.0),
        f(dicom_dictionary_std::tags::RESCALE_INTERCEPT).unwrap_or(0.0),
    )
}

fn image_of(
    got: &Got,
    media: &str,
    format: image::ImageFormat,
) -> Result<image::DynamicImage, String> {
    let body = got.ok_body()?;
    if got.header("content-type").map(media_essence).as_deref() != Some(media) {
        return Err(format!("not {media}: {}", got.describe()));
    }
    image::load_from_memory_with_format(body, format)
        .map_err(|e| format!("{}: {e}", got.describe()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_applies_the_window_and_thumbnails_fit() {
    let Some(p) = Peers::get() else { return };
    let ct_rel = "pydicom/CT_small.dcm";
    let tall_rel = "pydicom/JPEG2000.dcm"; // 256 wide, 1024 high
    let fx = Fixture::new(&p, &[ct_rel, tall_rel]).await;
    let py = p.decode_frames(&[p.file(ct_rel)]);
    let raw = &py.files[0].decoded()[0];
    let (slope, intercept) = rescale(&p.file(ct_rel));
    let hu: Vec<f64> = raw
        .chunks_exact(2)
        .map(|c| f64::from(i16::from_le_bytes([c[0], c[1]])) * slope + intercept)
        .collect();
    assert_eq!(hu.len(), 128 * 128);
    let expected: Vec<u8> = hu.iter().map(|&x| linear(x, 40.0, 400.0)).collect();
    let below = expected.iter().filter(|v| **v == 0).count();
    let above = expected.iter().filter(|v| **v == 255).count();
    assert!(
        below > 0 && above > 0,
        "CT_small has pixels below and above the window"
    );
    let mut problems = Vec::new();
    let ct = fx.inst(ct_rel);

    for path in [
        format!("{}/rendered?window=40,400", ct.path()),
        format!("{}/frames/1/rendered?window=40,400", ct.path()),
    ] {
        let got = fx.get(&path, Some("image/png"), None).await;
        let img = match image_of(&got, "image/png", image::ImageFormat::Png) {
            Ok(i) => i.to_luma8(),
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        if img.dimensions() != (128, 128) {
            problems.push(format!(
                "{path}: {:?}, expected 128 × 128",
                img.dimensions()
            ));
            continue;
        }
        let got_px = img.into_raw();
        let wrong: Vec<String> = (0..expected.len())
            .filter(|&i| got_px[i] != expected[i])
            .take(10)
            .map(|i| {
                format!(
                    "({},{}) HU {} → {} expected {}",
                    i % 128,
                    i / 128,
                    hu[i],
                    got_px[i],
                    expected[i]
                )
            })
            .collect();
        let n_wrong = (0..expected.len())
            .filter(|&i| got_px[i] != expected[i])
            .count();
        if n_wrong > 0 {
            problems.push(format!(
                "{path}: {n_wrong} of {} pixels differ from the window of pydicom's HU: {}",
                expected.len(),
                wrong.join("; ")
            ));
        }
        let zeros = (0..expected.len())
            .filter(|&i| expected[i] == 0 && got_px[i] == 0)
            .count();
        let whites = (0..expected.len())
            .filter(|&i| expected[i] == 255 && got_px[i] == 255)
            .count();
        if zeros != below || whites != above {
            problems.push(format!("{path}: {zeros} of {below} pixels below the window are 0, {whites} of {above} above it 255"));
        }
    }

    // viewport: 32 px
    let got = fx
        .get(
            &format!("{}/rendered?window=40,400&viewport=32,32", ct.path()),
            Some("image/png"),
            None,
        )
        .await;
    match image_of(&got, "image/png", image::ImageFormat::Png) {
        Ok(img) if (img.width(), img.height()) == (32, 32) => {}
        Ok(img) => problems.push(format!(
            "viewport=32,32 gave {} × {}",
            img.width(),
            img.height()
        )),
        Err(e) => problems.push(e),
    }

    // thumbnails: JPEG of at most 128 px on a side, aspect kept
    for (rel, want) in [(ct_rel, (128, 128)), (tall_rel, (32, 128))] {
        let got = fx
            .get(&format!("{}/thumbnail", fx.inst(rel).path()), None, None)
            .await;
        match image_of(&got, "image/jpeg", image::ImageFormat::Jpeg) {
            Ok(img) => {
                let (w, h) = (img.width(), img.height());
                if w > 128 || h > 128 || (w, h) != want {
                    problems.push(format!(
                        "{rel} thumbnail {w} × {h}, expected {want:?} (at most 128 on a side)"
                    ));
                }
            }
            Err(e) => problems.push(format!("{rel} thumbnail: {e}")),
        }
    }
    let got = fx
        .get(
            &format!("{}/thumbnail?viewport=32,32", fx.inst(tall_rel).path()),
            None,
            None,
        )
        .await;
    match image_of(&got, "image/jpeg", image::ImageFormat::Jpeg) {
        Ok(img) if img.width().max(img.height()) == 32 => {}
        Ok(img) => problems.push(format!(
            "thumbnail viewport=32,32 gave {} × {}",
            img.width(),
            img.height()
        )),
        Err(e) => problems.push(e),
    }
    fail_if_any(&problems);
}

// ---------------------------------------------------------------------------------------
// 4. WADO-RS retrieve

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieve_as_stored_transcoded_or_not_acceptable() {
    let Some(p) = Peers::get() else { return };
    let jpeg_ls = "pydicom/MR_small_jpeg_ls_lossless.dcm";
    let unsupported = "pydicom/JPGExtended.dcm"; // 12-bit JPEG Extended: dxhub cannot decode it
    let mut files: Vec<&str> = FRAME_FILES.to_vec();
    files.push(unsupported);
    let fx = Fixture::new(&p, &files).await;
    let mut problems = Vec::new();

    // transfer-syntax=*: the stored file, byte for byte
    for rel in &files {
        let inst = fx.inst(rel);
        let got = fx
            .get(&inst.path(), Some(&accept_dicom(Some("*"))), None)
            .await;
        let parts = match got.parts() {
            Ok(parts) => parts,
            Err(e) => {
                problems.push(format!("{rel}: {e}"));
                continue;
            }
        };
        if parts.len() != 1 {
            problems.push(format!("{rel}: {} parts", parts.len()));
            continue;
        }
        let ct = parts[0].content_type().unwrap_or_default();
        if media_essence(ct) != "application/dicom"
            || media_param(ct, "transfer-syntax").as_deref() != Some(inst.ts.as_str())
        {
            problems.push(format!(
                "{rel}: part Content-Type {ct:?}, stored as {}",
                inst.ts
            ));
        }
        let file = std::fs::read(p.file(rel)).expect("read corpus file");
        if parts[0].body != file {
            problems.push(format!(
                "{rel}: {} bytes retrieved, the file has {}; first difference at {:?}",
                parts[0].body.len(),
                file.len(),
                first_difference(&parts[0].body, &file)
            ));
        }
    }

    // no transfer-syntax: Explicit VR Little Endian, decoded pixels (pydicom reads the file)
    let inst = fx.inst(jpeg_ls);
    let got = fx.get(&inst.path(), Some(&accept_dicom(None)), None).await;
    match got.parts() {
        Ok(parts) if parts.len() == 1 => {
            let ct = parts[0].content_type().unwrap_or_default();
            if media_param(ct, "transfer-syntax").as_deref() != Some(EXPLICIT_VR_LE) {
                problems.push(format!("{jpeg_ls} transcoded: part Content-Type {ct:?}"));
            }
            let dir = tempfile::tempdir().expect("tempdir");
            let out = dir.path().join("transcoded.dcm");
            std::fs::write(&out, &parts[0].body).expect("write");
            let obj = dicom_object::open_file(&out);
            match &obj {
                Ok(obj) => {
                    let ts = obj.meta().transfer_syntax().trim_end_matches('\0');
                    let sop = obj
                        .meta()
                        .media_storage_sop_instance_uid()
                        .trim_end_matches('\0');
                    if ts != EXPLICIT_VR_LE || sop != inst.sop {
                        problems.push(format!(
                            "{jpeg_ls} transcoded: file meta TS {ts}, SOP Instance {sop}"
                        ));
                    }
                }
                Err(e) => problems.push(format!("{jpeg_ls} transcoded: not a Part 10 file: {e}")),
            }
            let py = p.decode_frames(&[p.file(jpeg_ls), out.clone()]);
            let (orig, trans) = (&py.files[0], &py.files[1]);
            if let Some(e) = orig.error().or(trans.error()) {
                problems.push(format!("{jpeg_ls}: pydicom: {e}"));
            } else {
                if trans.ts() != EXPLICIT_VR_LE || trans.original().is_some() {
                    problems.push(format!(
                        "{jpeg_ls} transcoded: pydicom reads transfer syntax {}",
                        trans.ts()
                    ));
                }
                let (a, b) = (orig.decoded(), trans.decoded());
                if a.is_empty() || a != b {
                    problems.push(format!(
                        "{jpeg_ls} transcoded: pydicom decodes {} frames, first difference at {:?}",
                        b.len(),
                        first_difference(&a.concat(), &b.concat())
                    ));
                }
            }
        }
        Ok(parts) => problems.push(format!("{jpeg_ls} transcoded: {} parts", parts.len())),
        Err(e) => problems.push(format!("{jpeg_ls} transcoded: {e}")),
    }

    // pixel data dxhub cannot decode: 406 with the JSON error body, before any part
    let got = fx
        .get(
            &fx.inst(unsupported).path(),
            Some(&accept_dicom(None)),
            None,
        )
        .await;
    if let Err(e) = json_error(&got, 406) {
        problems.push(format!("{unsupported} as Explicit VR Little Endian: {e}"));
    }
    // … unless a lower-weight range takes it as stored: that range is served
    let both = format!(
        "{}, {};q=0.5",
        accept_dicom(None),
        accept_dicom(Some(&fx.inst(unsupported).ts))
    );
    let got = fx
        .get(&fx.inst(unsupported).path(), Some(&both), None)
        .await;
    let file = std::fs::read(p.file(unsupported)).expect("read corpus file");
    match got.parts() {
        Ok(parts) if parts.len() == 1 && parts[0].body == file => {}
        Ok(parts) => problems.push(format!(
            "{unsupported} with a lower-weight transfer-syntax=stored: {} parts, not the stored file",
            parts.len()
        )),
        Err(e) => problems.push(format!(
            "{unsupported} with a lower-weight transfer-syntax=stored: {e}"
        )),
    }
    // q=0 is "not acceptable", not a range to serve
    let refused = format!("{};q=0", accept_dicom(Some("*")));
    let got = fx.get(&fx.inst(jpeg_ls).path(), Some(&refused), None).await;
    if let Err(e) = json_error(&got, 406) {
        problems.push(format!("{jpeg_ls} with transfer-syntax=*;q=0: {e}"));
    }
    fail_if_any(&problems);
}

// ---------------------------------------------------------------------------------------
// 5. bulk data Range

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_data_answers_ranges() {
    let Some(p) = Peers::get() else { return };
    let rel = "pydicom/CT_small.dcm";
    let fx = Fixture::new(&p, &[rel]).await;
    let py = p.decode_frames(&[p.file(rel)]);
    let pixels = py.files[0].decoded().concat(); // native 16-bit LE: the stored value
    assert_eq!(pixels.len(), 128 * 128 * 2);
    let inst = fx.inst(rel);
    let meta = fx
        .get(&format!("{}/metadata", inst.path()), None, None)
        .await
        .json()
        .expect("metadata");
    let uri = meta[0]["7FE00010"]["BulkDataURI"]
        .as_str()
        .expect("Pixel Data is bulk data")
        .to_owned();
    let total = pixels.len();
    let mut problems = Vec::new();
    for (range, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-1099", 1000, 1099),
        ("bytes=-100", total - 100, total - 1),
    ] {
        let got = fx
            .get(&uri, Some("application/octet-stream"), Some(range))
            .await;
        let want_cr = format!("bytes {start}-{end}/{total}");
        let body = got.body.as_ref().ok();
        if got.status != 206
            || got.header("content-range") != Some(want_cr.as_str())
            || body.map(Vec::as_slice) != Some(&pixels[start..=end])
        {
            problems.push(format!(
                "Range {range}: expected 206, Content-Range {want_cr} and those bytes; got {}, Content-Range {:?}, {} bytes",
                got.status,
                got.header("content-range"),
                body.map_or(0, Vec::len)
            ));
        }
    }
    // the whole value without Range, and for a Range this server does not serve
    // (several ranges, other units): RFC 9110 lets it ignore them
    for range in [None, Some("bytes=0-9,20-29"), Some("items=0-1")] {
        let got = fx.get(&uri, Some("application/octet-stream"), range).await;
        if got.ok_body().ok() != Some(&pixels[..]) {
            problems.push(format!("whole value, Range {range:?}: {}", got.describe()));
        }
    }
    // outside the value: 416 with the value's length
    for range in [format!("bytes={total}-"), "bytes=-0".to_owned()] {
        let got = fx
            .get(&uri, Some("application/octet-stream"), Some(&range))
            .await;
        let want_cr = format!("bytes */{total}");
        if got.status != 416
            || got.header("content-range") != Some(want_cr.as_str())
            || json_error(&got, 416).is_err()
        {
            problems.push(format!(
                "Range {range}: expected 416 with Content-Range {want_cr}; got {}",
                got.describe()
            ));
        }
    }
    fail_if_any(&problems);
}

/// Stored frames dxhub's decoder refuses (a JPEG whose coded data is garbage): asked for
/// decoded frames only, 409 with a JSON error; decoded preferred and `image/jpeg`
/// acceptable at a lower weight, the stored frame as `image/jpeg`, byte for byte (the
/// client's own decoder may do better, and nothing is hidden from it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_frames_fall_back_to_the_stored_bytes() {
    use dicom_core::value::{PixelFragmentSequence, Value as DicomValue};
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    let Some(p) = Peers::get() else { return };
    let source = "pydicom/SC_rgb_jpeg_gdcm.dcm";
    let fx = Fixture::new(&p, &[source]).await;
    let mut obj = dicom_object::open_file(p.file(source)).expect("open the JPEG file");
    let frags: Vec<Vec<u8>> = obj
        .element(tags::PIXEL_DATA)
        .expect("pixel data")
        .value()
        .fragments()
        .expect("encapsulated")
        .to_vec();
    let garbage: Vec<Vec<u8>> = frags
        .iter()
        .map(|f| {
            let mut g = vec![0u8; f.len()];
            g[..2].copy_from_slice(&[0xFF, 0xD8]);
            let n = g.len();
            g[n - 2..].copy_from_slice(&[0xFF, 0xD9]);
            g
        })
        .collect();
    let sop = format!("{}.9", fx.inst(source).sop);
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sop.as_str()),
    ));
    obj.update_meta(|m| m.media_storage_sop_instance_uid = sop.clone());
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        DicomValue::PixelSequence(PixelFragmentSequence::new(
            Vec::<u32>::new(),
            garbage.clone(),
        )),
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage_jpeg.dcm");
    obj.write_to_file(&path).expect("write");
    let out = fx.hub.cli(&["import", path.to_str().expect("path")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let orig = fx.inst(source);
    let url = format!(
        "/dicomweb/studies/{}/series/{}/instances/{sop}/frames/1",
        orig.study, orig.series
    );
    let decoded = fx
        .get(&url, Some(&accept_frames(EXPLICIT_VR_LE)), None)
        .await;
    if let Err(e) = json_error(&decoded, 409) {
        panic!("decoded only: {e}");
    }
    let both = format!(
        "{}, multipart/related; type=\"image/jpeg\";q=0.5",
        accept_frames(EXPLICIT_VR_LE)
    );
    let got = fx.get(&url, Some(&both), None).await;
    let parts = got.parts().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parts.len(), 1, "{}", got.describe());
    let ct = parts[0]
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert_eq!(media_essence(&ct), "image/jpeg", "{ct}");
    assert_eq!(parts[0].body, garbage[0], "the stored frame, byte for byte");
}
