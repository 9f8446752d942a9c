//! OHIF end to end: the published `@ohif/app` viewer, served locally with
//! deploy/ohif/app-config.js pointing at a spawned dxhub, lists a CT study and draws it in
//! headless Chromium (the cornerstone canvas has non-uniform pixels). Screenshots, the
//! DICOMweb requests and the browser console are kept in
//! `target/test-artifacts/ohif/<case>/` (`DXHUB_TEST_ARTIFACTS` overrides the root).
//!
//! Peers (exported by scripts/lib-peers.sh `peers_ensure_browser`): `node`,
//! `DXHUB_TEST_CHROMIUM`, `DXHUB_TEST_OHIF_DIST` (OHIF's `dist/`), `DXHUB_TEST_NODE_MODULES`
//! (tests/js/node_modules with playwright-core) and the corpus (`DXHUB_TEST_CORPUS`, for
//! pydicom's CT_small.dcm). Under CI=true a missing one fails the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::open_file;
use dxhub_e2e::api::{Api, PASSWORD, add_user, issue_token};
use dxhub_e2e::generate::new_uid;
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::peers;
use dxhub_e2e::scu::{Scu, ct_context};

const TOWNSHIP: &str = "城关镇卫生院";
const ACCESSION: &str = "OHIF-E2E-1";
const SLICES: usize = 5;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_owned()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                repo_root().join(d)
            }
        }
        None => repo_root().join("target"),
    }
}

struct Browser {
    node: PathBuf,
    chromium: PathBuf,
    dist: PathBuf,
    node_modules: PathBuf,
    ct_small: PathBuf,
}

fn env_path(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or(default)
}

/// The browser-side peers, or None (skip) when one is missing outside CI.
fn browser_peers() -> Option<Browser> {
    let node = peers::tool("node");
    if !peers::require("node (apt-get install nodejs)", node.is_some()) {
        return None;
    }
    let chromium = env_path("DXHUB_TEST_CHROMIUM", PathBuf::from("/usr/bin/chromium"));
    let dist = env_path(
        "DXHUB_TEST_OHIF_DIST",
        target_dir().join("ohif/package/dist"),
    );
    let node_modules = env_path(
        "DXHUB_TEST_NODE_MODULES",
        repo_root().join("tests/js/node_modules"),
    );
    let corpus = peers::corpus();
    let checks = [
        ("Chromium (DXHUB_TEST_CHROMIUM)", chromium.exists()),
        (
            "the OHIF dist (DXHUB_TEST_OHIF_DIST)",
            dist.join("index.html").exists(),
        ),
        (
            "playwright-core (DXHUB_TEST_NODE_MODULES; npm ci in tests/js)",
            node_modules.join("playwright-core/package.json").exists(),
        ),
        ("the DICOM corpus (DXHUB_TEST_CORPUS)", corpus.is_some()),
    ];
    for (what, ok) in checks {
        if !peers::require(what, ok) {
            return None;
        }
    }
    Some(Browser {
        node: node.expect("node"),
        chromium,
        dist,
        node_modules,
        ct_small: corpus.expect("corpus").join("pydicom/CT_small.dcm"),
    })
}

/// A CT study of `SLICES` instances made from pydicom's CT_small.dcm (a real 128×128 CT
/// slice): new study/series/instance UIDs, stacked positions, the accession the study list
/// is checked for. Stored through DIMSE as the clinic; returns the Study Instance UID.
fn store_ct_study(hub: &TestHub, ct_small: &Path) -> String {
    let study = new_uid();
    let series = new_uid();
    let base = open_file(ct_small).expect("open CT_small.dcm");
    let mut scu = Scu::connect(hub.dicom, "CLINIC", "DXHUB", &[ct_context()], 1 << 20)
        .expect("associate as CLINIC");
    let (pc, _) = scu.context_for(uids::CT_IMAGE_STORAGE).expect("CT context");
    for i in 0..SLICES {
        let sop = new_uid();
        let mut o = base.clone().into_inner();
        let mut put = |tag, vr, v: PrimitiveValue| {
            o.put(DataElement::new(tag, vr, v));
        };
        put(tags::STUDY_INSTANCE_UID, VR::UI, study.as_str().into());
        put(tags::SERIES_INSTANCE_UID, VR::UI, series.as_str().into());
        put(tags::SOP_INSTANCE_UID, VR::UI, sop.as_str().into());
        put(tags::ACCESSION_NUMBER, VR::SH, ACCESSION.into());
        put(tags::STUDY_DESCRIPTION, VR::LO, "OHIF e2e CT".into());
        put(
            tags::INSTANCE_NUMBER,
            VR::IS,
            (i + 1).to_string().as_str().into(),
        );
        put(
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            PrimitiveValue::Strs(
                vec![
                    "-158.135803".to_owned(),
                    "-179.035797".to_owned(),
                    format!("{:.1}", -75.7 - 5.0 * i as f64),
                ]
                .into(),
            ),
        );
        scu.store_object(pc, uids::CT_IMAGE_STORAGE, &o, &format!("slice {i}"));
    }
    scu.release().expect("release");
    study
}

