//! The generated DICOM corpus (`$DXHUB_TEST_CORPUS`, see fixtures/README.md) against a real
//! spawned hub, sent by the real third-party senders the corpus was made for: DCMTK's
//! `storescu` / `dcmsend` and pynetdicom (`tests/py/pyn_send.py`), and imported with
//! `dxhub import`. The oracle for the index is pydicom (`tests/py/dump_index.py`); the oracle
//! for "what went over the wire" is a bit-preserving reference receiver, DCMTK's
//! `storescp +B` (DCMTK re-serialises some files while sending, so the source file's data
//! set is not always what was sent).

use dxhub_e2e::generate::dataset_of_file;
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::peers;
use dxhub_store::Catalog;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// corpus, peers

#[derive(Debug, Clone, Deserialize)]
struct Entry {
    path: String,
    transfer_syntax: String,
    sop_class: String,
    sop_instance: String,
    #[allow(dead_code)]
    source: String,
    sender: String,
    #[serde(default)]
    sender_args: Vec<String>,
    expected_patient_name: Option<String>,
    patient_name_value: Option<String>,
    /// bad_manifest.json only
    defect: Option<String>,
}

struct Peers {
    corpus: PathBuf,
    python: PathBuf,
    py_dir: PathBuf,
}

impl Peers {
    /// The corpus, the venv python and the DCMTK tools; None (skip) outside CI when missing.
    fn get() -> Option<Peers> {
        let corpus = peers::corpus();
        if !peers::require(
            "DXHUB_TEST_CORPUS (generated corpus with manifest.json)",
            corpus.is_some(),
        ) {
            return None;
        }
        let python = peers::python();
        if !peers::require(
            "DXHUB_TEST_PYTHON (venv with pydicom + pynetdicom)",
            python.is_some(),
        ) {
            return None;
        }
        for tool in ["storescu", "dcmsend", "storescp"] {
            if !peers::require(&format!("DCMTK {tool}"), peers::dcmtk(tool).is_some()) {
                return None;
            }
        }
        Some(Peers {
            corpus: corpus?,
            python: python?,
            py_dir: peers::py_dir(),
        })
    }

    fn manifest(&self, name: &str) -> Vec<Entry> {
        let text = std::fs::read_to_string(self.corpus.join(name))
            .unwrap_or_else(|e| panic!("read {name}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {name}: {e}"))
    }

    fn file(&self, e: &Entry) -> PathBuf {
        self.corpus.join(&e.path)
    }

    fn py(&self, script: &str) -> Command {
        let mut c = Command::new(&self.python);
        c.arg(self.py_dir.join(script)).stdin(Stdio::null());
        c
    }

    /// pydicom's reading of the files (`dump_index.py`), by SOP Instance UID.
    fn dump_index(&self, files: &[PathBuf]) -> HashMap<String, serde_json::Value> {
        let out = self
            .py("dump_index.py")
            .args(files)
            .output()
            .expect("run dump_index.py");
        assert!(
            out.status.success(),
            "dump_index.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).expect("dump_index.py JSON");
        assert_eq!(list.len(), files.len(), "dump_index.py read every file");
        list.into_iter()
            .map(|v| {
                (
                    v["sop_instance_uid"]
                        .as_str()
                        .expect("sop_instance_uid")
                        .to_owned(),
                    v,
                )
            })
            .collect()
    }

    /// `pyn_send.py` of `files` over one association; the JSON line of each file by path.
    fn pyn_send(&self, port: u16, files: &[PathBuf]) -> HashMap<String, serde_json::Value> {
        let out = self
            .py("pyn_send.py")
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--aet",
                "CLINIC",
                "--aec",
                "DXHUB",
            ])
            .args(files)
            .output()
            .expect("run pyn_send.py");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "pyn_send.py: association not accepted ({:?}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut by_path = HashMap::new();
        for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("pyn_send line {line:?}: {e}"));
            let path = v["path"]
                .as_str()
                .unwrap_or_else(|| panic!("pyn_send.py: {line}"))
                .to_owned();
            by_path.insert(path, v);
        }
        by_path
    }
}

