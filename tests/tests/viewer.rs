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
    // a short lease, which the reading page must keep renewing while the reader reads
    let hub = TestHub::spawn(
        HubOptions::default()
            .env("DXHUB_HTTP__VIEWER_DIR", b.dist.to_str().expect("path"))
            .env("DXHUB_WORKLIST__LEASE_TTL_SECS", "10")
            .env("DXHUB_WORKLIST__TICK_MS", "200"),
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
            // longer than the lease: the report is then written and submitted as the
            // holder, which fails if the lease ran out meanwhile
            ("VIEWER_READ_MS", "14000".to_string()),
        ],
    );
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["lease_lost_banner"], 0, "{v}");
    assert_eq!(v["filter_modality"], true, "{v}");
    assert_eq!(v["filter_search"], true, "{v}");
    assert_eq!(v["sort_due"], "ascending", "{v}");
    assert_eq!(v["sort_due_again"], "descending", "{v}");
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
    // text typed while saves failed was kept on the workstation, offered back after a
    // reload, restored (with the QC grade chosen before) and saved on the hub
    assert_eq!(v["draft_offered"], true, "{v}");
    assert_eq!(v["draft_restored_text"], "断网时写下的印象", "{v}");
    assert_eq!(v["draft_restored_qc"], "acceptable", "{v}");
    assert!(v["draft_saved"].as_i64().is_some(), "{v}");
    assert_eq!(v["draft_cleared"], true, "{v}");
    assert_eq!(
        v["drafts_after_logout"], 0,
        "logging out removes kept drafts: {v}"
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
    // the words typed while an autosave was on its way are in the signed report
    let signed: Value = http
        .get(url(&format!("/api/v1/reports/{rid}")))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("report")
        .json()
        .await
        .expect("report JSON");
    assert_eq!(
        signed["current"]["body"]["sections"]["impression"], "窦性心律，正常心电图。",
        "{signed}"
    );
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
    add_user(&hub, COUNTY, "cl.admin", "group_admin", PASSWORD);
    add_user(&hub, TOWNSHIP, "cl.doctor", "clinic_doctor", PASSWORD);
    let admin = issue_token(&hub, "cl.admin", "1h");
    let (reader, secret) = signing_ecg_reader(&hub, &admin, "cl.reader").await;

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
    let rid = sign_next_ecg(&hub, &reader, &secret).await;
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
    let reported_study = up["study_instance_uid"]
        .as_str()
        .expect("study uid")
        .to_owned();

    // 100 older CT studies of the township: the sent-studies list shows the newest 100
    // and loads the rest on request
    store_small_studies(&hub, 100);
    // a second ECG of the township waits in the queue
    let r = reqwest::Client::new()
        .post(hub.http_url("/api/v1/ecg"))
        .bearer_auth(&device)
        .header("content-type", "application/octet-stream")
        .body(json_ecg("110105195001010011"))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 201);
    let queued_study = r.json::<Value>().await.expect("JSON")["study_instance_uid"]
        .as_str()
        .expect("study uid")
        .to_owned();
    // an ECG of the county itself, which the township may not see
    let county_device = add_device(&hub, COUNTY, "ECG-COUNTY-1");
    let r = reqwest::Client::new()
        .post(hub.http_url("/api/v1/ecg"))
        .bearer_auth(&county_device)
        .header("content-type", "application/octet-stream")
        .body(json_ecg("110105196003030033"))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 201);
    let hidden_study = r.json::<Value>().await.expect("JSON")["study_instance_uid"]
        .as_str()
        .expect("study uid")
        .to_owned();
    let doctor = issue_token(&hub, "cl.doctor", "1h");
    let status_of = |v: &Value, uid: &str| {
        v["studies"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["study_instance_uid"] == uid)
            .map(|s| s["workflow"]["status"].clone())
    };
    let mut routed = false;
    for _ in 0..50 {
        let v = ok(
            &hub,
            Method::GET,
            "/api/v1/studies?order=desc&limit=200",
            &doctor,
            None,
        )
        .await;
        if status_of(&v, &queued_study) == Some(json!("queued")) {
            assert_eq!(status_of(&v, &reported_study), Some(json!("reported")));
            routed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(routed, "the second ECG never reached the queue");

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
            ("VIEWER_SENT_REPORTED", reported_study.clone()),
            ("VIEWER_SENT_QUEUED", queued_study.clone()),
            ("VIEWER_HIDDEN_STUDY", hidden_study.clone()),
        ],
    );
    // refusals in the page's language
    assert_eq!(v["login_refused"], "登录失败: 账号或密码错误", "{v}");
    // another institution's study: nothing shown, and the page says so
    assert_eq!(
        v["hidden_study"], "此检查没有可显示的图像或心电图，或您无权查看。",
        "{v}"
    );
    assert_eq!(v["hidden_study_leads"], 0, "{v}");
    assert_eq!(v["hidden_study_errors"], 0, "{v}");
    // the sent-studies list: the signed ECG reported with its report, the other queued
    let sent = v["sent"].as_object().expect("sent rows");
    let reported = sent["reported"].as_str().unwrap_or("");
    assert!(reported.contains("王小明"), "{v}");
    assert_eq!(v["sent_reported_step"], "已出报告", "{v}");
    assert_eq!(v["sent_queued_step"], "排队中", "{v}");
    assert_eq!(v["sent_report_status"], 200, "{v}");
    assert_eq!(v["sent_rows_first_page"], 100, "{v}");
    assert_eq!(v["sent_rows_after_more"], 102, "{v}");
    assert_eq!(v["sent_report_magic"], "%PDF-", "{v}");
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
    // the recognised result: HR, the exam by name, the clinic, the conclusion
    let recognised = v["recognition_row"].as_str().unwrap_or("");
    assert!(
        recognised.starts_with("HR")
            && recognised.contains("常规十二导联心电图")
            && recognised.contains(TOWNSHIP),
        "{v}"
    );
    // … and its link opened the ECG: the standard layout's leads drawn
    assert!(v["recognition_leads"].as_u64() >= Some(12), "{v}");
    assert_eq!(v["reading_back"], "← 本院检查", "{v}");
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
    // its ECG device (two uploads) and its AE title, nothing of other institutions
    let device_row = v["setup_device"].as_str().unwrap_or("");
    assert!(
        device_row.contains(TOWNSHIP) && device_row.ends_with('2'),
        "{v}"
    );
    assert_eq!(v["setup_aes"], json!(["CLINIC"]), "{v}");
    for shot in ["c1-portal", "c2-acknowledged", "c3-recognition", "c4-setup"] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "{shot}.png"
        );
    }
}