/// A child process killed when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `node serve_ohif.mjs`; returns the process and its URL (from its ready line).
fn serve_ohif(b: &Browser, dicomweb: &str, proxy: bool, port: u16, log: &Path) -> (Proc, String) {
    let mut c = Command::new(&b.node);
    c.arg(repo_root().join("tests/js/serve_ohif.mjs"))
        .arg("--dist")
        .arg(&b.dist)
        .arg("--dicomweb")
        .arg(dicomweb)
        .arg("--template")
        .arg(repo_root().join("deploy/ohif/app-config.js"))
        .arg("--port")
        .arg(port.to_string());
    if proxy {
        c.arg("--proxy");
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(log).expect("log")))
        .spawn()
        .expect("spawn node serve_ohif.mjs");
    let stdout = child.stdout.take().expect("stdout");
    let proc = Proc(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(l)) = lines.next() {
            let _ = tx.send(l);
        }
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "serve_ohif.mjs did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
    let v: serde_json::Value = serde_json::from_str(&line).expect("ready line");
    assert_eq!(v["event"], "ready", "{line}");
    (proc, v["url"].as_str().expect("url").to_owned())
}

fn artifacts(case: &str) -> PathBuf {
    let dir = env_path("DXHUB_TEST_ARTIFACTS", target_dir().join("test-artifacts")).join("ohif");
    let dir = dir.join(case);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// Run tests/js/ohif_e2e.mjs; panics with its output unless it exits 0.
fn run_e2e(b: &Browser, url: &str, study: &str, token: &str, out: &Path) -> serde_json::Value {
    run_e2e_with(b, url, study, token, out, ACCESSION, false)
}

/// As [`run_e2e`], with the text the study's row must show, and list-only mode.
fn run_e2e_with(
    b: &Browser,
    url: &str,
    study: &str,
    token: &str,
    out: &Path,
    expect: &str,
    list_only: bool,
) -> serde_json::Value {
    let res = Command::new(&b.node)
        .arg(repo_root().join("tests/js/ohif_e2e.mjs"))
        .env("OHIF_URL", url)
        .env("OHIF_STUDY_UID", study)
        .env("OHIF_EXPECT", expect)
        .env("OHIF_LIST_ONLY", if list_only { "1" } else { "0" })
        .env("OHIF_TOKEN", token)
        .env("OHIF_ARTIFACTS", out)
        .env("DXHUB_TEST_CHROMIUM", &b.chromium)
        .env("DXHUB_TEST_NODE_MODULES", &b.node_modules)
        .stdin(Stdio::null())
        .output()
        .expect("run node ohif_e2e.mjs");
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    eprintln!("{stderr}");
    assert!(
        res.status.success(),
        "ohif_e2e.mjs failed ({}):\n{stderr}\nDICOMweb requests:\n{}",
        res.status,
        std::fs::read_to_string(out.join("dicomweb-requests.log")).unwrap_or_default()
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("result line");
    assert_eq!(v["ok"], true, "{stdout}");
    v
}

/// A hub with the CT study and a clinic doctor of the storing institution who may read it;
/// returns the hub, the study and the doctor's session token.
async fn hub_with_ct(b: &Browser, opts: HubOptions) -> (TestHub, String, String) {
    let hub = TestHub::spawn(opts);
    let study = store_ct_study(&hub, &b.ct_small);
    add_user(&hub, TOWNSHIP, "ohif.doc", "clinic_doctor", PASSWORD);
    let token = issue_token(&hub, "ohif.doc", "1h");
    // the doctor sees the study through DICOMweb QIDO-RS with that token, nobody without
    let api = Api::new(&hub);
    let anon = api.get("/dicomweb/studies", None).await;
    assert_eq!(anon.status, 401, "QIDO-RS without a token: {anon}");
    let r = api
        .get(
            &format!("/dicomweb/studies?StudyInstanceUID={study}"),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, 200, "QIDO-RS as the doctor: {r}");
    assert!(
        r.body.contains(&study),
        "QIDO-RS lists the study for the doctor: {r}"
    );
    (hub, study, token)
}

/// OHIF on its own origin, `/dicomweb` proxied by serve_ohif.mjs to dxhub (the usual
/// deployment: one reverse proxy in front of both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ohif_lists_and_draws_a_ct_study_same_origin() {
    let Some(b) = browser_peers() else { return };
    let (hub, study, token) = hub_with_ct(&b, HubOptions::default()).await;
    let out = artifacts("same-origin");
    let (_server, url) = serve_ohif(
        &b,
        &hub.http_url("/dicomweb"),
        true,
        0,
        &out.join("serve_ohif.log"),
    );
    let v = run_e2e(&b, &url, &study, &token, &out);
    assert!(v["dicomweb_requests"].as_u64().unwrap_or(0) >= 4, "{v}");
    for f in ["study-list.png", "viewer.png", "viewer-canvas.png"] {
        assert!(out.join(f).exists(), "screenshot {f} saved");
    }
    drop(hub);
}

/// A free port on 127.0.0.1 for the viewer's origin, which dxhub must know before it
/// starts (`http.cors_origins`).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// OHIF on its own origin calling dxhub directly: the browser sends a CORS preflight for
/// `Authorization`, answered for the origin listed in `DXHUB_HTTP__CORS_ORIGINS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ohif_lists_and_draws_a_ct_study_cross_origin() {
    let Some(b) = browser_peers() else { return };
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let opts = HubOptions::default().env("DXHUB_HTTP__CORS_ORIGINS", format!("[\"{origin}\"]"));
    let (hub, study, token) = hub_with_ct(&b, opts).await;
    // the preflight OHIF's requests need
    let api = Api::new(&hub);
    let pre = api
        .http
        .request(reqwest::Method::OPTIONS, api.url("/dicomweb/studies"))
        .header("Origin", &origin)
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .expect("preflight");
    let allow = |h: &str| {
        pre.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    assert!(pre.status().is_success(), "preflight: {}", pre.status());
    assert_eq!(allow("access-control-allow-origin"), origin, "preflight");
    assert!(
        allow("access-control-allow-headers").contains("authorization")
            || allow("access-control-allow-headers") == "*",
        "preflight allows Authorization: {:?}",
        pre.headers()
    );
    let out = artifacts("cross-origin");
    let (_server, url) = serve_ohif(
        &b,
        &hub.http_url("/dicomweb"),
        false,
        port,
        &out.join("serve_ohif.log"),
    );
    assert_eq!(url, origin);
    let v = run_e2e(&b, &url, &study, &token, &out);
    assert!(v["dicomweb_requests"].as_u64().unwrap_or(0) >= 4, "{v}");
    drop(hub);
}

/// An ECG uploaded by a village device (the JSON form) is a DICOM ECG study that OHIF's
/// study list shows, with modality ECG (issue #5; OHIF has no ECG viewport, so only the
/// list is checked — the ECG viewer is the web app's, issue #8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ohif_lists_an_ecg_study() {
    let Some(b) = browser_peers() else { return };
    let hub = TestHub::spawn(HubOptions::default());
    let device = dxhub_e2e::api::add_device(&hub, TOWNSHIP, "ECG-OHIF-1");
    let (mut ecg, _) = dxhub_ecg::synth::generate(&dxhub_ecg::synth::SynthSpec::sinus(70.0));
    ecg.patient.id = Some("ECG-OHIF-PATIENT".into());
    ecg.patient.name = Some("Ecgtest^Ohif".into());
    ecg.acquired_at = Some("20261122081500".into());
    let body = serde_json::to_vec(&dxhub_ecg::json::to_json_form(&ecg, 1.0)).unwrap();
    let r = reqwest::Client::new()
        .post(hub.http_url("/api/v1/ecg"))
        .bearer_auth(&device)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    let study = v["study_instance_uid"].as_str().unwrap().to_owned();
    add_user(&hub, TOWNSHIP, "ohif.ecg", "clinic_doctor", PASSWORD);
    let token = issue_token(&hub, "ohif.ecg", "1h");
    let api = Api::new(&hub);
    let q = api
        .get(
            &format!("/dicomweb/studies?StudyInstanceUID={study}&includefield=ModalitiesInStudy"),
            Some(&token),
        )
        .await;
    assert!(q.body.contains("\"ECG\""), "{q}");
    let out = artifacts("ecg-list");
    let (_server, url) = serve_ohif(
        &b,
        &hub.http_url("/dicomweb"),
        true,
        0,
        &out.join("serve_ohif.log"),
    );
    let v = run_e2e_with(&b, &url, &study, &token, &out, "Ecgtest", true);
    assert!(v["dicomweb_requests"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert!(out.join("study-list.png").exists());
    drop(hub);
}
