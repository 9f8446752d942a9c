//! The worklist over HTTP against a real `dxhub serve` (issue #6): an ECG with a STEMI
//! lands as STAT at the top of the ECG pool and a reader's `next` takes it; the SSE stream
//! carries the changes; heartbeat, release, reassign, break-lock, priority, cancel; a
//! DICOM study becomes ready after `stable_after` and a sender's "complete" makes one
//! ready at once with its priority; priors by resident ID across institutions; the dry
//! run; every work-item transition in the audit log. And a webhook: HMAC-signed, retried,
//! dead-lettered, re-sent by hand, against a local receiver.

use std::time::Duration;

use dxhub_e2e::api::{
    Api, add_device, add_user, collect_sse, hook_receiver as receiver, http_header as header,
    issue_token, store_study,
};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_ecg::synth::SynthSpec;
use serde_json::{Value, json};

const PASSWORD: &str = "Worklist-pass-2026";
const VILLAGE: &str = "东风村卫生室";
const TOWN: &str = "城关镇卫生院";
const COUNTY: &str = "县人民医院";
const RESIDENT_ID: &str = "11010519491231002X";

/// Poll `f` until it yields something or `timeout` passes.
async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
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

fn json_ecg(spec: &SynthSpec, patient_id: &str) -> Vec<u8> {
    let (mut ecg, _) = dxhub_ecg::synth::generate(spec);
    ecg.patient.id = Some(patient_id.into());
    ecg.patient.name = Some("李^四".into());
    ecg.acquired_at = Some("20261122081500".into());
    serde_json::to_vec(&dxhub_ecg::json::to_json_form(&ecg, 1.0)).unwrap()
}

fn stemi() -> SynthSpec {
    let mut s = SynthSpec::sinus(80.0);
    s.st_uv[1] = 200.0;
    s.st_uv[2] = 200.0;
    s.st_uv[5] = 200.0;
    s
}

struct Fixture {
    hub: TestHub,
    api: Api,
    device: String,
    r1: String,
    r2: String,
    senior: String,
    admin: String,
    clinic: String,
    /// A reader of the ECG pool only.
    ecg_only: String,
    ids: std::collections::HashMap<&'static str, i64>,
}