/// What [`store_ct_study`] stores.
struct StudySpec<'a> {
    /// CT slices of the first series.
    slices: usize,
    /// When > 0: a second series, one US multi-frame instance of this many 8-bit frames
    /// (Frame Time 100 ms, i.e. 10 frames/s), each frame a bright band at another row.
    cine_frames: usize,
    study_date: &'a str,
    description: &'a str,
}

/// Patient name in UTF-8 (Specific Character Set ISO_IR 192) as the raw value bytes (the
/// default writer would refuse non-ASCII text), padded to even length.
const PATIENT_NAME: &str = "WANG^XIAOMING=王^小明";

fn pn_bytes(s: &str) -> PrimitiveValue {
    let mut b = s.as_bytes().to_vec();
    if b.len() % 2 == 1 {
        b.push(b' ');
    }
    PrimitiveValue::U8(b.into())
}

/// A CT study from pydicom's CT_small.dcm (128×128, pixel spacing 0.661468 mm): `slices`
/// slices, each slice's rows rolled by 16 × its index so that every slice looks different,
/// slice location 5 mm × index, thickness 5 mm; the patient 王小明 (M, 45 years) of the
/// township; optionally a US multi-frame series (see [`StudySpec`]). Stored over DIMSE as
/// the township's AE. The Study Instance UID.
fn store_ct_study(hub: &TestHub, spec: &StudySpec) -> String {
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
    let us_context = (
        uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE.to_owned(),
        vec![uids::EXPLICIT_VR_LITTLE_ENDIAN.to_owned()],
    );
    let mut scu = Scu::connect(
        hub.dicom,
        "CLINIC",
        "DXHUB",
        &[ct_context(), us_context],
        1 << 20,
    )
    .expect("associate as CLINIC");
    let (pc, _) = scu.context_for(uids::CT_IMAGE_STORAGE).expect("CT context");
    let text = |s: &str| PrimitiveValue::from(s);
    let common = |o: &mut dicom_object::InMemDicomObject, series: &str, sop: &str| {
        for (tag, vr, v) in [
            (tags::SPECIFIC_CHARACTER_SET, VR::CS, text("ISO_IR 192")),
            (tags::STUDY_INSTANCE_UID, VR::UI, text(&study)),
            (tags::SERIES_INSTANCE_UID, VR::UI, text(series)),
            (tags::SOP_INSTANCE_UID, VR::UI, text(sop)),
            (tags::STUDY_DESCRIPTION, VR::LO, text(spec.description)),
            (tags::STUDY_DATE, VR::DA, text(spec.study_date)),
            (tags::PATIENT_SEX, VR::CS, text("M")),
            (tags::PATIENT_AGE, VR::AS, text("045Y")),
            (tags::INSTITUTION_NAME, VR::LO, text("TOWNSHIP HC")),
        ] {
            o.put(DataElement::new(tag, vr, v));
        }
        o.put(DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            pn_bytes(PATIENT_NAME),
        ));
    };
    for i in 0..spec.slices {
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
        common(&mut o, &series, &sop);
        o.put(DataElement::new(
            tags::SERIES_DESCRIPTION,
            VR::LO,
            text("AXIAL 5mm"),
        ));
        o.put(DataElement::new(
            tags::INSTANCE_NUMBER,
            VR::IS,
            PrimitiveValue::from((i + 1).to_string().as_str()),
        ));
        o.put(DataElement::new(tags::SLICE_THICKNESS, VR::DS, text("5")));
        o.put(DataElement::new(
            tags::SLICE_LOCATION,
            VR::DS,
            PrimitiveValue::from((i * 5).to_string().as_str()),
        ));
        scu.store_object(pc, uids::CT_IMAGE_STORAGE, &o, &format!("slice {i}"));
    }
    if spec.cine_frames > 0 {
        let (pc, _) = scu
            .context_for(uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE)
            .expect("US multi-frame context");
        let (series, sop) = (new_uid(), new_uid());
        let mut o = base.clone().into_inner();
        for tag in [
            tags::WINDOW_CENTER,
            tags::WINDOW_WIDTH,
            tags::RESCALE_INTERCEPT,
            tags::RESCALE_SLOPE,
            tags::IMAGE_POSITION_PATIENT,
            tags::IMAGE_ORIENTATION_PATIENT,
            tags::SLICE_LOCATION,
            tags::SLICE_THICKNESS,
            tags::PIXEL_SPACING,
            tags::SMALLEST_IMAGE_PIXEL_VALUE,
            tags::LARGEST_IMAGE_PIXEL_VALUE,
            tags::FRAME_OF_REFERENCE_UID,
        ] {
            o.remove_element(tag);
        }
        common(&mut o, &series, &sop);
        let (w, h, n) = (64usize, 64usize, spec.cine_frames);
        let mut frames = Vec::with_capacity(w * h * n);
        for f in 0..n {
            for y in 0..h {
                for x in 0..w {
                    let band = (y / 8) == f % (h / 8);
                    frames.push(if band {
                        250u8
                    } else {
                        ((x * 2 + y) % 96) as u8
                    });
                }
            }
        }
        for (tag, vr, v) in [
            (
                tags::SOP_CLASS_UID,
                VR::UI,
                text(uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE),
            ),
            (tags::MODALITY, VR::CS, text("US")),
            (tags::SERIES_DESCRIPTION, VR::LO, text("CINE LOOP")),
            (tags::SERIES_NUMBER, VR::IS, text("2")),
            (tags::INSTANCE_NUMBER, VR::IS, text("1")),
            (
                tags::NUMBER_OF_FRAMES,
                VR::IS,
                PrimitiveValue::from(n.to_string().as_str()),
            ),
            (tags::FRAME_TIME, VR::DS, text("100")),
            (
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                text("MONOCHROME2"),
            ),
        ] {
            o.put(DataElement::new(tag, vr, v));
        }
        o.put(DataElement::new(
            tags::FRAME_INCREMENT_POINTER,
            VR::AT,
            PrimitiveValue::Tags(vec![tags::FRAME_TIME].into()),
        ));
        for (tag, v) in [
            (tags::ROWS, h as u16),
            (tags::COLUMNS, w as u16),
            (tags::SAMPLES_PER_PIXEL, 1),
            (tags::BITS_ALLOCATED, 8),
            (tags::BITS_STORED, 8),
            (tags::HIGH_BIT, 7),
            (tags::PIXEL_REPRESENTATION, 0),
        ] {
            o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
        }
        o.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PrimitiveValue::U8(frames.into()),
        ));
        scu.store_object(
            pc,
            uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
            &o,
            "US multi-frame",
        );
    }
    scu.release().expect("release");
    study
}