/// Run `storescu` / `dcmsend` with the entry's `sender_args` (they keep its transfer syntax)
/// and require exit status 0 and a Success C-STORE response.
fn dcmtk_send(e: &Entry, file: &Path, port: u16, what: &str) {
    let tool = peers::dcmtk(&e.sender).unwrap_or_else(|| panic!("{} not installed", e.sender));
    let out = Command::new(tool)
        .env("TCP_NODELAY", "1")
        .arg("-v")
        .args(["-aet", "CLINIC", "-aec", "DXHUB"])
        .args(&e.sender_args)
        .arg("127.0.0.1")
        .arg(port.to_string())
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("run {}: {err}", e.sender));
    let log = output_text(&out);
    assert!(
        out.status.success(),
        "{} {} → {what} exited with {:?}:\n{log}",
        e.sender,
        e.path,
        out.status
    );
    let responses: Vec<&str> = log.lines().filter(|l| l.contains("Response (")).collect();
    assert!(
        !responses.is_empty() && responses.iter().all(|l| l.contains("(Success)")),
        "{} {} → {what}: no Success C-STORE response:\n{log}",
        e.sender,
        e.path
    );
}

fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A TCP port that was free a moment ago (bind :0, read it, close).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind :0")
        .local_addr()
        .expect("addr")
        .port()
}

