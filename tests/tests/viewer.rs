//! dxhub's own web app (`viewer/`, issue #8) end to end: dxhub serves the build at `/`
//! (the app's own paths fall back to `index.html`; `/api/` and `/dicomweb/` keep their JSON
//! 404), and in headless Chromium a reader logs in with password and one-time code, finds
//! an uploaded ECG on the ECG pool's queue, takes it with the "N" shortcut and switches the
//! language to English. Screenshots: `target/test-artifacts/viewer/`.
//!
//! Peers (scripts/lib-peers.sh `peers_ensure_browser`): `node`, `DXHUB_TEST_CHROMIUM`,
//! `DXHUB_TEST_NODE_MODULES` (tests/js, playwright-core) and `DXHUB_TEST_VIEWER_DIST`
//! (viewer/dist, built by `npm ci && npm run build` in viewer/). Under CI=true a missing
//! one fails the test.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::open_file;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dxhub_e2e::api::{
    PASSWORD, add_device, add_user, eventually, issue_token, join_pool, totp_at, unix_now,
};
use dxhub_e2e::generate::new_uid;
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::peers;
use dxhub_e2e::scu::{Scu, ct_context};
use dxhub_ecg::synth::SynthSpec;
use serde_json::{Value, json};

const COUNTY: &str = "县人民医院";
const TOWNSHIP: &str = "城关镇卫生院";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_owned()
}

fn env_path(var: &str, default: PathBuf) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or(default)
}

struct Browser {
    node: PathBuf,
    chromium: PathBuf,
    node_modules: PathBuf,
    dist: PathBuf,
}

fn browser_peers() -> Option<Browser> {
    let node = peers::tool("node");
    if !peers::require("node (apt-get install nodejs)", node.is_some()) {
        return None;
    }
    let chromium = env_path("DXHUB_TEST_CHROMIUM", PathBuf::from("/usr/bin/chromium"));
    let node_modules = env_path(
        "DXHUB_TEST_NODE_MODULES",
        repo_root().join("tests/js/node_modules"),
    );
    let dist = env_path("DXHUB_TEST_VIEWER_DIST", repo_root().join("viewer/dist"));
    for (what, ok) in [
        ("Chromium (DXHUB_TEST_CHROMIUM)", chromium.exists()),
        (
            "playwright-core (DXHUB_TEST_NODE_MODULES; npm ci in tests/js)",
            node_modules.join("playwright-core/package.json").exists(),
        ),
        (
            "the web app build (DXHUB_TEST_VIEWER_DIST; npm run build in viewer/)",
            dist.join("index.html").exists(),
        ),
    ] {
        if !peers::require(what, ok) {
            return None;
        }
    }
    Some(Browser {
        node: node.expect("node"),
        chromium,
        node_modules,
        dist,
    })
}

/// Run `tests/js/{script}` with the browser peers and `envs`; its one JSON result line
/// (the script's stderr and the failure are shown when it fails).
fn run_browser(
    b: &Browser,
    script: &str,
    artifacts: &std::path::Path,
    envs: &[(&str, String)],
) -> Value {
    let mut cmd = Command::new(&b.node);
    cmd.arg(repo_root().join("tests/js").join(script))
        .env("VIEWER_ARTIFACTS", artifacts)
        .env("DXHUB_TEST_CHROMIUM", &b.chromium)
        .env("DXHUB_TEST_NODE_MODULES", &b.node_modules)
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let res = cmd
        .output()
        .unwrap_or_else(|e| panic!("run node {script}: {e}"));
    let stdout = String::from_utf8_lossy(&res.stdout);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        res.status.success(),
        "{script} failed ({}):\n{stderr}",
        res.status
    );
    serde_json::from_str(stdout.trim()).expect("result line")
}