/// `n` one-slice CT studies (pydicom's CT_small.dcm with new UIDs) stored over one
/// association as the township's AE.
fn store_small_studies(hub: &TestHub, n: usize) {
    let ct_small = peers::corpus()
        .expect("the DICOM corpus (DXHUB_TEST_CORPUS)")
        .join("pydicom/CT_small.dcm");
    let base = open_file(&ct_small).expect("open CT_small.dcm");
    let mut scu = Scu::connect(hub.dicom, "CLINIC", "DXHUB", &[ct_context()], 1 << 20)
        .expect("associate as CLINIC");
    let (pc, _) = scu.context_for(uids::CT_IMAGE_STORAGE).expect("CT context");
    for i in 0..n {
        let sop = new_uid();
        let mut o = base.clone().into_inner();
        for (tag, uid) in [
            (tags::STUDY_INSTANCE_UID, new_uid()),
            (tags::SERIES_INSTANCE_UID, new_uid()),
            (tags::SOP_INSTANCE_UID, sop.clone()),
        ] {
            o.put(DataElement::new(
                tag,
                VR::UI,
                PrimitiveValue::from(uid.as_str()),
            ));
        }
        scu.store_object(pc, uids::CT_IMAGE_STORAGE, &o, &format!("study {i}"));
    }
    scu.release().expect("release");
}