/// Wait until something listens on `port` (a readiness check, not a fixed sleep).
fn wait_listening(port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("reference storescp exited early: {status:?}");
        }
        assert!(
            Instant::now() < deadline,
            "reference storescp did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// DCMTK `storescp +B` (bit-preserving: the data set written exactly as received) accepting
/// every SOP class and transfer syntax of the DCMTK-sent entries. A generated association
/// profile (`-xf`) is used because `+xa` lacks JPEG Lossless Process 14 (.57). The SCP's
/// transfer syntax preference mirrors dxhub's (compressed, then Explicit LE, then the other
/// uncompressed ones); each received file's transfer syntax is checked anyway.
struct RefScp {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl RefScp {
    fn start(entries: &[&Entry]) -> RefScp {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir out");
        let uncompressed = [
            "1.2.840.10008.1.2.1",
            "1.2.840.10008.1.2.2",
            "1.2.840.10008.1.2",
        ];
        let mut ts: Vec<String> = entries
            .iter()
            .map(|e| e.transfer_syntax.clone())
            .filter(|t| !uncompressed.contains(&t.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        ts.extend(uncompressed.iter().map(|s| s.to_string()));
        let classes: BTreeSet<&str> = entries.iter().map(|e| e.sop_class.as_str()).collect();
        let mut cfg = String::from("[[TransferSyntaxes]]\n[All]\n");
        for (i, t) in ts.iter().enumerate() {
            cfg += &format!("TransferSyntax{} = {t}\n", i + 1);
        }
        cfg += "[[PresentationContexts]]\n[Ctx]\n";
        for (i, c) in classes.iter().enumerate() {
            cfg += &format!("PresentationContext{} = {c}\\All\n", i + 1);
        }
        cfg += "[[Profiles]]\n[Ref]\nPresentationContexts = Ctx\n";
        let cfg_path = dir.path().join("ref.cfg");
        std::fs::write(&cfg_path, cfg).expect("write storescp config");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("storescp.log")).expect("log");
        let mut child = Command::new(peers::dcmtk("storescp").expect("storescp"))
            .env("TCP_NODELAY", "1")
            .arg("-od")
            .arg(&out)
            .args(["+B", "-aet", "DXHUB", "-xf"])
            .arg(&cfg_path)
            .args(["Ref", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn storescp");
        wait_listening(port, &mut child);
        RefScp { child, port, dir }
    }

    /// The file storescp wrote for an instance (default names: `<modality>.<SOP Instance UID>`).
    fn received(&self, sop_instance: &str) -> PathBuf {
        std::fs::read_dir(self.dir.path().join("out"))
            .expect("read storescp out dir")
            .filter_map(|d| d.ok().map(|d| d.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.split_once('.'))
                    .is_some_and(|(_, uid)| uid == sop_instance)
            })
            .unwrap_or_else(|| {
                panic!(
                    "reference storescp did not write {sop_instance}; log:\n{}",
                    std::fs::read_to_string(self.dir.path().join("storescp.log"))
                        .unwrap_or_default()
                )
            })
    }
}

impl Drop for RefScp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// checks

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Text as the index and pydicom should both mean it: padding (spaces, NUL) removed,
/// empty = absent.
fn norm(s: Option<&str>) -> Option<String> {
    s.map(|v| v.trim_matches([' ', '\0']))
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn jstr(v: &serde_json::Value, k: &str) -> Option<String> {
    norm(v[k].as_str())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("read_dir {}: {e}", d.display()))
        {
            let p = entry.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn assert_spool_empty(hub: &TestHub) {
    let spool = hub.spool_dir();
    let left = if spool.exists() {
        files_under(&spool)
    } else {
        Vec::new()
    };
    assert!(
        left.is_empty(),
        "spool not empty after every C-STORE was answered: {left:?}"
    );
}

/// Whether the Patient's Name value stored in a Part 10 file (padding removed) ends with a
/// component-group delimiter `=`. The Chinese files are Explicit VR Little Endian with a
/// short top-level data set, so the first `(0010,0010) PN` header after the meta is it.
fn stored_name_ends_with_group_delimiter(file: &Path) -> bool {
    let bytes = std::fs::read(file).expect("read source file");
    let ds = dataset_of_file(&bytes);
    let header = [0x10, 0x00, 0x10, 0x00, b'P', b'N'];
    let at = ds
        .windows(6)
        .position(|w| w == header)
        .unwrap_or_else(|| panic!("{}: no PatientName PN element", file.display()));
    let len = u16::from_le_bytes([ds[at + 6], ds[at + 7]]) as usize;
    let value = &ds[at + 8..at + 8 + len];
    let end = value
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |i| i + 1);
    value[..end].ends_with(b"=")
}

/// The patient name the index must hold for a Chinese-name entry.
///
/// Decision: dxhub indexes the whole Person Name value as it is in the data set — every
/// component group, decoded from the Specific Character Set (incl. ISO 2022 escapes
/// removed), with only the value padding (trailing spaces/NUL) removed — and does not
/// re-format it: a trailing empty component group delimiter is kept when the sender sent
/// one (PS3.5 Annex K writes `Wang^XiaoDong=王^小东=`) and not invented when it did not.
/// The manifest's `patient_name_value` is the whole value *as make_corpus.py intended to
/// write it* (with the final `=`) and `expected_patient_name` is pydicom's
/// `str(PatientName)` (without); which one the file really holds is read from its bytes
/// (pydicom re-encodes the raw element when writing and drops the final `=`, so the current
/// corpus files lack it — see the report).
fn expected_chinese_name(p: &Peers, e: &Entry) -> Option<String> {
    let shown = e.expected_patient_name.clone()?;
    match &e.patient_name_value {
        Some(v) if stored_name_ends_with_group_delimiter(&p.file(e)) => Some(v.clone()),
        _ => Some(shown),
    }
}

/// The patient name the index must hold for an entry: see [`expected_chinese_name`];
/// for every other file pydicom's string.
fn expected_name(p: &Peers, e: &Entry, py: &serde_json::Value) -> Option<String> {
    expected_chinese_name(p, e).or_else(|| jstr(py, "patient_name"))
}

/// Compare the index with pydicom for one instance; push every disagreement to `problems`.
async fn check_index(
    p: &Peers,
    catalog: &dxhub_store::SqlCatalog,
    e: &Entry,
    py: &serde_json::Value,
    problems: &mut Vec<String>,
) {
    let mut cmp = |field: &str, index: Option<String>, oracle: Option<String>| {
        if index != oracle {
            problems.push(format!(
                "{}: {field}: index {index:?} != pydicom {oracle:?}",
                e.path
            ));
        }
    };
    let Some(inst) = catalog
        .get_instance(&e.sop_instance)
        .await
        .expect("get_instance")
    else {
        problems.push(format!("{}: not indexed", e.path));
        return;
    };
    cmp(
        "sop_instance_uid",
        Some(inst.sop_instance_uid.clone()),
        jstr(py, "sop_instance_uid"),
    );
    cmp(
        "sop_class_uid",
        Some(inst.sop_class_uid.clone()),
        jstr(py, "sop_class_uid"),
    );
    cmp(
        "study_instance_uid",
        Some(inst.study_instance_uid.clone()),
        jstr(py, "study_instance_uid"),
    );
    cmp(
        "series_instance_uid",
        Some(inst.series_instance_uid.clone()),
        jstr(py, "series_instance_uid"),
    );
    cmp(
        "instance_number",
        inst.instance_number.map(|n| n.to_string()),
        py["instance_number"].as_i64().map(|n| n.to_string()),
    );
    cmp(
        "number_of_frames",
        inst.number_of_frames.map(|n| n.to_string()),
        py["number_of_frames"].as_i64().map(|n| n.to_string()),
    );

    match catalog
        .get_series(&inst.series_instance_uid)
        .await
        .expect("get_series")
    {
        Some(se) => {
            cmp(
                "series.study_instance_uid",
                Some(se.study_instance_uid.clone()),
                jstr(py, "study_instance_uid"),
            );
            cmp(
                "modality",
                norm(se.modality.as_deref()),
                jstr(py, "modality"),
            );
            cmp(
                "series_number",
                se.series_number.map(|n| n.to_string()),
                py["series_number"].as_i64().map(|n| n.to_string()),
            );
        }
        None => cmp("series row", None, Some(inst.series_instance_uid.clone())),
    }
    match catalog
        .get_study(&inst.study_instance_uid)
        .await
        .expect("get_study")
    {
        Some(st) => {
            cmp(
                "patient_id",
                norm(Some(&st.patient_id)),
                jstr(py, "patient_id"),
            );
            cmp(
                "patient_name",
                norm(st.patient_name.as_deref()),
                expected_name(p, e, py),
            );
            cmp(
                "patient_birth_date",
                norm(st.patient_birth_date.as_deref()),
                jstr(py, "patient_birth_date"),
            );
            cmp(
                "patient_sex",
                norm(st.patient_sex.as_deref()),
                jstr(py, "patient_sex"),
            );
            cmp(
                "study_date",
                norm(st.study_date.as_deref()),
                jstr(py, "study_date"),
            );
            cmp(
                "study_time",
                norm(st.study_time.as_deref()),
                jstr(py, "study_time"),
            );
            cmp(
                "accession_number",
                norm(st.accession_number.as_deref()),
                jstr(py, "accession_number"),
            );
            cmp(
                "study_description",
                norm(st.study_description.as_deref()),
                jstr(py, "study_description"),
            );
            let modality = jstr(py, "modality");
            let in_study = st.modalities_in_study.clone().unwrap_or_default();
            if let Some(m) = modality.filter(|m| !in_study.split('\\').any(|x| x == m)) {
                problems.push(format!(
                    "{}: modalities_in_study {in_study:?} lacks {m}",
                    e.path
                ));
            }
        }
        None => cmp("study row", None, Some(inst.study_instance_uid.clone())),
    }
}

/// Send `entries` to `hub` with their senders; DCMTK-sent ones also to `reference`.
/// Returns, per SOP Instance UID, the data set bytes that went over the wire.
fn send_all(
    p: &Peers,
    hub: &TestHub,
    entries: &[Entry],
    reference: Option<&RefScp>,
) -> HashMap<String, Vec<u8>> {
    let port = hub.dicom.port();
    let mut sent = HashMap::new();
    let mut pyn = Vec::new();
    for e in entries {
        match e.sender.as_str() {
            "storescu" | "dcmsend" => {
                let file = p.file(e);
                dcmtk_send(e, &file, port, "dxhub");
                if let Some(r) = reference {
                    dcmtk_send(e, &file, r.port, "reference storescp");
                    let got =
                        std::fs::read(r.received(&e.sop_instance)).expect("read storescp file");
                    sent.insert(e.sop_instance.clone(), dataset_of_file(&got).to_vec());
                }
            }
            "pynetdicom" => pyn.push(e),
            other => panic!("{}: unknown sender {other:?}", e.path),
        }
    }
    if !pyn.is_empty() {
        let files: Vec<PathBuf> = pyn.iter().map(|e| p.file(e)).collect();
        let results = p.pyn_send(port, &files);
        for (e, f) in pyn.iter().zip(&files) {
            let r = results
                .get(f.to_str().expect("utf-8 path"))
                .unwrap_or_else(|| panic!("pyn_send.py: no result for {}", e.path));
            assert_eq!(
                r["status"].as_u64(),
                Some(0),
                "pynetdicom C-STORE of {}: {r}",
                e.path
            );
            // pyn_send.py streams the stored data set bytes untouched
            let src = std::fs::read(f).expect("read source");
            sent.insert(e.sop_instance.clone(), dataset_of_file(&src).to_vec());
        }
    }
    sent
}

// ---------------------------------------------------------------------------------------
// tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_storescu_dcmsend_pynetdicom_byte_exact_and_indexed() {
    let Some(p) = Peers::get() else { return };
    let started = Instant::now();
    let entries = p.manifest("manifest.json");
    assert!(
        entries.len() >= 80,
        "corpus manifest unexpectedly small: {}",
        entries.len()
    );
    let hub = TestHub::spawn(HubOptions::default());
    let dcmtk_entries: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.sender != "pynetdicom")
        .collect();
    let reference = RefScp::start(&dcmtk_entries);

    let sent = send_all(&p, &hub, &entries, Some(&reference));
    assert_eq!(
        sent.len(),
        entries.len(),
        "every entry's wire bytes are known"
    );
    assert_spool_empty(&hub);

    // what the reference storescp received must carry the manifest's transfer syntax too,
    // otherwise it negotiated something else than dxhub and is no reference
    let ref_files: Vec<PathBuf> = dcmtk_entries
        .iter()
        .map(|e| reference.received(&e.sop_instance))
        .collect();
    let ref_index = p.dump_index(&ref_files);
    for e in &dcmtk_entries {
        assert_eq!(
            ref_index[&e.sop_instance]["transfer_syntax_uid"].as_str(),
            Some(e.transfer_syntax.as_str()),
            "{}: reference storescp negotiated another transfer syntax",
            e.path
        );
    }

    let oracle = p.dump_index(&entries.iter().map(|e| p.file(e)).collect::<Vec<_>>());
    let catalog = hub.catalog().await;
    let blobs = hub.blobs();
    let mut problems = Vec::new();
    for e in &entries {
        let Some(row) = catalog
            .get_instance(&e.sop_instance)
            .await
            .expect("get_instance")
        else {
            problems.push(format!("{}: not indexed", e.path));
            continue;
        };
        if row.transfer_syntax_uid != e.transfer_syntax {
            problems.push(format!(
                "{}: stored in {} instead of {} (transcoded?)",
                e.path, row.transfer_syntax_uid, e.transfer_syntax
            ));
        }
        if row.sop_class_uid != e.sop_class {
            problems.push(format!(
                "{}: SOP class {} != {}",
                e.path, row.sop_class_uid, e.sop_class
            ));
        }
        let blob = blobs
            .get_bytes(&row.blob_key)
            .await
            .unwrap_or_else(|err| panic!("{}: blob {}: {err}", e.path, row.blob_key));
        let meta = dicom_object::meta::FileMetaTable::from_reader(&blob[128..])
            .unwrap_or_else(|err| panic!("{}: stored blob has no valid file meta: {err}", e.path));
        if meta.transfer_syntax().trim_end_matches(['\0', ' ']) != e.transfer_syntax {
            problems.push(format!(
                "{}: blob meta says TS {:?}",
                e.path,
                meta.transfer_syntax()
            ));
        }
        if meta
            .media_storage_sop_instance_uid()
            .trim_end_matches(['\0', ' '])
            != e.sop_instance
        {
            problems.push(format!(
                "{}: blob meta says SOP instance {:?}",
                e.path,
                meta.media_storage_sop_instance_uid()
            ));
        }
        let dataset = dataset_of_file(&blob);
        let wire = &sent[&e.sop_instance];
        if dataset != wire.as_slice() {
            let at = dataset
                .iter()
                .zip(wire.iter())
                .position(|(a, b)| a != b)
                .unwrap_or(dataset.len().min(wire.len()));
            problems.push(format!(
                "{} ({}): stored data set differs from what was sent: {} vs {} bytes, first difference at {at}",
                e.path,
                e.sender,
                dataset.len(),
                wire.len()
            ));
        }
        if row.sha256 != sha256_hex(&blob) {
            problems.push(format!("{}: index sha256 is not the blob's", e.path));
        }
        if row.dataset_hash != format!("blake3:{}", blake3::hash(dataset).to_hex()) {
            problems.push(format!(
                "{}: index dataset_hash is not the stored data set's",
                e.path
            ));
        }
        if row.size_bytes != blob.len() as i64 {
            problems.push(format!(
                "{}: size_bytes {} != blob {}",
                e.path,
                row.size_bytes,
                blob.len()
            ));
        }
        if row.source_ae.as_deref() != Some("CLINIC") {
            problems.push(format!("{}: source_ae {:?}", e.path, row.source_ae));
        }
        let py = oracle
            .get(&e.sop_instance)
            .unwrap_or_else(|| panic!("{}: not in dump_index output", e.path));
        check_index(&p, &catalog, e, py, &mut problems).await;
    }

    let distinct: BTreeSet<&str> = entries.iter().map(|e| e.sop_instance.as_str()).collect();
    let counts = catalog.counts().await.expect("counts");
    if counts.instances != distinct.len() as i64
        || counts.instance_versions != distinct.len() as i64
    {
        problems.push(format!(
            "counts {counts:?}: expected {} instances, one version each",
            distinct.len()
        ));
    }
    assert_spool_empty(&hub);
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!(
        "corpus: {} instances sent, stored byte-exact and indexed in {:?}",
        entries.len(),
        started.elapsed()
    );
}

/// Chinese patient names in UTF-8, GB18030 and `\ISO 2022 IR 58` (with and without
/// component groups) are indexed exactly — see [`expected_chinese_name`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chinese_patient_names_indexed_exactly() {
    let Some(p) = Peers::get() else { return };
    let started = Instant::now();
    let entries: Vec<Entry> = p
        .manifest("manifest.json")
        .into_iter()
        .filter(|e| e.expected_patient_name.is_some())
        .collect();
    assert!(
        entries.len() >= 5,
        "the corpus has the five chinese/ files: {}",
        entries.len()
    );
    for e in &entries {
        // the manifest's two spellings differ only by a trailing empty component group
        let value = e.patient_name_value.as_deref().unwrap_or_default();
        assert_eq!(
            value.trim_end_matches('='),
            e.expected_patient_name.as_deref().unwrap_or_default(),
            "{}",
            e.path
        );
    }
    let hub = TestHub::spawn(HubOptions::default());
    send_all(&p, &hub, &entries, None);
    let catalog = hub.catalog().await;
    let mut problems = Vec::new();
    for e in &entries {
        let want = expected_chinese_name(&p, e);
        let Some(inst) = catalog
            .get_instance(&e.sop_instance)
            .await
            .expect("get_instance")
        else {
            problems.push(format!("{}: not indexed", e.path));
            continue;
        };
        let study = catalog
            .get_study(&inst.study_instance_uid)
            .await
            .expect("get_study")
            .expect("study row");
        // strict: no trimming, no normalisation
        if study.patient_name != want {
            problems.push(format!(
                "{}: patient_name {:?} != {:?}",
                e.path, study.patient_name, want
            ));
        }
        let patient = catalog
            .get_patient(study.patient_ref)
            .await
            .expect("get_patient")
            .expect("patient row");
        if patient.patient_name != want {
            problems.push(format!(
                "{}: patients.patient_name {:?} != {:?}",
                e.path, patient.patient_name, want
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "chinese names: {} files in {:?}",
        entries.len(),
        started.elapsed()
    );
}

/// Parse `dxhub import`'s summary: `stored: N`, `duplicate: N`, `rejected: N`.
fn import_summary(out: &Output) -> BTreeMap<String, u64> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_once(": "))
        .filter_map(|(k, v)| v.trim().parse().ok().map(|n| (k.trim().to_owned(), n)))
        .collect()
}

/// `(stored, duplicate, rejected)` as printed, one problem per run with its output.
fn expect_import(problems: &mut Vec<String>, run: &str, out: &Output, want: (u64, u64, u64)) {
    let text = output_text(out);
    assert!(out.status.success(), "{run} dxhub import failed: {text}");
    let s = import_summary(out);
    let got = (
        s.get("stored").copied(),
        s.get("duplicate").copied(),
        s.get("rejected").copied(),
    );
    if got != (Some(want.0), Some(want.1), Some(want.2)) || s.contains_key("new version") {
        problems.push(format!(
            "{run} import: (stored, duplicate, rejected) = {got:?}, expected {want:?}; output:\n{text}"
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_command_summary() {
    let Some(p) = Peers::get() else { return };
    let started = Instant::now();
    let entries = p.manifest("manifest.json");
    let bad = p.manifest("bad_manifest.json");
    let all_files = files_under(&p.corpus);
    let manifest_paths: BTreeSet<PathBuf> = entries.iter().map(|e| p.file(e)).collect();
    // everything else in the corpus dir — manifest JSON files, the generator's hash files,
    // the truncated files of bad/ — is not a valid DICOM instance and must be rejected
    let others: Vec<&PathBuf> = all_files
        .iter()
        .filter(|f| !manifest_paths.contains(*f))
        .collect();
    for b in &bad {
        assert!(
            others.contains(&&p.file(b)),
            "{} is in the corpus dir",
            b.path
        );
    }
    assert!(
        others.len() >= bad.len() + 2,
        "bad files and the manifests: {others:?}"
    );

    // `dxhub import` runs next to the serving hub, on its data dir
    let hub = TestHub::spawn(HubOptions::default());
    let corpus = p.corpus.to_str().expect("utf-8 corpus path");
    let n = entries.len() as u64;
    let m = others.len() as u64;
    let mut problems = Vec::new();
    // first run: every manifest entry stored; everything else (incl. both truncated files)
    // rejected. Second run: the same entries are duplicates, the same files rejected.
    let out = hub.cli(&["import", corpus]);
    expect_import(&mut problems, "first", &out, (n, 0, m));
    let again = hub.cli(&["import", corpus]);
    expect_import(&mut problems, "second", &again, (0, n, m));

    let catalog = hub.catalog().await;
    for b in &bad {
        let row = catalog
            .get_instance(&b.sop_instance)
            .await
            .expect("get_instance");
        if row.is_some() {
            problems.push(format!("{} ({:?}) was indexed", b.path, b.defect));
        }
    }
    for e in &entries {
        match catalog
            .get_instance(&e.sop_instance)
            .await
            .expect("get_instance")
        {
            None => problems.push(format!("{} not indexed after import", e.path)),
            Some(row) => {
                if row.transfer_syntax_uid != e.transfer_syntax {
                    problems.push(format!(
                        "{}: imported as {}",
                        e.path, row.transfer_syntax_uid
                    ));
                }
                if row.source_ae.is_some() {
                    problems.push(format!(
                        "{}: source_ae {:?} on an import",
                        e.path, row.source_ae
                    ));
                }
            }
        }
    }
    let counts = catalog.counts().await.expect("counts");
    if counts.instances != n as i64 || counts.instance_versions != n as i64 {
        problems.push(format!(
            "counts {counts:?}, expected {n} instances with one version each"
        ));
    }
    assert_spool_empty(&hub);
    // importing writes patient data: one audit entry per study and run, and one for the
    // refusals; no patient data in them; the chain verifies
    let audit = hub.cli(&[
        "audit",
        "list",
        "--action",
        "dicom-import",
        "--limit",
        "1000",
        "--json",
    ]);
    let audit_text = String::from_utf8_lossy(&audit.stdout).into_owned();
    let rows: serde_json::Value = serde_json::from_str(&audit_text).expect("audit list --json");
    let rows = rows.as_array().cloned().unwrap_or_default();
    let failures = rows
        .iter()
        .filter(|r| {
            r["outcome"]
                .as_str()
                .is_some_and(|o| o.starts_with("failure"))
        })
        .count();
    if failures != 2 {
        problems.push(format!(
            "expected one dicom-import failure entry per run, got {failures}"
        ));
    }
    let audited_studies: BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r["object_id"].as_str().map(str::to_owned))
        .collect();
    for e in &entries {
        let Ok(Some(row)) = catalog.get_instance(&e.sop_instance).await else {
            continue;
        };
        if !audited_studies.contains(&row.study_instance_uid) {
            problems.push(format!(
                "study of {} imported without an audit entry",
                e.path
            ));
        }
    }
    if audit_text.contains("张") || audit_text.contains("Anonymized") {
        problems.push("patient data in the audit log".into());
    }
    if !hub.cli(&["audit", "verify"]).status.success() {
        problems.push("audit chain does not verify after import".into());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "import: twice {} files in {:?}",
        all_files.len(),
        started.elapsed()
    );
}

/// What a folder copied from a CD or an old PACS holds besides instances: a `DICOMDIR`
/// (skipped: the files it lists are imported themselves), a dangling link (reported with
/// the refusals; the rest is imported), and a second link to one file (imported once).
#[test]
fn import_goes_on_past_unreadable_entries_and_skips_dicomdir() {
    let hub = TestHub::spawn(HubOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let study = dxhub_e2e::generate::new_uid();
    let series = dxhub_e2e::generate::new_uid();
    let spec = dxhub_e2e::generate::CtSpec::new(&study, &series, 1);
    let file = dir.path().join("IM000001");
    dxhub_e2e::generate::ct_file(&spec, &file);
    std::fs::copy(&file, dir.path().join("DICOMDIR")).expect("a DICOMDIR");
    std::os::unix::fs::symlink(&file, dir.path().join("again")).expect("link");
    std::os::unix::fs::symlink("/nonexistent/dxhub", dir.path().join("broken")).expect("link");
    let out = hub.cli(&["import", dir.path().to_str().expect("utf-8")]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    let s = import_summary(&out);
    assert_eq!(
        (s.get("stored"), s.get("duplicate"), s.get("rejected")),
        (Some(&1), Some(&0), Some(&1)),
        "{text}"
    );
    assert!(text.contains("cannot read: entity not found"), "{text}");
    assert!(text.contains("skipped: 1 DICOMDIR file(s)"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_files_fail_and_the_association_carries_on() {
    let Some(p) = Peers::get() else { return };
    let started = Instant::now();
    let bad = p.manifest("bad_manifest.json");
    assert!(!bad.is_empty());
    let good = p
        .manifest("manifest.json")
        .into_iter()
        .find(|e| e.sender == "pynetdicom")
        .expect("a pynetdicom entry in the corpus");
    // DIMSE at debug level: should the association stall, the log (shown when the test
    // fails) tells whether the hub answered each instance
    let hub = TestHub::spawn(HubOptions::default().env("RUST_LOG", "dxhub_dimse=debug,info"));
    let mut files: Vec<PathBuf> = bad.iter().map(|b| p.file(b)).collect();
    files.push(p.file(&good));
    let results = p.pyn_send(hub.dicom.port(), &files);

    let mut problems = Vec::new();
    for b in &bad {
        let r = &results[p.file(b).to_str().expect("utf-8")];
        match r["status"].as_u64() {
            Some(s) if (0xC000..=0xCFFF).contains(&s) || (0xA900..=0xA9FF).contains(&s) => {}
            other => problems.push(format!(
                "{} ({}): expected a failure status (Cxxx / A9xx), got {:?}: {r}",
                b.path,
                b.defect.as_deref().unwrap_or_default(),
                other.map(|s| format!("{s:04X}"))
            )),
        }
    }
    let r = &results[p.file(&good).to_str().expect("utf-8")];
    assert_eq!(
        r["status"].as_u64(),
        Some(0),
        "valid instance after the malformed ones on the same association: {r}"
    );

    let catalog = hub.catalog().await;
    assert!(
        catalog
            .get_instance(&good.sop_instance)
            .await
            .expect("get_instance")
            .is_some()
    );
    for b in &bad {
        if catalog
            .get_instance(&b.sop_instance)
            .await
            .expect("get_instance")
            .is_some()
        {
            problems.push(format!("{}: a malformed instance was indexed", b.path));
        }
    }
    assert_spool_empty(&hub);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "malformed: {} files in {:?}",
        files.len(),
        started.elapsed()
    );
}
