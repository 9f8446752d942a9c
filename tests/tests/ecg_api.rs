#![allow(clippy::unwrap_used)]
//! The ECG centre over HTTP against a real hub (issue #5): uploads by device token in
//! every format, idempotent re-sends (same content, same Idempotency-Key), gzip bodies,
//! broken input refused with nothing stored, resumable uploads across a cut connection,
//! DICOM ECGs by C-STORE and STOW-RS through the same processing, the waveform and
//! rendering endpoints, scoping, audit, and the village ECG-device coverage indicator.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

use dxhub_e2e::api::{add_device, add_user, eventually, issue_token, join_pool, raw_sql};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::peers;
use serde_json::Value;

const T1: &str = "城关镇卫生院";
const V1: &str = "东村卫生室";
const V2: &str = "西村卫生室";
const T2: &str = "南山乡卫生院";
const PASSWORD: &str = "Correct-Horse-9-Battery";

fn corpus_file(name: &str) -> Option<PathBuf> {
    peers::corpus().map(|c| c.join("pydicom").join(name))
}

struct Ecgs {
    hub: TestHub,
    client: reqwest::Client,
    /// Device token of village clinic V1.
    device: String,
    /// Device token of township T2 (another branch of the alliance).
    device_t2: String,
    reader: String,
    admin: String,
    auditor: String,
    clinic_t2: String,
}

impl Ecgs {
    async fn new() -> Ecgs {
        Self::with(HubOptions::default()).await
    }

    async fn with(opts: HubOptions) -> Ecgs {
        let hub = TestHub::spawn(opts);
        for (name, level, parent) in [
            (V1, "village", T1),
            (V2, "village", T1),
            (T2, "township", "县人民医院"),
        ] {
            hub.admin_ok(&[
                "institution",
                "add",
                "--alliance",
                "测试医共体",
                "--name",
                name,
                "--level",
                level,
                "--parent",
                parent,
            ]);
        }
        let device = add_device(&hub, V1, "ECG-V1-001");
        let device_t2 = add_device(&hub, T2, "ECG-T2-001");
        let reader_id = add_user(&hub, "县人民医院", "ecgreader", "reader", PASSWORD);
        add_user(&hub, "县人民医院", "groupadmin", "group_admin", PASSWORD);
        add_user(&hub, T2, "clinict2", "clinic_doctor", PASSWORD);
        add_user(&hub, "县人民医院", "auditor1", "auditor", PASSWORD);
        let auditor = issue_token(&hub, "auditor1", "1h");
        let reader = issue_token(&hub, "ecgreader", "1h");
        let admin = issue_token(&hub, "groupadmin", "1h");
        // the ECG physician reads what is routed to the ECG pool
        join_pool(&hub, &admin, "ecg", reader_id).await;
        let clinic_t2 = issue_token(&hub, "clinict2", "1h");
        Ecgs {
            hub,
            client: reqwest::Client::new(),
            device,
            device_t2,
            reader,
            admin,
            auditor,
            clinic_t2,
        }
    }

    fn url(&self, path: &str) -> String {
        self.hub.http_url(path)
    }