/// A TOTP-enrolled user of the county's radiology pool; (token, TOTP secret).
async fn radiology_reader(hub: &TestHub, admin: &str, login: &str, role: &str) -> (String, String) {
    let id = add_user(hub, COUNTY, login, role, PASSWORD);
    join_pool(hub, admin, "radiology", id).await;
    let token = issue_token(hub, login, "1h");
    let secret = enrol(hub, &token).await;
    (token, secret)
}

/// `POST /api/v1/worklist/next` until it hands out an item (the study becomes ready a
/// second after its last instance).
async fn next_item(hub: &TestHub, token: &str) -> Value {
    for _ in 0..75 {
        let (s, v) = call(
            hub,
            reqwest::Method::POST,
            "/api/v1/worklist/next",
            token,
            None,
        )
        .await;
        if s == 200 {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("nothing to claim");
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
    add_user(&hub, COUNTY, "im.admin", "group_admin", PASSWORD);
    let admin = issue_token(&hub, "im.admin", "1h");
    let (reader, secret) = radiology_reader(&hub, &admin, "im.reader", "reader").await;
    // a senior reader (returns, signs, adds addenda) with a signing key
    let (senior, senior_secret) =
        radiology_reader(&hub, &admin, "im.senior", "senior_reader").await;
    ok(
        &hub,
        Method::POST,
        "/api/v1/me/signing-key",
        &senior,
        Some(json!({ "password": PASSWORD, "totp": totp_at(&senior_secret, unix_now()) })),
    )
    .await;

    // the patient's prior CT, reported and signed: the priors panel's entry
    let prior = store_ct_study(
        &hub,
        &StudySpec {
            slices: 2,
            cine_frames: 0,
            study_date: "20250301",
            description: "CT HEAD PRIOR",
        },
    );
    let prior_item = next_item(&hub, &reader).await;
    assert_eq!(
        prior_item["study_instance_uid"],
        prior.as_str(),
        "{prior_item}"
    );
    let prior_id = prior_item["id"].as_i64().expect("item id");
    let pre = ok(
        &hub,
        Method::GET,
        &format!("/api/v1/worklist/{prior_id}/report-prefill"),
        &reader,
        None,
    )
    .await;
    let mut sections = pre["normal"]["sections"].clone();
    sections["impression"] = json!("既往：颅内未见明显异常。");
    let draft = ok(
        &hub,
        Method::POST,
        &format!("/api/v1/worklist/{prior_id}/report"),
        &reader,
        Some(json!({
            "template_code": pre["template"]["code"],
            "sections": sections,
            "fields": pre["normal"]["fields"],
            "confirmed": [],
            "qc_grade": "jia",
        })),
    )
    .await;
    let prior_rid = draft["report"]["id"].as_i64().expect("report id");
    let pv = draft["version"]["version"].as_i64().expect("version");
    ok(
        &hub,
        Method::POST,
        &format!("/api/v1/reports/{prior_rid}/submit"),
        &reader,
        Some(json!({ "version": pv })),
    )
    .await;
    ok(
        &hub,
        Method::POST,
        &format!("/api/v1/reports/{prior_rid}/sign"),
        &senior,
        Some(json!({ "version": pv, "password": PASSWORD, "totp": totp_at(&senior_secret, unix_now()) })),
    )
    .await;

    // today's study: a 5-slice CT and a 12-frame US cine loop
    let study = store_ct_study(
        &hub,
        &StudySpec {
            slices: 5,
            cine_frames: 12,
            study_date: "20261123",
            description: "CT HEAD PLAIN",
        },
    );
    let item = next_item(&hub, &reader).await;
    assert_eq!(item["study_instance_uid"], study.as_str(), "{item}");
    let item_id = item["id"].as_i64().expect("item id");
    let read_path = format!("/read/{study}?item={item_id}");

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
            ("VIEWER_PRIOR_UID", prior.clone()),
            ("VIEWER_SENIOR_LOGIN", "im.senior".to_string()),
            ("VIEWER_SENIOR_TOTP_SECRET", senior_secret.to_string()),
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
    let s = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    // thumbnails: one rendered image per series (dxhub's series thumbnail), not blank,
    // with the series' image count
    assert_eq!(v["thumbs"].as_array().map(Vec::len), Some(2), "{v}");
    for t in v["thumbs"].as_array().into_iter().flatten() {
        assert!(t["natural_width"].as_f64().unwrap_or(0.0) > 0.0, "{v}");
        assert!(t["distinct"].as_f64().unwrap_or(0.0) >= 8.0, "{v}");
    }
    assert!(s("/thumbs/0/text").contains("· 5"), "{v}");
    assert!(s("/thumbs/1/text").contains("· 12"), "{v}");
    // overlay: the ideographic name, ID, sex and age, date, exam, series, institution,
    // the image n/N with slice location and thickness, W/L and zoom
    let patient = s("/overlay/patient");
    assert!(
        patient.contains("王小明") && patient.contains("男") && patient.contains("45岁"),
        "{v}"
    );
    let study_ov = s("/overlay/study");
    for want in ["2026-11-23", "CT HEAD PLAIN", "AXIAL 5mm", "TOWNSHIP HC"] {
        assert!(study_ov.contains(want), "overlay lacks {want}: {v}");
    }
    let position = s("/overlay/position");
    assert!(
        position.contains("2/5") && position.contains("5.0 mm") && position.contains("层厚 5 mm"),
        "{v}"
    );
    assert!(s("/overlay/view").contains("缩放"), "{v}");
    // cine: the US multi-frame instance loaded frame by frame (…/frames/N), played at its
    // Frame Time (100 ms → 10 frames/s) by the C key, several frames shown, paused by the
    // button and then still
    assert_eq!(v["cine"]["slices"], "12", "{v}");
    assert_eq!(v["cine"]["fps"], "10", "{v}");
    assert!(v["cine"]["frames_seen"].as_u64().unwrap_or(0) >= 4, "{v}");
    assert!(
        v["cine"]["frames_requested"].as_u64().unwrap_or(0) >= 4,
        "{v}"
    );
    assert_eq!(v["cine"]["paused_still"], true, "{v}");
    assert_eq!(v["cine"]["stack_played"], true, "{v}");
    // priors: the prior CT listed; opened beside the current study, drawn, its report
    assert!(s("/priors/row").contains("2025-03-01"), "{v}");
    assert!(num("/priors/image/distinct") >= 16.0, "{v}");
    assert!(
        s("/priors/report").contains("既往：颅内未见明显异常。"),
        "{v}"
    );
    assert_eq!(v["priors"]["current_still_drawn"], true, "{v}");
    // the template picker: CT templates only; the draft switched and stored with it
    let options: Vec<String> =
        serde_json::from_value(v["templates"]["options"].clone()).unwrap_or_default();
    assert!(
        options.contains(&"ct_head_plain".to_owned())
            && options.contains(&"ct_chest_plain".to_owned()),
        "{v}"
    );
    assert!(
        !options
            .iter()
            .any(|o| o.starts_with("dx_") || o.starts_with("us_") || o.starts_with("ecg")),
        "{v}"
    );
    let switched = s("/templates/after");
    assert_ne!(switched, s("/templates/before"), "{v}");
    // returned by the senior reader with the reason, rewritten, signed, an addendum
    assert!(s("/returned_history").contains("请补充纵隔窗所见"), "{v}");
    assert_eq!(v["returned_by"], "im.senior", "{v}");
    assert!(s("/reader_sees_reason").contains("请补充纵隔窗所见"), "{v}");
    assert!(s("/addenda").contains("补充：纵隔淋巴结未见肿大。"), "{v}");
    let reports = ok(
        &hub,
        Method::GET,
        &format!("/api/v1/reports?study={study}"),
        &admin,
        None,
    )
    .await;
    let rid = reports["reports"][0]["id"].as_i64().expect("report id");
    let r = ok(
        &hub,
        Method::GET,
        &format!("/api/v1/reports/{rid}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(r["report"]["state"], "signed", "{r}");
    assert_eq!(r["report"]["template_code"], switched.as_str(), "{r}");
    let versions = r["versions"].as_array().expect("versions");
    let returned = versions
        .iter()
        .find(|x| x["state"] == "returned")
        .unwrap_or_else(|| panic!("no returned version: {r}"));
    assert_eq!(returned["reason"], "请补充纵隔窗所见", "{r}");
    assert_eq!(r["addenda"][0]["text"], "补充：纵隔淋巴结未见肿大。", "{r}");
    assert_eq!(r["addenda"][0]["author_login"], "im.senior", "{r}");
    let verify = ok(
        &hub,
        Method::GET,
        &format!("/api/v1/reports/{rid}/verify"),
        &admin,
        None,
    )
    .await;
    assert_eq!(verify["all_valid"], true, "{verify}");
    for shot in [
        "i1-ct",
        "i2-wl",
        "i3-length",
        "i4-cine",
        "i5-priors",
        "i6-returned",
        "i7-addendum",
    ] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "{shot}.png"
        );
    }
}

/// A TOTP-enrolled reader of the ECG pool with signing authority and a signing key;
/// (token, TOTP secret).
async fn signing_ecg_reader(hub: &TestHub, admin: &str, login: &str) -> (String, String) {
    use reqwest::Method;
    let id = add_user(hub, COUNTY, login, "reader", PASSWORD);
    join_pool(hub, admin, "ecg", id).await;
    let token = issue_token(hub, login, "1h");
    let secret = enrol(hub, &token).await;
    ok(
        hub,
        Method::PUT,
        &format!("/api/v1/users/{id}/signing-authority"),
        admin,
        Some(json!({ "granted": true })),
    )
    .await;
    ok(
        hub,
        Method::POST,
        "/api/v1/me/signing-key",
        &token,
        Some(json!({ "password": PASSWORD, "totp": totp_at(&secret, unix_now()) })),
    )
    .await;
    (token, secret)
}

/// The reader (signing authority and a key, TOTP `secret`) takes the next ECG of the
/// worklist, confirms every machine value, submits and self-signs; the report id.
async fn sign_next_ecg(hub: &TestHub, reader: &str, secret: &str) -> i64 {
    use reqwest::Method;
    let code = || totp_at(secret, unix_now());
    // (an ECG is routed right after its 201; poll briefly until `next` finds it)
    let mut item = Value::Null;
    for _ in 0..50 {
        let (s, v) = call(hub, Method::POST, "/api/v1/worklist/next", reader, None).await;
        if s == 200 {
            item = v;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(item.is_object(), "nothing to claim");
    let item_id = item["id"].as_i64().expect("item id");
    let pre = ok(
        hub,
        Method::GET,
        &format!("/api/v1/worklist/{item_id}/report-prefill"),
        reader,
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
        hub,
        Method::POST,
        &format!("/api/v1/worklist/{item_id}/report"),
        reader,
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
        hub,
        Method::POST,
        &format!("/api/v1/reports/{rid}/submit"),
        reader,
        Some(json!({ "version": version })),
    )
    .await;
    ok(
        hub,
        Method::POST,
        &format!("/api/v1/reports/{rid}/sign"),
        reader,
        Some(json!({ "version": version, "password": PASSWORD, "totp": code() })),
    )
    .await;
    rid
}

/// Enrol `token`'s user in TOTP through the API; the secret.
async fn enrol(hub: &TestHub, token: &str) -> String {
    use reqwest::Method;
    let enrol = ok(hub, Method::POST, "/api/v1/auth/totp/enroll", token, None).await;
    let secret = enrol["secret"].as_str().expect("secret").to_owned();
    ok(
        hub,
        Method::POST,
        "/api/v1/auth/totp/confirm",
        token,
        Some(json!({ "code": totp_at(&secret, unix_now()) })),
    )
    .await;
    secret
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_the_alliance_and_reads_the_indicators() {
    use reqwest::Method;
    let Some(b) = browser_peers() else {
        return;
    };
    let hub = TestHub::spawn(
        HubOptions::default().env("DXHUB_HTTP__VIEWER_DIR", b.dist.to_str().expect("path")),
    );
    hub.admin_ok(&[
        "institution",
        "add",
        "--alliance",
        "测试医共体",
        "--name",
        "石桥村卫生室",
        "--level",
        "village",
        "--parent",
        TOWNSHIP,
        "--population",
        "800",
    ]);
    add_user(&hub, COUNTY, "ad.admin", "group_admin", PASSWORD);
    add_user(&hub, "石桥村卫生室", "ad.doctor", "clinic_doctor", PASSWORD);
    let admin = issue_token(&hub, "ad.admin", "1h");
    let doctor = issue_token(&hub, "ad.doctor", "1h");
    let secret = enrol(&hub, &admin).await;
    let (reader, reader_secret) = signing_ecg_reader(&hub, &admin, "ad.reader").await;
    // a village ECG: a study for the dry run, the volumes and the device coverage
    let device = add_device(&hub, "石桥村卫生室", "ECG-SQ-01");
    let r = reqwest::Client::new()
        .post(hub.http_url("/api/v1/ecg"))
        .bearer_auth(&device)
        .header("content-type", "application/octet-stream")
        .body(json_ecg("110105196001010012"))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 201);
    let study = r.json::<Value>().await.expect("JSON")["study_instance_uid"]
        .as_str()
        .expect("study uid")
        .to_owned();
    // it is read and signed, flagged critical, acknowledged by the village doctor, and
    // the doctor looks the patient up for recognised results: every indicator has data
    let rid = sign_next_ecg(&hub, &reader, &reader_secret).await;
    let cats = ok(
        &hub,
        Method::GET,
        "/api/v1/critical-categories",
        &reader,
        None,
    )
    .await;
    let critical = ok(
        &hub,
        Method::POST,
        &format!("/api/v1/reports/{rid}/critical"),
        &reader,
        Some(json!({ "category": cats["categories"][0]["code"], "note": "室性心动过速" })),
    )
    .await;
    ok(
        &hub,
        Method::POST,
        &format!("/api/v1/critical-values/{}/ack", critical["id"]),
        &doctor,
        Some(json!({ "name": "李医生", "action": "已转诊" })),
    )
    .await;
    ok(
        &hub,
        Method::GET,
        "/api/v1/recognition?patient=110105196001010012",
        &doctor,
        None,
    )
    .await;
    let expected_rule = ok(
        &hub,
        Method::POST,
        "/api/v1/routing-rules/dry-run",
        &admin,
        Some(json!({ "study_instance_uid": study })),
    )
    .await["rule"]["name"]
        .as_str()
        .expect("a rule routes the ECG")
        .to_owned();

    let artifacts = repo_root().join("target/test-artifacts/viewer");
    let v = run_browser(
        &b,
        "viewer_admin_e2e.mjs",
        &artifacts,
        &[
            ("VIEWER_URL", hub.http_url("")),
            ("VIEWER_LOGIN", "ad.admin".to_string()),
            ("VIEWER_PASSWORD", PASSWORD.to_string()),
            ("VIEWER_TOTP_SECRET", secret),
            ("VIEWER_STUDY", study.clone()),
            ("VIEWER_RESET_LOGIN", "ad.reader".to_string()),
            ("VIEWER_DUTY_LOGIN", "ad.doctor".to_string()),
        ],
    );
    assert_eq!(v["ok"], true, "{v}");

    // what the forms did is what the API now holds
    let institutions = ok(&hub, Method::GET, "/api/v1/institutions", &admin, None).await;
    let inst = |name: &str| {
        institutions["institutions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no institution {name}: {institutions}"))
    };
    let village = inst("新村卫生室");
    assert_eq!(village["level"], "village", "{village}");
    assert_eq!(village["parent_name"], TOWNSHIP, "{village}");
    assert_eq!(village["population"], 1200, "{village}");
    assert_eq!(v["population_status"], 200, "{v}");
    assert_eq!(inst(TOWNSHIP)["population"], 35000);

    let users = ok(&hub, Method::GET, "/api/v1/users", &admin, None).await;
    let user = |login: &str| {
        users["users"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|u| u["login"] == login)
            .cloned()
            .unwrap_or_else(|| panic!("no user {login}: {users}"))
    };
    assert_eq!(user("web.reader")["role"], "reader");
    assert_eq!(v["before_reset"], "已绑定", "{v}");
    assert_eq!(v["after_reset"], "未绑定", "{v}");
    assert_eq!(user("ad.reader")["totp_enrolled"], false);
    assert_eq!(v["duty_status"], 200, "{v}");
    assert_eq!(
        user("ad.doctor")["duty_schedule"],
        "mon-fri 08:00-17:30; sat,sun 08:00-12:00"
    );
    assert_eq!(
        v["reader_has_duty"], false,
        "only clinic users have a duty schedule"
    );
    let (s, _) = call(&hub, Method::GET, "/api/v1/auth/me", &reader, None).await;
    assert_eq!(s, 401, "the reset revoked the reader's sessions");

    let token = v["device_token"].as_str().unwrap_or("");
    assert!(token.starts_with("dxd_"), "{v}");
    let devices = ok(&hub, Method::GET, "/api/v1/devices", &admin, None).await;
    let web = devices["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["serial"] == "ECG-WEB-01")
        .cloned()
        .unwrap_or_else(|| panic!("no device ECG-WEB-01: {devices}"));
    assert_eq!(web["institution_name"], "新村卫生室", "{web}");
    assert!(web["revoked_at"].is_i64(), "revoked: {web}");
    let (s, _) = call(&hub, Method::POST, "/api/v1/ecg", token, Some(json!({}))).await;
    assert_eq!(s, 401, "a revoked device token is refused");

    assert!(
        v["ae_row"].as_str().unwrap_or("").contains("新村卫生室"),
        "{v}"
    );
    let aes = ok(&hub, Method::GET, "/api/v1/ae-titles", &admin, None).await;
    assert!(
        !aes.to_string().contains("XINCUN_DR"),
        "the AE title was removed: {aes}"
    );

    let pools = ok(&hub, Method::GET, "/api/v1/pools", &admin, None).await;
    let ecg_pool = pools["pools"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "ecg")
        .and_then(|p| p["id"].as_i64())
        .expect("ecg pool");
    let members = ok(
        &hub,
        Method::GET,
        &format!("/api/v1/pools/{ecg_pool}/members"),
        &admin,
        None,
    )
    .await;
    let m = members["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["login"] == "web.reader")
        .cloned()
        .unwrap_or_else(|| panic!("web.reader not in the ECG pool: {members}"));
    assert_eq!(m["max_open_claims"], 3, "{m}");

    let rules = ok(&hub, Method::GET, "/api/v1/routing-rules", &admin, None).await;
    let rule = rules["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "村卫生室DR加急")
        .cloned()
        .unwrap_or_else(|| panic!("no new rule: {rules}"));
    assert_eq!(rule["sla_minutes"], 45, "{rule}");
    assert_eq!(rule["priority"], "urgent", "{rule}");
    assert_eq!(rule["position"], 5, "{rule}");
    assert_eq!(
        rule["conditions"]["modalities"],
        json!(["DX", "CR"]),
        "{rule}"
    );
    assert!(
        v["dry_run"].as_str().unwrap_or("").contains(&expected_rule),
        "dry run shows {expected_rule:?}: {v}"
    );

    let templates = ok(&hub, Method::GET, "/api/v1/report-templates", &admin, None).await;
    let code = v["template_code"].as_str().expect("template code");
    let tpl = templates["templates"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["code"] == code)
        .cloned()
        .expect("the edited template");
    assert_eq!(tpl["name"], v["template_name"], "{tpl}");
    assert!(v["exam_rows"].as_u64().unwrap_or(0) >= 4, "{v}");

    // the dashboard shows the API's figures
    let volumes = ok(&hub, Method::GET, "/api/v1/stats/volumes", &admin, None).await;
    assert_eq!(volumes["totals"]["studies"], 1, "{volumes}");
    assert_eq!(v["kpis"]["studies"], "1", "{v}");
    let coverage = ok(
        &hub,
        Method::GET,
        "/api/v1/stats/ecg-coverage",
        &admin,
        None,
    )
    .await;
    let c = coverage["alliances"][0]["coverage"]
        .as_f64()
        .expect("coverage");
    assert_eq!(
        v["kpis"]["coverage"],
        format!("{:.1}%", c * 100.0),
        "{v} {coverage}"
    );
    for k in ["studies", "grassroots", "criticals", "lookups"] {
        assert_eq!(v["kpis"][k], "1", "KPI {k}: {v}");
    }
    let remote = ok(
        &hub,
        Method::GET,
        "/api/v1/stats/remote-reads",
        &admin,
        None,
    )
    .await;
    let per_10k = remote["alliance"]["per_10k"].as_f64().expect("per 10k");
    assert_eq!(
        v["kpis"]["per_10k"],
        format!("{per_10k:.2}"),
        "{v} {remote}"
    );
    // every chart drew, and drew data (its series hold non-zero values)
    let charts = v["charts"].as_array().expect("charts");
    assert_eq!(charts.len(), 7, "{v}");
    for c in charts {
        assert!(c[1].as_u64().unwrap_or(0) > 100, "chart {c} drew nothing");
        assert!(c[2].as_u64().unwrap_or(0) > 0, "chart {c} has no data");
    }
    assert_eq!(v["csv_status"], 200, "{v}");
    assert!(
        v["csv_type"].as_str().unwrap_or("").starts_with("text/csv"),
        "{v}"
    );
    assert!(v["csv_head"].as_str().unwrap_or("").contains("day"), "{v}");
    assert_eq!(
        v["english_title"], "Volumes (by day, institution, modality)",
        "{v}"
    );
    for shot in [
        "a1-institutions",
        "a2-users",
        "a3-devices",
        "a4-pools",
        "a5-rules",
        "a6-dashboard",
    ] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "{shot}.png"
        );
    }
}