fn json_ecg(patient_id: &str) -> Vec<u8> {
    let (mut ecg, _) = dxhub_ecg::synth::generate(&SynthSpec::sinus(72.0));
    ecg.patient.id = Some(patient_id.into());
    ecg.patient.name = Some("王^小明".into());
    ecg.acquired_at = Some("20261123081500".into());
    serde_json::to_vec(&dxhub_ecg::json::to_json_form(&ecg, 1.0)).expect("JSON form")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_logs_in_takes_the_next_item_and_switches_language() {
    let Some(b) = browser_peers() else {
        return;
    };
    let hub = TestHub::spawn(
        HubOptions::default().env("DXHUB_HTTP__VIEWER_DIR", b.dist.to_str().expect("path")),
    );
    let http = reqwest::Client::new();
    let url = |p: &str| hub.http_url(p);

    // the app at / and at its own paths; the APIs keep their JSON 404
    for path in ["/", "/worklist"] {
        let r = http.get(url(path)).send().await.expect("GET");
        assert_eq!(r.status(), 200, "GET {path}");
        let ct = r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_owned();
        assert!(ct.starts_with("text/html"), "GET {path}: {ct}");
        assert!(r.text().await.expect("body").contains("<div id=\"app\">"));
    }
    for path in ["/api/v1/no-such-route", "/dicomweb/no-such-route"] {
        let r = http.get(url(path)).send().await.expect("GET");
        assert_eq!(r.status(), 404, "GET {path}");
        let v: Value = r.json().await.expect("JSON error");
        assert_eq!(v["error"]["code"], "not-found", "GET {path}: {v}");
    }

    // a reader of the ECG pool, enrolled in TOTP; a village ECG upload on the queue
    let reader_id = add_user(&hub, COUNTY, "wl.reader", "reader", PASSWORD);
    add_user(&hub, COUNTY, "wl.newcomer", "reader", PASSWORD);
    add_user(&hub, COUNTY, "wl.admin", "group_admin", PASSWORD);
    let admin = issue_token(&hub, "wl.admin", "1h");
    join_pool(&hub, &admin, "ecg", reader_id).await;
    let cli = issue_token(&hub, "wl.reader", "1h");
    let enrol: Value = http
        .post(url("/api/v1/auth/totp/enroll"))
        .bearer_auth(&cli)
        .send()
        .await
        .expect("enroll")
        .json()
        .await
        .expect("enroll JSON");
    let secret = enrol["secret"].as_str().expect("secret").to_owned();
    let r = http
        .post(url("/api/v1/auth/totp/confirm"))
        .bearer_auth(&cli)
        .json(&json!({ "code": totp_at(&secret, unix_now()) }))
        .send()
        .await
        .expect("confirm");
    assert_eq!(r.status(), 204, "TOTP confirm");
    // the reader self-signs: signing authority and a signing key
    let admin_put = http
        .put(url(&format!("/api/v1/users/{reader_id}/signing-authority")))
        .bearer_auth(&admin)
        .json(&json!({ "granted": true }))
        .send()
        .await
        .expect("signing authority");
    assert_eq!(admin_put.status(), 200);
    let key = http
        .post(url("/api/v1/me/signing-key"))
        .bearer_auth(&cli)
        .json(&json!({ "password": PASSWORD, "totp": totp_at(&secret, unix_now()) }))
        .send()
        .await
        .expect("signing key");
    assert_eq!(key.status(), 201, "signing key");

    let device = add_device(&hub, TOWNSHIP, "ECG-VIEWER-1");
    let up: Value = http
        .post(url("/api/v1/ecg"))
        .bearer_auth(&device)
        .header("content-type", "application/octet-stream")
        .body(json_ecg("VIEWER-P1"))
        .send()
        .await
        .expect("upload")
        .json()
        .await
        .expect("upload JSON");
    let study = up["study_instance_uid"]
        .as_str()
        .expect("study uid")
        .to_owned();
    let queued = eventually(std::time::Duration::from_secs(10), || async {
        let v: Value = http
            .get(url(&format!(
                "/api/v1/worklist?tab=all&study_instance_uid={study}"
            )))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("worklist")
            .json()
            .await
            .expect("worklist JSON");
        v["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert!(queued, "the ECG was never routed");

    let artifacts = repo_root().join("target/test-artifacts/viewer");
    let v = run_browser(
        &b,
        "viewer_e2e.mjs",
        &artifacts,
        &[
            ("VIEWER_URL", hub.http_url("")),
            ("VIEWER_LOGIN", "wl.reader".to_string()),
            ("VIEWER_PASSWORD", PASSWORD.to_string()),
            ("VIEWER_TOTP_SECRET", secret.to_string()),
            ("VIEWER_STUDY_UID", study.to_string()),
            ("VIEWER_ENROL_LOGIN", "wl.newcomer".to_string()),
        ],
    );
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["lang_default"], "zh-CN", "{v}");
    assert_eq!(v["lang_switched"], "en", "{v}");
    let help = v["help"].as_str().unwrap_or("");
    assert!(
        help.contains("N") && help.contains("领取下一个待读项目"),
        "{v}"
    );
    assert_eq!(v["enrolled"], true, "{v}");
    let queued_row = v["queued_row"].as_str().unwrap_or("");
    assert!(
        queued_row.contains("王小明")
            && queued_row.contains(TOWNSHIP)
            && queued_row.contains("ECG"),
        "{v}"
    );
    assert!(
        v["mine_row"].as_str().unwrap_or("").contains("阅读中"),
        "{v}"
    );
    // the ECG page: grid, 12 leads + the rhythm strip, calipers on two R peaks of the
    // synthetic 72/min sinus rhythm read its RR (833 ms) within 10 ms
    assert_eq!(v["grid_paths"], 2, "{v}");
    assert_eq!(v["leads"], 13, "{v}");
    let rr = v["caliper_ms"].as_f64().expect("caliper reading");
    assert!((rr - 60_000.0 / 72.0).abs() <= 10.0, "RR {rr} ms: {v}");
    assert!(
        v["caliper_text"].as_str().unwrap_or("").contains("bpm"),
        "{v}"
    );
    assert!(v["heart_rate"].as_str().unwrap_or("").contains("72"), "{v}");
    assert_eq!(v["width_ratio"], 2.0, "{v}");
    assert_eq!(v["leads_12x1"], 12, "{v}");
    assert!(
        v["english_header"]
            .as_str()
            .unwrap_or("")
            .contains("Patient"),
        "{v}"
    );
    // the report written, submitted and signed in the browser is signed and verifies
    assert!(v["machine_values"].as_i64().unwrap_or(0) >= 5, "{v}");
    assert!(
        v["report_status"].as_str().unwrap_or("").contains("已签发"),
        "{v}"
    );
    let reports: Value = http
        .get(url(&format!("/api/v1/reports?study={study}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("reports")
        .json()
        .await
        .expect("reports JSON");
    assert_eq!(reports["reports"][0]["state"], "signed", "{reports}");
    let rid = reports["reports"][0]["id"].as_i64().expect("report id");
    let verify: Value = http
        .get(url(&format!("/api/v1/reports/{rid}/verify")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("verify")
        .json()
        .await
        .expect("verify JSON");
    assert_eq!(verify["valid"], true, "{verify}");
    // claimed, written and signed by the reader: the report's author, the item signed
    assert_eq!(
        reports["reports"][0]["author_login"], "wl.reader",
        "{reports}"
    );
    let items: Value = http
        .get(url(&format!(
            "/api/v1/worklist?tab=all&state=signed&study_instance_uid={study}"
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("worklist")
        .json()
        .await
        .expect("worklist JSON");
    assert_eq!(
        items["items"][0]["claimed_by_login"], "wl.reader",
        "{items}"
    );
    for shot in [
        "1-login",
        "2-queue",
        "2b-shortcuts",
        "3-mine",
        "3b-ecg",
        "3c-ecg-12x1",
        "3d-signed",
        "4-english",
        "5-enrol",
    ] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "{shot}.png"
        );
    }
}

/// `method path` as `token`; (status, JSON body or Null).
async fn call(
    hub: &TestHub,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, hub.http_url(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn ok(
    hub: &TestHub,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Value {
    let (s, v) = call(hub, method.clone(), path, token, body).await;
    assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinic_sees_the_signed_report_and_acknowledges_the_critical_value() {
    use reqwest::Method;
    let Some(b) = browser_peers() else {
        return;
    };
    let hub = TestHub::spawn(
        HubOptions::default().env("DXHUB_HTTP__VIEWER_DIR", b.dist.to_str().expect("path")),
    );
    // a reader who self-signs (signing authority, a key), a clinic doctor of the township
    let reader_id = add_user(&hub, COUNTY, "cl.reader", "reader", PASSWORD);
    add_user(&hub, COUNTY, "cl.admin", "group_admin", PASSWORD);
    add_user(&hub, TOWNSHIP, "cl.doctor", "clinic_doctor", PASSWORD);
    let admin = issue_token(&hub, "cl.admin", "1h");
    let reader = issue_token(&hub, "cl.reader", "1h");
    join_pool(&hub, &admin, "ecg", reader_id).await;
    let enrol = ok(
        &hub,
        Method::POST,
        "/api/v1/auth/totp/enroll",
        &reader,
        None,
    )
    .await;
    let secret = enrol["secret"].as_str().expect("secret").to_owned();
    let code = || totp_at(&secret, unix_now());
    ok(
        &hub,
        Method::POST,
        "/api/v1/auth/totp/confirm",
        &reader,
        Some(json!({ "code": code() })),
    )
    .await;
    ok(
        &hub,
        Method::PUT,
        &format!("/api/v1/users/{reader_id}/signing-authority"),
        &admin,
        Some(json!({ "granted": true })),
    )
    .await;
    ok(
        &hub,
        Method::POST,
        "/api/v1/me/signing-key",
        &reader,
        Some(json!({ "password": PASSWORD, "totp": code() })),
    )
    .await;

    // the township's ECG device uploads; the reader takes it, reports, signs, raises a
    // critical value
    let device = add_device(&hub, TOWNSHIP, "ECG-CLINIC-1");
    let patient = "110105194912310029";
    let (s, up) = {
        let r = reqwest::Client::new()
            .post(hub.http_url("/api/v1/ecg"))
            .bearer_auth(&device)
            .header("content-type", "application/octet-stream")
            .body(json_ecg(patient))
            .send()
            .await
            .expect("upload");
        (r.status().as_u16(), r.json::<Value>().await.expect("JSON"))
    };
    assert_eq!(s, 201, "{up}");
    // (an ECG is routed right after its 201; poll briefly until `next` finds it)
    let mut item = Value::Null;
    for _ in 0..50 {
        let (s, v) = call(&hub, Method::POST, "/api/v1/worklist/next", &reader, None).await;
        if s == 200 {
            item = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(item.is_object(), "nothing to claim");
    let item_id = item["id"].as_i64().expect("item id");
    let pre = ok(
        &hub,
        Method::GET,
        &format!("/api/v1/worklist/{item_id}/report-prefill"),
        &reader,
        None,
    )
    .await;
    let mut fields = serde_json::Map::new();
    let mut confirmed = Vec::new();
    for m in pre["machine"].as_array().expect("machine values") {
        if let Some(v) = m["value"].as_str() {
            fields.insert(m["key"].as_str().expect("key").into(), json!(v));
            confirmed.push(m["key"].clone());
        }
    }
    let draft = ok(
        &hub,
        Method::POST,
        &format!("/api/v1/worklist/{item_id}/report"),
        &reader,
        Some(json!({
            "template_code": "ecg_12_lead",
            "sections": { "findings": pre["normal"]["sections"]["findings"], "impression": "窦性心律，正常心电图。" },
            "fields": fields,
            "confirmed": confirmed,
            "qc_grade": "acceptable",
        })),
    )
    .await;
    let rid = draft["report"]["id"].as_i64().expect("report id");
    let version = draft["version"]["version"].as_i64().expect("version");
    ok(
        &hub,
        Method::POST,
        &format!("/api/v1/reports/{rid}/submit"),
        &reader,
        Some(json!({ "version": version })),
    )
    .await;
    ok(
        &hub,
        Method::POST,
        &format!("/api/v1/reports/{rid}/sign"),
        &reader,
        Some(json!({ "version": version, "password": PASSWORD, "totp": code() })),
    )
    .await;
    let cats = ok(
        &hub,
        Method::GET,
        "/api/v1/critical-categories",
        &reader,
        None,
    )
    .await;
    let category = cats["categories"][0]["code"]
        .as_str()
        .expect("a category")
        .to_owned();
    let critical = ok(
        &hub,
        Method::POST,
        &format!("/api/v1/reports/{rid}/critical"),
        &reader,
        Some(json!({ "category": category, "note": "请立即联系患者" })),
    )
    .await;
    let critical_id = critical["id"].as_i64().expect("critical id");

    let artifacts = repo_root().join("target/test-artifacts/viewer");
    let v = run_browser(
        &b,
        "viewer_clinic_e2e.mjs",
        &artifacts,
        &[
            ("VIEWER_URL", hub.http_url("")),
            ("VIEWER_LOGIN", "cl.doctor".to_string()),
            ("VIEWER_PASSWORD", PASSWORD.to_string()),
            ("VIEWER_REPORT_ID", rid.to_string()),
            ("VIEWER_PATIENT_ID", patient.to_string()),
        ],
    );
    assert_eq!(v["ok"], true, "{v}");
    let banner = v["banner"].as_str().unwrap_or("");
    assert!(banner.contains("请立即联系患者"), "{v}");
    // the category's Chinese label, not its code
    assert!(!banner.contains(&category), "{v}");
    assert!(
        v["report_row"].as_str().unwrap_or("").contains("王小明"),
        "{v}"
    );
    assert_eq!(v["pdf_status"], 200, "{v}");
    assert_eq!(v["pdf_type"], "application/pdf", "{v}");
    assert_eq!(v["pdf_magic"], "%PDF-", "{v}");
    // the acknowledgement reached the hub with the name and action typed
    let list = ok(
        &hub,
        Method::GET,
        "/api/v1/critical-values?state=acknowledged",
        &admin,
        None,
    )
    .await;
    let acked = list["critical_values"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["critical"]["id"] == critical_id)
        .unwrap_or_else(|| panic!("critical value {critical_id} not acknowledged: {list}"));
    assert_eq!(acked["critical"]["ack_name"], "张医生", "{acked}");
    assert_eq!(
        acked["critical"]["ack_action"], "已电话通知患者转诊",
        "{acked}"
    );
    for shot in ["c1-portal", "c2-acknowledged", "c3-recognition"] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "{shot}.png"
        );
    }
}

/// A CT stack of `n` slices from pydicom's CT_small.dcm (128×128, pixel spacing
/// 0.661468 mm), each slice's rows rolled by 16 × its index so that every slice looks
/// different; stored over DIMSE as the township's AE. The Study Instance UID.
fn store_ct_stack(hub: &TestHub, n: usize) -> String {
    let ct_small = peers::corpus()
        .expect("the DICOM corpus (DXHUB_TEST_CORPUS)")
        .join("pydicom/CT_small.dcm");
    let (study, series) = (new_uid(), new_uid());
    let base = open_file(&ct_small).expect("open CT_small.dcm");
    let pixels = base
        .element(tags::PIXEL_DATA)
        .expect("pixel data")
        .to_bytes()
        .expect("pixel bytes")
        .to_vec();
    let row = 128 * 2;
    let ts = EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut scu = Scu::connect(hub.dicom, "CLINIC", "DXHUB", &[ct_context()], 1 << 20)
        .expect("associate as CLINIC");
    let (pc, _) = scu.context_for(uids::CT_IMAGE_STORAGE).expect("CT context");
    for i in 0..n {
        let sop = new_uid();
        let mut o = base.clone().into_inner();
        let shift = (i * 16 * row) % pixels.len();
        let mut rolled = pixels[shift..].to_vec();
        rolled.extend_from_slice(&pixels[..shift]);
        o.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U8(rolled.into()),
        ));
        o.put(DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(study.as_str()),
        ));
        o.put(DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(series.as_str()),
        ));
        o.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(sop.as_str()),
        ));
        o.put(DataElement::new(
            tags::STUDY_DESCRIPTION,
            VR::LO,
            PrimitiveValue::from("CT HEAD PLAIN"),
        ));
        o.put(DataElement::new(
            tags::INSTANCE_NUMBER,
            VR::IS,
            PrimitiveValue::from((i + 1).to_string().as_str()),
        ));
        let mut bytes = Vec::new();
        o.write_dataset_with_ts(&mut bytes, &ts)
            .expect("encode dataset");
        let (status, comment) = scu
            .store(pc, uids::CT_IMAGE_STORAGE, &sop, &bytes)
            .expect("C-STORE");
        assert_eq!(status, 0, "C-STORE slice {i}: {comment:?}");
    }
    scu.release().expect("release");
    study
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_reads_a_ct_stack_with_the_image_viewer() {
    use reqwest::Method;
    let Some(b) = browser_peers() else {
        return;
    };
    if !peers::require(
        "the DICOM corpus (DXHUB_TEST_CORPUS)",
        peers::corpus().is_some(),
    ) {
        return;
    }
    let hub = TestHub::spawn(
        HubOptions::default()
            .env("DXHUB_HTTP__VIEWER_DIR", b.dist.to_str().expect("path"))
            .env("DXHUB_WORKLIST__STABLE_AFTER_SECS", "1")
            .env("DXHUB_WORKLIST__TICK_MS", "200"),
    );
    let reader_id = add_user(&hub, COUNTY, "im.reader", "reader", PASSWORD);
    add_user(&hub, COUNTY, "im.admin", "group_admin", PASSWORD);
    let admin = issue_token(&hub, "im.admin", "1h");
    let reader = issue_token(&hub, "im.reader", "1h");
    join_pool(&hub, &admin, "radiology", reader_id).await;
    let enrol = ok(
        &hub,
        Method::POST,
        "/api/v1/auth/totp/enroll",
        &reader,
        None,
    )
    .await;
    let secret = enrol["secret"].as_str().expect("secret").to_owned();
    ok(
        &hub,
        Method::POST,
        "/api/v1/auth/totp/confirm",
        &reader,
        Some(json!({ "code": totp_at(&secret, unix_now()) })),
    )
    .await;
    let study = store_ct_stack(&hub, 5);
    // the stack becomes ready and is routed to radiology; the reader takes it
    let mut item = Value::Null;
    for _ in 0..75 {
        let (s, v) = call(&hub, Method::POST, "/api/v1/worklist/next", &reader, None).await;
        if s == 200 {
            item = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(item["study_instance_uid"], study.as_str(), "{item}");
    let read_path = format!("/read/{study}?item={}", item["id"]);

    let artifacts = repo_root().join("target/test-artifacts/viewer");
    let v = run_browser(
        &b,
        "viewer_images_e2e.mjs",
        &artifacts,
        &[
            ("VIEWER_URL", hub.http_url("")),
            ("VIEWER_LOGIN", "im.reader".to_string()),
            ("VIEWER_PASSWORD", PASSWORD.to_string()),
            ("VIEWER_TOTP_SECRET", secret.to_string()),
            ("VIEWER_READ_PATH", read_path.to_string()),
        ],
    );
    assert_eq!(v["ok"], true, "{v}");
    let num = |p: &str| v.pointer(p).and_then(Value::as_f64).unwrap_or(0.0);
    // drawn: many grey levels, spread out
    assert!(
        num("/first/distinct") >= 16.0 && num("/first/stddev") > 5.0,
        "{v}"
    );
    // the wheel moved to slice 2 of 5, which looks different
    assert_eq!(v["slices"], "5", "{v}");
    assert_ne!(v["first"]["sha1"], v["second"]["sha1"], "{v}");
    // window/level and the bone preset change the picture
    assert!(
        (num("/after_wl/mean") - num("/second/mean")).abs() > 1.0,
        "{v}"
    );
    assert!(
        (num("/after_bone/mean") - num("/after_wl/mean")).abs() > 1.0,
        "{v}"
    );
    assert!(v["voi_text"].as_str().unwrap_or("").contains("W "), "{v}");
    // the length: half the viewport's height; the 128-row image (84.7 mm) fits the
    // viewport's height when that is the smaller side
    let text = v["length_text"].as_str().unwrap_or("");
    let mm: f64 = text
        .split_whitespace()
        .find_map(|w| w.trim_end_matches("mm").parse().ok())
        .unwrap_or_else(|| panic!("no length in {text:?}: {v}"));
    let (w, h) = (num("/viewport_px/width"), num("/viewport_px/height"));
    let fit_px = w.min(h);
    let expected = num("/drag_px") / fit_px * 128.0 * 0.661468;
    assert!(
        (mm - expected).abs() <= 0.1 * expected,
        "length {mm} mm, expected about {expected:.1} mm: {v}"
    );
}
