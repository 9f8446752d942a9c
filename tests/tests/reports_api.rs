//! Reports end to end against a real `dxhub serve` (issue #7): a village ECG is claimed,
//! prefilled with the machine measurements, drafted (every version kept), refused when
//! incomplete, submitted, returned with a reason, resubmitted, then verified and signed by
//! a senior re-authenticated with password + TOTP (SM2). Then: online verification and the
//! offline `dxhub verify` agree, and each of a changed report text, a changed instance
//! hash and a changed public key makes both fail; the PDF carries the Chinese text, the
//! fingerprint and a QR code of the verify URL (pdftotext, pdftoppm + zbarimg); the FHIR
//! `DiagnosticReport` validates against the R4 schema; a critical value reaches the clinic
//! and is acknowledged, another escalates; an addendum and a corrected version are signed;
//! the recognition lookup finds the HR result from another institution; push-back sends
//! the PDF and SR to a DCMTK `storescp`; and the audit log holds every step.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use dxhub_e2e::api::{
    Api, add_device, add_user, collect_sse, issue_token, raw_sql, totp_at, unix_now,
};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_e2e::peers;
use dxhub_ecg::synth::SynthSpec;
use serde_json::{Value, json};

const PASSWORD: &str = "Reports-pass-2026";
const VILLAGE: &str = "东风村卫生室";
const TOWN: &str = "城关镇卫生院";
const OTHER_TOWN: &str = "河西镇卫生院";
const COUNTY: &str = "县人民医院";
const RESIDENT_ID: &str = "11010519491231002X";

struct F {
    hub: TestHub,
    api: Api,
    tokens: std::collections::HashMap<&'static str, String>,
    ids: std::collections::HashMap<&'static str, i64>,
    totp: std::collections::HashMap<&'static str, String>,
}

impl F {
    fn t(&self, who: &str) -> &str {
        &self.tokens[who]
    }

    async fn send(&self, method: &str, path: &str, who: &str, body: Option<Value>) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .api
            .http
            .request(m, self.api.url(path))
            .bearer_auth(self.t(who));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn ok(&self, method: &str, path: &str, who: &str, body: Option<Value>) -> Value {
        let (s, v) = self.send(method, path, who, body).await;
        assert!((200..300).contains(&s), "{method} {path} as {who}: {s} {v}");
        v
    }

    /// `POST /api/v1/worklist/next`: the claimed item, or `None` while nothing is queued
    /// for `who` yet (404 `nothing-queued`: routing runs on the worklist tick).
    async fn next_item(&self, who: &str) -> Option<Value> {
        let (s, v) = self
            .send("POST", "/api/v1/worklist/next", who, Some(json!({})))
            .await;
        if s == 404 && v["error"]["code"] == "nothing-queued" {
            return None;
        }
        assert_eq!(s, 200, "POST /api/v1/worklist/next as {who}: {v}");
        Some(v)
    }

    async fn bytes(&self, path: &str, who: &str) -> (u16, Vec<u8>) {
        let r = self
            .api
            .http
            .get(self.api.url(path))
            .bearer_auth(self.t(who))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.bytes().await.unwrap().to_vec())
    }

    /// Enrol and confirm TOTP for `who`; the secret.
    async fn enrol_totp(&mut self, who: &'static str) {
        let v = self
            .ok("POST", "/api/v1/auth/totp/enroll", who, Some(json!({})))
            .await;
        let secret = v["secret"].as_str().unwrap().to_owned();
        self.ok(
            "POST",
            "/api/v1/auth/totp/confirm",
            who,
            Some(json!({ "code": totp_at(&secret, unix_now()) })),
        )
        .await;
        self.totp.insert(who, secret);
    }

    fn code(&self, who: &str) -> String {
        totp_at(&self.totp[who], unix_now())
    }

    fn reauth(&self, who: &str) -> Value {
        json!({ "password": PASSWORD, "totp": self.code(who) })
    }
}