impl Fixture {
    async fn new(opts: HubOptions) -> Fixture {
        let hub = TestHub::spawn(
            opts.env("DXHUB_WORKLIST__STABLE_AFTER_SECS", "1")
                .env("DXHUB_WORKLIST__TICK_MS", "200")
                .env("DXHUB_WORKLIST__WEBHOOK_MAX_ATTEMPTS", "2"),
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
        let device = add_device(&hub, VILLAGE, "ECG-DF-01");
        let mut ids = std::collections::HashMap::new();
        for (login, role, inst) in [
            ("r1", "reader", COUNTY),
            ("r2", "reader", COUNTY),
            ("senior", "senior_reader", COUNTY),
            ("gadmin", "group_admin", COUNTY),
            ("clinic", "clinic_doctor", TOWN),
            ("ecgonly", "reader", COUNTY),
        ] {
            ids.insert(login, add_user(&hub, inst, login, role, PASSWORD));
        }
        let api = Api::new(&hub);
        Fixture {
            device,
            r1: issue_token(&hub, "r1", "1h"),
            r2: issue_token(&hub, "r2", "1h"),
            senior: issue_token(&hub, "senior", "1h"),
            admin: issue_token(&hub, "gadmin", "1h"),
            clinic: issue_token(&hub, "clinic", "1h"),
            ecg_only: issue_token(&hub, "ecgonly", "1h"),
            hub,
            api,
            ids,
        }
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .api
            .http
            .request(m, self.api.url(path))
            .bearer_auth(token);
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

    async fn ok(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
        let (s, v) = self.send(method, path, token, body).await;
        assert!((200..300).contains(&s), "{method} {path}: {s} {v}");
        v
    }

    async fn upload_ecg(&self, body: Vec<u8>) -> Value {
        let r = self
            .api
            .http
            .post(self.api.url("/api/v1/ecg"))
            .bearer_auth(&self.device)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    async fn pool(&self, name: &str) -> i64 {
        let v = self.ok("GET", "/api/v1/pools", &self.admin, None).await;
        v["pools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["id"].as_i64())
            .unwrap_or_else(|| panic!("pool {name}: {v}"))
    }

    async fn item_of(&self, study: &str) -> Option<Value> {
        let v = self
            .ok(
                "GET",
                &format!("/api/v1/worklist?tab=all&study_instance_uid={study}"),
                &self.admin,
                None,
            )
            .await;
        v["items"].as_array().unwrap().first().cloned()
    }

    async fn wait_item(&self, study: &str) -> Value {
        eventually(Duration::from_secs(15), || self.item_of(study))
            .await
            .unwrap_or_else(|| panic!("no work item for {study}\n{}", self.hub.log()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worklist_end_to_end() {
    let f = Fixture::new(HubOptions::default()).await;
    let ecg_pool = f.pool("ecg").await;
    let rad_pool = f.pool("radiology").await;
    for who in ["r1", "r2", "senior"] {
        for pool in [ecg_pool, rad_pool] {
            f.ok(
                "PUT",
                &format!("/api/v1/pools/{pool}/members/{}", f.ids[who]),
                &f.admin,
                Some(json!({ "subspecialty": "心电", "max_open_claims": 3 })),
            )
            .await;
        }
    }
    f.ok(
        "PUT",
        &format!("/api/v1/pools/{ecg_pool}/members/{}", f.ids["ecgonly"]),
        &f.admin,
        Some(json!({})),
    )
    .await;
    // a clinic user is no pool member
    let (s, v) = f
        .send(
            "PUT",
            &format!("/api/v1/pools/{ecg_pool}/members/{}", f.ids["clinic"]),
            &f.admin,
            Some(json!({})),
        )
        .await;
    assert_eq!(s, 422, "{v}");

    // r2 watches the stream
    let sse = f
        .api
        .http
        .get(f.api.url("/api/v1/worklist/events"))
        .bearer_auth(&f.r2)
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert!(
        sse.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let stream = collect_sse(sse);

    // two ordinary ECGs, then a STEMI
    let a = f.upload_ecg(json_ecg(&SynthSpec::sinus(70.0), "P-A")).await;
    let b = f.upload_ecg(json_ecg(&SynthSpec::sinus(75.0), "P-B")).await;
    let stemi_up = f.upload_ecg(json_ecg(&stemi(), RESIDENT_ID)).await;
    assert_eq!(stemi_up["critical"], true);
    let sa = a["study_instance_uid"].as_str().unwrap().to_owned();
    let sb = b["study_instance_uid"].as_str().unwrap().to_owned();
    let ss = stemi_up["study_instance_uid"].as_str().unwrap().to_owned();
    for s in [&sa, &sb] {
        let item = f.wait_item(s).await;
        assert_eq!(item["priority"], "urgent", "{item}");
        assert_eq!(item["pool_id"], ecg_pool);
    }
    let stat = f.wait_item(&ss).await;
    assert_eq!(stat["priority"], "stat", "{stat}");
    assert_eq!(stat["critical"], true);
    assert_eq!(stat["state"], "queued");
    assert!(stat["due_at_local"].as_str().unwrap().ends_with("+08:00"));

    // the ECG pool's queue: the STAT item first
    let q = f
        .ok(
            "GET",
            &format!("/api/v1/worklist?tab=queue&pool_id={ecg_pool}"),
            &f.r1,
            None,
        )
        .await;
    let queue = q["items"].as_array().unwrap();
    assert_eq!(queue.len(), 3, "{q}");
    assert_eq!(queue[0]["study_instance_uid"], ss.as_str());
    // a reader outside the pool may not list it
    let (s, _) = f
        .send(
            "GET",
            &format!(
                "/api/v1/worklist?tab=queue&pool_id={}",
                f.pool("ultrasound").await
            ),
            &f.r1,
            None,
        )
        .await;
    assert_eq!(s, 403);

    // next: the STAT item
    let got = f.ok("POST", "/api/v1/worklist/next", &f.r1, None).await;
    assert_eq!(got["study_instance_uid"], ss.as_str(), "{got}");
    assert_eq!(got["state"], "claimed");
    assert_eq!(got["claimed_by_login"], "r1");
    let stat_id = got["id"].as_i64().unwrap();
    // the lease is renewed by the holder only; another reader cannot claim it
    let hb = f
        .ok(
            "POST",
            &format!("/api/v1/worklist/{stat_id}/heartbeat"),
            &f.r1,
            None,
        )
        .await;
    assert!(hb["lease_expires_at"].is_string());
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/worklist/{stat_id}/heartbeat"),
            &f.r2,
            None,
        )
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("lease-lost")));
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/worklist/{stat_id}/claim"),
            &f.r2,
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("not-claimable"))
    );
    // readers cannot supervise
    let (s, _) = f
        .send(
            "POST",
            &format!("/api/v1/worklist/{stat_id}/break-lock"),
            &f.r2,
            Some(json!({ "reason": "x" })),
        )
        .await;
    assert_eq!(s, 403);

    // release → queued; the senior reassigns it to r2 with a reason, then breaks the lock
    let rel = f
        .ok(
            "POST",
            &format!("/api/v1/worklist/{stat_id}/release"),
            &f.r1,
            None,
        )
        .await;
    assert_eq!(rel["state"], "queued");
    let re = f
        .ok(
            "POST",
            &format!("/api/v1/worklist/{stat_id}/reassign"),
            &f.senior,
            Some(json!({ "user_id": f.ids["r2"], "reason": "r1 在门诊" })),
        )
        .await;
    assert_eq!(
        (re["state"].as_str(), re["claimed_by_login"].as_str()),
        (Some("claimed"), Some("r2"))
    );
    let (s, v) = f
        .send(
            "POST",
            &format!("/api/v1/worklist/{stat_id}/break-lock"),
            &f.senior,
            Some(json!({ "reason": "" })),
        )
        .await;
    assert_eq!(s, 422, "a reason is required: {v}");
    let broken = f
        .ok(
            "POST",
            &format!("/api/v1/worklist/{stat_id}/break-lock"),
            &f.senior,
            Some(json!({ "reason": "交接班" })),
        )
        .await;
    assert_eq!(broken["state"], "queued");
    assert!(broken["claimed_by"].is_null());

    // the group admin raises an earlier ECG to STAT: it is due before the STEMI, so next
    // gives it first, then the STEMI
    let item_b = f.item_of(&sb).await.unwrap();
    let raised = f
        .ok(
            "POST",
            &format!("/api/v1/worklist/{}/priority", item_b["id"]),
            &f.admin,
            Some(json!({ "priority": "stat", "reason": "胸痛" })),
        )
        .await;
    assert_eq!(raised["priority"], "stat");
    let n1 = f.ok("POST", "/api/v1/worklist/next", &f.r1, None).await;
    assert_eq!(
        n1["study_instance_uid"],
        sb.as_str(),
        "the earlier-due STAT first: {n1}"
    );
    let n2 = f.ok("POST", "/api/v1/worklist/next", &f.r1, None).await;
    assert_eq!(n2["id"], stat_id);
    let mine = f.ok("GET", "/api/v1/worklist?tab=mine", &f.r1, None).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 2);
    // cancel the third
    let item_a = f.item_of(&sa).await.unwrap();
    let c = f
        .ok(
            "POST",
            &format!("/api/v1/worklist/{}/cancel", item_a["id"]),
            &f.admin,
            Some(json!({ "reason": "重复检查" })),
        )
        .await;
    assert_eq!(c["state"], "cancelled");
    let (s, v) = f.send("POST", "/api/v1/worklist/next", &f.r2, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("nothing-queued")),
        "{v}"
    );

    // priors: the same resident ID at another institution (a C-STORE from the township)
    let prior_study = store_study(&f.hub, "CLINIC", RESIDENT_ID);
    let prior = f.wait_item(&prior_study).await;
    assert_eq!(prior["pool_id"], rad_pool, "CT → radiology: {prior}");
    let priors = f
        .ok(
            "GET",
            &format!("/api/v1/worklist/{stat_id}/priors"),
            &f.r1,
            None,
        )
        .await;
    let list = priors["priors"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{priors}");
    assert_eq!(list[0]["study_instance_uid"], prior_study.as_str());
    assert_eq!(list[0]["institution_name"], TOWN);
    let none = f
        .ok(
            "GET",
            &format!("/api/v1/worklist/{}/priors", item_b["id"]),
            &f.r1,
            None,
        )
        .await;
    assert_eq!(none["priors"].as_array().unwrap().len(), 0);

    // a reader reads what is routed to their pools and those patients' priors: the ECG
    // reader opens the STEMI patient's CT prior (a radiology study), not another CT
    let other_ct = store_study(&f.hub, "CLINIC", "SOMEONE-ELSE");
    assert_eq!(f.wait_item(&other_ct).await["pool_id"], rad_pool);
    let (s, v) = f
        .send(
            "GET",
            &format!("/api/v1/studies/{prior_study}"),
            &f.ecg_only,
            None,
        )
        .await;
    assert_eq!(s, 200, "the prior of a patient of the ECG pool: {v}");
    let (s, v) = f
        .send(
            "GET",
            &format!("/api/v1/studies/{other_ct}"),
            &f.ecg_only,
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("not-found")),
        "a radiology study of another patient, not routed: as if there were none: {v}"
    );
    let listed = f.ok("GET", "/api/v1/studies", &f.ecg_only, None).await;
    let uids: std::collections::BTreeSet<&str> = listed["studies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["study_instance_uid"].as_str())
        .collect();
    assert!(
        uids.contains(prior_study.as_str()) && uids.contains(ss.as_str()),
        "{listed}"
    );
    assert!(!uids.contains(other_ct.as_str()), "{listed}");
    // r1, a member of both pools, reads the other CT
    let (s, _) = f
        .send("GET", &format!("/api/v1/studies/{other_ct}"), &f.r1, None)
        .await;
    assert_eq!(s, 200);

    // a sender marks a study complete with its priority: ready at once, STAT
    let ct = store_study(&f.hub, "CLINIC", "P-CT-9");
    let done = f
        .ok(
            "POST",
            &format!("/api/v1/studies/{ct}/complete"),
            &f.clinic,
            Some(json!({ "priority": "stat", "exam_code": "CT-CHEST" })),
        )
        .await;
    assert_eq!(done["work_item"]["priority"], "stat", "{done}");
    // the dry run names the rule
    let dry = f
        .ok(
            "POST",
            "/api/v1/routing-rules/dry-run",
            &f.admin,
            Some(json!({ "study_instance_uid": ct })),
        )
        .await;
    assert_eq!(dry["rule"]["pool_id"], rad_pool, "{dry}");
    assert_eq!(dry["facts"]["procedure_codes"], json!(["CT-CHEST"]));

    // an AE title mapped to STAT: its studies start as STAT
    f.ok(
        "POST",
        "/api/v1/ae-titles",
        &f.admin,
        Some(json!({ "institution": TOWN, "ae_title": "ER_CT", "priority": "stat" })),
    )
    .await;
    let er = store_study(&f.hub, "ER_CT", "P-ER-1");
    let er_item = f.wait_item(&er).await;
    assert_eq!(er_item["priority"], "stat", "{er_item}");
    // an institution's own stable age: its studies wait that long
    let town_id = f.ok("GET", "/api/v1/institutions", &f.admin, None).await["institutions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == TOWN)
        .and_then(|i| i["id"].as_i64())
        .unwrap();
    let (s, _) = f
        .send(
            "PATCH",
            &format!("/api/v1/institutions/{town_id}"),
            &f.admin,
            Some(json!({ "stable_after_s": -1 })),
        )
        .await;
    assert_eq!(s, 422);
    f.ok(
        "PATCH",
        &format!("/api/v1/institutions/{town_id}"),
        &f.admin,
        Some(json!({ "stable_after_s": 3600 })),
    )
    .await;
    let slow = store_study(&f.hub, "CLINIC", "P-SLOW");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        f.item_of(&slow).await.is_none(),
        "not ready before its stable age"
    );

    // the item's history and the SSE stream
    let hist = f
        .ok("GET", &format!("/api/v1/worklist/{stat_id}"), &f.r1, None)
        .await;
    let kinds: Vec<&str> = hist["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "queued",
            "claimed",
            "released",
            "reassigned",
            "lock-broken",
            "claimed"
        ],
        "{hist}"
    );
    let got_stream = eventually(Duration::from_secs(5), || {
        let s = stream.clone();
        async move {
            let text = s.lock().unwrap().clone();
            (text.contains("event: lock-broken") && text.contains("event: cancelled")).then_some(())
        }
    })
    .await;
    assert!(got_stream.is_some(), "SSE: {}", stream.lock().unwrap());
    // r2 is notified of the reassignment to it
    let notes = f.ok("GET", "/api/v1/notifications", &f.r2, None).await;
    assert!(
        notes["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "reassigned"),
        "{notes}"
    );

    // every transition is audited
    let audit = f.hub.cli(&["audit", "list", "--limit", "1000", "--json"]);
    let text = String::from_utf8_lossy(&audit.stdout).to_string();
    for action in [
        "work-queued",
        "work-claim",
        "work-release",
        "work-reassign",
        "work-break-lock",
        "work-priority",
        "work-cancel",
        "priors-read",
        "study-complete",
    ] {
        assert!(text.contains(action), "audit lacks {action}");
    }
}

/// Secure by default: with no `worklist.webhook_allowed_hosts`, a webhook may not point
/// at this host or a private network.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_to_internal_addresses_are_refused_by_default() {
    let f = Fixture::new(HubOptions::default()).await;
    let (url, got) = receiver(vec![]).await;
    for target in [
        url.as_str(),
        "http://192.168.1.10/hook",
        "http://0x7f000001:9/",
    ] {
        let (s, body) = f
            .send(
                "POST",
                "/api/v1/webhooks",
                &f.admin,
                Some(json!({ "url": target, "secret": "whsec-0123456789abcdef", "events": ["*"] })),
            )
            .await;
        assert_eq!(s, 422, "{target}: {body}");
        assert_eq!(
            body["error"]["code"], "webhook-target-refused",
            "{target}: {body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("webhook_allowed_hosts"),
            "the refusal names the setting: {body}"
        );
    }
    let listed = f.ok("GET", "/api/v1/webhooks", &f.admin, None).await;
    assert_eq!(
        listed["webhooks"],
        json!([]),
        "nothing registered: {listed}"
    );
    assert!(got.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_are_signed_retried_and_dead_lettered() {
    use hmac::{Hmac, Mac};
    // the receiver listens on 127.0.0.1, which the operator has to allow (SSRF guard)
    let f = Fixture::new(HubOptions::default().local_webhooks()).await;
    // the receiver fails twice (→ dead after 2 attempts), then accepts
    let (url, got) = receiver(vec![500, 503]).await;
    let secret = "whsec-0123456789abcdef";
    let hook = f
        .ok(
            "POST",
            "/api/v1/webhooks",
            &f.admin,
            Some(json!({ "url": url, "secret": secret, "events": ["queued"] })),
        )
        .await;
    assert!(
        hook.get("secret").is_none(),
        "the secret is never returned: {hook}"
    );
    let hook_id = hook["id"].as_i64().unwrap();
    let (s, _) = f
        .send(
            "POST",
            "/api/v1/webhooks",
            &f.admin,
            Some(json!({ "url": "ftp://x", "secret": secret, "events": ["*"] })),
        )
        .await;
    assert_eq!(s, 422);
    // internal addresses the operator did not list are refused (SSRF): the cloud
    // metadata service, localhost by name, IPv6 loopback, an IPv4-mapped loopback
    for target in [
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.2]:9/hook",
        "http://10.0.0.1/hook",
    ] {
        let (s, body) = f
            .send(
                "POST",
                "/api/v1/webhooks",
                &f.admin,
                Some(json!({ "url": target, "secret": secret, "events": ["*"] })),
            )
            .await;
        assert_eq!(s, 422, "{target}: {body}");
        assert_eq!(
            body["error"]["code"], "webhook-target-refused",
            "{target}: {body}"
        );
    }
    let (s, _) = f
        .send(
            "POST",
            "/api/v1/webhooks",
            &f.r1,
            Some(json!({ "url": url, "secret": secret, "events": ["*"] })),
        )
        .await;
    assert_eq!(s, 403, "readers do not manage webhooks");

    let up = f.upload_ecg(json_ecg(&stemi(), "P-HOOK")).await;
    let study = up["study_instance_uid"].as_str().unwrap().to_owned();
    // first attempt at once, the retry 10 s later; both fail → dead
    let dead = eventually(Duration::from_secs(30), || {
        let f = &f;
        async move {
            let v = f
                .ok(
                    "GET",
                    &format!("/api/v1/webhooks/{hook_id}/deliveries?state=dead"),
                    &f.admin,
                    None,
                )
                .await;
            v["deliveries"].as_array().unwrap().first().cloned()
        }
    })
    .await
    .unwrap_or_else(|| panic!("no dead letter; received {:?}", got.lock().unwrap()));
    assert_eq!(dead["attempts"], 2, "{dead}");
    assert_eq!(dead["last_status"], 503);
    assert_eq!(got.lock().unwrap().len(), 2);
    // re-sent by hand: delivered
    f.ok(
        "POST",
        &format!("/api/v1/webhooks/deliveries/{}/retry", dead["id"]),
        &f.admin,
        None,
    )
    .await;
    let delivered = eventually(Duration::from_secs(10), || {
        let f = &f;
        async move {
            let v = f
                .ok(
                    "GET",
                    &format!("/api/v1/webhooks/{hook_id}/deliveries?state=delivered"),
                    &f.admin,
                    None,
                )
                .await;
            v["deliveries"].as_array().unwrap().first().cloned()
        }
    })
    .await
    .expect("delivered after the manual retry");
    assert_eq!(delivered["last_status"], 200);

    // every request carried the same body and a valid signature over "t.body"
    let requests = got.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    for (head, body) in &requests {
        assert!(head.starts_with("POST /hook "), "{head}");
        assert_eq!(header(head, "x-dxhub-event"), Some("queued"));
        let sig = header(head, "x-dxhub-signature").expect("signature header");
        let (t, v1) = sig
            .strip_prefix("t=")
            .and_then(|s| s.split_once(",v1="))
            .expect("t=…,v1=…");
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.{body}").as_bytes());
        assert_eq!(v1, hex::encode(mac.finalize().into_bytes()), "signature");
        let mut wrong = <Hmac<sha2::Sha256> as Mac>::new_from_slice(b"another-secret-123").unwrap();
        wrong.update(format!("{t}.{body}").as_bytes());
        assert_ne!(v1, hex::encode(wrong.finalize().into_bytes()));
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["kind"], "queued");
        assert_eq!(payload["work_item"]["study_instance_uid"], study.as_str());
        assert_eq!(payload["work_item"]["priority"], "stat");
        assert!(
            !body.contains("P-HOOK") && !body.contains("李"),
            "no patient data: {body}"
        );
    }
}