    /// A tus PATCH of the upload at `location` from `offset` with `body`.
    async fn patch(
        &self,
        location: &str,
        offset: impl ToString,
        body: Vec<u8>,
    ) -> reqwest::Response {
        self.client
            .patch(self.url(location))
            .bearer_auth(&self.device)
            .header("tus-resumable", "1.0.0")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", offset.to_string())
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn upload(
        &self,
        token: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self
            .client
            .post(self.url("/api/v1/ecg"))
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let h = r.headers().clone();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status == 201 {
            self.routed(v["study_instance_uid"].as_str().unwrap()).await;
        }
        (status, h, v)
    }

    async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn get_json(&self, path: &str, token: &str) -> Value {
        let r = self.get(path, token).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        if status != 200 {
            let log = self.hub.log();
            let tail: Vec<&str> = log.lines().rev().take(8).collect();
            panic!(
                "GET {path}: {status} {text}\nhub log (newest first):\n{}",
                tail.join("\n")
            );
        }
        serde_json::from_str(&text).unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        use dxhub_store::Catalog as _;
        let c = self.hub.catalog().await;
        let n = match table {
            "instances" => c.counts().await.unwrap().instances,
            _ => unreachable!(),
        };
        n as i64
    }

    async fn ecg_count(&self) -> i64 {
        dxhub_e2e::api::index_scalar(&self.hub, "SELECT COUNT(*) FROM ecgs").await
    }

    /// Wait until the study is on the worklist: routing runs after the upload's 201 (a
    /// burst is routed once it is through), and the reader sees only what is routed to
    /// the pool.
    async fn routed(&self, study: &str) {
        assert!(
            study.chars().all(|c| c.is_ascii_digit() || c == '.'),
            "{study}"
        );
        let sql = format!("SELECT COUNT(*) FROM work_items WHERE study_instance_uid = '{study}'");
        let ok = eventually(std::time::Duration::from_secs(10), || async {
            dxhub_e2e::api::index_scalar(&self.hub, &sql).await > 0
        })
        .await;
        assert!(ok, "study {study} was not routed");
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// pydicom's reading of a DICOM ECG (tests/py/ecg_dump.py): lead name → µV samples.
fn pydicom_leads(path: &std::path::Path) -> Vec<(String, Vec<f64>)> {
    let py = peers::python().unwrap();
    let out = Command::new(py)
        .arg(peers::py_dir().join("ecg_dump.py"))
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let group = &v["groups"][0];
    group["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["meaning"].as_str().unwrap_or("").to_owned(),
                l["uv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dicom_ecg_upload_is_stored_analysed_idempotent_and_readable() {
    let Some(file) = corpus_file("waveform_ecg.dcm") else {
        peers::require("DXHUB_TEST_CORPUS (pydicom corpus)", false);
        return;
    };
    if !peers::require("DXHUB_TEST_PYTHON", peers::python().is_some()) {
        return;
    }
    let t = Ecgs::new().await;
    let bytes = std::fs::read(&file).unwrap();

    let (status, h, body) = t.upload(&t.device, bytes.clone(), &[]).await;
    assert_eq!(status, 201, "{body}");
    assert!(h.get("idempotent-replayed").is_none());
    assert_eq!(body["format"], "dicom");
    assert_eq!(body["sample_rate_hz"].as_f64(), Some(1000.0), "{body}");
    let leads: Vec<&str> = body["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for l in ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V6"] {
        assert!(leads.contains(&l), "{l} in {leads:?}");
    }
    assert_eq!(
        body["analysis"]["label"], "machine measurements, unconfirmed",
        "{body}"
    );
    let id = body["id"].as_i64().unwrap();
    let study = body["study_instance_uid"].as_str().unwrap().to_owned();
    let instances = t.count("instances").await;
    assert_eq!(t.ecg_count().await, 1);

    // identical re-send: same body, nothing new
    let (status, h, again) = t.upload(&t.device, bytes.clone(), &[]).await;
    assert_eq!(status, 201);
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(again, body);
    // gzip-encoded re-send, and a gzip file sent as it is: the same ECG
    let gz = gzip(&bytes);
    let (status, _, again) = t
        .upload(&t.device, gz.clone(), &[("content-encoding", "gzip")])
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], body["id"]);
    let (status, _, again) = t.upload(&t.device, gz, &[]).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], body["id"]);
    assert_eq!(t.count("instances").await, instances);
    assert_eq!(t.ecg_count().await, 1);

    // the reader sees it: record, original bytes, QIDO with modality ECG
    let got = t.get_json(&format!("/api/v1/ecg/{id}"), &t.reader).await;
    assert_eq!(got, body);
    let orig = t
        .get(&format!("/api/v1/ecg/{id}/original"), &t.reader)
        .await;
    assert_eq!(orig.status(), 200);
    assert_eq!(orig.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let qido = t
        .get_json(
            &format!("/dicomweb/studies?StudyInstanceUID={study}&includefield=ModalitiesInStudy"),
            &t.reader,
        )
        .await;
    assert_eq!(qido.as_array().unwrap().len(), 1, "{qido}");
    assert_eq!(qido[0]["00080061"]["Value"][0], "ECG", "{qido}");
    let by_study = t
        .get_json(&format!("/api/v1/ecg?study={study}"), &t.reader)
        .await;
    assert_eq!(by_study["ecgs"][0]["id"], id);

    // WADO-RS metadata: the samples are a BulkDataURI (not base64 in the index), and it
    // returns exactly the file's Waveform Data
    let meta = t
        .get_json(&format!("/dicomweb/studies/{study}/metadata"), &t.reader)
        .await;
    let uri = meta[0]["54000100"]["Value"][0]["54001010"]["BulkDataURI"]
        .as_str()
        .unwrap_or_else(|| panic!("no BulkDataURI for Waveform Data: {}", meta[0]["54000100"]));
    assert!(uri.ends_with("/bulk/54000100.0.54001010"), "{uri}");
    let path = uri.find("/dicomweb/").map(|i| &uri[i..]).unwrap();
    let bulk = t.get(path, &t.reader).await;
    assert_eq!(bulk.status(), 200);
    let ctype = bulk.headers()["content-type"].to_str().unwrap().to_owned();
    let body = bulk.bytes().await.unwrap();
    let parts = dxhub_e2e::dicomweb::parse_multipart(&ctype, &body).unwrap();
    assert_eq!(parts.len(), 1, "one bulk data part");
    let bulk = &parts[0].body;
    let file_obj = dicom_object::open_file(&file).unwrap();
    let expected = file_obj
        .element(dicom_dictionary_std::tags::WAVEFORM_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0]
        .element(dicom_dictionary_std::tags::WAVEFORM_DATA)
        .unwrap()
        .to_bytes()
        .unwrap()
        .into_owned();
    assert!(expected.len() > 1024);
    assert_eq!(bulk.as_slice(), expected.as_slice(), "bulk Waveform Data");

    // waveform JSON: every sample of pydicom's reading, and an overview
    let wf = t
        .get_json(&format!("/api/v1/ecg/{id}/waveform"), &t.reader)
        .await;
    let reference = pydicom_leads(&file);
    let wl = wf["leads"].as_array().unwrap();
    let mut compared = 0;
    for (meaning, uv) in &reference {
        let name = dxhub_ecg::LeadCode::from_name(meaning)
            .map(|c| c.name().to_owned())
            .unwrap();
        let ours = wl.iter().find(|l| l["code"] == name.as_str()).unwrap();
        let ours: Vec<f64> = ours["samples_uv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(ours.len(), uv.len(), "{name}");
        for (a, b) in ours.iter().zip(uv) {
            assert!((a - b).abs() <= 0.05 + b.abs() * 1e-6, "{name}: {a} vs {b}");
        }
        compared += 1;
    }
    assert!(compared >= 12, "{compared} leads compared");
    let ov = &wf["overview"]["leads"][0];
    assert!(ov["min_uv"].as_array().unwrap().len() <= 1000);
    assert_eq!(
        ov["min_uv"].as_array().unwrap().len(),
        ov["max_uv"].as_array().unwrap().len()
    );

    // renderings
    let svg = t
        .get(&format!("/api/v1/ecg/{id}/render.svg"), &t.reader)
        .await;
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let svg = svg.text().await.unwrap();
    assert!(
        svg.starts_with("<svg") || svg.starts_with("<?xml"),
        "{}",
        &svg[..100.min(svg.len())]
    );
    assert!(svg.contains("machine measurements, unconfirmed"));
    for q in ["?speed=50", "?gain=5", "?gain=20", "?layout=12x1"] {
        let r = t
            .get(&format!("/api/v1/ecg/{id}/render.svg{q}"), &t.reader)
            .await;
        assert_eq!(r.status(), 200, "{q}");
    }
    let bad = t
        .get(&format!("/api/v1/ecg/{id}/render.svg?speed=30"), &t.reader)
        .await;
    assert_eq!(bad.status(), 400);
    let png = t
        .get(&format!("/api/v1/ecg/{id}/render.png"), &t.reader)
        .await;
    assert_eq!(png.status(), 200);
    let png = png.bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));

    // scoping: another township's clinic does not see a village of T1 (to it, there is
    // no such ECG); the device token cannot read at all
    let r = t.get(&format!("/api/v1/ecg/{id}"), &t.clinic_t2).await;
    assert_eq!(r.status(), 404);
    let r = t.get(&format!("/api/v1/ecg/{id}"), &t.device).await;
    assert_eq!(r.status(), 403);
    let r = t.get("/api/v1/ecg/999999", &t.reader).await;
    assert_eq!(r.status(), 404);

    // audit: the upload and the reads are recorded. One entry per upload request: the
    // first (committed with the ECG) and each of the three replays, all naming the study.
    let audit = t
        .get_json("/api/v1/audit?action=ecg-upload", &t.auditor)
        .await;
    let entries = audit["entries"].as_array().unwrap();
    let uploads: Vec<_> = entries
        .iter()
        .filter(|e| e["actor"] == "ECG-V1-001" && e["outcome"] == "success")
        .collect();
    assert_eq!(uploads.len(), 4, "{audit}");
    assert!(
        uploads
            .iter()
            .all(|e| e["object_kind"] == "study" && e["object_id"] == study.as_str()),
        "{audit}"
    );
    let audit = t
        .get_json("/api/v1/audit?action=ecg-read", &t.auditor)
        .await;
    assert!(!audit["entries"].as_array().unwrap().is_empty());
    let _ = (&t.device_t2,);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_and_foreign_input_is_refused_and_nothing_is_stored() {
    let t = Ecgs::new().await;
    type Case<'a> = (Vec<u8>, Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            b"%PDF-1.7 not an ECG".to_vec(),
            vec![],
            415,
            "unsupported-ecg-format",
        ),
        (Vec::new(), vec![], 415, "unsupported-ecg-format"),
        (
            {
                let mut b = vec![0u8; 128];
                b.extend_from_slice(b"DICM\x02\x00\x00\x00UL\x04\x00");
                b
            },
            vec![],
            422,
            "malformed-ecg",
        ),
        (
            b"{\"sample_rate_hz\": 500}".to_vec(),
            vec![],
            422,
            "malformed-ecg",
        ),
        (
            b"<?xml version=\"1.0\"?><AnnotatedECG xmlns=\"urn:hl7-org:v3\"></AnnotatedECG>"
                .to_vec(),
            vec![],
            422,
            "malformed-ecg",
        ),
        (
            b"not gzip at all".to_vec(),
            vec![("content-encoding", "gzip")],
            400,
            "bad-gzip",
        ),
        (
            b"x".to_vec(),
            vec![("content-encoding", "br")],
            415,
            "unsupported-content-encoding",
        ),
    ];
    for (body, headers, status, code) in cases {
        let (s, _, v) = t.upload(&t.device, body.clone(), &headers).await;
        assert_eq!(s, status, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    // a user without upload rights, no token, a revoked-looking token
    let (s, _, v) = t.upload(&t.reader, b"{}".to_vec(), &[]).await;
    assert_eq!(s, 403, "{v}");
    let r = t
        .client
        .post(t.url("/api/v1/ecg"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (s, _, _) = t.upload("dxd_not-a-token", b"{}".to_vec(), &[]).await;
    assert_eq!(s, 401);
    // an oversize body: 413 (announced by Content-Length, answered before the body is
    // read; the client may see the connection close while it still sends)
    let r = t
        .client
        .post(t.url("/api/v1/ecg"))
        .bearer_auth(&t.device)
        .body(vec![b' '; 17 * 1024 * 1024])
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status(), 413);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "payload-too-large");
    }
    assert_eq!(t.count("instances").await, 0);
    assert_eq!(t.ecg_count().await, 0);
    let spool: Vec<_> = std::fs::read_dir(t.hub.spool_dir())
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert!(spool.is_empty(), "spool left over: {spool:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_binds_one_content() {
    let Some(file) = corpus_file("waveform_ecg.dcm") else {
        peers::require("DXHUB_TEST_CORPUS (pydicom corpus)", false);
        return;
    };
    let t = Ecgs::new().await;
    let bytes = std::fs::read(&file).unwrap();
    let (s, _, first) = t
        .upload(&t.device, bytes.clone(), &[("idempotency-key", "visit-42")])
        .await;
    assert_eq!(s, 201, "{first}");
    let (s, h, again) = t
        .upload(&t.device, bytes.clone(), &[("idempotency-key", "visit-42")])
        .await;
    assert_eq!(s, 201);
    assert_eq!(h["idempotent-replayed"], "true");
    assert_eq!(again, first);
    // the same key with other content is refused
    let general = std::fs::read(corpus_file("waveform_ecg_general.dcm").unwrap()).unwrap();
    let (s, _, v) = t
        .upload(&t.device, general, &[("idempotency-key", "visit-42")])
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "idempotency-key-reused");
    // another institution's key space is its own: T2's device uploads the same bytes
    let (s, h, other) = t
        .upload(&t.device_t2, bytes, &[("idempotency-key", "visit-42")])
        .await;
    assert_eq!(
        s, 403,
        "{other}: a SOP instance held by another institution"
    );
    assert!(h.get("idempotent-replayed").is_none());
    assert_eq!(t.ecg_count().await, 1);
    let (s, _, v) = t
        .upload(
            &t.device,
            b"{}".to_vec(),
            &[("idempotency-key", "bad key with spaces")],
        )
        .await;
    assert_eq!(s, 400, "{v}");
}

/// A raw HTTP/1.1 PATCH that sends `part` of a body declared `declared` bytes long, then
/// closes the connection.
async fn cut_patch(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    offset: usize,
    declared: usize,
    part: &[u8],
) {
    drop(held_patch(addr, path, token, offset, declared, part).await);
}

/// [`cut_patch`] without the cut: the connection stays open (the PATCH still running)
/// until the stream is dropped.
async fn held_patch(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    offset: usize,
    declared: usize,
    part: &[u8],
) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\nContent-Length: {declared}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(part).await.unwrap();
    s.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumable_upload_survives_a_cut_connection() {
    let Some(file) = corpus_file("waveform_ecg.dcm") else {
        peers::require("DXHUB_TEST_CORPUS (pydicom corpus)", false);
        return;
    };
    let mut t = Ecgs::new().await;
    let bytes = std::fs::read(&file).unwrap();
    let total = bytes.len();
    let r = t
        .client
        .post(t.url("/api/v1/ecg/uploads"))
        .bearer_auth(&t.device)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", total.to_string())
        .header("idempotency-key", "resumable-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    // without Tus-Resumable: 412
    let r = t
        .client
        .head(t.url(&location))
        .bearer_auth(&t.device)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["upload-offset"], "0");

    // first third, then the connection breaks halfway through the second request
    let third = total / 3;
    let r = t.patch(&location, "0", bytes[..third].to_vec()).await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], third.to_string());
    let http: std::net::SocketAddr = t.hub.http;
    cut_patch(
        http,
        &location,
        &t.device,
        third,
        total - third,
        &bytes[third..2 * third],
    )
    .await;

    // the server kept what arrived (all of it, or at least the acknowledged part)
    let mut offset = 0usize;
    for _ in 0..50 {
        let r = t
            .client
            .head(t.url(&location))
            .bearer_auth(&t.device)
            .send()
            .await
            .unwrap();
        offset = r.headers()["upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        if offset > third {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(offset >= third && offset <= 2 * third, "offset {offset}");
    assert!(
        offset > third,
        "bytes received before the cut were dropped (offset {offset})"
    );
    assert_eq!(
        t.ecg_count().await,
        0,
        "nothing processed before the upload is complete"
    );

    // a PATCH at the wrong offset is refused
    let r = t.patch(&location, "0", bytes[..10].to_vec()).await;
    assert_eq!(r.status(), 409);

    // a second PATCH while one still runs: 423 (tus clients retry), nothing truncated
    let held = held_patch(
        t.hub.http,
        &location,
        &t.device,
        offset,
        total - offset,
        &bytes[offset..offset + 16],
    )
    .await;
    let r = t
        .patch(&location, offset.to_string(), bytes[offset..].to_vec())
        .await;
    assert_eq!(r.status(), 423);
    // its body was not read: the connection ends, so the client does not reuse it
    assert_eq!(r.headers()["connection"], "close");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upload-busy", "{v}");
    drop(held);
    let head_offset = |t: &Ecgs| {
        let (client, url, device) = (t.client.clone(), t.url(&location), t.device.clone());
        async move {
            let r = client.head(url).bearer_auth(device).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.headers()["upload-offset"]
                .to_str()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        }
    };
    let mut after_hold = 0;
    for _ in 0..50 {
        after_hold = head_offset(&t).await;
        if after_hold == offset + 16 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(after_hold, offset + 16, "the held PATCH's bytes were kept");
    let offset = after_hold;

    // a restart keeps what was acknowledged (the spool is emptied at start-up, the
    // uploads are not)
    t.hub.stop();
    t.hub.start();
    assert_eq!(head_offset(&t).await, offset, "offset after a restart");

    // the last PATCH arrives while the object store fails (its directory is a file): a
    // server error, and the offset stays where it was, so that the retry completes
    let blobs = t.hub.data_dir.join("blobs");
    let away = t.hub.data_dir.join("blobs.away");
    std::fs::rename(&blobs, &away).unwrap();
    std::fs::write(&blobs, b"not a directory").unwrap();
    let r = t
        .patch(&location, offset.to_string(), bytes[offset..].to_vec())
        .await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_server_error(), "{status} {v}");
    assert!(v["error"]["code"].is_string(), "{v}");
    std::fs::remove_file(&blobs).unwrap();
    std::fs::rename(&away, &blobs).unwrap();
    assert_eq!(
        head_offset(&t).await,
        offset,
        "the failed last PATCH did not advance the offset"
    );
    assert_eq!(
        t.ecg_count().await,
        0,
        "nothing indexed by the failed PATCH"
    );

    // resume from where the server is
    let r = t
        .patch(&location, offset.to_string(), bytes[offset..].to_vec())
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], total.to_string());
    let ecg_location = r.headers()["location"].to_str().unwrap().to_owned();
    let state = t.get_json(&location, &t.device).await;
    assert_eq!(state["upload_offset"].as_u64(), Some(total as u64));
    let ecg = &state["ecg"];
    assert_eq!(ecg_location, format!("/api/v1/ecg/{}", ecg["id"]));
    // the stored ECG is exactly the file
    let orig = t
        .get(&format!("{ecg_location}/original"), &t.reader)
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(orig.as_ref(), bytes.as_slice());
    // a plain POST re-send with the same key: the same ECG
    let (s, _, again) = t
        .upload(
            &t.device,
            bytes.clone(),
            &[("idempotency-key", "resumable-1")],
        )
        .await;
    assert_eq!(s, 201);
    assert_eq!(&again, ecg);
    assert_eq!(t.ecg_count().await, 1);
    // another institution's device does not see the upload
    let r = t
        .client
        .head(t.url(&location))
        .bearer_auth(&t.device_t2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dicom_ecg_by_c_store_and_stow_gets_the_same_processing() {
    let (Some(file), Some(storescu)) = (corpus_file("waveform_ecg.dcm"), peers::dcmtk("storescu"))
    else {
        peers::require("DXHUB_TEST_CORPUS and DCMTK storescu", false);
        return;
    };
    let t = Ecgs::new().await;
    // C-STORE as the township's AE (CLINIC → 城关镇卫生院)
    let out = Command::new(storescu)
        .args(["-aet", "CLINIC", "-aec", "DXHUB"])
        .arg(t.hub.dicom.ip().to_string())
        .arg(t.hub.dicom.port().to_string())
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let obj = dicom_object::open_file(&file).unwrap();
    let study = obj
        .element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches('\0')
        .to_owned();
    // a C-STORE'd ECG is routed to the ECG pool by the next sweep; the ECG reader reads
    // it from then on
    let path = format!("/api/v1/ecg?study={study}");
    let routed = eventually(std::time::Duration::from_secs(10), || async {
        t.get(&path, &t.reader).await.status() == 200
    })
    .await;
    assert!(routed, "the C-STORE'd ECG never reached the ECG reader");
    let list = t.get_json(&path, &t.reader).await;
    let ecgs = list["ecgs"].as_array().unwrap();
    assert_eq!(ecgs.len(), 1, "{list}");
    assert_eq!(ecgs[0]["format"], "dicom");
    assert_eq!(
        ecgs[0]["analysis"]["label"],
        "machine measurements, unconfirmed"
    );
    assert_eq!(ecgs[0]["leads"].as_array().unwrap().len(), 12);

    // STOW-RS of the General ECG by the T2 clinic user
    let general = std::fs::read(corpus_file("waveform_ecg_general.dcm").unwrap()).unwrap();
    let boundary = "ecg-boundary-1";
    let mut body = format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
    body.extend_from_slice(&general);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = t
        .client
        .post(t.url("/dicomweb/studies"))
        .bearer_auth(&t.clinic_t2)
        .header(
            "content-type",
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let gobj = dicom_object::from_reader(&general[128..]).ok();
    let _ = gobj;
    assert_eq!(t.ecg_count().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_counts_villages_with_an_active_ecg_device() {
    let t = Ecgs::new().await;
    // a gateway does not count; a revoked device does not count
    t.hub.admin_ok(&[
        "device",
        "add",
        "--institution",
        V2,
        "--serial",
        "GW-V2",
        "--kind",
        "gateway",
    ]);
    let v = t.get_json("/api/v1/stats/ecg-coverage", &t.admin).await;
    let a = &v["alliances"][0];
    assert_eq!(a["village_clinics"], 2, "{v}");
    assert_eq!(a["villages_with_device"], 1, "{v}");
    assert_eq!(a["coverage"].as_f64(), Some(0.5));
    assert_eq!(a["townships"], 2);
    assert_eq!(a["townships_with_device"], 1);
    let v1 = a["institutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["institution_name"] == V1)
        .unwrap();
    assert_eq!(v1["active_devices"], 1);
    // a reader may not see the indicator's device registry
    let r = t.get("/api/v1/stats/ecg-coverage", &t.reader).await;
    assert_eq!(r.status(), 403);
    // revoke V1's device: coverage 0
    raw_sql(
        &t.hub,
        &["UPDATE devices SET revoked_at = 1 WHERE serial = 'ECG-V1-001'"],
    )
    .await;
    let v = t.get_json("/api/v1/stats/ecg-coverage", &t.admin).await;
    assert_eq!(v["alliances"][0]["villages_with_device"], 0, "{v}");
    assert_eq!(v["alliances"][0]["coverage"].as_f64(), Some(0.0));
}

/// Twelve ECGs sent at the same moment are all routed to the ECG pool as soon as the burst
/// is through: the routing queue waits for uploads to pause, not for the worklist sweep
/// (held off here for an hour), and loses none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_uploads_is_routed_once_it_is_through() {
    use dxhub_ecg::synth::SynthSpec;
    let t = Ecgs::with(HubOptions::default().env("DXHUB_WORKLIST__TICK_MS", "3600000")).await;
    let bodies: Vec<Vec<u8>> = (0..12)
        .map(|k| {
            json_form(
                &SynthSpec::sinus(60.0 + f64::from(k)),
                &format!("P-BURST-{k}"),
            )
        })
        .collect();
    let uploads = bodies.into_iter().map(|b| t.upload(&t.device, b, &[]));
    let done = futures::future::join_all(uploads).await;
    let mut studies = Vec::new();
    for (status, _, body) in done {
        assert_eq!(status, 201, "{body}");
        studies.push(body["study_instance_uid"].as_str().unwrap().to_owned());
    }
    for study in &studies {
        let path = format!("/api/v1/ecg?study={study}");
        let routed = eventually(std::time::Duration::from_secs(5), || async {
            t.get(&path, &t.reader).await.status() == 200
        })
        .await;
        assert!(
            routed,
            "ECG study {study} was never routed to the ECG reader"
        );
    }
    use dxhub_store::worklist::WorklistStore as _;
    let c = t.hub.catalog().await;
    for study in &studies {
        let item = c.work_item_of_study(study).await.unwrap();
        assert!(item.is_some_and(|i| i.state == dxhub_core::worklist::WorkState::Queued));
    }
}

/// The same ECG without an acquisition time sent several times at once (a device retrying
/// while its first request is still being stored): one ECG and one stored instance; every
/// other answer is a replay of it. (Without the per-content lock this breaks only when a
/// conversion crosses a second boundary while the first is in flight, which this test
/// does not force: it guards the answers, not that timing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resends_are_one_ecg() {
    use dxhub_ecg::synth::SynthSpec;
    let t = Ecgs::new().await;
    let mut v: Value =
        serde_json::from_slice(&json_form(&SynthSpec::sinus(66.0), "P-RESEND")).unwrap();
    v.as_object_mut().unwrap().remove("acquired_at");
    assert!(v.get("acquired_at").is_none());
    let body = serde_json::to_vec(&v).unwrap();
    let mut fresh = 0;
    let mut ids = std::collections::BTreeSet::new();
    let mut sop = String::new();
    for round in 0..3 {
        let uploads = (0..12).map(|_| t.upload(&t.device, body.clone(), &[]));
        for (status, headers, answer) in futures::future::join_all(uploads).await {
            assert_eq!(status, 201, "round {round}: {answer}");
            if headers.get("idempotent-replayed").is_none() {
                fresh += 1;
            }
            ids.insert(answer["id"].as_i64().unwrap());
            sop = answer["sop_instance_uid"].as_str().unwrap().to_owned();
        }
        // the next round starts in another second
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    }
    assert_eq!((fresh, ids.len()), (1, 1), "{ids:?}");
    use dxhub_store::catalog::Catalog as _;
    let c = t.hub.catalog().await;
    assert_eq!(c.instance_versions(&sop).await.unwrap().len(), 1);
    assert_eq!(t.ecg_count().await, 1);
}

/// A synthetic ECG as the JSON form, with patient and device, only I, II and V1–V6 sent.
fn json_form(spec: &dxhub_ecg::synth::SynthSpec, patient_id: &str) -> Vec<u8> {
    let (mut ecg, _) = dxhub_ecg::synth::generate(spec);
    ecg.leads.retain(|l| {
        !matches!(
            l.code,
            dxhub_ecg::LeadCode::III
                | dxhub_ecg::LeadCode::AVR
                | dxhub_ecg::LeadCode::AVL
                | dxhub_ecg::LeadCode::AVF
        )
    });
    ecg.patient.id = Some(patient_id.into());
    ecg.patient.name = Some("张^三".into());
    ecg.patient.sex = Some("M".into());
    ecg.patient.birth_date = Some("19580314".into());
    ecg.device.serial = Some("SN-VILLAGE-7".into());
    ecg.device.model = Some("ECG-12A".into());
    ecg.acquired_at = Some("20261122081500".into());
    serde_json::to_vec(&dxhub_ecg::json::to_json_form(&ecg, 1.0)).unwrap()
}

/// The CSV form of a JSON form (`#field=value` lines, lead names, a row per sample).
fn csv_form(json: &[u8]) -> String {
    let f: dxhub_ecg::json::JsonEcg = serde_json::from_slice(json).unwrap();
    let mut out = format!(
        "#sample_rate_hz={}\n#uv_per_lsb={}\n",
        f.sample_rate_hz, f.uv_per_lsb
    );
    let p = f.patient.unwrap_or_default();
    let d = f.device.unwrap_or_default();
    for (k, v) in [
        ("patient.id", p.id),
        ("patient.name", p.name),
        ("patient.birth_date", p.birth_date),
        ("patient.sex", p.sex),
        ("device.serial", d.serial),
        ("device.model", d.model),
        ("acquired_at", f.acquired_at),
    ] {
        if let Some(v) = v {
            out.push_str(&format!("#{k}={v}\n"));
        }
    }
    let leads = &f.leads.0;
    let names: Vec<&str> = leads.iter().map(|l| l.name.as_str()).collect();
    out.push_str(&names.join(","));
    out.push('\n');
    for k in 0..leads[0].samples.len() {
        let row: Vec<String> = leads.iter().map(|l| l.samples[k].to_string()).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// The CSV form (here in GB18030, as a spreadsheet set to Chinese saves it) is the JSON
/// form in another dress: the same waveform and patient, the original kept as sent and
/// served as `text/csv`; a ragged row is refused naming its line, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_form_reads_as_its_json_twin() {
    use dxhub_ecg::synth::SynthSpec;
    let t = Ecgs::new().await;
    let json = json_form(&SynthSpec::sinus(75.0), "P-CSV");
    let csv = encoding_rs::GB18030.encode(&csv_form(&json)).0.into_owned();
    assert!(std::str::from_utf8(&csv).is_err(), "GB18030, not UTF-8");
    let (s, _, j) = t.upload(&t.device, json, &[]).await;
    assert_eq!(s, 201, "{j}");
    let (s, _, c) = t.upload(&t.device, csv.clone(), &[]).await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["format"], "csv", "{c}");
    assert_eq!(j["format"], "json", "{j}");
    let waveform = |id: &Value| format!("/api/v1/ecg/{}/waveform", id.as_i64().unwrap());
    let (wj, wc) = (
        t.get_json(&waveform(&j["id"]), &t.reader).await,
        t.get_json(&waveform(&c["id"]), &t.reader).await,
    );
    assert_eq!(wj["leads"], wc["leads"]);
    assert_eq!(
        wc["leads"].as_array().unwrap().len(),
        12,
        "III, aVR, aVL, aVF derived"
    );
    let study = c["study_instance_uid"].as_str().unwrap();
    let meta = t
        .get_json(&format!("/dicomweb/studies/{study}/metadata"), &t.reader)
        .await;
    assert_eq!(dicom_value(&meta[0], "00100010").as_deref(), Some("张^三"));
    assert_eq!(dicom_value(&meta[0], "00100020").as_deref(), Some("P-CSV"));
    let orig = t
        .get(
            &format!("/api/v1/ecg/{}/original", c["id"].as_i64().unwrap()),
            &t.reader,
        )
        .await;
    assert_eq!(orig.headers()["content-type"], "text/csv");
    assert_eq!(orig.bytes().await.unwrap().as_ref(), csv.as_slice());

    let before = t.ecg_count().await;
    let ragged = "#sample_rate_hz=500\n#uv_per_lsb=1\nI,II\n1,2\n3\n";
    let (s, _, v) = t.upload(&t.device, ragged.as_bytes().to_vec(), &[]).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["error"]["code"], "malformed-ecg");
    assert_eq!(
        v["error"]["message"],
        "csv: line 5: 1 values, the lead-name row has 2 leads"
    );
    assert_eq!(t.ecg_count().await, before);
}

fn dicom_value(meta: &Value, tag: &str) -> Option<String> {
    let v = meta.get(tag)?.get("Value")?.get(0)?;
    Some(match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("Alphabetic").and_then(Value::as_str)?.to_owned(),
        other => other.to_string(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_form_becomes_a_dicom_ecg_study_with_analysis_and_critical_flags() {
    use dxhub_ecg::synth::SynthSpec;
    let t = Ecgs::new().await;

    // a normal sinus rhythm at 72/min: measured, not critical
    let (s, _, normal) = t
        .upload(
            &t.device,
            json_form(&SynthSpec::sinus(72.0), "P-NORMAL"),
            &[],
        )
        .await;
    assert_eq!(s, 201, "{normal}");
    assert_eq!(normal["format"], "json");
    assert_eq!(normal["critical"], false, "{normal}");
    let hr = normal["analysis"]["heart_rate_bpm"].as_f64().unwrap();
    assert!((hr - 72.0).abs() <= 1.0, "HR {hr}");
    // III, aVR, aVL, aVF derived from I and II
    let leads: Vec<&str> = normal["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for l in ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V6"] {
        assert!(leads.contains(&l), "{l} in {leads:?}");
    }
    let id = normal["id"].as_i64().unwrap();
    let wf = t
        .get_json(&format!("/api/v1/ecg/{id}/waveform"), &t.reader)
        .await;
    let lead = |name: &str| -> Vec<f64> {
        wf["leads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["code"] == name)
            .unwrap()["samples_uv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let (i, ii, iii, avf) = (lead("I"), lead("II"), lead("III"), lead("aVF"));
    for k in (0..i.len()).step_by(97) {
        assert!(
            (iii[k] - (ii[k] - i[k])).abs() <= 1.0,
            "III = II − I at {k}"
        );
        assert!(
            (avf[k] - (ii[k] - i[k] / 2.0)).abs() <= 1.0,
            "aVF = II − I/2 at {k}"
        );
    }

    // the DICOM instance carries patient, device and acquisition time; QIDO sees modality ECG
    let study = normal["study_instance_uid"].as_str().unwrap();
    let meta = t
        .get_json(&format!("/dicomweb/studies/{study}/metadata"), &t.reader)
        .await;
    let m = &meta[0];
    assert_eq!(dicom_value(m, "00100020").as_deref(), Some("P-NORMAL"));
    assert_eq!(dicom_value(m, "00100010").as_deref(), Some("张^三"));
    assert_eq!(dicom_value(m, "00181000").as_deref(), Some("SN-VILLAGE-7"));
    assert_eq!(dicom_value(m, "00080060").as_deref(), Some("ECG"));
    assert!(
        dicom_value(m, "0008002A").is_some_and(|v| v.starts_with("20261122081500")),
        "{m}"
    );
    assert_eq!(
        dicom_value(m, "00080016").as_deref(),
        Some("1.2.840.10008.5.1.4.1.1.9.1.1"),
        "12-lead ECG waveform"
    );
    // the original JSON is kept as sent
    let orig = t
        .get(&format!("/api/v1/ecg/{id}/original"), &t.reader)
        .await;
    assert_eq!(orig.headers()["content-type"], "application/json");
    let orig: Value = orig.json().await.unwrap();
    assert_eq!(orig["patient"]["id"], "P-NORMAL");

    // an inferior STEMI: ST +0.2 mV in II, III, aVF → critical, naming the leads
    let mut stemi = SynthSpec::sinus(80.0);
    stemi.st_uv[1] = 200.0;
    stemi.st_uv[2] = 200.0;
    stemi.st_uv[5] = 200.0;
    let (s, _, v) = t.upload(&t.device, json_form(&stemi, "P-STEMI"), &[]).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["critical"], true, "{v}");
    let flags = v["analysis"]["critical"].as_array().unwrap();
    let f = flags
        .iter()
        .find(|f| f["code"] == "stemi")
        .expect("stemi flag");
    let lead = f["lead"].as_str().unwrap();
    assert!(lead.contains("II") || lead.contains("aVF"), "{f}");
    assert!(!f["message_zh"].as_str().unwrap().is_empty());

    // a 3.5 s pause → critical; a ventricular tachycardia at 170/min → critical
    let pause = SynthSpec {
        rhythm: dxhub_ecg::synth::SynthRhythm::Rr {
            rr_ms: vec![800.0, 800.0, 800.0, 3500.0, 800.0, 800.0, 800.0],
            p_waves: true,
        },
        ..SynthSpec::default()
    };
    let (_, _, v) = t.upload(&t.device, json_form(&pause, "P-PAUSE"), &[]).await;
    assert!(
        v["analysis"]["critical"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "pause-3s"),
        "{v}"
    );
    let vt = SynthSpec {
        rhythm: dxhub_ecg::synth::SynthRhythm::VentricularTachycardia { hr_bpm: 170.0 },
        ..SynthSpec::default()
    };
    let (_, _, v) = t.upload(&t.device, json_form(&vt, "P-VT"), &[]).await;
    assert!(
        v["analysis"]["critical"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"] == "ventricular-tachycardia"),
        "{v}"
    );

    // the index keeps the flag where the worklist reads it
    let critical =
        dxhub_e2e::api::index_scalar(&t.hub, "SELECT COUNT(*) FROM ecgs WHERE critical = 1").await;
    assert_eq!(critical, 3);

    // the rendering header names the patient and the critical flag
    let sid = v["id"].as_i64().unwrap();
    let svg = t
        .get(&format!("/api/v1/ecg/{sid}/render.svg"), &t.reader)
        .await
        .text()
        .await
        .unwrap();
    assert!(svg.contains("张 三") && svg.contains("危急值"), "header");
    // the device registry counts its uploads
    let devices = t.get_json("/api/v1/devices", &t.admin).await;
    let d = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["serial"] == "ECG-V1-001")
        .unwrap()
        .clone();
    assert_eq!(d["uploads"], 4, "{d}");
    assert!(d["last_seen_at"].as_i64().is_some(), "{d}");
    // the JSON form is published in the OpenAPI document
    let doc = t.get_json("/api/v1/openapi.json", &t.reader).await;
    assert!(doc["components"]["schemas"]["JsonEcg"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hl7_aecg_written_by_biosig_is_accepted() {
    let (Some(file), Some(py), Some(save2gdf)) = (
        corpus_file("waveform_ecg.dcm"),
        peers::python(),
        peers::tool("save2gdf"),
    ) else {
        peers::require("corpus, DXHUB_TEST_PYTHON and biosig-tools save2gdf", false);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let edf = dir.path().join("ecg.edf");
    let xml = dir.path().join("ecg.xml");
    let out = Command::new(py)
        .arg(peers::py_dir().join("aecg_peer.py"))
        .arg("edf")
        .arg(&file)
        .arg(&edf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let source: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = Command::new(save2gdf)
        .arg("-f=HL7aECG")
        .arg(&edf)
        .arg(&xml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = Ecgs::new().await;
    let bytes = std::fs::read(&xml).unwrap();
    let (s, _, v) = t
        .upload(&t.device, gzip(&bytes), &[("content-encoding", "gzip")])
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["format"], "hl7-aecg");
    assert_eq!(
        v["sample_rate_hz"].as_f64(),
        source["sample_rate"].as_f64(),
        "{v}"
    );
    assert!(v["analysis"]["heart_rate_bpm"].as_f64().is_some(), "{v}");
    // the stored original is the decoded XML
    let id = v["id"].as_i64().unwrap();
    let orig = t
        .get(&format!("/api/v1/ecg/{id}/original"), &t.reader)
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(orig.as_ref(), bytes.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_ecg_from_biosig_and_huffman_coded_records_are_accepted() {
    let (Some(file), Some(py), Some(save2gdf)) = (
        corpus_file("waveform_ecg.dcm"),
        peers::python(),
        peers::tool("save2gdf"),
    ) else {
        peers::require("corpus, DXHUB_TEST_PYTHON and biosig-tools save2gdf", false);
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let edf = dir.path().join("ecg.edf");
    let truth = dir.path().join("truth.json");
    let scp = dir.path().join("biosig.scp");
    let out = Command::new(&py)
        .arg(peers::py_dir().join("scp_make_edf.py"))
        .arg(&file)
        .arg(&edf)
        .arg(&truth)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(save2gdf)
        .arg("-f=SCP3")
        .arg(&edf)
        .arg(&scp)
        .output()
        .unwrap();
    assert!(
        scp.exists(),
        "save2gdf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Huffman (default table), second differences, reference-beat subtraction: our own
    // encoder (no packaged producer writes compressed SCP-ECG)
    let enc = dir.path().join("enc");
    let out = Command::new(&py)
        .arg(peers::py_dir().join("scp_encode.py"))
        .arg(&file)
        .arg(&enc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let t = Ecgs::new().await;
    let mut ids = Vec::new();
    for path in [scp, enc.join("refbeat.scp")] {
        let bytes = std::fs::read(&path).unwrap();
        let (s, _, v) = t.upload(&t.device, bytes.clone(), &[]).await;
        assert_eq!(s, 201, "{}: {v}", path.display());
        assert_eq!(v["format"], "scp-ecg");
        assert_eq!(v["sample_rate_hz"].as_f64(), Some(1000.0), "{v}");
        assert!(v["analysis"]["heart_rate_bpm"].as_f64().is_some(), "{v}");
        ids.push(v["id"].as_i64().unwrap());
        // a damaged record (one flipped byte in the middle) is refused, nothing stored
        let mut bad = bytes;
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        let (s, _, v) = t.upload(&t.device, bad, &[]).await;
        assert_eq!(s, 422, "{v}");
        assert_eq!(v["error"]["code"], "malformed-ecg");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("CRC"),
            "{v}"
        );
    }
    assert_eq!(t.ecg_count().await, 2);
    // both carry the same rhythm: lead II of the two agree sample by sample (biosig's
    // writer scales by 1251/1250, see crates/dxhub-ecg/tests/scp_vs_biosig.rs)
    let ii = |wf: &Value| -> Vec<f64> {
        wf["leads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["code"] == "II")
            .unwrap()["samples_uv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let a = ii(&t
        .get_json(&format!("/api/v1/ecg/{}/waveform", ids[0]), &t.reader)
        .await);
    let b = ii(&t
        .get_json(&format!("/api/v1/ecg/{}/waveform", ids[1]), &t.reader)
        .await);
    assert_eq!(a.len(), b.len());
    for (k, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y * 1251.0 / 1250.0).abs() <= 1.5,
            "sample {k}: {x} vs {y}"
        );
    }

    // text in GB 2312, as the record's section 1 states: the name and the statements reach
    // the DICOM instance as Chinese, not as Latin-1 mojibake
    let gb = std::fs::read(enc.join("gb2312.scp")).unwrap();
    let (s, _, v) = t.upload(&t.device, gb, &[]).await;
    assert_eq!(s, 201, "{v}");
    let study = v["study_instance_uid"].as_str().unwrap();
    let meta = t
        .get_json(&format!("/dicomweb/studies/{study}/metadata"), &t.reader)
        .await;
    assert_eq!(
        dicom_value(&meta[0], "00100010").as_deref(),
        Some("欧阳^娜娜"),
        "{}",
        meta[0]
    );
    assert!(meta[0].to_string().contains("窦性心律"), "{}", meta[0]);
}

/// `dxhub fsck` checks the originals of non-DICOM ECGs (kept beside the DICOM instance
/// made from them): a missing or truncated original is named with its ECG records and
/// never "repaired" away, an unreferenced original is an orphan, and originals that are
/// referenced (one shared by two institutions' records of the same content) are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_checks_ecg_originals() {
    use dxhub_ecg::synth::SynthSpec;
    use sha2::Digest as _;
    let mut t = Ecgs::new().await;
    let first = json_form(&SynthSpec::sinus(70.0), "P-FSCK-1");
    let second = json_form(&SynthSpec::sinus(90.0), "P-FSCK-2");
    let key = |b: &[u8]| {
        let sha = hex::encode(sha2::Sha256::digest(b));
        format!("ecg/originals/{}/{sha}", &sha[..2])
    };
    let (k1, k2) = (key(&first), key(&second));
    let mut ids = Vec::new();
    for (token, body) in [
        (&t.device, &first),
        (&t.device_t2, &first),
        (&t.device, &second),
    ] {
        let (s, _, v) = t.upload(token, body.clone(), &[]).await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_i64().unwrap());
    }
    assert_ne!(ids[0], ids[1], "two institutions, two records");
    t.hub.stop();
    let fsck = |args: &[&str]| {
        let mut full = vec!["fsck", "--grace-secs", "0"];
        full.extend_from_slice(args);
        let out = t.hub.cli(&full);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!("$ dxhub {}\n{text}", full.join(" "));
        (out.status.code(), text)
    };
    let (code, out) = fsck(&[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.lines().any(|l| l == "clean"), "{out}");

    // every original (and instance) hashes to what was recorded at ingest
    let (code, out) = fsck(&["--verify-hashes"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.lines().any(|l| l == "clean"), "{out}");

    let blobs = t.hub.data_dir.join("blobs");
    // one changed byte, the same size: only the hashes see it
    let mut flipped = second.to_vec();
    flipped[0] ^= 0x20;
    std::fs::write(blobs.join(&k2), &flipped).unwrap();
    let (code, out) = fsck(&[]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = fsck(&["--verify-hashes"]);
    assert_eq!(code, Some(1), "{out}");
    let sha2 = &k2[k2.len() - 64..];
    assert!(
        out.contains(&format!(
            "corrupt blob: {k2} (original of ECG {}) has SHA-256 {}, index says {sha2}",
            ids[2],
            hex::encode(sha2::Sha256::digest(&flipped))
        )),
        "{out}"
    );
    let len = std::fs::metadata(blobs.join(&k1)).unwrap().len();
    std::fs::write(blobs.join(&k1), &first[..10]).unwrap();
    std::fs::remove_file(blobs.join(&k2)).unwrap();
    let orphan = format!("ecg/originals/ff/{}", "f".repeat(64));
    std::fs::create_dir_all(blobs.join("ecg/originals/ff")).unwrap();
    std::fs::write(blobs.join(&orphan), b"left by a failed upload").unwrap();
    let (code, out) = fsck(&[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "corrupt blob: {k1} (original of ECG {}, {}) has 10 bytes, index says {len}",
            ids[0], ids[1]
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "missing ECG original: {k2} (original of ECG {}) is missing",
            ids[2]
        )),
        "{out}"
    );
    assert!(out.contains(&format!("orphan blob: {orphan}")), "{out}");
    assert!(out.contains("3 problem(s) found"), "{out}");

    let (code, out) = fsck(&["--repair"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("1 orphan blob(s) deleted"), "{out}");
    assert!(out.contains("2 problem(s) left"), "{out}");
    assert!(!blobs.join(&orphan).exists(), "the orphan is deleted");
    assert_eq!(
        std::fs::read(blobs.join(&k1)).unwrap(),
        &first[..10],
        "a corrupt original is left for the operator"
    );
    // the records and their DICOM instances stay
    assert_eq!(t.ecg_count().await, 3);
}