/// Export the signed report as it stands and verify it offline with `keys`.
async fn export_and_verify(f: &F, rid: i64, keys: &Path) -> (i32, String) {
    let (s, exported) = f
        .bytes(&format!("/api/v1/reports/{rid}/signed"), "clinic")
        .await;
    assert_eq!(s, 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    std::fs::write(&file, &exported).unwrap();
    offline_verify(&f.hub, &file, keys)
}

async fn online(f: &F, rid: i64) -> Value {
    f.ok(
        "GET",
        &format!("/api/v1/reports/{rid}/verify"),
        "clinic",
        None,
    )
    .await
}

fn json_ecg(spec: &SynthSpec, patient_id: &str) -> Vec<u8> {
    let (mut ecg, _) = dxhub_ecg::synth::generate(spec);
    ecg.patient.id = Some(patient_id.into());
    ecg.patient.name = Some("王^五".into());
    ecg.acquired_at = Some("20261122081500".into());
    serde_json::to_vec(&dxhub_ecg::json::to_json_form(&ecg, 1.0)).unwrap()
}

/// The `workflow` of `study` in `who`'s study list (newest first), if listed.
async fn study_workflow(f: &F, who: &str, study: &str) -> Option<Value> {
    let v = f
        .ok("GET", "/api/v1/studies?order=desc&limit=50", who, None)
        .await;
    v["studies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["study_instance_uid"] == study)
        .map(|s| s["workflow"].clone())
}

async fn upload_ecg(f: &F, device: &str, body: Vec<u8>) -> Value {
    let r = f
        .api
        .http
        .post(f.api.url("/api/v1/ecg"))
        .bearer_auth(device)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn eventually<T, Fut: std::future::Future<Output = Option<T>>>(
    timeout: Duration,
    mut f: impl FnMut() -> Fut,
) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn open_stream(f: &F, who: &str) -> std::sync::Arc<std::sync::Mutex<String>> {
    let r = f
        .api
        .http
        .get(f.api.url("/api/v1/reports/events"))
        .bearer_auth(f.t(who))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    collect_sse(r)
}

/// A free TCP port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// `dxhub verify FILE --keys KEYS`: (exit code, stdout+stderr).
fn offline_verify(hub: &TestHub, report: &Path, keys: &Path) -> (i32, String) {
    let out = hub.cli(&[
        "verify",
        report.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
    ]);
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn fhir_validator() -> Option<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut pythons: Vec<PathBuf> = ["DXHUB_FHIR_PYTHON", "DXHUB_TEST_PYTHON"]
        .iter()
        .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
        .collect();
    pythons.push(root.join(".venv/bin/python"));
    pythons.push(PathBuf::from("python3"));
    let py = pythons.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import jsonschema"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let schema = root.join("target/fhir-schema/fhir.schema.json");
    if !schema.is_file() {
        let _ = Command::new("bash")
            .arg(root.join("tests/fhir/fetch_schema.sh"))
            .arg(&schema)
            .output();
    }
    let ok = peers::require("Python with jsonschema (FHIR validation)", py.is_some())
        & peers::require(
            "the FHIR R4 schema (tests/fhir/fetch_schema.sh)",
            schema.is_file(),
        );
    ok.then(|| (py.unwrap(), schema))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reports_end_to_end() {
    let have_pdf_tools = ["pdftotext", "pdftoppm", "pdfimages", "zbarimg"]
        .iter()
        .all(|t| peers::require(t, peers::tool(t).is_some()));
    let storescp = peers::dcmtk("storescp");
    let have_storescp = peers::require("DCMTK storescp", storescp.is_some());
    let hub = TestHub::spawn(
        HubOptions::default()
            .env("DXHUB_WORKLIST__TICK_MS", "200")
            .env("DXHUB_REPORTS__CRITICAL_ACK_LIMIT_SECS", "3")
            .env("DXHUB_REPORTS__PUSH_TIMEOUT_SECS", "10")
            .env("DXHUB_REPORTS__PUSH_RETRY_SECS", "1")
            .env("DXHUB_REPORTS__CENTRE_NAME", "县人民医院 心电诊断中心")
            .local_webhooks(),
    );
    hub.admin_ok(&[
        "institution",
        "add",
        "--alliance",
        "测试医共体",
        "--name",
        VILLAGE,
        "--level",
        "village",
        "--parent",
        TOWN,
    ]);
    hub.admin_ok(&[
        "institution",
        "add",
        "--alliance",
        "测试医共体",
        "--name",
        OTHER_TOWN,
        "--level",
        "township",
        "--parent",
        COUNTY,
    ]);
    let device = add_device(&hub, VILLAGE, "ECG-RPT-01");
    let mut ids = std::collections::HashMap::new();
    let mut tokens = std::collections::HashMap::new();
    for (login, role, inst) in [
        ("r1", "reader", COUNTY),
        ("senior", "senior_reader", COUNTY),
        ("senior2", "senior_reader", COUNTY),
        ("gadmin", "group_admin", COUNTY),
        ("clinic", "clinic_doctor", TOWN),
        ("head", "clinic_doctor", TOWN),
        ("other", "clinic_doctor", OTHER_TOWN),
        ("othertech", "clinic_tech", OTHER_TOWN),
        ("auditor", "auditor", COUNTY),
        // readers of the county outside the ECG pool
        ("xray", "reader", COUNTY),
        ("xsenior", "senior_reader", COUNTY),
    ] {
        ids.insert(login, add_user(&hub, inst, login, role, PASSWORD));
        tokens.insert(login, issue_token(&hub, login, "1h"));
    }
    let api = Api::new(&hub);
    let mut f = F {
        hub,
        api,
        tokens,
        ids,
        totp: Default::default(),
    };
    for who in ["r1", "senior", "senior2", "xray", "xsenior"] {
        f.enrol_totp(who).await;
    }

    // defaults: templates, exam catalogue, categories in Chinese
    let t = f.ok("GET", "/api/v1/report-templates", "r1", None).await;
    let names: Vec<&str> = t["templates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for want in ["胸部正位片", "头颅CT平扫", "腹部超声", "常规十二导联心电图"]
    {
        assert!(
            names.iter().any(|n| n.contains(want)),
            "{want} in {names:?}"
        );
    }
    let cats = f.ok("GET", "/api/v1/critical-categories", "r1", None).await;
    let cat_labels = cats.to_string();
    for want in ["张力性气胸", "主动脉夹层", "ecg_acute_mi"] {
        assert!(cat_labels.contains(want), "{want}");
    }
    // only group admins edit the catalogue
    let (s, _) = f
        .send(
            "PUT",
            "/api/v1/critical-categories",
            "r1",
            Some(json!({"categories": []})),
        )
        .await;
    assert_eq!(s, 403);

    // the town's head (escalation) and its PACS (push-back to a real storescp)
    let town_id = f.ok("GET", "/api/v1/institutions", "gadmin", None).await["institutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == TOWN)
        .and_then(|i| i["id"].as_i64())
        .unwrap();
    // (the PACS is down when the first report is signed: it starts after the first
    // push-back failed, and the retry delivers)
    let pacs_dir = tempfile::tempdir().unwrap();
    let pacs_port = free_port();
    let mut pacs = None;
    let mut settings = json!({ "head_user_id": f.ids["head"] });
    if have_storescp {
        settings["pacs"] = json!({"ae_title": "TOWNPACS", "host": "127.0.0.1", "port": pacs_port});
    }
    f.ok(
        "PATCH",
        &format!("/api/v1/institutions/{town_id}/report-settings"),
        "gadmin",
        Some(settings),
    )
    .await;

    // the ECG pool: r1, senior, senior2
    let pools = f.ok("GET", "/api/v1/pools", "gadmin", None).await;
    let ecg_pool = pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ecg")
        .and_then(|p| p["id"].as_i64())
        .unwrap();
    for who in ["r1", "senior", "senior2"] {
        f.ok(
            "PUT",
            &format!("/api/v1/pools/{ecg_pool}/members/{}", f.ids[who]),
            "gadmin",
            Some(json!({})),
        )
        .await;
    }

    // the alliance's webhook (an SMS gateway, say) for signed reports and critical values
    let (hook_url, hook_got) = dxhub_e2e::api::hook_receiver(Vec::new()).await;
    f.ok(
        "POST",
        "/api/v1/webhooks",
        "gadmin",
        Some(json!({
            "url": hook_url,
            "secret": "whsec-reports-0123456789",
            "events": ["report_signed", "critical_raised"],
        })),
    )
    .await;

    // the clinic (and another township) follow the report stream
    let clinic_stream = open_stream(&f, "clinic").await;
    let other_stream = open_stream(&f, "other").await;

    // a village ECG (resident ID: recognised across the alliance)
    let up = upload_ecg(&f, &device, json_ecg(&SynthSpec::sinus(72.0), RESIDENT_ID)).await;
    let study = up["study_instance_uid"].as_str().unwrap().to_owned();
    let item = eventually(Duration::from_secs(15), || f.next_item("r1"))
        .await
        .expect("r1 gets the ECG");
    let item_id = item["id"].as_i64().unwrap();
    assert_eq!(item["study_instance_uid"], study.as_str(), "{item}");
    // the sending clinic's study list shows where it is
    let flow = study_workflow(&f, "clinic", &study)
        .await
        .expect("the clinic lists its village's ECG");
    assert_eq!(flow["status"], "reading", "{flow}");
    assert_eq!(flow["work_item_id"], item_id, "{flow}");
    assert_eq!(flow["work_item_state"], "claimed", "{flow}");
    assert!(
        flow["due_at_local"].as_str().unwrap().ends_with("+08:00"),
        "{flow}"
    );
    assert!(flow["report_id"].is_null(), "{flow}");
    assert_eq!(study_workflow(&f, "other", &study).await, None);

    // prefill: ECG template, machine values to confirm
    let pre = f
        .ok(
            "GET",
            &format!("/api/v1/worklist/{item_id}/report-prefill"),
            "r1",
            None,
        )
        .await;
    assert_eq!(pre["template"]["code"], "ecg_12_lead", "{pre}");
    let machine = pre["machine"].as_array().expect("machine values").clone();
    assert!(
        machine
            .iter()
            .any(|m| m["key"] == "heart_rate" && m["value"].is_string()),
        "{pre}"
    );
    let mut fields = serde_json::Map::new();
    let mut confirmed = Vec::new();
    for m in &machine {
        if let Some(v) = m["value"].as_str() {
            fields.insert(m["key"].as_str().unwrap().into(), json!(v));
            confirmed.push(m["key"].clone());
        }
    }
    let normal = &pre["normal"]["sections"];
    let body = |version: Option<i64>, impression: &str, qc: Option<&str>, confirmed: &[Value]| {
        let mut b = json!({
            "template_code": "ecg_12_lead",
            "sections": {"findings": normal["findings"], "impression": impression},
            "fields": fields,
            "confirmed": confirmed,
        });
        if let Some(v) = version {
            b["base_version"] = json!(v);
        }
        if let Some(q) = qc {
            b["qc_grade"] = json!(q);
        }
        b
    };
    // a reader who does not hold the item cannot write its report
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/worklist/{item_id}/report"),
            "senior",
            Some(body(None, "x", None, &[])),
        )
        .await;
    assert!(s == 409 || s == 403, "{s} {v}");
    let d1 = f
        .ok(
            "POST",
            &format!("/api/v1/worklist/{item_id}/report"),
            "r1",
            Some(body(None, "窦性心律。", None, &[])),
        )
        .await;
    let rid = d1["report"]["id"].as_i64().unwrap();
    assert_eq!(d1["version"]["version"], 1);
    // a stale autosave is refused
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/worklist/{item_id}/report"),
            "r1",
            Some(body(None, "x", None, &[])),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("stale-version")),
        "{v}"
    );
    // v2: no QC grade, measurements unconfirmed → submit refused
    f.ok(
        "POST",
        &format!("/api/v1/worklist/{item_id}/report"),
        "r1",
        Some(body(Some(1), "窦性心律，正常心电图。", None, &[])),
    )
    .await;
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/submit"),
            "r1",
            Some(json!({"version": 2})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    // v3: QC but unconfirmed measurements → refused naming them
    f.ok(
        "POST",
        &format!("/api/v1/worklist/{item_id}/report"),
        "r1",
        Some(body(
            Some(2),
            "窦性心律，正常心电图。",
            Some("acceptable"),
            &[],
        )),
    )
    .await;
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/submit"),
            "r1",
            Some(json!({"version": 3})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("unconfirmed-measurements")),
        "{v}"
    );
    // an image grade is not an ECG grade
    let (s, _) = f
        .send(
            "POST",
            &format!("/api/v1/worklist/{item_id}/report"),
            "r1",
            Some(body(Some(3), "x", Some("jia"), &confirmed)),
        )
        .await;
    assert_eq!(s, 422);
    // v4: complete → submitted
    f.ok(
        "POST",
        &format!("/api/v1/worklist/{item_id}/report"),
        "r1",
        Some(body(
            Some(3),
            "窦性心律，正常心电图。",
            Some("acceptable"),
            &confirmed,
        )),
    )
    .await;
    f.ok(
        "POST",
        &format!("/api/v1/reports/{rid}/submit"),
        "r1",
        Some(json!({"version": 4})),
    )
    .await;
    let wi = f
        .ok("GET", &format!("/api/v1/worklist/{item_id}"), "r1", None)
        .await;
    assert_eq!(wi["state"], "submitted");
    // the author (no signing authority) may not sign; a senior returns it with a reason
    let mut sign_r1 = f.reauth("r1");
    sign_r1["version"] = json!(4);
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/sign"),
            "r1",
            Some(sign_r1),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("own-report")),
        "{v}"
    );
    // readers outside the ECG pool may neither read nor act on it: the same 404 as an
    // unknown report, before any state or version is judged (no 409 stale-version)
    let mut sign_x = f.reauth("xsenior");
    sign_x["version"] = json!(4);
    let mut addendum_x = sign_x.clone();
    addendum_x["text"] = json!("x");
    for (who, what, body) in [
        ("xsenior", "return", json!({"version": 0, "reason": "x"})),
        ("xsenior", "sign", sign_x),
        ("xsenior", "addenda", addendum_x),
        ("xray", "critical", json!({"category": "ecg_acute_mi"})),
        ("xray", "submit", json!({"version": 4})),
    ] {
        let (s, v) = f
            .send(
                "POST",
                &format!("/api/v1/reports/{rid}/{what}"),
                who,
                Some(body),
            )
            .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (404, Some("not-found")),
            "{who} {what}: {v}"
        );
    }
    let (s, _) = f
        .send("GET", &format!("/api/v1/reports/{rid}"), "xsenior", None)
        .await;
    assert_eq!(s, 404);
    f.ok(
        "POST",
        &format!("/api/v1/reports/{rid}/return"),
        "senior",
        Some(json!({"version": 4, "reason": "请补充ST段描述"})),
    )
    .await;
    let wi = f
        .ok("GET", &format!("/api/v1/worklist/{item_id}"), "r1", None)
        .await;
    assert_eq!(wi["state"], "returned");
    f.ok(
        "POST",
        &format!("/api/v1/worklist/{item_id}/report"),
        "r1",
        Some(body(
            Some(4),
            "窦性心律，正常心电图，ST段未见偏移。",
            Some("acceptable"),
            &confirmed,
        )),
    )
    .await;
    f.ok(
        "POST",
        &format!("/api/v1/reports/{rid}/submit"),
        "r1",
        Some(json!({"version": 5})),
    )
    .await;

    // before it is signed, the result is not recognised: another township's doctor
    // cannot open the report or the ECG study
    for path in [
        format!("/api/v1/reports/{rid}"),
        format!("/dicomweb/studies/{study}/metadata"),
    ] {
        let (s, _) = f.send("GET", &path, "other", None).await;
        assert_eq!(s, 404, "{path} before signing: as if there were none");
    }

    // signing needs a key, and re-authentication
    let mut sign = f.reauth("senior");
    sign["version"] = json!(5);
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/sign"),
            "senior",
            Some(sign.clone()),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("no-signing-key")),
        "{v}"
    );
    let key = f
        .ok(
            "POST",
            "/api/v1/me/signing-key",
            "senior",
            Some(f.reauth("senior")),
        )
        .await;
    assert_eq!(key["fingerprint"].as_str().unwrap().len(), 64, "{key}");
    let mut wrong = sign.clone();
    wrong["totp"] = json!("000000");
    let (s, _) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/sign"),
            "senior",
            Some(wrong),
        )
        .await;
    assert_eq!(s, 401);
    let mut wrong = sign.clone();
    wrong["password"] = json!("not-the-password");
    let (s, _) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/sign"),
            "senior",
            Some(wrong),
        )
        .await;
    assert_eq!(s, 401);
    sign["totp"] = json!(f.code("senior"));
    let signed = f
        .ok(
            "POST",
            &format!("/api/v1/reports/{rid}/sign"),
            "senior",
            Some(sign),
        )
        .await;
    let fingerprint = signed["fingerprint"].as_str().unwrap().to_owned();
    // the town's PACS is down: the push-back fails visibly and waits for its retry
    if let Some(bin) = &storescp {
        let failed = eventually(Duration::from_secs(20), || async {
            let v = f
                .ok(
                    "GET",
                    &format!("/api/v1/reports/{rid}/pushes"),
                    "gadmin",
                    None,
                )
                .await;
            v["pushes"]
                .as_array()
                .unwrap()
                .first()
                .cloned()
                .filter(|p| p["attempts"].as_i64() >= Some(1) && p["last_error"].is_string())
        })
        .await
        .expect("a failed push-back attempt");
        assert_eq!(failed["state"], "pending", "{failed}");
        assert!(failed["delivered_at"].is_null(), "{failed}");
        pacs = Some(peers::KillOnDrop(
            Command::new(bin)
                .args(["--aetitle", "TOWNPACS", "+xa", "-od"])
                .arg(pacs_dir.path())
                .arg(pacs_port.to_string())
                .spawn()
                .unwrap(),
        ));
    }
    assert_eq!(fingerprint, key["fingerprint"].as_str().unwrap());
    assert_eq!(signed["report"]["state"], "signed");
    let wi = f
        .ok("GET", &format!("/api/v1/worklist/{item_id}"), "r1", None)
        .await;
    assert_eq!(wi["state"], "signed");
    let flow = study_workflow(&f, "clinic", &study).await.expect("listed");
    assert_eq!(flow["status"], "reported", "{flow}");
    assert_eq!(flow["report_id"], rid, "{flow}");
    assert_eq!(flow["report_state"], "signed", "{flow}");
    assert!(flow["signed_at"].as_i64().is_some(), "{flow}");
    assert_eq!(flow["overdue"], false, "{flow}");

    // every version with who/when/why
    let full = f
        .ok("GET", &format!("/api/v1/reports/{rid}"), "senior", None)
        .await;
    let versions = full["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 5, "{full}");
    assert_eq!(versions[3]["state"], "returned");
    assert_eq!(versions[3]["returned_by_login"], "senior", "{full}");
    assert!(
        versions[3]["returned_at_local"]
            .as_str()
            .is_some_and(|t| t.ends_with("+08:00")),
        "{full}"
    );
    assert_eq!(versions[3]["reason"], "请补充ST段描述");
    assert_eq!(versions[4]["state"], "signed");
    assert_eq!(versions[4]["verifier_login"], "senior");
    // the ECG's machine values, each confirmed as is by the reader
    let m = versions[4]["measurements"]
        .as_array()
        .expect("measurements");
    assert!(
        !m.is_empty() && m.iter().all(|x| x["status"] == "confirmed"),
        "{m:?}"
    );
    assert!(
        versions[0]["measurements_pending"].is_string(),
        "{}",
        versions[0]
    );
    // the clinic sees the signed version only
    let cl = f
        .ok("GET", &format!("/api/v1/reports/{rid}"), "clinic", None)
        .await;
    assert_eq!(cl["versions"].as_array().unwrap().len(), 1, "{cl}");
    let list = f
        .ok("GET", "/api/v1/reports?state=signed", "clinic", None)
        .await;
    assert!(
        list["reports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == rid)
    );
    // signed with passing QC, the result carries the HR mark: a doctor of another member
    // institution opens it (the report as the clinic sees it, the PDF, the ECG study, as
    // the recognition lookup links them); a technician there does not; lists stay the
    // own institution's
    let ot = f
        .ok("GET", &format!("/api/v1/reports/{rid}"), "other", None)
        .await;
    assert_eq!(ot["versions"].as_array().unwrap().len(), 1, "{ot}");
    for path in [
        format!("/api/v1/reports/{rid}/pdf"),
        format!("/dicomweb/studies/{study}/metadata"),
    ] {
        let (s, _) = f.bytes(&path, "other").await;
        assert_eq!(s, 200, "{path} for a doctor of another township");
        let (s, _) = f.bytes(&path, "othertech").await;
        assert_eq!(s, 404, "{path} for a technician of another township");
    }
    let (s, hidden) = f
        .send("GET", &format!("/api/v1/reports/{rid}"), "othertech", None)
        .await;
    assert_eq!(s, 404);
    // a report id that does not exist: the same answer, and audited as the refusal is
    // (the same work, so the time does not tell the two apart either)
    let unknown = rid + 100_000;
    let (s, none) = f
        .send(
            "GET",
            &format!("/api/v1/reports/{unknown}"),
            "othertech",
            None,
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        none["error"]["code"], hidden["error"]["code"],
        "{none} {hidden}"
    );
    let not_found = dxhub_e2e::api::sql_rows(
        &f.hub,
        "SELECT action, object_kind, object_id FROM audit_log \
         WHERE actor = 'othertech' AND outcome = 'not-found' ORDER BY id",
    )
    .await;
    assert_eq!(
        not_found,
        vec![vec![
            "report-read".to_owned(),
            "report".to_owned(),
            unknown.to_string()
        ]]
    );
    // the refusals are audited with the report (and the study) they asked for
    let denied = dxhub_e2e::api::sql_rows(
        &f.hub,
        "SELECT action, object_kind, object_id FROM audit_log \
         WHERE actor = 'othertech' AND outcome = 'denied' ORDER BY id",
    )
    .await;
    for (action, kind, object) in [
        ("report-pdf", "report", rid.to_string()),
        ("study-read", "study", study.clone()),
        ("report-read", "report", rid.to_string()),
    ] {
        assert!(
            denied.contains(&vec![action.to_owned(), kind.to_owned(), object.clone()]),
            "{action} {kind} {object} denied in {denied:?}"
        );
    }
    // (the push-backs to the source clinic's PACS stay the source's)
    let (s, _) = f
        .send(
            "GET",
            &format!("/api/v1/reports/{rid}/pushes"),
            "other",
            None,
        )
        .await;
    assert_eq!(
        s, 403,
        "push-backs of a recognised result (the doctor knows the report: 403)"
    );
    // nor does the report itself carry them to that doctor; the source clinic sees them
    let seen = f
        .ok("GET", &format!("/api/v1/reports/{rid}"), "other", None)
        .await;
    assert_eq!(seen["pushes"], json!([]), "{seen}");
    if have_storescp {
        let own = f
            .ok("GET", &format!("/api/v1/reports/{rid}"), "clinic", None)
            .await;
        assert!(!own["pushes"].as_array().unwrap().is_empty(), "{own}");
    }
    let list = f.ok("GET", "/api/v1/reports", "other", None).await;
    assert!(list["reports"].as_array().unwrap().is_empty(), "{list}");
    // the clinic's list filters by patient, study date and state
    for (query, listed) in [
        (format!("patient={RESIDENT_ID}"), true),
        ("patient=P-NOBODY".to_owned(), false),
        ("from=2026-11-22&to=20261122".to_owned(), true),
        ("from=20261123".to_owned(), false),
        ("to=20261121".to_owned(), false),
        ("state=signed&from=20261101&to=20261130".to_owned(), true),
        ("state=draft".to_owned(), false),
    ] {
        let list = f
            .ok("GET", &format!("/api/v1/reports?{query}"), "clinic", None)
            .await;
        let ids: Vec<i64> = list["reports"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["id"].as_i64())
            .collect();
        assert_eq!(ids.contains(&rid), listed, "?{query}: {list}");
    }
    let (s, v) = f
        .send("GET", "/api/v1/reports?from=last-week", "clinic", None)
        .await;
    assert_eq!(s, 400, "{v}");
    // the clinic was notified that the report is signed
    let n = f.ok("GET", "/api/v1/notifications", "clinic", None).await;
    assert!(n.to_string().contains("report_signed"), "{n}");

    // verification: online and offline agree
    let ver = f
        .ok(
            "GET",
            &format!("/api/v1/reports/{rid}/verify"),
            "clinic",
            None,
        )
        .await;
    assert_eq!(ver["valid"], true, "{ver}");
    let dir = tempfile::tempdir().unwrap();
    let report_file = dir.path().join("report.json");
    let keys_file = dir.path().join("keys.json");
    let (s, exported) = f
        .bytes(&format!("/api/v1/reports/{rid}/signed"), "clinic")
        .await;
    assert_eq!(s, 200);
    std::fs::write(&report_file, &exported).unwrap();
    let (s, keys) = f.bytes("/api/v1/signing-keys", "clinic").await;
    assert_eq!(s, 200);
    std::fs::write(&keys_file, &keys).unwrap();
    let (code, out) = offline_verify(&f.hub, &report_file, &keys_file);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("VALID"), "{out}");
    // offline: one byte of the report, an instance hash, the public key
    let text = String::from_utf8(exported.clone()).unwrap();
    for (what, tampered_report, tampered_keys) in [
        (
            "report text",
            text.replacen("ST段未见偏移", "ST段抬高", 1),
            String::from_utf8(keys.clone()).unwrap(),
        ),
        (
            "instance hash",
            {
                let v: Value = serde_json::from_str(&text).unwrap();
                let sha = v["content"]["instances"][0][1].as_str().unwrap().to_owned();
                let flipped = format!(
                    "{}{}",
                    if sha.starts_with('0') { "1" } else { "0" },
                    &sha[1..]
                );
                text.replacen(&sha, &flipped, 1)
            },
            String::from_utf8(keys.clone()).unwrap(),
        ),
        ("public key", text.clone(), {
            let k: Value = serde_json::from_slice(&keys).unwrap();
            let pk = k["keys"][0]["public_key"].as_str().unwrap().to_owned();
            let flipped = format!(
                "{}{}",
                &pk[..10],
                if &pk[10..11] == "a" { "b" } else { "a" }
            );
            String::from_utf8(keys.clone()).unwrap().replacen(
                &pk,
                &format!("{flipped}{}", &pk[11..]),
                1,
            )
        }),
    ] {
        assert_ne!(
            tampered_report.clone() + &tampered_keys,
            text.clone() + &String::from_utf8(keys.clone()).unwrap(),
            "{what}: nothing changed"
        );
        let rf = dir.path().join("t-report.json");
        let kf = dir.path().join("t-keys.json");
        std::fs::write(&rf, &tampered_report).unwrap();
        std::fs::write(&kf, &tampered_keys).unwrap();
        let (code, out) = offline_verify(&f.hub, &rf, &kf);
        assert_eq!(code, 1, "offline, tampered {what}: {out}");
        assert!(out.contains("INVALID"), "{out}");
    }
    // online: the same three changes made in the database
    let sha: String = {
        let v: Value = serde_json::from_str(&text).unwrap();
        v["content"]["instances"][0][1].as_str().unwrap().to_owned()
    };
    raw_sql(&f.hub, &[&format!(
        "UPDATE report_versions SET body = replace(body, 'ST段未见偏移', 'ST段抬高') WHERE report_id = {rid} AND version = 5"
    )]).await;
    let v = online(&f, rid).await;
    assert_eq!(
        (v["valid"].as_bool(), v["checks"]["content"].as_bool()),
        (Some(false), Some(false)),
        "{v}"
    );
    // … and offline agrees: the export carries what the record holds now
    let (code, out) = export_and_verify(&f, rid, &keys_file).await;
    assert_eq!(
        code, 1,
        "offline, report text changed in the database: {out}"
    );
    raw_sql(&f.hub, &[&format!(
        "UPDATE report_versions SET body = replace(body, 'ST段抬高', 'ST段未见偏移') WHERE report_id = {rid} AND version = 5"
    )]).await;
    assert_eq!(online(&f, rid).await["valid"], true);
    raw_sql(
        &f.hub,
        &[&format!(
            "UPDATE instances SET sha256 = '{}' WHERE sha256 = '{sha}'",
            "0".repeat(64)
        )],
    )
    .await;
    let v = online(&f, rid).await;
    assert_eq!(
        (v["valid"].as_bool(), v["checks"]["instances"].as_bool()),
        (Some(false), Some(false)),
        "{v}"
    );
    let (code, out) = export_and_verify(&f, rid, &keys_file).await;
    assert_eq!(
        code, 1,
        "offline, instance hash changed in the database: {out}"
    );
    raw_sql(
        &f.hub,
        &[&format!(
            "UPDATE instances SET sha256 = '{sha}' WHERE sha256 = '{}'",
            "0".repeat(64)
        )],
    )
    .await;
    assert_eq!(online(&f, rid).await["valid"], true);
    // a key pair of senior2 put in place of senior's public key
    f.ok(
        "POST",
        "/api/v1/me/signing-key",
        "senior2",
        Some(f.reauth("senior2")),
    )
    .await;
    let pk_senior2: String = {
        let k = f.ok("GET", "/api/v1/signing-keys", "clinic", None).await;
        k["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["login"] == "senior2")
            .unwrap()["public_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let pk_senior: String = {
        let k: Value = serde_json::from_slice(&keys).unwrap();
        k["keys"][0]["public_key"].as_str().unwrap().to_owned()
    };
    // the unique index forbids two rows with one key: swap through a placeholder
    raw_sql(&f.hub, &[
        &format!("UPDATE signing_keys SET public_key = 'x' WHERE public_key = '{pk_senior2}'"),
        &format!("UPDATE signing_keys SET public_key = '{pk_senior2}' WHERE public_key = '{pk_senior}'"),
    ]).await;
    let v = online(&f, rid).await;
    assert_eq!(
        (v["valid"].as_bool(), v["checks"]["signature"].as_bool()),
        (Some(false), Some(false)),
        "{v}"
    );
    raw_sql(&f.hub, &[
        &format!("UPDATE signing_keys SET public_key = '{pk_senior}' WHERE public_key = '{pk_senior2}'"),
        &format!("UPDATE signing_keys SET public_key = '{pk_senior2}' WHERE public_key = 'x'"),
    ]).await;
    assert_eq!(online(&f, rid).await["valid"], true);
    let (code, out) = export_and_verify(&f, rid, &keys_file).await;
    assert_eq!(code, 0, "offline, all restored: {out}");
    // the signing key revoked (replaced) before the signing time: a signature dated after
    // its revocation did not come from the hub, online and offline
    let signed_by =
        format!("(SELECT key_id FROM report_versions WHERE report_id = {rid} AND version = 5)");
    let was = dxhub_e2e::api::sql_rows(
        &f.hub,
        &format!(
            "SELECT COALESCE(CAST(revoked_at AS TEXT), 'NULL') FROM signing_keys WHERE id = {signed_by}"
        ),
    )
    .await[0][0]
        .clone();
    raw_sql(
        &f.hub,
        &[&format!(
            "UPDATE signing_keys SET revoked_at = (SELECT signed_at - 1 FROM report_versions \
             WHERE report_id = {rid} AND version = 5) WHERE id = {signed_by}"
        )],
    )
    .await;
    let v = online(&f, rid).await;
    assert_eq!(
        (v["valid"].as_bool(), v["checks"]["key_in_force"].as_bool()),
        (Some(false), Some(false)),
        "{v}"
    );
    let revoked_keys = dir.path().join("keys-revoked.json");
    let (s, k) = f.bytes("/api/v1/signing-keys", "clinic").await;
    assert_eq!(s, 200);
    std::fs::write(&revoked_keys, &k).unwrap();
    let (code, out) = export_and_verify(&f, rid, &revoked_keys).await;
    assert!(
        code == 1 && out.contains("revoked"),
        "offline, key revoked before: {out}"
    );
    raw_sql(
        &f.hub,
        &[&format!(
            "UPDATE signing_keys SET revoked_at = {was} WHERE id = {signed_by}"
        )],
    )
    .await;
    let v = online(&f, rid).await;
    assert_eq!(v["valid"], true, "{v}");
    // the village clinic is renamed: its signed report still verifies (signed under the
    // former name, as a note); a report moved to another institution does not
    let institutions = f.ok("GET", "/api/v1/institutions", "gadmin", None).await;
    let id_of = |name: &str| {
        institutions["institutions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == name)
            .and_then(|i| i["id"].as_i64())
            .unwrap_or_else(|| panic!("{name} in {institutions}"))
    };
    let (village_id, other_id) = (id_of(VILLAGE), id_of(OTHER_TOWN));
    let renamed = format!("{VILLAGE}（更名）");
    f.ok(
        "PATCH",
        &format!("/api/v1/institutions/{village_id}"),
        "gadmin",
        Some(json!({ "name": renamed })),
    )
    .await;
    let v = online(&f, rid).await;
    assert_eq!(v["valid"], true, "renamed source institution: {v}");
    assert!(v["notes"].to_string().contains(&renamed), "{v}");
    let (code, out) = export_and_verify(&f, rid, &keys_file).await;
    assert_eq!(code, 0, "offline, renamed source institution: {out}");
    raw_sql(
        &f.hub,
        &[&format!(
            "UPDATE reports SET institution_id = {other_id} WHERE id = {rid}"
        )],
    )
    .await;
    let v = online(&f, rid).await;
    assert_eq!(
        (v["valid"].as_bool(), v["checks"]["content"].as_bool()),
        (Some(false), Some(false)),
        "report moved to another institution: {v}"
    );
    raw_sql(
        &f.hub,
        &[&format!(
            "UPDATE reports SET institution_id = {village_id} WHERE id = {rid}"
        )],
    )
    .await;
    f.ok(
        "PATCH",
        &format!("/api/v1/institutions/{village_id}"),
        "gadmin",
        Some(json!({ "name": VILLAGE })),
    )
    .await;
    let v = online(&f, rid).await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["notes"], json!([]), "{v}");

    // PDF: Chinese text, the fingerprint and a QR code of the public verification page
    let (s, pdf) = f
        .bytes(&format!("/api/v1/reports/{rid}/pdf"), "clinic")
        .await;
    assert_eq!(s, 200);
    assert!(pdf.starts_with(b"%PDF"), "not a PDF");
    let public_url = verify_code_url(&f, rid, 5).await;
    if have_pdf_tools {
        let p = dir.path().join("r.pdf");
        std::fs::write(&p, &pdf).unwrap();
        let out = run(Command::new("pdftotext").arg(&p).arg("-"));
        let text: String = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect();
        // the signature block: author, verifier and the sign time (China Standard Time),
        // as the report's version 5 gives them; the ECG trace's lead labels
        let detail = f
            .ok("GET", &format!("/api/v1/reports/{rid}"), "clinic", None)
            .await;
        let signed_local: String = detail["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["version"] == 5)
            .and_then(|v| v["signed_at_local"].as_str())
            .expect("signed_at_local of v5")
            .chars()
            .take(16)
            .collect();
        for want in [
            "心电图诊断报告",
            "ST段未见偏移",
            "测试医共体",
            "报告医师",
            "审核医师",
            "签名时间",
            "senior",
            "25mm/s",
        ] {
            assert!(text.contains(want), "pdftotext lacks {want}: {text}");
        }
        // the ECG trace: a rendered image embedded in the page
        let list = run(Command::new("pdfimages").arg("-list").arg(&p));
        let images = String::from_utf8_lossy(&list.stdout)
            .lines()
            .skip(2)
            .filter(|l| l.split_whitespace().nth(2) == Some("image"))
            .filter(|l| {
                l.split_whitespace()
                    .nth(3)
                    .and_then(|w| w.parse::<u32>().ok())
                    .is_some_and(|w| w >= 1000)
            })
            .count();
        assert!(
            images >= 1,
            "no ECG trace image: {}",
            String::from_utf8_lossy(&list.stdout)
        );
        let date = &signed_local[..10];
        assert!(text.contains(date), "sign time {signed_local} in {text}");
        assert!(
            text.contains(&fingerprint) || text.contains(&fingerprint[..32]),
            "fingerprint {fingerprint} in {text}"
        );
        let png = dir.path().join("page");
        run(Command::new("pdftoppm")
            .args(["-r", "200", "-png"])
            .arg(&p)
            .arg(&png));
        let mut decoded = String::new();
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let e = e.unwrap().path();
            if e.extension().is_some_and(|x| x == "png") {
                let out = run(Command::new("zbarimg").args(["--raw", "-q"]).arg(&e));
                decoded.push_str(&String::from_utf8_lossy(&out.stdout));
            }
        }
        // the public verification page of version 5, at the address the clinic reached the
        // hub at (no http.public_url configured)
        assert_eq!(decoded.trim(), public_url, "QR payload");
    }
    // whoever holds the printout checks it without an account: the same verification,
    // only what the printout carries (the patient's name masked), audited
    let public = public_verify(&f, &public_url, "application/json").await;
    assert_eq!(public.0, 200, "{}", public.1);
    let pv: Value = serde_json::from_str(&public.1).unwrap();
    assert_eq!(
        (
            pv["valid"].as_bool(),
            pv["report_id"].as_i64(),
            pv["version"].as_i64(),
            pv["current_version"].as_i64()
        ),
        (Some(true), Some(rid), Some(5), Some(5)),
        "{pv}"
    );
    assert_eq!(pv["patient"], "王*", "{pv}");
    assert_eq!(pv["signer"], "senior", "{pv}");
    assert_eq!(pv["fingerprint"], fingerprint.as_str(), "{pv}");
    assert!(
        !public.1.contains("王^五") && !public.1.contains(RESIDENT_ID),
        "{pv}"
    );
    let (s, page) = public_verify(&f, &public_url, "text/html,application/xhtml+xml").await;
    assert_eq!(s, 200);
    assert!(
        page.contains("data-valid=\"true\"") && page.contains("报告真实有效"),
        "{page}"
    );
    assert!(page.contains("王*") && !page.contains("王^五"), "{page}");
    // a code the hub never made, and a malformed one: 404, nothing shown
    let (s, unknown) = public_verify(
        &f,
        &f.api.url(&format!("/api/v1/verify/{}", "0".repeat(32))),
        "application/json",
    )
    .await;
    assert_eq!(s, 404, "{unknown}");
    assert!(unknown.contains("unknown-verify-code"), "{unknown}");
    let (s, _) = public_verify(&f, &f.api.url("/api/v1/verify/x'--"), "application/json").await;
    assert_eq!(s, 404);
    // the same code on every render of the version
    let (_, pdf2) = f
        .bytes(&format!("/api/v1/reports/{rid}/pdf"), "clinic")
        .await;
    assert!(pdf2.starts_with(b"%PDF"));
    assert_eq!(verify_code_url(&f, rid, 5).await, public_url);
    // the report text changed in the database: the page says so
    raw_sql(&f.hub, &[&format!(
        "UPDATE report_versions SET body = replace(body, 'ST段未见偏移', 'ST段抬高') WHERE report_id = {rid} AND version = 5"
    )]).await;
    let (s, page) = public_verify(&f, &public_url, "text/html").await;
    assert_eq!(s, 200);
    assert!(
        page.contains("data-valid=\"false\"") && page.contains("验证未通过"),
        "{page}"
    );
    raw_sql(&f.hub, &[&format!(
        "UPDATE report_versions SET body = replace(body, 'ST段抬高', 'ST段未见偏移') WHERE report_id = {rid} AND version = 5"
    )]).await;
    let (_, restored) = public_verify(&f, &public_url, "application/json").await;
    assert!(restored.contains("\"valid\":true"), "{restored}");

    // FHIR R4 DiagnosticReport validates against the schema
    let fhir = f
        .ok(
            "GET",
            &format!("/api/v1/fhir/DiagnosticReport/{rid}"),
            "clinic",
            None,
        )
        .await;
    assert_eq!(fhir["resourceType"], "DiagnosticReport");
    assert_eq!(fhir["status"], "final");
    if let Some((py, schema)) = fhir_validator() {
        let p = dir.path().join("fhir.json");
        std::fs::write(&p, fhir.to_string()).unwrap();
        let out = run(Command::new(py)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fhir/validate.py"))
            .arg("--schema")
            .arg(&schema)
            .arg(&p));
        assert!(
            out.status.success(),
            "FHIR invalid: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // duty schedules (值班): the head is off duty now, so the critical value alerts
    // only the clinic doctor on duty (escalation still reaches the head)
    let minute = (i64::try_from(unix_now()).unwrap() + 8 * 3600).rem_euclid(86_400) / 60;
    let hhmm = |m: i64| format!("{:02}:{:02}", m.rem_euclid(1440) / 60, m.rem_euclid(60));
    let off_duty = format!("daily {}-{}", hhmm(minute + 120), hhmm(minute + 180));
    let duty_path = format!("/api/v1/users/{}/duty-schedule", f.ids["head"]);
    let (s, _) = f
        .send(
            "PUT",
            &duty_path,
            "clinic",
            Some(json!({"schedule": off_duty})),
        )
        .await;
    assert_eq!(s, 403, "a clinic doctor does not manage users");
    let (s, v) = f
        .send(
            "PUT",
            &duty_path,
            "gadmin",
            Some(json!({"schedule": "mon 08:00"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, v) = f
        .send(
            "PUT",
            &format!("/api/v1/users/{}/duty-schedule", f.ids["senior"]),
            "gadmin",
            Some(json!({"schedule": off_duty})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("not-a-clinic-user"))
    );
    let head = f
        .ok(
            "PUT",
            &duty_path,
            "gadmin",
            Some(json!({"schedule": off_duty})),
        )
        .await;
    assert_eq!(head["duty_schedule"], off_duty.as_str(), "{head}");
    let users = f.ok("GET", "/api/v1/users", "gadmin", None).await;
    assert!(
        users.to_string().contains(&off_duty),
        "the users list shows the schedule: {users}"
    );

    // critical value: the clinic is alerted and acknowledges
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/critical"),
            "senior",
            Some(json!({"category": "no-such"})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    let (s, _) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/critical"),
            "clinic",
            Some(json!({"category": "ecg_acute_mi"})),
        )
        .await;
    assert_eq!(s, 403);
    let c1 = f
        .ok(
            "POST",
            &format!("/api/v1/reports/{rid}/critical"),
            "senior",
            Some(json!({"category": "ecg_acute_mi", "note": "电话已通知"})),
        )
        .await;
    let c1_id = c1["id"].as_i64().unwrap();
    let n = f.ok("GET", "/api/v1/notifications", "clinic", None).await;
    assert!(n.to_string().contains("critical_raised"), "{n}");
    let n = f.ok("GET", "/api/v1/notifications", "head", None).await;
    assert!(
        !n.to_string().contains("critical_raised"),
        "the head is off duty: {n}"
    );
    // … and the webhook carried the signing and the critical value (naming whom to reach,
    // never the patient)
    let hooked = |kind: &str| -> Vec<Value> {
        hook_got
            .lock()
            .unwrap()
            .iter()
            .filter(|(head, _)| dxhub_e2e::api::http_header(head, "x-dxhub-event") == Some(kind))
            .map(|(_, body)| serde_json::from_str(body).unwrap())
            .collect()
    };
    eventually(Duration::from_secs(15), || async {
        (!hooked("critical_raised").is_empty()).then_some(())
    })
    .await
    .expect("critical_raised by webhook");
    let signed_hooks = hooked("report_signed");
    assert!(
        signed_hooks
            .iter()
            .any(|p| p["detail"]["report_id"] == rid && p["detail"]["version"] == 5),
        "{signed_hooks:?}"
    );
    let raised = hooked("critical_raised");
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!(raised[0]["detail"]["critical_id"], c1_id);
    assert_eq!(raised[0]["detail"]["category"], "ecg_acute_mi");
    assert_eq!(
        raised[0]["detail"]["notify"],
        json!(["clinic"]),
        "{raised:?}"
    );
    assert_eq!(raised[0]["work_item"]["institution"], VILLAGE);
    for (_, body) in hook_got.lock().unwrap().iter() {
        assert!(
            !body.contains(RESIDENT_ID) && !body.contains("王"),
            "patient data in a webhook: {body}"
        );
    }
    let open = f
        .ok("GET", "/api/v1/critical-values?state=open", "clinic", None)
        .await;
    assert_eq!(
        open["critical_values"].as_array().unwrap().len(),
        1,
        "{open}"
    );
    let (s, _) = f
        .send(
            "POST",
            &format!("/api/v1/critical-values/{c1_id}/ack"),
            "other",
            Some(json!({"name": "赵六", "action": "x"})),
        )
        .await;
    assert_eq!(s, 403, "another township cannot acknowledge");
    let acked = f
        .ok(
            "POST",
            &format!("/api/v1/critical-values/{c1_id}/ack"),
            "clinic",
            Some(json!({"name": "张医生", "action": "已通知患者立即转诊县医院急诊"})),
        )
        .await;
    assert_eq!(acked["state"], "acknowledged");
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/critical-values/{c1_id}/ack"),
            "clinic",
            Some(json!({"name": "张医生", "action": "again"})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("already-acknowledged"))
    );
    // a second one nobody acknowledges escalates to the head and the group admin
    let c2 = f
        .ok(
            "POST",
            &format!("/api/v1/reports/{rid}/critical"),
            "senior",
            Some(json!({"category": "ecg_acute_mi"})),
        )
        .await;
    let c2_id = c2["id"].as_i64().unwrap();
    let escalated = eventually(Duration::from_secs(20), || async {
        let v = f.ok("GET", "/api/v1/critical-values", "gadmin", None).await;
        v["critical_values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["critical"]["id"] == c2_id && !c["critical"]["escalated_at"].is_null())
            .cloned()
    })
    .await
    .expect("escalated");
    assert!(
        escalated["log"].to_string().contains("escalated"),
        "{escalated}"
    );
    for who in ["head", "gadmin"] {
        let n = f.ok("GET", "/api/v1/notifications", who, None).await;
        assert!(n.to_string().contains("critical_escalated"), "{who}: {n}");
    }
    let full = f
        .ok("GET", &format!("/api/v1/reports/{rid}"), "clinic", None)
        .await;
    let comms = full["critical_values"].to_string();
    assert!(
        comms.contains("已通知患者立即转诊县医院急诊") && comms.contains("escalated"),
        "{comms}"
    );

    // the clinic's stream carried the signing and both critical values; the other
    // township's saw none of it
    let seen = eventually(Duration::from_secs(10), || async {
        let text = clinic_stream.lock().unwrap().clone();
        (text.contains("event: report_signed")
            && text.contains("event: critical_raised")
            && text.contains("event: critical_escalated"))
        .then_some(text)
    })
    .await;
    assert!(
        seen.is_some(),
        "clinic stream: {}",
        clinic_stream.lock().unwrap()
    );
    let other_text = other_stream.lock().unwrap().clone();
    assert!(!other_text.contains("event: report_signed"), "{other_text}");
    assert!(!other_text.contains("critical"), "{other_text}");

    // the junior author adds nothing to the signed record alone (a senior reviews); an
    // addendum (signed) by a senior, and a corrected version superseding v5
    let mut add = f.reauth("r1");
    add["version"] = json!(5);
    add["text"] = json!("补充：自行补充。");
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/addenda"),
            "r1",
            Some(add),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("own-report")),
        "{v}"
    );
    let mut add = f.reauth("senior");
    add["version"] = json!(5);
    add["text"] = json!("补充：建议一周后复查心电图。");
    f.ok(
        "POST",
        &format!("/api/v1/reports/{rid}/addenda"),
        "senior",
        Some(add),
    )
    .await;
    let v = f
        .ok(
            "GET",
            &format!("/api/v1/reports/{rid}/verify"),
            "clinic",
            None,
        )
        .await;
    assert_eq!(
        (
            v["all_valid"].as_bool(),
            v["addenda"].as_array().map(Vec::len)
        ),
        (Some(true), Some(1)),
        "{v}"
    );
    let detail = f
        .ok("GET", &format!("/api/v1/reports/{rid}"), "clinic", None)
        .await;
    assert!(
        detail["addenda"][0]["signed_at_local"]
            .as_str()
            .is_some_and(|t| t.ends_with("+08:00")),
        "{detail}"
    );
    let (s, _) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/correct"),
            "r1",
            Some(json!({})),
        )
        .await;
    assert!(s == 403 || s == 422, "a reader cannot correct");
    let mut corr = body(None, "窦性心律，T波低平。", Some("acceptable"), &confirmed);
    corr.as_object_mut().unwrap().remove("base_version");
    corr["version"] = json!(5);
    corr["reason"] = json!("复核发现T波改变");
    corr["password"] = json!(PASSWORD);
    corr["totp"] = json!(f.code("senior2"));
    let c = f
        .ok(
            "POST",
            &format!("/api/v1/reports/{rid}/correct"),
            "senior2",
            Some(corr),
        )
        .await;
    assert_eq!(c["version"]["version"], 6);
    assert_eq!(c["version"]["kind"], "correction");
    let old = f
        .ok(
            "GET",
            &format!("/api/v1/reports/{rid}/verify?version=5"),
            "clinic",
            None,
        )
        .await;
    assert_eq!(
        (old["valid"].as_bool(), old["superseded"].as_bool()),
        (Some(true), Some(true)),
        "{old}"
    );
    // a reader holding the old printout is told which version is in force
    assert_eq!(old["current_version"], 6, "{old}");
    assert!(old["notes"].to_string().contains("version 6"), "{old}");
    // … and so is whoever scans its QR code
    let (s, page) = public_verify(&f, &public_url, "text/html").await;
    assert_eq!(s, 200);
    assert!(
        page.contains("data-valid=\"true\"") && page.contains("现行版本为第 6 版"),
        "{page}"
    );
    let new = f
        .ok(
            "GET",
            &format!("/api/v1/reports/{rid}/verify"),
            "clinic",
            None,
        )
        .await;
    assert_eq!(
        (new["valid"].as_bool(), new["version"].as_i64()),
        (Some(true), Some(6)),
        "{new}"
    );
    let fhir = f
        .ok(
            "GET",
            &format!("/api/v1/fhir/DiagnosticReport/{rid}"),
            "clinic",
            None,
        )
        .await;
    assert_eq!(fhir["status"], "corrected");

    // recognition: a clinic doctor of another township finds the HR result
    let rec = f
        .ok(
            "GET",
            &format!("/api/v1/recognition?patient={RESIDENT_ID}"),
            "other",
            None,
        )
        .await;
    let results = rec["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{rec}");
    assert_eq!(results[0]["hr"], true);
    assert_eq!(
        (&results[0]["hr_mark"], &results[0]["within_validity"]),
        (&json!(true), &json!(true)),
        "{rec}"
    );
    assert_eq!(results[0]["qc_grade"], "acceptable");
    assert_eq!(
        results[0]["age_days"].as_i64().map(|a| a >= 0),
        Some(true),
        "{rec}"
    );
    assert_eq!(results[0]["institution"], VILLAGE);
    assert_eq!(results[0]["exam_code"], "ecg_12_lead", "{rec}");
    assert_eq!(results[0]["exam_name"], "常规十二导联心电图", "{rec}");
    let (s, _) = f
        .send(
            "GET",
            &format!("/api/v1/recognition?patient={RESIDENT_ID}"),
            "auditor",
            None,
        )
        .await;
    assert_eq!(s, 403);
    let none = f
        .ok(
            "GET",
            "/api/v1/recognition?patient=UNKNOWN-1",
            "other",
            None,
        )
        .await;
    assert!(none["results"].as_array().unwrap().is_empty());
    // the exam catalogue decides: an exam made ineligible is no longer recognised (listed
    // with `all=true`, saying why) and its links close to the other township's doctor; a
    // reference validity the result is past hides it from the default lookup, yet it stays
    // open to that doctor, who judges whether it is still useful
    let lookup = |all: bool| {
        let f = &f;
        async move {
            let v = f
                .ok(
                    "GET",
                    &format!(
                        "/api/v1/recognition?patient={RESIDENT_ID}{}",
                        if all { "&all=true" } else { "" }
                    ),
                    "other",
                    None,
                )
                .await;
            v["results"].as_array().unwrap().clone()
        }
    };
    let types = f.ok("GET", "/api/v1/exam-types", "gadmin", None).await;
    let original = types["exam_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["code"] == "ecg_12_lead")
        .expect("ecg_12_lead in the catalogue")["definition"]
        .clone();
    let put_exam = |def: Value| {
        let f = &f;
        async move {
            f.ok(
                "PUT",
                "/api/v1/exam-types/ecg_12_lead",
                "gadmin",
                Some(json!({ "definition": def })),
            )
            .await;
        }
    };
    let report_status = |who: &'static str| {
        let f = &f;
        async move {
            f.send("GET", &format!("/api/v1/reports/{rid}"), who, None)
                .await
                .0
        }
    };
    let mut ineligible = original.clone();
    ineligible["recognition_eligible"] = json!(false);
    put_exam(ineligible).await;
    assert!(lookup(false).await.is_empty());
    let all = lookup(true).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["hr"], false);
    assert_eq!(
        (&all[0]["hr_mark"], &all[0]["within_validity"]),
        (&json!(false), &json!(true)),
        "{all:?}"
    );
    assert!(
        all[0]["not_recognised_because"]
            .to_string()
            .contains("not recognition-eligible"),
        "{all:?}"
    );
    assert_eq!(
        report_status("other").await,
        404,
        "ineligible: closed, as if there were no such report"
    );
    // and the lookup shows neither its conclusion nor its links to that doctor
    assert_eq!(
        (&all[0]["opens"], &all[0]["conclusion"], &all[0]["links"]),
        (&json!(false), &Value::Null, &Value::Null),
        "{all:?}"
    );
    let mut short = original.clone();
    short["validity_days"] = json!(30);
    put_exam(short).await;
    raw_sql(
        &f.hub,
        &[&format!(
            "UPDATE studies SET study_date = '20250101' WHERE study_instance_uid = '{study}'"
        )],
    )
    .await;
    assert!(lookup(false).await.is_empty(), "past the validity");
    let all = lookup(true).await;
    assert_eq!(
        (all.len(), all[0]["hr"].as_bool()),
        (1, Some(false)),
        "{all:?}"
    );
    assert!(
        all[0]["not_recognised_because"]
            .to_string()
            .contains("reference validity"),
        "{all:?}"
    );
    assert!(all[0]["age_days"].as_i64().unwrap() > 30, "{all:?}");
    assert_eq!(
        (&all[0]["hr_mark"], &all[0]["within_validity"]),
        (&json!(true), &json!(false)),
        "past validity: the mark stays, and opens the result: {all:?}"
    );
    assert_eq!(
        report_status("other").await,
        200,
        "past validity: still open"
    );
    raw_sql(
        &f.hub,
        &[&format!(
            "UPDATE studies SET study_date = '20261122' WHERE study_instance_uid = '{study}'"
        )],
    )
    .await;
    put_exam(original).await;
    assert_eq!(lookup(false).await.len(), 1);

    // push-back: the PDF and the SR reach the town's PACS (v5 and the correction v6)
    if have_storescp {
        let delivered = eventually(Duration::from_secs(30), || async {
            let v = f
                .ok(
                    "GET",
                    &format!("/api/v1/reports/{rid}/pushes"),
                    "gadmin",
                    None,
                )
                .await;
            let p = v["pushes"].as_array().unwrap().clone();
            (p.len() == 2 && p.iter().all(|x| x["state"] == "delivered")).then_some(p)
        })
        .await;
        let received: Vec<PathBuf> = std::fs::read_dir(pacs_dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(
            delivered.is_some(),
            "push-back not delivered: {received:?}\n{}",
            f.hub.log()
        );
        assert_eq!(received.len(), 4, "{received:?}");
        // v5's push-back was delivered by an automatic retry after the PACS came up
        let v5 = delivered
            .as_ref()
            .and_then(|p| p.iter().find(|x| x["version"] == 5).cloned())
            .expect("the push-back of v5");
        assert!(v5["attempts"].as_i64() >= Some(2), "{v5}");
        let names: String = received
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        if let Some(dump) = peers::dcmtk("dcmdump") {
            let all: String = received
                .iter()
                .map(|p| {
                    String::from_utf8_lossy(&run(Command::new(&dump).arg(p)).stdout).into_owned()
                })
                .collect();
            assert!(
                all.contains("application/pdf"),
                "no Encapsulated PDF received"
            );
            let classes: Vec<&str> = all.lines().filter(|l| l.contains("(0008,0016)")).collect();
            assert!(
                all.contains("BasicTextSR"),
                "no Basic Text SR received: {names} {classes:?}"
            );
        }
    }
    drop(pacs);

    // KEK rotation: the new KEK alone cannot open keys sealed under the old one; with the
    // old one in previous_keks, `signing-keys reseal` re-seals them; then the new KEK alone
    // signs again
    let old_kek = std::fs::read_to_string(f.hub.data_dir.join("report-kek")).unwrap();
    let new_kek = "5a".repeat(32);
    f.hub.stop();
    f.hub.opts = std::mem::take(&mut f.hub.opts).env("DXHUB_REPORTS__KEK", new_kek.clone());
    f.hub.start();
    f.api = Api::new(&f.hub);
    let mut add = f.reauth("senior");
    add["version"] = json!(6);
    add["text"] = json!("轮换后补充。");
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/addenda"),
            "senior",
            Some(add),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (503, Some("signing-unavailable")),
        "{v}"
    );
    f.hub.stop();
    let with_previous = f.hub.opts.clone().env(
        "DXHUB_REPORTS__PREVIOUS_KEKS",
        format!("[\"{}\"]", old_kek.trim()),
    );
    let out = f
        .hub
        .command_with(&with_previous, &["admin", "signing-keys", "reseal"]);
    assert!(
        out.status.success(),
        "reseal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("2 key(s) re-sealed"), "{text}");
    f.hub.start();
    f.api = Api::new(&f.hub);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut add = f.reauth("senior");
    add["version"] = json!(6);
    add["text"] = json!("轮换后补充。");
    f.ok(
        "POST",
        &format!("/api/v1/reports/{rid}/addenda"),
        "senior",
        Some(add),
    )
    .await;
    let v = f
        .ok(
            "GET",
            &format!("/api/v1/reports/{rid}/verify"),
            "clinic",
            None,
        )
        .await;
    assert_eq!(v["all_valid"], true, "{v}");

    // a machine-flagged STEMI jumps the queue but does not itself alert the clinic: no
    // critical value, no notification, no stream event until a reader confirms one
    let count = |v: &Value, what: &str| v.to_string().matches(what).count();
    let notified_before = count(
        &f.ok("GET", "/api/v1/notifications", "clinic", None).await,
        "critical_raised",
    );
    // (a fresh stream: the hub restarted since the first was opened)
    let stream = open_stream(&f, "clinic").await;
    let mut stemi = SynthSpec::sinus(80.0);
    stemi.st_uv[1] = 200.0;
    stemi.st_uv[2] = 200.0;
    stemi.st_uv[5] = 200.0;
    let up = upload_ecg(&f, &device, json_ecg(&stemi, "P-STEMI-R")).await;
    assert_eq!(up["critical"], true, "{up}");
    let stemi_study = up["study_instance_uid"].as_str().unwrap().to_owned();
    let flow = eventually(Duration::from_secs(15), || async {
        study_workflow(&f, "clinic", &stemi_study)
            .await
            .filter(|w| w["work_item_id"].is_i64())
    })
    .await
    .expect("the STEMI is on the worklist");
    let wi = f
        .ok(
            "GET",
            &format!("/api/v1/worklist/{}", flow["work_item_id"]),
            "gadmin",
            None,
        )
        .await;
    assert_eq!(
        (wi["priority"].as_str(), wi["critical"].as_bool()),
        (Some("stat"), Some(true)),
        "{wi}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let cv = f.ok("GET", "/api/v1/critical-values", "clinic", None).await;
    assert!(!cv.to_string().contains(&stemi_study), "{cv}");
    assert_eq!(
        count(
            &f.ok("GET", "/api/v1/notifications", "clinic", None).await,
            "critical_raised"
        ),
        notified_before
    );
    let text = stream.lock().unwrap().clone();
    assert!(!text.contains("critical_raised"), "{text}");

    // the audit trail of every step
    let audit = f
        .ok("GET", "/api/v1/audit?limit=1000", "auditor", None)
        .await;
    let a = audit.to_string();
    for action in [
        "report-write",
        "report-submit",
        "report-return",
        "report-sign",
        "signing-reauth",
        "signing-key-create",
        "report-verify",
        "report-verify-public",
        "report-export",
        "critical-raise",
        "critical-ack",
        "critical-escalate",
        "report-addendum",
        "report-correct",
        "recognition-lookup",
        "report-fhir",
    ] {
        assert!(a.contains(&format!("\"{action}\"")), "audit lacks {action}");
    }
}

/// The public verification URL the hub made for a report version (its PDF's QR code).
async fn verify_code_url(f: &F, rid: i64, version: i64) -> String {
    let rows = dxhub_e2e::api::sql_rows(
        &f.hub,
        &format!(
            "SELECT code FROM report_verify_codes WHERE report_id = {rid} AND version = {version}"
        ),
    )
    .await;
    assert_eq!(
        rows.len(),
        1,
        "one code for report {rid} v{version}: {rows:?}"
    );
    let code = &rows[0][0];
    assert!(
        code.len() == 32 && code.bytes().all(|b| b.is_ascii_hexdigit()),
        "{code}"
    );
    f.api.url(&format!("/api/v1/verify/{code}"))
}

/// `GET` a public verification URL with no credentials: status and body.
async fn public_verify(f: &F, url: &str, accept: &str) -> (u16, String) {
    let r = f
        .api
        .http
        .get(url)
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// An imaging report: a CT sent by DICOM from the township, marked complete, read with the
/// template's normal text, one key image chosen, signed by a senior; the PDF embeds the
/// rendered key image and the text.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn imaging_report_with_key_image() {
    let have_pdf_tools = ["pdftotext", "pdfimages"]
        .iter()
        .all(|t| peers::require(t, peers::tool(t).is_some()));
    let hub = TestHub::spawn(HubOptions::default().env("DXHUB_WORKLIST__TICK_MS", "200"));
    let mut ids = std::collections::HashMap::new();
    let mut tokens = std::collections::HashMap::new();
    for (login, role, inst) in [
        ("r1", "reader", COUNTY),
        ("senior", "senior_reader", COUNTY),
        ("gadmin", "group_admin", COUNTY),
        ("clinic", "clinic_doctor", TOWN),
    ] {
        ids.insert(login, add_user(&hub, inst, login, role, PASSWORD));
        tokens.insert(login, issue_token(&hub, login, "1h"));
    }
    let api = Api::new(&hub);
    let mut f = F {
        hub,
        api,
        tokens,
        ids,
        totp: Default::default(),
    };
    f.enrol_totp("senior").await;
    let pools = f.ok("GET", "/api/v1/pools", "gadmin", None).await;
    let rad = pools["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "radiology")
        .and_then(|p| p["id"].as_i64())
        .unwrap();
    for who in ["r1", "senior"] {
        f.ok(
            "PUT",
            &format!("/api/v1/pools/{rad}/members/{}", f.ids[who]),
            "gadmin",
            Some(json!({})),
        )
        .await;
    }
    let study = dxhub_e2e::api::store_study(&f.hub, "CLINIC", "P-CT-1");
    f.ok(
        "POST",
        &format!("/api/v1/studies/{study}/complete"),
        "clinic",
        Some(json!({})),
    )
    .await;
    let item = eventually(Duration::from_secs(15), || f.next_item("r1"))
        .await
        .expect("r1 gets the CT");
    let item_id = item["id"].as_i64().unwrap();
    let instances = f
        .ok(
            "GET",
            &format!("/dicomweb/studies/{study}/instances"),
            "r1",
            None,
        )
        .await;
    let sop = instances[0]["00080018"]["Value"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let pre = f
        .ok(
            "GET",
            &format!("/api/v1/worklist/{item_id}/report-prefill?template=ct_head_plain"),
            "r1",
            None,
        )
        .await;
    assert!(pre["machine"].is_null(), "{pre}");
    let mut sections = pre["normal"]["sections"].clone();
    sections["impression"] = json!("头颅CT平扫未见明显异常。");
    let d = f
        .ok(
            "POST",
            &format!("/api/v1/worklist/{item_id}/report"),
            "r1",
            Some(json!({
                "template_code": "ct_head_plain",
                "sections": sections,
                "fields": pre["normal"]["fields"],
                "qc_grade": "jia",
                "key_images": [{"sop_instance_uid": sop, "frame": 1}],
            })),
        )
        .await;
    let rid = d["report"]["id"].as_i64().unwrap();
    assert_eq!(d["report"]["kind"], "imaging");
    f.ok(
        "POST",
        &format!("/api/v1/reports/{rid}/submit"),
        "r1",
        Some(json!({"version": 1})),
    )
    .await;
    f.ok(
        "POST",
        "/api/v1/me/signing-key",
        "senior",
        Some(f.reauth("senior")),
    )
    .await;
    let mut sign = f.reauth("senior");
    sign["version"] = json!(1);
    f.ok(
        "POST",
        &format!("/api/v1/reports/{rid}/sign"),
        "senior",
        Some(sign),
    )
    .await;
    let v = f
        .ok(
            "GET",
            &format!("/api/v1/reports/{rid}/verify"),
            "clinic",
            None,
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["instances_added"], json!([]), "{v}");

    // a slice that arrives after signing is named as not covered; the report still
    // verifies, online and offline (it was signed over what was there)
    let late_sop = {
        use dxhub_e2e::generate::{CtSpec, ct_dataset};
        use dxhub_e2e::scu::{Scu, ct_context};
        let series = instances[0]["0020000E"]["Value"][0].as_str().unwrap();
        let mut spec = CtSpec::new(&study, series, 2);
        spec.patient_id = "P-CT-1".to_owned();
        let mut scu = Scu::connect(f.hub.dicom, "CLINIC", "DXHUB", &[ct_context()], 1 << 20)
            .expect("associate");
        let ct = dicom_dictionary_std::uids::CT_IMAGE_STORAGE;
        let (pc, _) = scu.context_for(ct).expect("CT context");
        let (status, comment) = scu
            .store(pc, ct, &spec.sop_uid, &ct_dataset(&spec))
            .expect("store");
        assert_eq!(status, 0, "late C-STORE: {comment:?}");
        scu.release().expect("release");
        spec.sop_uid
    };
    let v = f
        .ok(
            "GET",
            &format!("/api/v1/reports/{rid}/verify"),
            "clinic",
            None,
        )
        .await;
    assert_eq!(
        (v["valid"].as_bool(), v["checks"]["instances"].as_bool()),
        (Some(true), Some(true)),
        "late slice: {v}"
    );
    assert_eq!(v["instances_added"], json!([late_sop]), "{v}");
    assert!(v["notes"].to_string().contains("after signing"), "{v}");
    {
        let dir = tempfile::tempdir().unwrap();
        let keys_file = dir.path().join("keys.json");
        let (s, keys) = f.bytes("/api/v1/signing-keys", "clinic").await;
        assert_eq!(s, 200);
        std::fs::write(&keys_file, &keys).unwrap();
        let (code, out) = export_and_verify(&f, rid, &keys_file).await;
        assert_eq!(code, 0, "offline, late slice: {out}");
        assert!(out.contains("1 instance arrived after signing"), "{out}");
        assert!(out.contains(&late_sop), "{out}");
    }
    let (s, pdf) = f
        .bytes(&format!("/api/v1/reports/{rid}/pdf"), "clinic")
        .await;
    assert_eq!(s, 200);
    if have_pdf_tools {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ct.pdf");
        std::fs::write(&p, &pdf).unwrap();
        let text: String =
            String::from_utf8_lossy(&run(Command::new("pdftotext").arg(&p).arg("-")).stdout)
                .split_whitespace()
                .collect();
        for want in [
            "医学影像诊断报告",
            "头颅CT平扫未见明显异常",
            "关键图像",
            "甲级",
        ] {
            assert!(text.contains(want), "pdftotext lacks {want}: {text}");
        }
        let list =
            String::from_utf8_lossy(&run(Command::new("pdfimages").arg("-list").arg(&p)).stdout)
                .into_owned();
        assert!(list.lines().count() >= 3, "no image in the PDF: {list}");
    }

    // the KEK alone does not open a signing key: what it seals is locked again with the
    // signer's password (a copy of the database and the configuration cannot sign)
    let rows = dxhub_e2e::api::sql_rows(
        &f.hub,
        &format!(
            "SELECT CAST(user_id AS TEXT), public_key, sealed_secret FROM signing_keys \
             WHERE revoked_at IS NULL AND user_id = {}",
            f.ids["senior"]
        ),
    )
    .await;
    let [row] = rows.as_slice() else {
        panic!("one active key of senior: {rows:?}")
    };
    let (uid, public) = (row[0].parse::<i64>().unwrap(), row[1].as_str());
    let kek_hex = std::fs::read_to_string(f.hub.data_dir.join("report-kek")).unwrap();
    let kek = dxhub_core::report::Kek::from_hex(&kek_hex).unwrap();
    let opened = kek.open(&row[2], uid, public).unwrap();
    assert!(dxhub_core::report::is_password_wrapped(&opened));
    assert_eq!(
        dxhub_core::report::unwrap_with_password(&opened, "Another-pass-2026", uid, public),
        Err(dxhub_core::report::SealError::Password)
    );
    let secret = dxhub_core::report::unwrap_with_password(&opened, PASSWORD, uid, public)
        .expect("the signer's password opens it");
    let sk = dxhub_core::report::SigningKey::from_secret_bytes(&secret).unwrap();
    assert_eq!(
        hex::encode(sk.public_key()),
        public,
        "the key pair of the row"
    );

    // an administrator sets the senior's password: the key it locked no longer opens
    // (409 signing-key-locked, as a smart card after a PIN reset); a new key signs
    const NEW_PASSWORD: &str = "Another-pass-2026";
    let senior_id = f.ids["senior"];
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/users/{senior_id}/password"),
            "gadmin",
            Some(json!({ "password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    f.tokens
        .insert("senior", issue_token(&f.hub, "senior", "1h"));
    let reauth = |f: &F| json!({ "password": NEW_PASSWORD, "totp": f.code("senior") });
    let mut add = reauth(&f);
    add["version"] = json!(1);
    add["text"] = json!("密码重置后补充。");
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/reports/{rid}/addenda"),
            "senior",
            Some(add.clone()),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("signing-key-locked")),
        "{v}"
    );
    f.ok("POST", "/api/v1/me/signing-key", "senior", Some(reauth(&f)))
        .await;
    let mut add = reauth(&f);
    add["version"] = json!(1);
    add["text"] = json!("密码重置后补充。");
    f.ok(
        "POST",
        &format!("/api/v1/reports/{rid}/addenda"),
        "senior",
        Some(add),
    )
    .await;

    // a key sealed before the password layer (the KEK alone opened it) still signs, and
    // is locked with the signer's password at that signature
    let legacy = dxhub_core::report::SigningKey::generate(&mut rand_core::OsRng);
    let legacy_pk = hex::encode(legacy.public_key());
    let legacy_sealed = kek.seal(
        &legacy.secret_bytes(),
        senior_id,
        &legacy_pk,
        &mut rand_core::OsRng,
    );
    raw_sql(
        &f.hub,
        &[
            &format!(
                "UPDATE signing_keys SET revoked_at = {} WHERE user_id = {senior_id} \
                 AND revoked_at IS NULL",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_micros()
            ),
            &format!(
                "INSERT INTO signing_keys (user_id, public_key, fingerprint, sealed_secret, \
                 kek_id, created_at) VALUES ({senior_id}, '{legacy_pk}', '{}', \
                 '{legacy_sealed}', '{}', 2)",
                dxhub_core::report::fingerprint(&legacy.public_key()),
                kek.id()
            ),
        ],
    )
    .await;
    let mut add = reauth(&f);
    add["version"] = json!(1);
    add["text"] = json!("旧格式密钥签名。");
    f.ok(
        "POST",
        &format!("/api/v1/reports/{rid}/addenda"),
        "senior",
        Some(add),
    )
    .await;
    let rows = dxhub_e2e::api::sql_rows(
        &f.hub,
        &format!("SELECT sealed_secret FROM signing_keys WHERE public_key = '{legacy_pk}'"),
    )
    .await;
    let opened = kek.open(&rows[0][0], senior_id, &legacy_pk).unwrap();
    assert!(
        dxhub_core::report::is_password_wrapped(&opened),
        "the legacy key is locked with the password now"
    );
    assert_eq!(
        dxhub_core::report::unwrap_with_password(&opened, NEW_PASSWORD, senior_id, &legacy_pk)
            .unwrap(),
        legacy.secret_bytes()
    );
    let v = f
        .ok(
            "GET",
            &format!("/api/v1/reports/{rid}/verify"),
            "clinic",
            None,
        )
        .await;
    assert_eq!(v["all_valid"], true, "{v}");
}
