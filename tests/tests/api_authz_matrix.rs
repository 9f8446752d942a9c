//! The authorization matrix of `/api/v1` (issue #3): every operation of the OpenAPI
//! document × every principal (each role, a user of another alliance, a device token, no
//! token) × own and foreign objects. Expectations come from the route-policy registry
//! (`dxhub_api::route_rules`) and the pure policy (`dxhub_core::authorize`), so the test
//! follows them; an operation without a rule, or one this test does not know how to aim
//! at an own and a foreign object, fails it. On SQLite and on PostgreSQL.
//!
//! The same for `/dicomweb` (its own registry, `dxhub_api::dicomweb_route_rules`): every
//! QIDO, WADO and STOW route × every principal × the study of each institution (plus an
//! unknown study, and a path naming one study with another's series); STOW of a new study
//! and into each study (FailureReason 0x0124 outside the caller's write reach); then the
//! audit entry of each request (matched by `X-Request-Id`: denials always, successful reads
//! once per study and caller) and what STOW left in the index.
//!
//! Tenancy: alliance A (county hospital H → township T → village V) and alliance B
//! (county hospital H2); one study (a CT with pixel data) stored by DIMSE into each of T,
//! V, H and H2.

use std::collections::{BTreeMap, HashMap};

use dicom_dictionary_std::uids;
use dicom_object::FileMetaTableBuilder;
use dxhub_api::{RoutePolicy, RouteRule, dicomweb_route_rules, route_rules};
use dxhub_core::policy::{ListScope, ever_permitted, list_scope, visible};
use dxhub_core::worklist::WorkState;
use dxhub_core::{Action, Principal, PrincipalKind, Role, TargetScope, authorize};
use dxhub_e2e::api::{
    Api, PASSWORD, Reply, add_device, add_user, admin_list, device_id, issue_token,
    postgres_options, store_study,
};
use dxhub_e2e::generate::{CtSpec, ct_object, new_uid};
use dxhub_e2e::hub::{HubOptions, TestHub};
use dxhub_store::report::{DraftSpec, PacsTarget, PushResult, Signature, VersionBody};
use dxhub_store::worklist::{
    Actor, AttemptResult, Claim, MemberSpec, NewWebhook, ReadySettings, RuleSpec, WorkFilter,
};
use dxhub_store::{Catalog, ReportStore, WorklistStore};
use reqwest::Method;
use serde_json::{Value, json};

const ALLIANCE_A: &str = "测试医共体";
const ALLIANCE_B: &str = "邻县医共体";
const H: &str = "县人民医院";
const T: &str = "城关镇卫生院";
const V: &str = "城关村卫生室";
const H2: &str = "邻县人民医院";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authz_matrix_sqlite() {
    matrix(HubOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authz_matrix_postgres() {
    if let Some(opts) = postgres_options("authz").await {
        matrix(opts).await;
    }
}

/// Where an operation's target comes from, beyond what the registry says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aim {
    /// Public or any user: no target.
    None,
    /// The whole hub (create an alliance).
    Hub,
    /// The caller's own alliance (alliance-wide lists, the audit log).
    OwnAlliance,
    /// The studies list: allowed when the caller may read its own institution's studies,
    /// then filtered by reach.
    StudyList,
    /// Devices and AE titles: allowed when the caller may list them at all, then every
    /// row must be of an institution within reach, and every fixture row within reach
    /// must be there.
    SetupList,
    /// An alliance named in the body.
    BodyAlliance,
    /// An institution named in the body.
    BodyInstitution,
    /// The object in the path: a user, a device, a study, an institution, an AE title.
    PathUser,
    PathDevice,
    PathStudy,
    PathInstitution,
    PathAe,
    /// An upload route (ECG): the caller's own institution.
    Upload,
    /// A resumable upload of an institution in the path.
    PathUpload,
    /// An ECG of an institution in the path (`{id}`), or its study in `?study=`.
    PathEcg,
    EcgByStudy,
    /// Worklist objects created in the alliance named in the body (`alliance_id`: A and
    /// B are tried): a pool, a routing rule, a webhook.
    AllianceCreate,
    /// Worklist objects in the path, one per alliance: a pool, a pool membership (of a
    /// reader who is no caller), a routing rule and a webhook (fresh victims for
    /// deletions and replacements), a webhook delivery.
    PathPool,
    PathMember,
    PathRule,
    PathWebhook,
    PathDelivery,
    /// A work item in the path: the CT study and the ECG of each institution.
    PathWork,
    /// The routing dry run of each institution's study (named in the body).
    DryRun,
    /// Report catalogue objects (templates, exam types, critical-value categories) of the
    /// caller's own alliance, the only one these routes name: put back as they are.
    Catalogue,
    /// The caller's own institution (its signing key).
    OwnInstitution,
    /// The report and critical-value lists (and the report event stream): allowed when
    /// the caller may read its own institution's reports, then filtered by reach.
    ReportList,
    /// A report in the path: a signed one of each institution, a submitted one of H and
    /// H2 (by the pool reader of their alliance, no caller).
    PathReport,
    /// A critical value in the path: one of each signed report.
    PathCritical,
    /// A push-back in the path: one of each signed report (an object of its alliance).
    PathPush,
    /// The signing authority of a reader in the path (the spare reader of each alliance).
    PathSigner,
    /// The duty schedule of a clinic user in the path (the spare clinic user of each
    /// alliance).
    PathDuty,
    /// The report settings of an institution in the path (T and H2).
    PathReportSettings,
}

/// Answers of the report state machine and of signing's re-authentication: the caller
/// passed the policy, the report's state, authorship or role (or the missing second
/// factor) refuse the step. Never `forbidden`.
const REPORT_REFUSALS: &[&str] = &[
    "not-permitted",
    "not-author",
    "own-report",
    "totp-enrollment-required",
];

/// How this test aims each operation. A new operation must be added here (the test fails
/// until it is) — and to the registry, or the test fails on that too.
fn aim(method: &str, path: &str) -> Option<Aim> {
    Some(match (method, path) {
        ("GET", "/api/v1/openapi.json")
        | ("GET", "/api/v1/verify/{}")
        | ("POST", "/api/v1/auth/login")
        | ("POST", "/api/v1/auth/logout")
        | ("GET", "/api/v1/auth/me")
        | ("POST", "/api/v1/auth/totp/enroll")
        | ("POST", "/api/v1/auth/totp/confirm")
        | ("GET", "/api/v1/alliances")
        | ("GET", "/api/v1/institutions") => Aim::None,
        ("POST", "/api/v1/alliances") => Aim::Hub,
        ("POST", "/api/v1/institutions") => Aim::BodyAlliance,
        ("GET", "/api/v1/ae-titles") | ("GET", "/api/v1/devices") => Aim::SetupList,
        ("GET", "/api/v1/users") | ("GET", "/api/v1/audit") => Aim::OwnAlliance,
        ("POST", "/api/v1/ae-titles") | ("POST", "/api/v1/users") | ("POST", "/api/v1/devices") => {
            Aim::BodyInstitution
        }
        ("POST", "/api/v1/users/{}/disable")
        | ("POST", "/api/v1/users/{}/role")
        | ("POST", "/api/v1/users/{}/password")
        | ("POST", "/api/v1/users/{}/totp/reset") => Aim::PathUser,
        ("PATCH", "/api/v1/institutions/{}") => Aim::PathInstitution,
        ("DELETE", "/api/v1/ae-titles/{}") => Aim::PathAe,
        ("POST", "/api/v1/devices/{}/revoke") => Aim::PathDevice,
        ("GET", "/api/v1/studies") => Aim::StudyList,
        ("GET", "/api/v1/studies/{}") => Aim::PathStudy,
        ("GET", "/api/v1/stats/ecg-coverage")
        | ("GET", "/api/v1/stats/volumes")
        | ("GET", "/api/v1/stats/turnaround")
        | ("GET", "/api/v1/stats/remote-reads")
        | ("GET", "/api/v1/stats/grassroots")
        | ("GET", "/api/v1/stats/criticals")
        | ("GET", "/api/v1/stats/recognition") => Aim::OwnAlliance,
        ("POST", "/api/v1/ecg") | ("POST", "/api/v1/ecg/uploads") => Aim::Upload,
        ("HEAD", "/api/v1/ecg/uploads/{}")
        | ("PATCH", "/api/v1/ecg/uploads/{}")
        | ("GET", "/api/v1/ecg/uploads/{}") => Aim::PathUpload,
        ("GET", "/api/v1/ecg/{}")
        | ("GET", "/api/v1/ecg/{}/original")
        | ("GET", "/api/v1/ecg/{}/waveform")
        | ("GET", "/api/v1/ecg/{}/render.svg")
        | ("GET", "/api/v1/ecg/{}/render.png") => Aim::PathEcg,
        ("GET", "/api/v1/ecg") => Aim::EcgByStudy,
        // worklist (issue #6)
        ("GET", "/api/v1/notifications") | ("POST", "/api/v1/notifications/{}/read") => Aim::None,
        ("GET", "/api/v1/pools")
        | ("GET", "/api/v1/routing-rules")
        | ("GET", "/api/v1/webhooks")
        | ("GET", "/api/v1/worklist")
        | ("POST", "/api/v1/worklist/next")
        | ("GET", "/api/v1/worklist/events") => Aim::OwnAlliance,
        ("POST", "/api/v1/pools")
        | ("POST", "/api/v1/routing-rules")
        | ("POST", "/api/v1/webhooks") => Aim::AllianceCreate,
        ("PATCH", "/api/v1/pools/{}") | ("GET", "/api/v1/pools/{}/members") => Aim::PathPool,
        ("PUT" | "DELETE", "/api/v1/pools/{}/members/{}") => Aim::PathMember,
        ("PUT" | "DELETE", "/api/v1/routing-rules/{}") => Aim::PathRule,
        ("POST", "/api/v1/routing-rules/dry-run") => Aim::DryRun,
        ("DELETE", "/api/v1/webhooks/{}") | ("GET", "/api/v1/webhooks/{}/deliveries") => {
            Aim::PathWebhook
        }
        ("POST", "/api/v1/webhooks/deliveries/{}/retry") => Aim::PathDelivery,
        ("POST", "/api/v1/studies/{}/complete") => Aim::PathStudy,
        ("GET", "/api/v1/worklist/{}")
        | ("GET", "/api/v1/worklist/{}/priors")
        | ("POST", "/api/v1/worklist/{}/claim")
        | ("POST", "/api/v1/worklist/{}/heartbeat")
        | ("POST", "/api/v1/worklist/{}/release")
        | ("POST", "/api/v1/worklist/{}/reassign")
        | ("POST", "/api/v1/worklist/{}/break-lock")
        | ("POST", "/api/v1/worklist/{}/cancel")
        | ("POST", "/api/v1/worklist/{}/priority") => Aim::PathWork,
        // reports (issue #7)
        ("GET", "/api/v1/report-templates")
        | ("GET", "/api/v1/exam-types")
        | ("GET", "/api/v1/critical-categories")
        | ("GET", "/api/v1/signing-keys") => Aim::None,
        ("PUT", "/api/v1/report-templates/{}")
        | ("PUT", "/api/v1/exam-types/{}")
        | ("PUT", "/api/v1/critical-categories") => Aim::Catalogue,
        ("GET", "/api/v1/recognition") => Aim::OwnAlliance,
        ("POST", "/api/v1/me/signing-key") => Aim::OwnInstitution,
        ("PUT", "/api/v1/users/{}/signing-authority") => Aim::PathSigner,
        ("PUT", "/api/v1/users/{}/duty-schedule") => Aim::PathDuty,
        ("PATCH", "/api/v1/institutions/{}/report-settings") => Aim::PathReportSettings,
        ("GET", "/api/v1/worklist/{}/report-prefill") | ("POST", "/api/v1/worklist/{}/report") => {
            Aim::PathWork
        }
        ("GET", "/api/v1/reports")
        | ("GET", "/api/v1/critical-values")
        | ("GET", "/api/v1/reports/events") => Aim::ReportList,
        ("GET", "/api/v1/reports/{}")
        | ("GET", "/api/v1/reports/{}/verify")
        | ("GET", "/api/v1/reports/{}/signed")
        | ("GET", "/api/v1/reports/{}/pdf")
        | ("GET", "/api/v1/reports/{}/pushes")
        | ("GET", "/api/v1/fhir/DiagnosticReport/{}")
        | ("POST", "/api/v1/reports/{}/submit")
        | ("POST", "/api/v1/reports/{}/sign")
        | ("POST", "/api/v1/reports/{}/return")
        | ("POST", "/api/v1/reports/{}/addenda")
        | ("POST", "/api/v1/reports/{}/correct")
        | ("POST", "/api/v1/reports/{}/critical") => Aim::PathReport,
        ("POST", "/api/v1/critical-values/{}/ack") => Aim::PathCritical,
        ("POST", "/api/v1/report-pushes/{}/retry") => Aim::PathPush,
        _ => return None,
    })
}

/// `/api/v1/users/{id}/disable` → `/api/v1/users/{}/disable`.
fn template(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// Every (METHOD, path) of an OpenAPI document under `/api/v1`.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ] {
            if item.get(method).is_some() {
                ops.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    ops.sort();
    ops
}

#[derive(Debug, Clone)]
struct Inst {
    id: i64,
    alliance_id: i64,
    alliance: String,
}

struct Caller {
    name: String,
    token: Option<String>,
    /// None: anonymous or device.
    principal: Option<Principal>,
    device: bool,
    /// The login of the user (for fresh tokens).
    login: Option<String>,
    /// The user's id (pool memberships, held work items).
    user_id: Option<i64>,
}

impl Caller {
    fn may(&self, action: Action, target: TargetScope) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|p| authorize(p, action, target).is_allowed())
    }
    /// Refused on an object the route looks up, is the caller told that it does not
    /// exist (404) rather than 403? When the caller may do the action at all (else the
    /// route refuses before the look-up) but may not know the object exists.
    fn hidden(&self, action: Action, target: TargetScope) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|p| ever_permitted(p.kind, action) && !visible(p, target))
    }
    fn sees(&self, target: TargetScope) -> bool {
        self.principal.as_ref().is_some_and(|p| visible(p, target))
    }
    /// The answer for an object that does not exist: 404 for who may do the action at
    /// all, 403 for who may not (refused before the look-up).
    fn unknown_status(&self, action: Action) -> u16 {
        if self
            .principal
            .as_ref()
            .is_some_and(|p| ever_permitted(p.kind, action))
        {
            404
        } else {
            403
        }
    }
    fn superadmin(&self) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|p| p.role() == Some(Role::Superadmin))
    }
}

struct Fixture {
    hub: TestHub,
    api: Api,
    inst: HashMap<&'static str, Inst>,
    studies: Vec<(&'static str, String)>,
    callers: Vec<Caller>,
    /// One ECG per institution: (institution, ECG id, study UID).
    ecgs: Vec<(&'static str, i64, String)>,
    /// One resumable upload per institution T and H2: (institution, upload id).
    uploads: Vec<(&'static str, String)>,
    /// The hub's index (work items and pool memberships, read as the matrix runs).
    catalog: dxhub_store::SqlCatalog,
    wl: Wl,
    rp: Rp,
}

/// The report objects of the fixture (issue #7), each on an ECG of its own (the work items
/// of `Wl` stay as they are), written through the catalog by the pool reader of the
/// alliance (no caller: callers are never the author).
struct Rp {
    /// (institution, report id, study UID): a signed report of each institution, then a
    /// submitted one of H and of H2.
    reports: Vec<(&'static str, i64, String)>,
    /// (institution, critical value id, study UID): one of each signed report.
    criticals: Vec<(&'static str, i64, String)>,
    /// (institution, push-back id): the one each signed report queued.
    pushes: Vec<(&'static str, i64)>,
}

/// The worklist objects of the fixture. Alliances are named by an institution of theirs
/// (H for A, H2 for B).
struct Wl {
    /// (alliance, pool name) → pool id (the default pools of every new alliance).
    pools: HashMap<(&'static str, &'static str), i64>,
    /// A reader of each alliance who is no caller: the member the membership routes set
    /// and remove.
    spare_reader: HashMap<&'static str, i64>,
    /// A clinic doctor of each alliance who is no caller: whose duty schedule is set.
    spare_clinic: HashMap<&'static str, i64>,
    /// A webhook (all events) of each alliance, and one of its deliveries.
    webhook: HashMap<&'static str, i64>,
    delivery: HashMap<&'static str, i64>,
    /// (institution, work item id): the CT study and the ECG of each institution.
    items: Vec<(&'static str, i64)>,
    /// A notification of reader.h (a reassignment): (login, notification id).
    notification: (&'static str, i64),
}

impl Wl {
    fn pool(&self, alliance: &'static str, name: &'static str) -> i64 {
        self.pools[&(alliance, name)]
    }
}

/// The alliances, by an institution of theirs.
const ALLIANCES: [&str; 2] = [H, H2];

fn now_us() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    i64::try_from(d.as_micros()).expect("time")
}

fn member_spec() -> MemberSpec {
    MemberSpec {
        subspecialty: None,
        max_open_claims: 50,
        schedule: None,
    }
}

/// A webhook that never answers (deliveries fail and stay in the list).
fn webhook_spec(alliance_id: i64) -> NewWebhook {
    NewWebhook {
        alliance_id,
        url: "http://127.0.0.1:9/authz-matrix".into(),
        secret: "authz-matrix-secret-0123456789".into(),
        events: vec!["*".into()],
    }
}

/// A small DICOM 12-lead ECG (2 s, 500 Hz) with fresh UIDs, written by dxhub's writer.
fn ecg_dicom(patient_id: &str) -> Vec<u8> {
    use dxhub_ecg::{Ecg, Lead, LeadCode};
    let n = 1000;
    let leads = LeadCode::STANDARD_12
        .iter()
        .enumerate()
        .map(|(k, code)| Lead {
            code: code.clone(),
            samples_uv: (0..n)
                .map(|i| ((i as f32 / 50.0 + k as f32).sin() * 500.0).round())
                .collect(),
        })
        .collect();
    let mut ecg = Ecg {
        leads,
        sample_rate_hz: 500.0,
        ..Ecg::default()
    };
    ecg.patient.id = Some(patient_id.to_owned());
    ecg.acquired_at = Some("20261122081500".into());
    let ids = dxhub_ecg::write::WriteIds {
        study_instance_uid: new_uid(),
        series_instance_uid: new_uid(),
        sop_instance_uid: new_uid(),
        series_number: 1,
        instance_number: 1,
        ..Default::default()
    };
    dxhub_ecg::write::to_dicom(&ecg, &ids).expect("ECG DICOM")
}

/// A complete report draft for a work item of `kind` (`ECG` or `CT`).
fn draft_body(kind: &str) -> Value {
    let (template, qc) = if kind == "ECG" {
        ("ecg_12_lead", "acceptable")
    } else {
        ("ct_head_plain", "jia")
    };
    json!({
        "template_code": template,
        "sections": { "impression": "授权矩阵：未见明显异常。" },
        "qc_grade": qc,
    })
}

fn scope_of(i: &Inst) -> TargetScope {
    TargetScope::Institution {
        institution_id: i.id,
        alliance_id: i.alliance_id,
    }
}

/// Whether the study is routed to the caller: a work item of it, or of another study of
/// the same patient, is in one of the caller's pools or held by the caller. Computed here
/// from the work items and memberships as they are now (the matrix claims and releases as
/// it runs), by the rule the README states, not by the hub's own query.
async fn routed(f: &Fixture, c: &Caller, uid: &str) -> bool {
    let Some(me) = c.user_id else {
        return false;
    };
    let pools = pools_of(f, c).await;
    let items = f
        .catalog
        .list_work_items(&WorkFilter {
            states: WorkState::ALL.to_vec(),
            limit: 100_000,
            ..WorkFilter::default()
        })
        .await
        .expect("work items");
    let identity = items
        .iter()
        .find(|w| w.study_instance_uid == uid)
        .and_then(|w| w.identity_hash.clone());
    items.iter().any(|w| {
        let mine = w.claimed_by == Some(me) || w.pool_id.is_some_and(|p| pools.contains(&p));
        let same =
            w.study_instance_uid == uid || (identity.is_some() && w.identity_hash == identity);
        mine && same
    })
}

/// Whether the study's result is recognised (HR) by the rule the README states, read here
/// from the report, its version in force and the exam catalogue, not by the hub's query:
/// signed, an exam the alliance marks eligible, a passing QC grade (甲/乙, acceptable ECG).
async fn recognised(f: &Fixture, alliance_id: i64, uid: &str) -> bool {
    let Some(report) = f.catalog.report_of_study(uid).await.expect("report") else {
        return false;
    };
    let Some(version) = report.signed_version else {
        return false;
    };
    let qc = f
        .catalog
        .report_version(report.id, version)
        .await
        .expect("version")
        .and_then(|v| v.qc_grade);
    let eligible = f
        .catalog
        .list_exam_types(alliance_id)
        .await
        .expect("exam types")
        .iter()
        .any(|e| Some(&e.code) == report.exam_code.as_ref() && e.recognition_eligible);
    report.alliance_id == alliance_id
        && eligible
        && matches!(qc.as_deref(), Some("jia" | "yi" | "acceptable"))
}

/// The policy target of the study `uid` of institution `at`, as the caller sees it.
async fn study_scope(f: &Fixture, c: &Caller, at: &str, uid: &str) -> TargetScope {
    let i = &f.inst[at];
    TargetScope::Study {
        institution_id: i.id,
        alliance_id: i.alliance_id,
        routed: routed(f, c, uid).await,
        recognised: recognised(f, i.alliance_id, uid).await,
    }
}

/// The target of the study as a list sees it: lists (studies, QIDO, reports, critical
/// values) stay narrowed to the caller's institutions — a recognised result of another
/// institution is opened by its UID from the recognition lookup, never listed.
async fn listed_scope(f: &Fixture, c: &Caller, at: &str, uid: &str) -> TargetScope {
    study_scope(f, c, at, uid).await.unrecognised()
}

/// May the caller list `action`'s objects at all (the lists are then narrowed)?
fn may_list(c: &Caller, action: Action) -> bool {
    c.principal
        .as_ref()
        .is_some_and(|p| list_scope(p, action) != ListScope::Nothing)
}

async fn fixture(opts: HubOptions) -> Fixture {
    let mut hub = TestHub::spawn(opts.local_webhooks());
    hub.admin_ok(&[
        "institution",
        "add",
        "--alliance",
        ALLIANCE_A,
        "--name",
        V,
        "--level",
        "village",
        "--parent",
        T,
    ]);
    hub.admin_ok(&["alliance", "add", ALLIANCE_B]);
    hub.admin_ok(&[
        "institution",
        "add",
        "--alliance",
        ALLIANCE_B,
        "--name",
        H2,
        "--level",
        "county",
    ]);
    for (inst, ae) in [(V, "VILLAGE"), (H, "COUNTY"), (H2, "NEIGHBOUR")] {
        hub.admin_ok(&["ae", "add", "--institution", inst, "--ae-title", ae]);
    }
    // AE titles are read at association time; restart anyway so no cache can hide them
    hub.stop();
    hub.start();
    let catalog = hub.catalog().await;
    // the alliances' webhooks first, so the fixture's work items give them deliveries
    let list = admin_list(&hub, "institution");
    let alliance_of = |name: &str| {
        list.iter()
            .find(|i| i["name"] == name)
            .and_then(|i| i["alliance_id"].as_i64())
            .expect("alliance of the institution")
    };
    let mut wl = Wl {
        pools: HashMap::new(),
        spare_reader: HashMap::new(),
        spare_clinic: HashMap::new(),
        webhook: HashMap::new(),
        delivery: HashMap::new(),
        items: Vec::new(),
        notification: ("", 0),
    };
    for a in ALLIANCES {
        let hook = catalog
            .add_webhook(&webhook_spec(alliance_of(a)))
            .await
            .expect("webhook");
        wl.webhook.insert(a, hook.id);
        let pools = catalog
            .list_pools(Some(alliance_of(a)))
            .await
            .expect("pools");
        for name in ["ecg", "radiology", "ultrasound"] {
            let p = pools
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("default pool {name} of the alliance of {a}: {pools:?}"));
            wl.pools.insert((a, name), p.id);
        }
    }
    let studies = vec![
        (T, store_study(&hub, "CLINIC", "MX-T")),
        (V, store_study(&hub, "VILLAGE", "MX-V")),
        (H, store_study(&hub, "COUNTY", "MX-H")),
        (H2, store_study(&hub, "NEIGHBOUR", "MX-H2")),
    ];

    let list = admin_list(&hub, "institution");
    let mut inst = HashMap::new();
    let mut tree: BTreeMap<i64, Vec<(i64, Option<i64>)>> = BTreeMap::new();
    for i in &list {
        let id = i["id"].as_i64().expect("id");
        let alliance_id = i["alliance_id"].as_i64().expect("alliance_id");
        tree.entry(alliance_id)
            .or_default()
            .push((id, i["parent_id"].as_i64()));
        for name in [H, T, V, H2] {
            if i["name"] == name {
                inst.insert(
                    name,
                    Inst {
                        id,
                        alliance_id,
                        alliance: i["alliance_name"].as_str().unwrap_or_default().to_owned(),
                    },
                );
            }
        }
    }
    assert_eq!(inst.len(), 4, "{list:?}");
    assert_ne!(inst[H].alliance_id, inst[H2].alliance_id);

    let users: [(&str, &str, &'static str); 8] = [
        ("tech.t", "clinic_tech", T),
        ("doc.t", "clinic_doctor", T),
        ("reader.h", "reader", H),
        ("senior.h", "senior_reader", H),
        ("gadmin.h", "group_admin", H),
        ("auditor.h", "auditor", H),
        ("root.h", "superadmin", H),
        ("gadmin.h2", "group_admin", H2),
    ];
    let mut callers = vec![Caller {
        name: "anonymous".into(),
        token: None,
        principal: None,
        device: false,
        login: None,
        user_id: None,
    }];
    callers.push(Caller {
        name: "device@T".into(),
        token: Some(add_device(&hub, T, "ECG-T-1")),
        principal: None,
        device: true,
        login: None,
        user_id: None,
    });
    // a device of B, for the foreign-content checks of the device lists
    let device_h2 = add_device(&hub, H2, "ECG-H2-1");
    let device_t = callers[1].token.clone().expect("device token");
    let device_v = add_device(&hub, V, "ECG-V-1");
    let device_h = add_device(&hub, H, "ECG-H-1");
    let http = reqwest::Client::new();
    let mut ecgs = Vec::new();
    let mut uploads = Vec::new();
    for (at, token) in [
        (T, &device_t),
        (V, &device_v),
        (H, &device_h),
        (H2, &device_h2),
    ] {
        let r = http
            .post(hub.http_url("/api/v1/ecg"))
            .bearer_auth(token)
            .body(ecg_dicom(&format!("MX-ECG-{}", short(at))))
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status(), 201, "ECG upload at {at}");
        let v: Value = r.json().await.expect("json");
        ecgs.push((
            at,
            v["id"].as_i64().expect("id"),
            v["study_instance_uid"].as_str().expect("study").to_owned(),
        ));
        if at == T || at == H2 {
            let r = http
                .post(hub.http_url("/api/v1/ecg/uploads"))
                .bearer_auth(token)
                .header("tus-resumable", "1.0.0")
                .header("upload-length", "100")
                .send()
                .await
                .expect("upload creation");
            assert_eq!(r.status(), 201, "upload creation at {at}");
            let loc = r.headers()["location"].to_str().expect("location");
            uploads.push((at, loc.rsplit('/').next().expect("id").to_owned()));
        }
    }
    for (login, role, at) in users {
        let user_id = add_user(&hub, at, login, role, PASSWORD);
        // pool members: reader.h of A's radiology pool (the CT studies), senior.h of its
        // ECG pool; each is a non-member of the other's items
        let pool = match login {
            "reader.h" => Some(wl.pool(H, "radiology")),
            "senior.h" => Some(wl.pool(H, "ecg")),
            _ => None,
        };
        if let Some(pool) = pool {
            catalog
                .set_pool_member(pool, user_id, &member_spec())
                .await
                .expect("pool member");
        }
        let role: Role = role.parse().expect("role");
        let i = &inst[at];
        callers.push(Caller {
            name: format!("{login} ({role})"),
            token: Some(issue_token(&hub, login, "2h")),
            principal: Some(Principal::new(
                PrincipalKind::User { role },
                i.id,
                i.alliance_id,
                &tree[&i.alliance_id],
            )),
            device: false,
            login: Some(login.to_owned()),
            user_id: Some(user_id),
        });
    }
    // readers who are no callers: members of every pool of their alliance (reassignment
    // targets), and the victims of the membership routes (members of none)
    let mut pool_reader: HashMap<&'static str, (i64, String)> = HashMap::new();
    for a in ALLIANCES {
        let s = short(a).to_ascii_lowercase();
        let login = format!("pool.reader.{s}");
        let member = add_user(&hub, a, &login, "reader", PASSWORD);
        pool_reader.insert(a, (member, login));
        for name in ["ecg", "radiology", "ultrasound"] {
            catalog
                .set_pool_member(wl.pool(a, name), member, &member_spec())
                .await
                .expect("pool member");
        }
        let spare = add_user(&hub, a, &format!("spare.reader.{s}"), "reader", PASSWORD);
        wl.spare_reader.insert(a, spare);
        let clinic = add_user(
            &hub,
            a,
            &format!("spare.clinic.{s}"),
            "clinic_doctor",
            PASSWORD,
        );
        wl.spare_clinic.insert(a, clinic);
    }
    // a work item per study: the CT of each institution (radiology) and its ECG (ECG)
    for (at, uid) in studies
        .iter()
        .map(|(at, uid)| (*at, uid.clone()))
        .chain(ecgs.iter().map(|(at, _, uid)| (*at, uid.clone())))
    {
        catalog
            .make_ready(&uid, now_us(), &ReadySettings::default())
            .await
            .expect("make ready");
        let item = catalog
            .work_item_of_study(&uid)
            .await
            .expect("work item")
            .unwrap_or_else(|| panic!("no work item for the study of {at}"));
        wl.items.push((at, item.id));
    }
    // a notification of reader.h: the CT item of H reassigned to it
    let id_of = |login: &str| {
        callers
            .iter()
            .find(|c| c.login.as_deref() == Some(login))
            .and_then(|c| c.user_id)
            .expect("user")
    };
    let reader_h = id_of("reader.h");
    let ct_of_h = wl.items.iter().find(|(at, _)| *at == H).expect("item").1;
    catalog
        .reassign(
            ct_of_h,
            Some(reader_h),
            "authz matrix fixture",
            &Actor::user(id_of("root.h"), "root.h"),
            now_us(),
            600,
        )
        .await
        .expect("reassign");
    let n = catalog
        .list_notifications(reader_h, false, 10)
        .await
        .expect("notifications");
    wl.notification = (
        "reader.h",
        n.first().expect("a notification of reader.h").id,
    );
    for a in ALLIANCES {
        let d = catalog
            .list_deliveries(wl.webhook[&a], None)
            .await
            .expect("deliveries");
        let d = d
            .first()
            .unwrap_or_else(|| panic!("no webhook delivery in the alliance of {a}"));
        wl.delivery.insert(a, d.id);
    }
    // reports: an ECG of each institution, claimed, drafted and submitted by the pool
    // reader of its alliance, then signed (a fake signature under a fake key of that
    // reader: the store never checks it), which queues a push-back to the institution's
    // PACS (one that never answers), and flagged critical; H and H2 get a second report,
    // left submitted
    let mut rp = Rp {
        reports: Vec::new(),
        criticals: Vec::new(),
        pushes: Vec::new(),
    };
    let pacs = PacsTarget {
        ae_title: "AUTHZPACS".into(),
        host: "127.0.0.1".into(),
        port: 9,
    };
    for at in [T, V, H, H2] {
        catalog
            .set_institution_report_settings(inst[at].id, None, Some(Some(pacs.clone())))
            .await
            .expect("report settings");
    }
    let mut key_of = HashMap::new();
    for (a, byte) in [(H, "5a"), (H2, "5b")] {
        let public = format!("04{}", byte.repeat(64));
        let bytes = dxhub_core::report::from_hex(&public).expect("hex");
        let key = catalog
            .add_signing_key(
                pool_reader[&a].0,
                &public,
                &dxhub_core::report::fingerprint(&bytes),
                "authz-matrix-sealed",
                "authz-matrix",
                now_us(),
            )
            .await
            .expect("signing key");
        key_of.insert(a, key.id);
    }
    for (at, sign) in [
        (T, true),
        (V, true),
        (H, true),
        (H2, true),
        (H, false),
        (H2, false),
    ] {
        let token = match at {
            T => &device_t,
            V => &device_v,
            H => &device_h,
            _ => &device_h2,
        };
        let r = http
            .post(hub.http_url("/api/v1/ecg"))
            .bearer_auth(token)
            .body(ecg_dicom(&format!("MX-RPT-{}", short(at))))
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status(), 201, "report ECG upload at {at}");
        let v: Value = r.json().await.expect("json");
        let study = v["study_instance_uid"].as_str().expect("study").to_owned();
        catalog
            .make_ready(&study, now_us(), &ReadySettings::default())
            .await
            .expect("make ready");
        let item = catalog
            .work_item_of_study(&study)
            .await
            .expect("work item")
            .unwrap_or_else(|| panic!("no work item for the report ECG of {at}"));
        let a = if inst[at].alliance_id == inst[H2].alliance_id {
            H2
        } else {
            H
        };
        let (reader, login) = pool_reader[&a].clone();
        let actor = Actor::user(reader, &login);
        match catalog
            .claim(item.id, &actor, now_us(), 7200)
            .await
            .expect("claim")
        {
            Claim::Claimed(_) => {}
            Claim::Refused(why) => panic!("claim of the report ECG of {at}: {why:?}"),
        }
        let spec = DraftSpec {
            work_item_id: item.id,
            template_code: "ecg_12_lead".into(),
            // an exam the default catalogue marks recognition-eligible: the signed reports
            // carry the HR mark, which opens them to the clinic doctors of the alliance
            exam_code: Some("ecg_12_lead".into()),
            kind: "ecg".into(),
            content: VersionBody {
                body: json!({ "sections": { "impression": "窦性心律，正常心电图。" }, "fields": {} }),
                qc_grade: Some("acceptable".into()),
                ..Default::default()
            },
            base_version: None,
        };
        let (report, version) = catalog
            .save_draft(&spec, &actor, now_us(), 7200)
            .await
            .expect("draft");
        catalog
            .submit_report(report.id, version.version, &actor, now_us(), 7200)
            .await
            .expect("submit");
        if sign {
            let now = now_us();
            let content = dxhub_core::report::SignedContent {
                report_id: report.id,
                version: version.version,
                study_instance_uid: study.clone(),
                source_institution: at.to_owned(),
                patient_identity_hash: String::new(),
                author: login.clone(),
                verifier: login.clone(),
                written_at: now,
                signed_at: now,
                body: BTreeMap::new(),
                instances: Vec::new(),
            };
            let signature = Signature {
                signer_id: reader,
                key_id: key_of[&a],
                content: serde_json::to_string(&content).expect("content"),
                signature: "ab".repeat(64),
            };
            catalog
                .sign_report(report.id, version.version, &signature, &actor, now, 7200)
                .await
                .expect("sign");
            let push = catalog
                .list_pushes(report.id)
                .await
                .expect("pushes")
                .first()
                .unwrap_or_else(|| panic!("no push-back of the report of {at}"))
                .id;
            rp.pushes.push((at, push));
            let category = catalog
                .list_critical_categories(inst[at].alliance_id)
                .await
                .expect("categories")
                .first()
                .expect("a critical-value category")
                .code
                .clone();
            let critical = catalog
                .raise_critical(report.id, &category, None, &actor, now_us(), 3600)
                .await
                .expect("critical value");
            rp.criticals.push((at, critical.id, study.clone()));
        }
        rp.reports.push((at, report.id, study));
    }
    let api = Api::new(&hub);
    Fixture {
        hub,
        api,
        inst,
        studies,
        callers,
        ecgs,
        uploads,
        catalog,
        wl,
        rp,
    }
}

/// What a request did, to check after the matrix ran (through the CLI, not the API).
#[derive(Debug)]
enum Effect {
    UserCreated(String, bool),
    DeviceCreated(String, bool),
    AeCreated(String, bool),
    InstitutionCreated(String, bool),
    AllianceCreated(String, bool),
    UserDisabled(String, bool),
    DeviceRevoked(String, bool),
    /// New name of a renamed institution.
    InstitutionRenamed(String, bool),
    AeDeleted(String, bool),
    /// Login of a user whose role was set to `clinic_doctor`.
    UserRoleSet(String, bool),
}

struct Run<'a> {
    f: &'a Fixture,
    failures: Vec<String>,
    effects: Vec<Effect>,
    seq: usize,
    checked: usize,
    /// Study reads by users answered 200, and refused by the policy (403/404).
    study_reads: (usize, usize),
    /// The audit entries requests of patient-data routes must have left (by request id).
    audits: Vec<V1Expect>,
    /// The operation being checked, and the answers of each operation by status.
    current: String,
    statuses: BTreeMap<String, BTreeMap<u16, usize>>,
}

/// What a request of a patient-data route must have left in the audit log.
#[derive(Debug)]
struct V1Expect {
    request_id: String,
    what: String,
    actor: String,
    action: &'static str,
    want: V1Audit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum V1Audit {
    /// Anonymous: nothing.
    Nothing,
    /// Refused by the policy (or a device token): exactly one `denied` entry.
    Denied,
    /// Answered 2xx: a `success` entry, no `denied` one.
    Success,
    /// Allowed but answered otherwise (the item's state, the body): no `denied` entry.
    NotDenied,
    /// A report verification answered: its result (`success` or `failure`), no `denied`.
    Verified,
}

impl Run<'_> {
    fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    fn unique(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{}", self.seq)
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.f.api.req(m, path, token);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = Reply::of(rb.send().await.expect("request")).await;
        self.tally(&r);
        r
    }

    fn tally(&mut self, r: &Reply) {
        *self
            .statuses
            .entry(self.current.clone())
            .or_default()
            .entry(r.status)
            .or_default() += 1;
    }

    /// `send` with an `X-Request-Id` (for the audit check).
    async fn send_rid(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (Reply, String) {
        self.seq += 1;
        let rid = format!("authz-v1-{}", self.seq);
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.f.api.req(m, path, token).header("x-request-id", &rid);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = Reply::of(rb.send().await.expect("request")).await;
        self.tally(&r);
        (r, rid)
    }

    /// What the request `rid` of a patient-data route (`action`) must have left in the
    /// audit log, given its answer.
    fn audited(
        &mut self,
        c: &Caller,
        rid: String,
        what: String,
        action: Option<&'static str>,
        r: &Reply,
    ) {
        let Some(action) = action else { return };
        let want = if c.token.is_none() {
            V1Audit::Nothing
        } else if r.status == 403
            && matches!(r.code().as_str(), "forbidden" | "device-token-upload-only")
            // a fixture object answered 404: refused and hidden from the caller
            || (r.status, r.code().as_str()) == (404, "not-found")
        {
            V1Audit::Denied
        } else if (200..300).contains(&r.status) {
            V1Audit::Success
        } else {
            V1Audit::NotDenied
        };
        self.audits.push(V1Expect {
            request_id: rid,
            what,
            actor: c.actor().1,
            action,
            want,
        });
    }

    /// A state-changing request the policy decides, whose allowed answer depends on the
    /// object's state or the body (409, 404, 422 …): allowed → anything but 401/403 and
    /// 5xx (403 only with a code of `business_403`, domain refusals such as
    /// `not-a-pool-member` or the report state machine's `not-author`); denied → 403
    /// `forbidden`.
    fn decided_loose(
        &mut self,
        c: &Caller,
        op: &str,
        what: &str,
        (allowed, hidden): (bool, bool),
        business_403: &[&str],
        r: &Reply,
    ) {
        self.checked += 1;
        if allowed {
            let refused = r.status == 401
                || r.status >= 500
                || (r.status == 403 && !business_403.contains(&r.code().as_str()));
            if refused {
                self.fail(format!(
                    "{op} {} on {what}: allowed by policy, got {r}",
                    c.name
                ));
            }
        } else {
            self.denied(c, op, what, hidden, r);
        }
    }

    /// The common part: anonymous → 401, device → 403; true when the caller is a user
    /// (the route-specific expectation follows).
    fn gate(&mut self, c: &Caller, op: &str, r: &Reply) -> bool {
        if c.token.is_none() {
            if (r.status, r.code().as_str()) != (401, "unauthenticated") {
                self.fail(format!(
                    "{op} anonymous: expected 401 unauthenticated, got {r}"
                ));
            }
            return false;
        }
        if c.device {
            if (r.status, r.code().as_str()) != (403, "device-token-upload-only") {
                self.fail(format!(
                    "{op} {}: expected 403 device-token-upload-only, got {r}",
                    c.name
                ));
            }
            return false;
        }
        true
    }

    /// A user's request the policy decides: allowed → the `ok` status; denied → 403
    /// `forbidden`, or 404 `not-found` when `hidden` (the object is one the caller may not
    /// know exists: [`Caller::hidden`]).
    fn decided(
        &mut self,
        c: &Caller,
        op: &str,
        what: &str,
        allowed: bool,
        (ok, hidden): (u16, bool),
        r: &Reply,
    ) {
        self.checked += 1;
        if allowed {
            if r.status != ok {
                self.fail(format!(
                    "{op} {} on {what}: allowed by policy, expected {ok}, got {r}",
                    c.name
                ));
            }
        } else {
            self.denied(c, op, what, hidden, r);
        }
    }

    /// A refusal: 404 `not-found` when hidden, else 403 `forbidden`.
    fn denied(&mut self, c: &Caller, op: &str, what: &str, hidden: bool, r: &Reply) {
        let want = if hidden {
            (404, "not-found")
        } else {
            (403, "forbidden")
        };
        if (r.status, r.code().as_str()) != want {
            self.fail(format!(
                "{op} {} on {what}: denied by policy, expected {} {}, got {r}",
                c.name, want.0, want.1
            ));
        }
    }

    /// An object that does not exist: 404 for who may do the action at all, 403 before
    /// the look-up for who may not.
    fn unknown(&mut self, c: &Caller, op: &str, action: Action, r: &Reply) {
        let want = c.unknown_status(action);
        if r.status != want {
            self.fail(format!(
                "{op} {}: unknown object answered {r}, expected {want}",
                c.name
            ));
        }
    }
}

async fn matrix(opts: HubOptions) {
    let f = fixture(opts).await;

    // --- the route list: OpenAPI document (compiled and served) vs the registry
    let compiled = serde_json::to_value(dxhub_api::openapi()).expect("openapi to JSON");
    let served = f.api.get("/api/v1/openapi.json", None).await;
    assert_eq!(served.status, 200, "openapi.json is public: {served}");
    let ops = operations(&served.json());
    assert_eq!(
        ops,
        operations(&compiled),
        "served and compiled OpenAPI differ"
    );
    let v1: Vec<(String, String)> = ops
        .into_iter()
        .filter(|(_, p)| p.starts_with("/api/v1/"))
        .collect();
    let rules = route_rules();
    let mut problems = Vec::new();
    for (m, p) in &v1 {
        if !rules
            .iter()
            .any(|r| r.method.eq_ignore_ascii_case(m) && r.path == p)
        {
            problems.push(format!(
                "{m} {p}: in the OpenAPI document but not in route_rules()"
            ));
        }
        if aim(m, &template(p)).is_none() {
            problems.push(format!(
                "{m} {p}: this test does not know how to aim it (extend aim())"
            ));
        }
    }
    for r in rules {
        if !v1
            .iter()
            .any(|(m, p)| r.method.eq_ignore_ascii_case(m) && r.path == p)
        {
            problems.push(format!(
                "{} {}: in route_rules() but not in the OpenAPI document",
                r.method, r.path
            ));
        }
    }
    // the contract's routes (API.md) are all there
    for (m, p) in [
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/logout"),
        ("GET", "/api/v1/auth/me"),
        ("POST", "/api/v1/auth/totp/enroll"),
        ("POST", "/api/v1/auth/totp/confirm"),
        ("GET", "/api/v1/alliances"),
        ("POST", "/api/v1/alliances"),
        ("GET", "/api/v1/institutions"),
        ("POST", "/api/v1/institutions"),
        ("GET", "/api/v1/ae-titles"),
        ("POST", "/api/v1/ae-titles"),
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("POST", "/api/v1/users/{}/disable"),
        ("POST", "/api/v1/users/{}/role"),
        ("POST", "/api/v1/users/{}/password"),
        ("PATCH", "/api/v1/institutions/{}"),
        ("DELETE", "/api/v1/ae-titles/{}"),
        ("GET", "/api/v1/devices"),
        ("POST", "/api/v1/devices"),
        ("POST", "/api/v1/devices/{}/revoke"),
        ("GET", "/api/v1/studies"),
        ("GET", "/api/v1/studies/{}"),
        ("GET", "/api/v1/audit"),
    ] {
        if !v1.iter().any(|(om, op)| om == m && template(op) == p) {
            problems.push(format!(
                "{m} {p}: in API.md but not in the OpenAPI document"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "route registry problems:\n{}",
        problems.join("\n")
    );

    let mut run = Run {
        f: &f,
        failures: Vec::new(),
        effects: Vec::new(),
        seq: 0,
        checked: 0,
        study_reads: (0, 0),
        audits: Vec::new(),
        current: String::new(),
        statuses: BTreeMap::new(),
    };
    let root = f
        .callers
        .iter()
        .find(|c| c.superadmin())
        .and_then(|c| c.token.clone())
        .expect("superadmin");
    // the newest audit entry before the matrix
    let r = f.api.get("/api/v1/audit?limit=1", Some(&root)).await;
    assert_eq!(r.status, 200, "{r}");
    let mark = r.json()["entries"][0]["id"]
        .as_i64()
        .expect("an audit entry");
    // the work-item changes last, in an order that lets each be allowed: claim, renew,
    // give back, reprioritise, reassign, break the lock, cancel
    let mut ordered: Vec<&(String, String)> = v1.iter().collect();
    ordered.sort_by_key(|(m, p)| {
        [
            "claim",
            "heartbeat",
            "release",
            "priority",
            "reassign",
            "break-lock",
            "cancel",
        ]
        .iter()
        .position(|x| m == "POST" && *p == format!("/api/v1/worklist/{{id}}/{x}"))
        .map_or(0, |i| i + 1)
    });
    for (method, path) in ordered {
        let rule = rules
            .iter()
            .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .expect("rule");
        let aim = aim(method, &template(path)).expect("aim");
        run.current = format!("{method} {path}");
        for c in &f.callers {
            check_operation(&mut run, method, path, rule, aim, c).await;
        }
    }
    v1_audit(&mut run, &root, mark).await;
    for (op, by_status) in &run.statuses {
        eprintln!("{op}: {by_status:?}");
    }

    // --- effects, seen through the CLI
    let users = admin_list(&f.hub, "user");
    let devices = admin_list(&f.hub, "device");
    let aes = admin_list(&f.hub, "ae");
    let insts = admin_list(&f.hub, "institution");
    let alliances_out = f.hub.cli(&["admin", "alliance", "list"]);
    let alliances = String::from_utf8_lossy(&alliances_out.stdout).into_owned();
    let effects = std::mem::take(&mut run.effects);
    for e in &effects {
        let (what, want, got) = match e {
            Effect::UserCreated(l, w) => (
                "user created",
                *w,
                users.iter().any(|u| u["login"] == l.as_str()),
            ),
            Effect::DeviceCreated(s, w) => (
                "device created",
                *w,
                devices.iter().any(|d| d["serial"] == s.as_str()),
            ),
            Effect::AeCreated(a, w) => (
                "AE title created",
                *w,
                aes.iter().any(|x| x["ae_title"] == a.as_str()),
            ),
            Effect::InstitutionCreated(n, w) => (
                "institution created",
                *w,
                insts.iter().any(|x| x["name"] == n.as_str()),
            ),
            Effect::AllianceCreated(n, w) => {
                ("alliance created", *w, alliances.contains(n.as_str()))
            }
            Effect::UserDisabled(l, w) => (
                "user disabled",
                *w,
                users
                    .iter()
                    .any(|u| u["login"] == l.as_str() && u["disabled"] == true),
            ),
            Effect::DeviceRevoked(s, w) => (
                "device revoked",
                *w,
                devices
                    .iter()
                    .any(|d| d["serial"] == s.as_str() && !d["revoked_at"].is_null()),
            ),
            Effect::InstitutionRenamed(n, w) => (
                "institution renamed",
                *w,
                insts
                    .iter()
                    .any(|x| x["name"] == n.as_str() && x["population"] == 1234),
            ),
            Effect::AeDeleted(a, w) => (
                "AE title deleted",
                *w,
                !aes.iter().any(|x| x["ae_title"] == a.as_str()),
            ),
            Effect::UserRoleSet(l, w) => (
                "user role set",
                *w,
                users
                    .iter()
                    .any(|u| u["login"] == l.as_str() && u["role"] == "clinic_doctor"),
            ),
        };
        if want != got {
            run.fail(format!("{what}: {e:?}: expected {want}, found {got}"));
        }
    }

    // --- outside /api/v1: health is public, metrics needs an admin
    for p in ["/healthz", "/readyz"] {
        let r = f.api.get(p, None).await;
        if r.status != 200 {
            run.fail(format!("GET {p} anonymous: {r}"));
        }
    }
    for c in &f.callers {
        let r = f.api.get("/metrics", c.token.as_deref()).await;
        let admin = c
            .principal
            .as_ref()
            .and_then(Principal::role)
            .is_some_and(|r| matches!(r, Role::GroupAdmin | Role::Superadmin));
        let ok = match (&c.token, admin) {
            (None, _) => r.status == 401,
            (Some(_), true) => r.status == 200,
            (Some(_), false) => r.status == 403,
        };
        if !ok {
            run.fail(format!("GET /metrics {}: {r}", c.name));
        }
    }

    // --- every study read by a user, allowed or refused, is in the audit log
    let r = f
        .api
        .get("/api/v1/audit?action=study-read&limit=1000", Some(&root))
        .await;
    assert_eq!(r.status, 200, "{r}");
    let entries = r.json()["entries"].as_array().cloned().unwrap_or_default();
    let known: Vec<&str> = f.studies.iter().map(|(_, u)| u.as_str()).collect();
    let of_known = |outcome: &str| {
        entries
            .iter()
            .filter(|e| {
                e["outcome"] == outcome
                    && e["actor_kind"] == "user"
                    && e["object_id"].as_str().is_some_and(|o| known.contains(&o))
            })
            .count()
    };
    let (ok_reads, refused_reads) = run.study_reads;
    if of_known("success") != ok_reads {
        run.fail(format!(
            "{ok_reads} study reads answered 200, {} audited as success: {r}",
            of_known("success")
        ));
    }
    let refused_audited = entries
        .iter()
        .filter(|e| {
            e["outcome"] != "success"
                && e["actor_kind"] == "user"
                && e["object_id"].as_str().is_some_and(|o| known.contains(&o))
        })
        .count();
    if refused_audited != refused_reads {
        run.fail(format!(
            "{refused_reads} study reads refused, {refused_audited} audited as refused: {r}"
        ));
    }
    assert!(ok_reads > 0 && refused_reads > 0);

    // --- /dicomweb: its own registry, the same callers and studies
    dicomweb(&mut run).await;

    assert!(
        run.checked > 100,
        "only {} policy decisions checked",
        run.checked
    );
    assert!(
        run.failures.is_empty(),
        "{} of the matrix failed:\n{}",
        run.failures.len(),
        run.failures.join("\n")
    );
}

async fn check_operation(
    run: &mut Run<'_>,
    method: &str,
    path: &str,
    rule: &RouteRule,
    aim: Aim,
    c: &Caller,
) {
    let (policy, audit) = (rule.policy, rule.patient_data);
    let f = run.f;
    let op = format!("{method} {path}");
    let token = c.token.as_deref();
    match policy {
        RoutePolicy::Public => {
            // public: anonymous is let in (login answers on the credentials, not 401
            // unauthenticated); only anonymous is tried, to stay under the login limit
            if c.token.is_some() {
                return;
            }
            let body =
                (method == "POST").then(|| json!({ "login": "nobody", "password": "Nope-nope-1" }));
            let r = run.send(method, path, None, body.as_ref()).await;
            if r.code() == "unauthenticated" || r.status == 403 || r.status >= 500 {
                run.fail(format!("{op} is public, anonymous got {r}"));
            }
        }
        RoutePolicy::UploadOnly(action) => {
            upload_only(run, method, path, (action, audit), aim, c).await;
        }
        RoutePolicy::AnyUser => any_user(run, method, path, c).await,
        RoutePolicy::Action(action) => {
            match aim {
                Aim::None => run.fail(format!("{op}: an Action route needs an aim")),
                Aim::Upload | Aim::PathUpload => {
                    run.fail(format!("{op}: an Action route aimed as an upload route"))
                }
                Aim::Hub => {
                    let name = run.unique("联盟-");
                    let r = run
                        .send(method, path, token, Some(&json!({ "name": name })))
                        .await;
                    if run.gate(c, &op, &r) {
                        let allowed = c.may(action, TargetScope::Hub);
                        run.decided(c, &op, "the hub", allowed, (201, false), &r);
                        run.effects.push(Effect::AllianceCreated(name, allowed));
                    } else {
                        run.effects.push(Effect::AllianceCreated(name, false));
                    }
                }
                Aim::OwnAlliance => {
                    let (r, rid) = if path == "/api/v1/worklist/events" {
                        event_stream(run, path, token).await
                    } else if path == "/api/v1/recognition" {
                        // the patient of T's report (an ID of T: matched at T only)
                        let q = format!("{path}?patient=MX-RPT-T&all=true");
                        run.send_rid(method, &q, token, None).await
                    } else {
                        run.send_rid(method, path, token, None).await
                    };
                    run.audited(c, rid, format!("{op} {}", c.name), audit, &r);
                    if path == "/api/v1/worklist/next" {
                        // claims the caller's most urgent queued item: 404 nothing-queued,
                        // 409 (limit, not on duty) are allowed answers; a caller in no pool
                        // (the superadmin) may be refused by the worklist as a non-member
                        if run.gate(c, &op, &r) {
                            let p = c.principal.as_ref().expect("user");
                            let allowed = c.may(
                                action,
                                TargetScope::Alliance {
                                    alliance_id: p.alliance_id,
                                },
                            );
                            let in_no_pool = pools_of(f, c).await.is_empty();
                            run.decided_loose(
                                c,
                                &op,
                                "own alliance",
                                (allowed, false),
                                if in_no_pool {
                                    &["not-a-pool-member"]
                                } else {
                                    &[]
                                },
                                &r,
                            );
                            if r.status == 200 {
                                no_foreign_content(run, c, &op, &r);
                            }
                        }
                    } else if run.gate(c, &op, &r) {
                        if r.body.contains("authz-matrix-secret") {
                            run.fail(format!(
                                "{op} {}: a webhook secret in the answer: {r}",
                                c.name
                            ));
                        }
                        let p = c.principal.as_ref().expect("user");
                        let target = if c.superadmin() && path == "/api/v1/audit" {
                            TargetScope::Hub
                        } else {
                            TargetScope::Alliance {
                                alliance_id: p.alliance_id,
                            }
                        };
                        let allowed = c.may(action, target);
                        run.decided(c, &op, "own alliance", allowed, (200, false), &r);
                        if allowed && r.status == 200 {
                            no_foreign_content(run, c, &op, &r);
                        }
                    }
                }
                Aim::StudyList => {
                    let r = run.send(method, path, token, None).await;
                    if run.gate(c, &op, &r) {
                        let allowed = may_list(c, action);
                        run.decided(c, &op, "own institution", allowed, (200, false), &r);
                        if r.status == 200 {
                            for (at, uid) in &f.studies {
                                let may = c.may(action, listed_scope(f, c, at, uid).await);
                                let listed = r.body.contains(uid.as_str());
                                if listed && !may {
                                    run.fail(format!(
                                        "{op} {}: lists the study of {at} out of its reach",
                                        c.name
                                    ));
                                }
                                if may && !listed {
                                    run.fail(format!(
                                        "{op} {}: misses the study of {at} within its reach",
                                        c.name
                                    ));
                                }
                            }
                        }
                    }
                }
                Aim::SetupList => {
                    let r = run.send(method, path, token, None).await;
                    if run.gate(c, &op, &r) {
                        let allowed = may_list(c, action);
                        run.decided(c, &op, "within reach", allowed, (200, false), &r);
                        if r.status == 200 {
                            let key = if path.ends_with("devices") {
                                "devices"
                            } else {
                                "ae_titles"
                            };
                            let rows = r.json()[key].as_array().cloned().unwrap_or_default();
                            for row in &rows {
                                let name = row["institution_name"].as_str().unwrap_or("");
                                let within = f
                                    .inst
                                    .iter()
                                    .find(|(n, _)| **n == name)
                                    .is_some_and(|(_, i)| c.may(action, scope_of(i)));
                                if !within {
                                    run.fail(format!(
                                        "{op} {}: lists a row of {name} out of its reach",
                                        c.name
                                    ));
                                }
                            }
                            for (at, i) in &f.inst {
                                let present = rows.iter().any(|x| x["institution_name"] == *at);
                                let has_fixture = if key == "devices" {
                                    [T, H2].contains(at)
                                } else {
                                    [V, H, H2].contains(at)
                                };
                                if has_fixture && c.may(action, scope_of(i)) && !present {
                                    run.fail(format!(
                                        "{op} {}: misses the row of {at} within its reach",
                                        c.name
                                    ));
                                }
                            }
                        }
                    }
                }
                Aim::PathStudy => {
                    let studies = f.studies.clone();
                    for (at, uid) in &studies {
                        let concrete = replace_param(path, uid);
                        let r = run.send(method, &concrete, token, None).await;
                        if !run.gate(c, &op, &r) {
                            if r.body.contains("MX-") {
                                run.fail(format!(
                                    "{op} {}: patient data in a refusal: {r}",
                                    c.name
                                ));
                            }
                            continue;
                        }
                        let target = study_scope(f, c, at, uid).await;
                        let allowed = c.may(action, target);
                        let hidden = c.hidden(action, target);
                        run.decided(
                            c,
                            &op,
                            &format!("study of {at}"),
                            allowed,
                            (200, hidden),
                            &r,
                        );
                        if r.status == 200 {
                            run.study_reads.0 += 1;
                        } else if matches!(r.status, 403 | 404) {
                            run.study_reads.1 += 1;
                        }
                        if r.status == 200 && !r.body.contains(uid.as_str()) {
                            run.fail(format!("{op} {}: 200 without the study: {r}", c.name));
                        }
                        if !allowed && r.body.contains(&format!("MX-{}", short(at))) {
                            run.fail(format!(
                                "{op} {}: patient data of {at} in a refusal: {r}",
                                c.name
                            ));
                        }
                    }
                    // unknown study: 404 for whoever may read studies at all
                    let r = run
                        .send(
                            method,
                            &replace_param(path, "1.2.826.0.1.3680043.2.1143.424242"),
                            token,
                            None,
                        )
                        .await;
                    if run.gate(c, &op, &r) {
                        run.unknown(c, &op, action, &r);
                    }
                }
                Aim::PathEcg | Aim::EcgByStudy => {
                    let ecgs = f.ecgs.clone();
                    for (at, id, study) in &ecgs {
                        let concrete = if aim == Aim::PathEcg {
                            replace_param(path, &id.to_string())
                        } else {
                            format!("{path}?study={study}")
                        };
                        let r = run.send(method, &concrete, token, None).await;
                        if !run.gate(c, &op, &r) {
                            continue;
                        }
                        let target = study_scope(f, c, at, study).await;
                        let allowed = c.may(action, target);
                        let hidden = c.hidden(action, target);
                        run.decided(c, &op, &format!("ECG of {at}"), allowed, (200, hidden), &r);
                        if !allowed && r.body.contains(&format!("MX-ECG-{}", short(at))) {
                            run.fail(format!(
                                "{op} {}: patient data of {at} in a refusal",
                                c.name
                            ));
                        }
                    }
                }
                Aim::BodyAlliance => {
                    for (alliance, parent) in [(ALLIANCE_A, T), (ALLIANCE_B, H2)] {
                        let name = run.unique("卫生室-");
                        let body = json!({ "alliance": alliance, "name": name, "level": "village", "parent": parent });
                        let r = run.send(method, path, token, Some(&body)).await;
                        let mut allowed = false;
                        if run.gate(c, &op, &r) {
                            let target = TargetScope::Alliance {
                                alliance_id: f.inst[parent].alliance_id,
                            };
                            allowed = c.may(action, target);
                            run.decided(
                                c,
                                &op,
                                &format!("alliance {}", f.inst[parent].alliance),
                                allowed,
                                (201, false),
                                &r,
                            );
                        }
                        run.effects.push(Effect::InstitutionCreated(name, allowed));
                    }
                }
                Aim::BodyInstitution => {
                    for at in [T, H2] {
                        type Mk = fn(String, bool) -> Effect;
                        let (body, mk, key): (Value, Mk, String) = match path {
                            "/api/v1/users" => {
                                let login = run.unique("new.user.");
                                (
                                    json!({ "institution": at, "login": login, "role": "clinic_tech", "password": PASSWORD }),
                                    Effect::UserCreated,
                                    login,
                                )
                            }
                            "/api/v1/devices" => {
                                let serial = run.unique("ECG-NEW-");
                                (
                                    json!({ "institution": at, "serial": serial, "model": "M" }),
                                    Effect::DeviceCreated,
                                    serial,
                                )
                            }
                            "/api/v1/ae-titles" => {
                                let ae = run.unique("AE");
                                (
                                    json!({ "institution": at, "ae_title": ae, "host": "127.0.0.1" }),
                                    Effect::AeCreated,
                                    ae,
                                )
                            }
                            other => {
                                run.fail(format!(
                                    "POST {other}: no body known for this creation route"
                                ));
                                continue;
                            }
                        };
                        let r = run.send(method, path, token, Some(&body)).await;
                        let mut allowed = false;
                        if run.gate(c, &op, &r) {
                            let target = scope_of(&f.inst[at]);
                            allowed = c.may(action, target);
                            run.decided(
                                c,
                                &op,
                                &format!("institution {at}"),
                                allowed,
                                (201, c.hidden(action, target)),
                                &r,
                            );
                            if r.status == 201
                                && path == "/api/v1/devices"
                                && !r.json()["token"]
                                    .as_str()
                                    .is_some_and(|t| t.starts_with("dxd_"))
                            {
                                run.fail(format!("{op}: device token not shown: {r}"));
                            }
                            if r.body.contains("argon2") || r.body.contains("password_hash") {
                                run.fail(format!("{op}: secret in the answer: {r}"));
                            }
                        }
                        run.effects.push(mk(key, allowed));
                    }
                }
                Aim::PathInstitution | Aim::PathAe => {
                    for at in [T, H2] {
                        // a fresh victim of the alliance of `at`, so renames and deletions
                        // leave the fixture alone
                        let (id, victim, target, body, ok) = if aim == Aim::PathInstitution {
                            let name = run.unique("改名前-");
                            f.hub.admin_ok(&[
                                "institution",
                                "add",
                                "--alliance",
                                &f.inst[at].alliance,
                                "--name",
                                &name,
                                "--level",
                                "county",
                            ]);
                            let row = admin_list(&f.hub, "institution")
                                .into_iter()
                                .find(|i| i["name"] == name.as_str())
                                .expect("victim institution");
                            let id = row["id"].as_i64().expect("id");
                            let target = TargetScope::Institution {
                                institution_id: id,
                                alliance_id: row["alliance_id"].as_i64().expect("alliance_id"),
                            };
                            let new_name = run.unique("改名后-");
                            let body = json!({ "name": new_name, "population": 1234 });
                            (id, new_name, target, Some(body), 200)
                        } else {
                            let ae = run.unique("AEDEL");
                            f.hub
                                .admin_ok(&["ae", "add", "--institution", at, "--ae-title", &ae]);
                            let id = admin_list(&f.hub, "ae")
                                .into_iter()
                                .find(|x| x["ae_title"] == ae.as_str())
                                .and_then(|x| x["id"].as_i64())
                                .expect("victim AE title");
                            (id, ae, scope_of(&f.inst[at]), None, 204)
                        };
                        let allowed_by_policy =
                            c.token.is_some() && !c.device && c.may(action, target);
                        let concrete = replace_param(path, &id.to_string());
                        let r = run.send(method, &concrete, token, body.as_ref()).await;
                        if run.gate(c, &op, &r) {
                            run.decided(
                                c,
                                &op,
                                &format!("{victim} of {}", f.inst[at].alliance),
                                allowed_by_policy,
                                (ok, c.hidden(action, target)),
                                &r,
                            );
                            if r.status == 200 && r.json()["name"] != victim.as_str() {
                                run.fail(format!("{op}: the renamed institution: {r}"));
                            }
                        }
                        run.effects.push(if aim == Aim::PathInstitution {
                            Effect::InstitutionRenamed(victim, allowed_by_policy)
                        } else {
                            Effect::AeDeleted(victim, allowed_by_policy)
                        });
                    }
                    // unknown object: 404 for users (or 403 when denied before the lookup)
                    let r = run
                        .send(
                            method,
                            &replace_param(path, "999999"),
                            token,
                            Some(&json!({ "population": 1 })),
                        )
                        .await;
                    if run.gate(c, &op, &r) {
                        run.unknown(c, &op, action, &r);
                    }
                }
                Aim::AllianceCreate => {
                    for a in ALLIANCES {
                        let alliance_id = f.inst[a].alliance_id;
                        let body = match path {
                            "/api/v1/pools" => {
                                json!({ "alliance_id": alliance_id, "name": run.unique("authz-pool-"), "label": "矩阵" })
                            }
                            "/api/v1/routing-rules" => {
                                json!({ "alliance_id": alliance_id, "position": 5000 + run.seq, "name": run.unique("authz-rule-"), "enabled": false, "pool_id": f.wl.pool(a, "radiology"), "priority": "routine", "sla_minutes": 60 })
                            }
                            "/api/v1/webhooks" => {
                                json!({ "alliance_id": alliance_id, "url": "http://127.0.0.1:9/authz-new", "secret": "authz-matrix-secret-0123456789", "events": ["*"] })
                            }
                            other => {
                                run.fail(format!(
                                    "POST {other}: no body known for this creation route"
                                ));
                                continue;
                            }
                        };
                        let r = run.send(method, path, token, Some(&body)).await;
                        if run.gate(c, &op, &r) {
                            let allowed = c.may(action, TargetScope::Alliance { alliance_id });
                            run.decided(
                                c,
                                &op,
                                &format!("alliance {}", f.inst[a].alliance),
                                allowed,
                                (201, false),
                                &r,
                            );
                            if r.body.contains("authz-matrix-secret") {
                                run.fail(format!(
                                    "{op} {}: the webhook secret in the answer: {r}",
                                    c.name
                                ));
                            }
                        }
                    }
                    if path == "/api/v1/routing-rules" {
                        // a rule of A routing to a pool of B: never (422 when allowed)
                        let alliance_id = f.inst[H].alliance_id;
                        let body = json!({ "alliance_id": alliance_id, "position": 5000 + run.seq, "name": run.unique("authz-rule-"), "enabled": false, "pool_id": f.wl.pool(H2, "radiology"), "priority": "routine", "sla_minutes": 60 });
                        let r = run.send(method, path, token, Some(&body)).await;
                        if run.gate(c, &op, &r) {
                            let allowed = c.may(action, TargetScope::Alliance { alliance_id });
                            run.decided(
                                c,
                                &op,
                                "a rule of A to a pool of B",
                                allowed,
                                (422, false),
                                &r,
                            );
                        }
                    }
                }
                Aim::PathPool
                | Aim::PathMember
                | Aim::PathRule
                | Aim::PathWebhook
                | Aim::PathDelivery => {
                    for a in ALLIANCES {
                        let alliance_id = f.inst[a].alliance_id;
                        let radiology = f.wl.pool(a, "radiology");
                        // the object, and the route's body and success status
                        let (concrete, body, ok): (String, Option<Value>, u16) = match aim {
                            Aim::PathPool => (
                                replace_param(path, &radiology.to_string()),
                                (method == "PATCH")
                                    .then(|| json!({ "label": run.unique("影像-") })),
                                200,
                            ),
                            Aim::PathMember => {
                                let spare = f.wl.spare_reader[&a];
                                if method == "DELETE" {
                                    f.catalog
                                        .set_pool_member(radiology, spare, &member_spec())
                                        .await
                                        .expect("pool member");
                                }
                                let concrete = replace_param(
                                    &replace_param(path, &radiology.to_string()),
                                    &spare.to_string(),
                                );
                                let (body, ok) = if method == "PUT" {
                                    (Some(json!({ "max_open_claims": 3 })), 200)
                                } else {
                                    (None, 204)
                                };
                                (concrete, body, ok)
                            }
                            Aim::PathRule => {
                                // a fresh, disabled rule: replaced or deleted
                                let name = run.unique("authz-victim-");
                                let rule = f
                                    .catalog
                                    .add_rule(
                                        alliance_id,
                                        &RuleSpec {
                                            position: 7000 + i64::try_from(run.seq).expect("seq"),
                                            name: name.clone(),
                                            enabled: false,
                                            conditions: Default::default(),
                                            pool_id: radiology,
                                            priority: Default::default(),
                                            sla_minutes: 60,
                                        },
                                    )
                                    .await
                                    .expect("victim rule");
                                let (body, ok) = if method == "PUT" {
                                    (
                                        Some(
                                            json!({ "position": rule.position, "name": format!("{name}-renamed"), "enabled": false, "pool_id": radiology, "priority": "urgent", "sla_minutes": 30 }),
                                        ),
                                        200,
                                    )
                                } else {
                                    (None, 204)
                                };
                                (replace_param(path, &rule.id.to_string()), body, ok)
                            }
                            Aim::PathWebhook => {
                                let id = if method == "DELETE" {
                                    f.catalog
                                        .add_webhook(&webhook_spec(alliance_id))
                                        .await
                                        .expect("victim webhook")
                                        .id
                                } else {
                                    f.wl.webhook[&a]
                                };
                                (
                                    replace_param(path, &id.to_string()),
                                    None,
                                    if method == "DELETE" { 204 } else { 200 },
                                )
                            }
                            _ => {
                                // dead-lettered (the webhook never answers): retry takes it
                                let id = f.wl.delivery[&a];
                                f.catalog
                                    .finish_delivery(
                                        id,
                                        &AttemptResult::Failed {
                                            status: None,
                                            error: "authz matrix".into(),
                                            retry_at: None,
                                        },
                                        now_us(),
                                    )
                                    .await
                                    .expect("dead delivery");
                                (replace_param(path, &id.to_string()), None, 202)
                            }
                        };
                        let r = run.send(method, &concrete, token, body.as_ref()).await;
                        if run.gate(c, &op, &r) {
                            let target = TargetScope::Alliance { alliance_id };
                            let allowed = c.may(action, target);
                            let hidden = c.hidden(action, target);
                            let what = format!("the object of {}", f.inst[a].alliance);
                            if aim == Aim::PathDelivery {
                                // (409 when the hub's deliverer took it meanwhile)
                                run.decided_loose(c, &op, &what, (allowed, hidden), &[], &r);
                            } else {
                                run.decided(c, &op, &what, allowed, (ok, hidden), &r);
                            }
                            if r.body.contains("authz-matrix-secret") {
                                run.fail(format!(
                                    "{op} {}: the webhook secret in the answer: {r}",
                                    c.name
                                ));
                            }
                        }
                    }
                    if aim == Aim::PathMember && method == "PUT" {
                        // a reader of B into a pool of A: never (422 when allowed)
                        let concrete = replace_param(
                            &replace_param(path, &f.wl.pool(H, "radiology").to_string()),
                            &f.wl.spare_reader[&H2].to_string(),
                        );
                        let body = json!({ "max_open_claims": 3 });
                        let r = run.send(method, &concrete, token, Some(&body)).await;
                        if run.gate(c, &op, &r) {
                            let target = TargetScope::Alliance {
                                alliance_id: f.inst[H].alliance_id,
                            };
                            let allowed = c.may(action, target);
                            // 422 for who may know B's reader, else as if there were none
                            let ok = if c.sees(scope_of(&f.inst[H2])) {
                                422
                            } else {
                                404
                            };
                            run.decided(
                                c,
                                &op,
                                "a reader of B into a pool of A",
                                allowed,
                                (ok, c.hidden(action, target)),
                                &r,
                            );
                        }
                    }
                    // unknown object: 404 for users (or 403 when denied before the lookup)
                    let unknown = replace_param(&replace_param(path, "999999"), "999998");
                    let body = match (aim, method) {
                        (Aim::PathPool, "PATCH") => Some(json!({ "label": "x" })),
                        (Aim::PathMember, "PUT") => Some(json!({ "max_open_claims": 3 })),
                        (Aim::PathRule, "PUT") => Some(
                            json!({ "position": 1, "name": "x", "pool_id": 999999, "priority": "routine", "sla_minutes": 60 }),
                        ),
                        _ => None,
                    };
                    let r = run.send(method, &unknown, token, body.as_ref()).await;
                    if run.gate(c, &op, &r) {
                        run.unknown(c, &op, action, &r);
                    }
                }
                Aim::DryRun => {
                    let studies = f.studies.clone();
                    for (at, uid) in &studies {
                        let body = json!({ "study_instance_uid": uid });
                        let (r, rid) = run.send_rid(method, path, token, Some(&body)).await;
                        let what = format!("study of {at}");
                        run.audited(c, rid, format!("{op} {} on the {what}", c.name), audit, &r);
                        if !run.gate(c, &op, &r) {
                            continue;
                        }
                        let allowed = c.may(action, scope_of(&f.inst[at]));
                        // refused, who may not read the study is told it does not exist
                        let hidden = c.hidden(action, study_scope(f, c, at, uid).await);
                        run.decided(c, &op, &what, allowed, (200, hidden), &r);
                        if !allowed && r.body.contains(&format!("MX-{}", short(at))) {
                            run.fail(format!(
                                "{op} {}: patient data of {at} in a refusal: {r}",
                                c.name
                            ));
                        }
                    }
                }
                Aim::PathWork => {
                    let items = f.wl.items.clone();
                    for (at, id) in &items {
                        let item = f
                            .catalog
                            .get_work_item(*id)
                            .await
                            .expect("work item")
                            .expect("work item");
                        // readers and senior readers: only items of their pools, or held
                        let pools = pools_of(f, c).await;
                        let member = item.pool_id.is_some_and(|p| pools.contains(&p));
                        let holds = c.user_id.is_some() && item.claimed_by == c.user_id;
                        let pool_bound = c
                            .principal
                            .as_ref()
                            .and_then(Principal::role)
                            .is_some_and(|r| matches!(r, Role::Reader | Role::SeniorReader));
                        let allowed = c.may(action, scope_of(&f.inst[at]))
                            && (!pool_bound || member || holds);
                        let kind = if item.modality.as_deref() == Some("ECG") {
                            "ECG"
                        } else {
                            "CT"
                        };
                        let what = format!(
                            "the {kind} work item of {at} ({})",
                            if member {
                                "pool member"
                            } else {
                                "not a pool member"
                            }
                        );
                        let reason = "authz matrix";
                        let body = match path.rsplit('/').next() {
                            Some("reassign") => {
                                // a member of the item's pool (not the caller)
                                let to = match item.pool_id {
                                    Some(p) => f
                                        .catalog
                                        .list_pool_members(p)
                                        .await
                                        .expect("members")
                                        .into_iter()
                                        .map(|m| m.user_id)
                                        .find(|u| Some(*u) != c.user_id)
                                        .unwrap_or(0),
                                    None => 0,
                                };
                                Some(json!({ "user_id": to, "reason": reason }))
                            }
                            Some("break-lock" | "cancel") => Some(json!({ "reason": reason })),
                            Some("priority") => {
                                Some(json!({ "priority": "stat", "reason": reason }))
                            }
                            // a draft (saved when the caller holds the item)
                            Some("report") => Some(draft_body(kind)),
                            _ => None,
                        };
                        let concrete = replace_param(path, &id.to_string());
                        let (r, rid) = run.send_rid(method, &concrete, token, body.as_ref()).await;
                        run.audited(c, rid, format!("{op} {} on {what}", c.name), audit, &r);
                        if !run.gate(c, &op, &r) {
                            if r.body.contains("MX-") {
                                run.fail(format!(
                                    "{op} {}: patient data in a refusal: {r}",
                                    c.name
                                ));
                            }
                            continue;
                        }
                        let hidden = c.hidden(action, scope_of(&f.inst[at]));
                        if method == "GET" {
                            run.decided(c, &op, &what, allowed, (200, hidden), &r);
                            if r.status == 200
                                && path.ends_with("/{id}")
                                && !r.body.contains(&item.study_instance_uid)
                            {
                                run.fail(format!("{op} {}: 200 without the item: {r}", c.name));
                            }
                        } else {
                            // a claim by a caller in none of the item's pools (the
                            // superadmin) is refused by the worklist itself; a report by
                            // the report state machine (not the holder, not a reader)
                            let business: &[&str] = if path.ends_with("/claim") && !member {
                                &["not-a-pool-member"]
                            } else if path.ends_with("/report") {
                                REPORT_REFUSALS
                            } else {
                                &[]
                            };
                            run.decided_loose(c, &op, &what, (allowed, hidden), business, &r);
                        }
                        if !allowed && r.body.contains(&format!("MX-{}", short(at))) {
                            run.fail(format!(
                                "{op} {}: patient data of {at} in a refusal: {r}",
                                c.name
                            ));
                        }
                    }
                    // unknown item: 404 for users (or 403 when denied before the lookup)
                    let body = match path.rsplit('/').next() {
                        Some("reassign") => Some(json!({ "user_id": 1, "reason": "x" })),
                        Some("break-lock" | "cancel") => Some(json!({ "reason": "x" })),
                        Some("priority") => Some(json!({ "priority": "stat", "reason": "x" })),
                        Some("report") => Some(draft_body("CT")),
                        _ => None,
                    };
                    let r = run
                        .send(method, &replace_param(path, "999999"), token, body.as_ref())
                        .await;
                    if run.gate(c, &op, &r) {
                        run.unknown(c, &op, action, &r);
                    }
                }
                Aim::Catalogue => {
                    // the caller's own alliance (the only one it can name): what is there,
                    // put back unchanged
                    let alliance_id = c
                        .principal
                        .as_ref()
                        .map_or(f.inst[H].alliance_id, |p| p.alliance_id);
                    let (concrete, body) = match path {
                        "/api/v1/report-templates/{code}" => {
                            let t = f
                                .catalog
                                .get_template(alliance_id, "ecg_12_lead")
                                .await
                                .expect("template")
                                .expect("the ECG template");
                            (
                                replace_param(path, &t.code),
                                json!({ "definition": t.definition, "enabled": t.enabled }),
                            )
                        }
                        "/api/v1/exam-types/{code}" => {
                            let e = f
                                .catalog
                                .list_exam_types(alliance_id)
                                .await
                                .expect("exam types")
                                .into_iter()
                                .next()
                                .expect("an exam type");
                            (
                                replace_param(path, &e.code),
                                json!({ "definition": e.definition }),
                            )
                        }
                        _ => {
                            let cats = f
                                .catalog
                                .list_critical_categories(alliance_id)
                                .await
                                .expect("categories");
                            let defs: Vec<Value> = cats.into_iter().map(|c| c.definition).collect();
                            (path.to_owned(), json!({ "categories": defs }))
                        }
                    };
                    let r = run.send(method, &concrete, token, Some(&body)).await;
                    if run.gate(c, &op, &r) {
                        let allowed = c.may(action, TargetScope::Alliance { alliance_id });
                        run.decided(c, &op, "own alliance", allowed, (200, false), &r);
                    }
                }
                Aim::OwnInstitution => {
                    // no caller has a second factor: re-authentication refuses whoever
                    // the policy lets in (and signing keys stay untouched)
                    let body = json!({ "password": PASSWORD, "totp": "000000" });
                    let r = run.send(method, path, token, Some(&body)).await;
                    if run.gate(c, &op, &r) {
                        let allowed = c.may(action, own_scope(c));
                        run.decided_loose(
                            c,
                            &op,
                            "own institution",
                            (allowed, false),
                            &["totp-enrollment-required"],
                            &r,
                        );
                    }
                }
                Aim::ReportList => {
                    let stream = path.ends_with("/events");
                    let (r, rid) = if stream {
                        event_stream(run, path, token).await
                    } else {
                        run.send_rid(method, path, token, None).await
                    };
                    run.audited(c, rid, format!("{op} {}", c.name), audit, &r);
                    if run.gate(c, &op, &r) {
                        let allowed = may_list(c, action);
                        run.decided(c, &op, "own institution", allowed, (200, false), &r);
                        if r.status == 200 && !stream {
                            // (institution, id) of the fixture's objects, and the ids listed
                            let v = r.json();
                            let (objects, listed): (Vec<(&str, i64)>, Vec<i64>) =
                                if path == "/api/v1/reports" {
                                    (
                                        f.rp.reports.iter().map(|(at, id, _)| (*at, *id)).collect(),
                                        v["reports"]
                                            .as_array()
                                            .into_iter()
                                            .flatten()
                                            .filter_map(|x| x["id"].as_i64())
                                            .collect(),
                                    )
                                } else {
                                    (
                                        f.rp.criticals
                                            .iter()
                                            .map(|(at, id, _)| (*at, *id))
                                            .collect(),
                                        v["critical_values"]
                                            .as_array()
                                            .into_iter()
                                            .flatten()
                                            .filter_map(|x| x["critical"]["id"].as_i64())
                                            .collect(),
                                    )
                                };
                            for (at, id) in objects {
                                let uid = if path == "/api/v1/reports" {
                                    f.catalog
                                        .get_report(id)
                                        .await
                                        .expect("report")
                                        .map(|x| x.study_instance_uid)
                                } else {
                                    f.catalog
                                        .get_critical(id)
                                        .await
                                        .expect("critical")
                                        .map(|x| x.study_instance_uid)
                                }
                                .expect("fixture object");
                                let may = c.may(action, listed_scope(f, c, at, &uid).await);
                                let is_listed = listed.contains(&id);
                                if is_listed && !may {
                                    run.fail(format!(
                                        "{op} {}: lists {id} of {at} out of its reach",
                                        c.name
                                    ));
                                }
                                if may && !is_listed {
                                    run.fail(format!(
                                        "{op} {}: misses {id} of {at} within its reach: {r}",
                                        c.name
                                    ));
                                }
                            }
                            no_foreign_content(run, c, &op, &r);
                        }
                    }
                }
                Aim::PathReport => {
                    let reports = f.rp.reports.clone();
                    for (at, id, study) in &reports {
                        let report = f
                            .catalog
                            .get_report(*id)
                            .await
                            .expect("report")
                            .expect("report");
                        let what = format!("the {} report of {at}", report.state);
                        let (v, reason) = (report.current_version, "authz matrix");
                        let in_force = report.signed_version.unwrap_or(v);
                        let body = match (method, path.rsplit('/').next()) {
                            ("POST", Some("submit")) => Some(json!({ "version": v })),
                            ("POST", Some("sign")) => Some(
                                json!({ "version": v, "password": PASSWORD, "totp": "000000" }),
                            ),
                            ("POST", Some("return")) => {
                                Some(json!({ "version": v, "reason": reason }))
                            }
                            ("POST", Some("addenda")) => Some(
                                json!({ "version": in_force, "text": reason, "password": PASSWORD, "totp": "000000" }),
                            ),
                            ("POST", Some("correct")) => {
                                let mut b = draft_body("ECG");
                                b["version"] = json!(in_force);
                                b["reason"] = json!(reason);
                                b["password"] = json!(PASSWORD);
                                b["totp"] = json!("000000");
                                Some(b)
                            }
                            ("POST", Some("critical")) => {
                                let category = f
                                    .catalog
                                    .list_critical_categories(report.alliance_id)
                                    .await
                                    .expect("categories")
                                    .first()
                                    .expect("a category")
                                    .code
                                    .clone();
                                Some(json!({ "category": category, "note": reason }))
                            }
                            _ => None,
                        };
                        let concrete = replace_param(path, &id.to_string());
                        let (r, rid) = run.send_rid(method, &concrete, token, body.as_ref()).await;
                        run.audited(c, rid, format!("{op} {} on {what}", c.name), audit, &r);
                        if path.ends_with("/verify") && r.status == 200 {
                            // the outcome of a verification is its result (the fixture's
                            // signatures are fake: `failure`), never a denial
                            if let Some(e) = run.audits.last_mut() {
                                e.want = V1Audit::Verified;
                            }
                        }
                        if !run.gate(c, &op, &r) {
                            if r.body.contains("MX-") {
                                run.fail(format!(
                                    "{op} {}: patient data in a refusal: {r}",
                                    c.name
                                ));
                            }
                            continue;
                        }
                        // (push-backs are the source institution's: a recognised result
                        // does not open them)
                        let allowed = if path.ends_with("/pushes") {
                            c.may(action, listed_scope(f, c, at, study).await)
                        } else {
                            c.may(action, study_scope(f, c, at, study).await)
                        };
                        let hidden = c.hidden(action, study_scope(f, c, at, study).await);
                        // reads of a signed report, the report itself and its push-backs
                        // answer 200; the rest depends on the state, the author, the role
                        let strict = method == "GET"
                            && (report.state == "signed"
                                || path.ends_with("/{id}")
                                || path.ends_with("/pushes"));
                        if allowed
                            && path.ends_with("/pdf")
                            && (r.status, r.code().as_str()) == (503, "unavailable")
                        {
                            // no CJK font on this machine
                            run.checked += 1;
                        } else if strict {
                            run.decided(c, &op, &what, allowed, (200, hidden), &r);
                        } else {
                            run.decided_loose(
                                c,
                                &op,
                                &what,
                                (allowed, hidden),
                                REPORT_REFUSALS,
                                &r,
                            );
                        }
                        if r.status == 200
                            && (path == "/api/v1/reports/{id}" || path.starts_with("/api/v1/fhir/"))
                            && !r.body.contains(study.as_str())
                        {
                            run.fail(format!("{op} {}: 200 without the report: {r}", c.name));
                        }
                        if !allowed && r.body.contains(&format!("MX-RPT-{}", short(at))) {
                            run.fail(format!(
                                "{op} {}: patient data of {at} in a refusal: {r}",
                                c.name
                            ));
                        }
                    }
                    // unknown report: 404 for users (or 403 when denied before the lookup)
                    let body = (method == "POST").then(|| json!({ "version": 1, "reason": "x", "text": "x", "category": "x", "password": "x", "totp": "x", "template_code": "x" }));
                    let r = run
                        .send(method, &replace_param(path, "999999"), token, body.as_ref())
                        .await;
                    if run.gate(c, &op, &r) {
                        run.unknown(c, &op, action, &r);
                    }
                }
                Aim::PathCritical => {
                    let body = json!({ "name": "张医生", "action": "已通知患者转诊（授权矩阵）" });
                    let criticals = f.rp.criticals.clone();
                    for (at, id, study) in &criticals {
                        let what = format!("the critical value of {at}");
                        let concrete = replace_param(path, &id.to_string());
                        let (r, rid) = run.send_rid(method, &concrete, token, Some(&body)).await;
                        run.audited(c, rid, format!("{op} {} on {what}", c.name), audit, &r);
                        if !run.gate(c, &op, &r) {
                            continue;
                        }
                        // the first acknowledgement answers 200, the next 409
                        // judged on the source institution, known to who may read the
                        // report (its study)
                        let target = scope_of(&f.inst[at]);
                        let allowed = c.may(action, target);
                        let hidden = c.hidden(action, study_scope(f, c, at, study).await);
                        run.decided_loose(c, &op, &what, (allowed, hidden), &[], &r);
                        if !allowed && r.body.contains("MX-") {
                            run.fail(format!("{op} {}: patient data in a refusal: {r}", c.name));
                        }
                    }
                    let r = run
                        .send(method, &replace_param(path, "999999"), token, Some(&body))
                        .await;
                    if run.gate(c, &op, &r) {
                        run.unknown(c, &op, action, &r);
                    }
                }
                Aim::PathPush => {
                    let pushes = f.rp.pushes.clone();
                    for (at, id) in &pushes {
                        // dead-lettered (the PACS never answers): retry takes it
                        f.catalog
                            .finish_push(
                                *id,
                                &PushResult::Failed {
                                    status: None,
                                    error: "authz matrix".into(),
                                    retry_at: None,
                                },
                                now_us(),
                            )
                            .await
                            .expect("dead push-back");
                        let concrete = replace_param(path, &id.to_string());
                        let r = run.send(method, &concrete, token, None).await;
                        if run.gate(c, &op, &r) {
                            // a push-back is an object of its report's alliance, like a
                            // webhook delivery (409 when the hub's pusher took it meanwhile)
                            let target = TargetScope::Alliance {
                                alliance_id: f.inst[at].alliance_id,
                            };
                            let allowed = c.may(action, target);
                            let hidden = c.hidden(action, target);
                            let what = format!("the push-back of the report of {at}");
                            run.decided_loose(c, &op, &what, (allowed, hidden), &[], &r);
                        }
                    }
                    // unknown push-back: 404 (409 "pending or unknown") or 403
                    let r = run
                        .send(method, &replace_param(path, "999999"), token, None)
                        .await;
                    if run.gate(c, &op, &r) {
                        run.unknown(c, &op, action, &r);
                    }
                }
                Aim::PathSigner => {
                    for a in ALLIANCES {
                        let user = f.wl.spare_reader[&a];
                        f.catalog
                            .set_signing_authority(user, false)
                            .await
                            .expect("reset signing authority");
                        let concrete = replace_param(path, &user.to_string());
                        let body = json!({ "granted": true });
                        let r = run.send(method, &concrete, token, Some(&body)).await;
                        let mut allowed = false;
                        if run.gate(c, &op, &r) {
                            allowed = c.may(action, scope_of(&f.inst[a]));
                            let hidden = c.hidden(action, scope_of(&f.inst[a]));
                            let what = format!("a reader of {a}");
                            run.decided(c, &op, &what, allowed, (200, hidden), &r);
                        }
                        let granted = f
                            .catalog
                            .signing_authority(user)
                            .await
                            .expect("signing authority");
                        if granted != allowed {
                            run.fail(format!(
                                "{op} {}: the signing authority of a reader of {a} is \
                                 {granted}, expected {allowed} ({r})",
                                c.name
                            ));
                        }
                    }
                    let r = run
                        .send(
                            method,
                            &replace_param(path, "999999"),
                            token,
                            Some(&json!({ "granted": true })),
                        )
                        .await;
                    if run.gate(c, &op, &r) {
                        run.unknown(c, &op, action, &r);
                    }
                }
                Aim::PathDuty => {
                    let body = json!({ "schedule": "mon-fri 08:00-17:30" });
                    for a in ALLIANCES {
                        let user = f.wl.spare_clinic[&a];
                        f.catalog
                            .set_duty_schedule(user, None)
                            .await
                            .expect("reset duty schedule");
                        let concrete = replace_param(path, &user.to_string());
                        let r = run.send(method, &concrete, token, Some(&body)).await;
                        let mut allowed = false;
                        if run.gate(c, &op, &r) {
                            allowed = c.may(action, scope_of(&f.inst[a]));
                            let hidden = c.hidden(action, scope_of(&f.inst[a]));
                            let what = format!("a clinic user of {a}");
                            run.decided(c, &op, &what, allowed, (200, hidden), &r);
                        }
                        let set = f
                            .catalog
                            .get_user(user)
                            .await
                            .expect("user")
                            .expect("the spare clinic user")
                            .duty_schedule
                            .is_some();
                        if set != allowed {
                            run.fail(format!(
                                "{op} {}: the duty schedule of a clinic user of {a} is set: \
                                 {set}, expected {allowed} ({r})",
                                c.name
                            ));
                        }
                    }
                    let r = run
                        .send(method, &replace_param(path, "999999"), token, Some(&body))
                        .await;
                    if run.gate(c, &op, &r) {
                        run.unknown(c, &op, action, &r);
                    }
                }
                Aim::PathReportSettings => {
                    // (the escalation head only: the PACS of the push-backs stays)
                    let body = json!({ "head_user_id": null });
                    for at in [T, H2] {
                        let concrete = replace_param(path, &f.inst[at].id.to_string());
                        let r = run.send(method, &concrete, token, Some(&body)).await;
                        if run.gate(c, &op, &r) {
                            let allowed = c.may(action, scope_of(&f.inst[at]));
                            let hidden = c.hidden(action, scope_of(&f.inst[at]));
                            let what = format!("institution {at}");
                            run.decided(c, &op, &what, allowed, (200, hidden), &r);
                        }
                    }
                    let r = run
                        .send(method, &replace_param(path, "999999"), token, Some(&body))
                        .await;
                    if run.gate(c, &op, &r) {
                        run.unknown(c, &op, action, &r);
                    }
                }
                Aim::PathUser | Aim::PathDevice => {
                    // what the route does to a user: disable, set the role, set the password
                    let (body, ok): (Option<Value>, u16) = if path.ends_with("/role") {
                        (Some(json!({ "role": "clinic_doctor" })), 200)
                    } else if path.ends_with("/password") {
                        (Some(json!({ "password": "Another-horse-43" })), 204)
                    } else {
                        (None, 204)
                    };
                    // a TOTP reset (204, no body) revokes the sessions like a password
                    // change and does not disable the user
                    let totp_reset = path.ends_with("/totp/reset");
                    let disable_or_revoke = body.is_none() && !totp_reset;
                    for at in [T, H2] {
                        let victim = run.unique(if aim == Aim::PathUser {
                            "victim.user."
                        } else {
                            "VICTIM-"
                        });
                        let allowed_by_policy =
                            c.token.is_some() && !c.device && c.may(action, scope_of(&f.inst[at]));
                        // the victim's credential, to see it stop working: a user session
                        // (200 on /auth/me until disabled) or a device token (403 upload-only
                        // until revoked, then 401 like any unknown token)
                        // (role and password changes revoke the sessions too; when refused,
                        // the victim's session must keep working)
                        let (id, victim_token) = if aim == Aim::PathUser {
                            let id = add_user(&f.hub, at, &victim, "clinic_tech", PASSWORD);
                            let t = (allowed_by_policy || !disable_or_revoke)
                                .then(|| issue_token(&f.hub, &victim, "1h"));
                            (id, t)
                        } else {
                            let t = add_device(&f.hub, at, &victim);
                            (device_id(&f.hub, &victim), allowed_by_policy.then_some(t))
                        };
                        let concrete = replace_param(path, &id.to_string());
                        let r = run.send(method, &concrete, token, body.as_ref()).await;
                        if run.gate(c, &op, &r) {
                            run.decided(
                                c,
                                &op,
                                &format!("{victim} of {at}"),
                                allowed_by_policy,
                                (ok, c.hidden(action, scope_of(&f.inst[at]))),
                                &r,
                            );
                            if r.body.contains("argon2") || r.body.contains("password_hash") {
                                run.fail(format!("{op}: secret in the answer: {r}"));
                            }
                        }
                        if let Some(t) = victim_token {
                            let me = f.api.get("/api/v1/auth/me", Some(&t)).await;
                            if r.status == ok
                                && (me.status, me.code().as_str()) != (401, "unauthenticated")
                            {
                                run.fail(format!(
                                    "{op}: the changed user's or revoked device's credential \
                                     still works: {me}"
                                ));
                            }
                            if aim == Aim::PathUser && r.status != ok && me.status != 200 {
                                run.fail(format!(
                                    "{op}: a refused change ended the victim's session: {me}"
                                ));
                            }
                        }
                        run.effects.push(match (aim, path.rsplit('/').next()) {
                            (Aim::PathDevice, _) => {
                                Effect::DeviceRevoked(victim, allowed_by_policy)
                            }
                            (_, Some("role")) => Effect::UserRoleSet(victim, allowed_by_policy),
                            // a refused password change leaves the session (checked above);
                            // an allowed one ended it: as for disable, seen as not disabled
                            (_, Some("password")) => Effect::UserDisabled(victim, false),
                            _ if totp_reset => Effect::UserDisabled(victim, false),
                            _ => Effect::UserDisabled(victim, allowed_by_policy),
                        });
                    }
                }
            }
        }
    }
}

/// Routes any user session may call (auth/*, the alliance and institution lists).
async fn any_user(run: &mut Run<'_>, method: &str, path: &str, c: &Caller) {
    let f = run.f;
    let op = format!("{method} {path}");
    // logout revokes: use a fresh session of the same user, and check it is revoked
    let fresh = match (&c.login, path) {
        (Some(login), "/api/v1/auth/logout") => Some(issue_token(&f.hub, login, "1h")),
        _ => None,
    };
    let token = fresh.as_deref().or(c.token.as_deref());
    // reader.h's notification: 404 for every other user
    let (owner, notification) = f.wl.notification;
    let path = &path.replace("{id}", &notification.to_string());
    let read_notification = path.starts_with("/api/v1/notifications/");
    let body = match path.as_str() {
        "/api/v1/auth/totp/confirm" => Some(json!({ "code": "000000" })),
        _ if method == "POST" => Some(json!({})),
        _ => None,
    };
    let r = run.send(method, path, token, body.as_ref()).await;
    if !run.gate(c, &op, &r) {
        return;
    }
    run.checked += 1;
    let ok = match path.as_str() {
        "/api/v1/auth/logout" => r.status == 204,
        _ if read_notification => {
            r.status
                == if c.login.as_deref() == Some(owner) {
                    204
                } else {
                    404
                }
        }
        "/api/v1/auth/totp/confirm" => {
            r.status == 204 || (r.status == 401 && r.code() == "invalid-totp")
        }
        _ => (200..300).contains(&r.status),
    };
    if !ok {
        run.fail(format!("{op} {}: any user may call it, got {r}", c.name));
        return;
    }
    if let Some(t) = &fresh {
        let me = f.api.get("/api/v1/auth/me", Some(t)).await;
        if me.status != 401 {
            run.fail(format!(
                "{op} {}: the session still works after logout: {me}",
                c.name
            ));
        }
        let me = f.api.get("/api/v1/auth/me", c.token.as_deref()).await;
        if me.status != 200 {
            run.fail(format!(
                "{op} {}: logout revoked another session: {me}",
                c.name
            ));
        }
    }
    if path == "/api/v1/alliances"
        && !c.superadmin()
        && r.body.contains(ALLIANCE_B)
            != c.principal
                .as_ref()
                .is_some_and(|p| p.alliance_id == f.inst[H2].alliance_id)
    {
        run.fail(format!("{op} {}: sees another alliance: {r}", c.name));
    }
    if path == "/api/v1/signing-keys" && !c.superadmin() {
        // the keys of the caller's alliance only (the pool readers signed the fixture)
        let in_b = c
            .principal
            .as_ref()
            .is_some_and(|p| p.alliance_id == f.inst[H2].alliance_id);
        for (login, of_b) in [("\"pool.reader.h\"", false), ("\"pool.reader.h2\"", true)] {
            if r.body.contains(login) != (of_b == in_b) {
                run.fail(format!(
                    "{op} {}: the key of {login} should be listed: {}: {r}",
                    c.name,
                    of_b == in_b
                ));
            }
        }
    }
    if path == "/api/v1/institutions" && r.status == 200 {
        let p = c.principal.as_ref().expect("user");
        let clinic = p.role().is_some_and(Role::is_clinic);
        for name in [H, T, V, H2] {
            let i = &f.inst[name];
            let visible = c.superadmin()
                || if clinic {
                    p.institution_path.contains(&i.id)
                } else {
                    i.alliance_id == p.alliance_id
                };
            if listed_names(&r.json()).iter().any(|n| n == name) != visible {
                run.fail(format!(
                    "{op} {}: visibility of {name} should be {visible}: {r}",
                    c.name
                ));
            }
        }
    }
}

/// Alliance-wide lists never show the other alliance's objects (superadmin aside).
/// ECG upload routes: device tokens (of T) and users allowed the action on their own
/// institution; a resumable upload is visible only to its institution (404 elsewhere).
async fn upload_only(
    run: &mut Run<'_>,
    method: &str,
    path: &str,
    (action, audit): (Action, Option<&'static str>),
    aim: Aim,
    c: &Caller,
) {
    let f = run.f;
    let op = format!("{method} {path}");
    if aim == Aim::PathStudy {
        complete_study(run, method, path, (action, audit), c).await;
        return;
    }
    let own_ok = c.device || c.may(action, own_scope(c));
    let own_inst = if c.device {
        Some(f.inst[T].id)
    } else {
        c.principal.as_ref().map(|p| p.institution_id)
    };
    let mut targets: Vec<(Option<&'static str>, String)> = Vec::new();
    match aim {
        Aim::Upload => targets.push((None, path.to_owned())),
        Aim::PathUpload => {
            for (at, id) in &f.uploads {
                targets.push((Some(*at), replace_param(path, id)));
            }
        }
        other => {
            run.fail(format!("{op}: upload route aimed as {other:?}"));
            return;
        }
    }
    for (at, concrete) in targets {
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = f.api.req(m, &concrete, c.token.as_deref());
        if path == "/api/v1/ecg" {
            rb = rb.body("not an ECG at all");
        } else {
            rb = rb.header("tus-resumable", "1.0.0");
            if method == "POST" {
                rb = rb.header("upload-length", "10");
            }
            if method == "PATCH" {
                rb = rb
                    .header("content-type", "application/offset+octet-stream")
                    .header("upload-offset", "0")
                    .body(Vec::<u8>::new());
            }
        }
        let r = Reply::of(rb.send().await.expect("request")).await;
        run.checked += 1;
        let what = at.map_or("own institution".to_owned(), |a| format!("upload of {a}"));
        if c.token.is_none() {
            if r.status != 401 {
                run.fail(format!("{op} anonymous: expected 401, got {r}"));
            }
            continue;
        }
        let visible = at.is_none_or(|a| own_inst == Some(f.inst[a].id));
        let want: &[u16] = if !own_ok {
            &[403]
        } else if !visible {
            &[404]
        } else {
            match (path, method) {
                ("/api/v1/ecg", _) => &[415],
                (_, "POST") => &[201],
                (_, "PATCH") => &[204],
                _ => &[200],
            }
        };
        if !want.contains(&r.status) {
            run.fail(format!(
                "{op} {} on {what}: expected {want:?}, got {r}",
                c.name
            ));
        }
    }
}

/// The pools the caller is a member of now (none for devices and anonymous).
async fn pools_of(f: &Fixture, c: &Caller) -> Vec<i64> {
    match c.user_id {
        Some(u) => f
            .catalog
            .memberships(u)
            .await
            .expect("memberships")
            .into_iter()
            .map(|m| m.pool_id)
            .collect(),
        None => Vec::new(),
    }
}

/// An event stream (`GET /api/v1/worklist/events`, `/api/v1/reports/events`): a 200 is checked for its content
/// type and dropped (the stream never ends); refusals are read.
async fn event_stream(run: &mut Run<'_>, path: &str, token: Option<&str>) -> (Reply, String) {
    run.seq += 1;
    let rid = format!("authz-v1-{}", run.seq);
    let resp = run
        .f
        .api
        .req(Method::GET, path, token)
        .header("x-request-id", &rid)
        .send()
        .await
        .expect("request");
    if resp.status() != 200 {
        let r = Reply::of(resp).await;
        run.tally(&r);
        return (r, rid);
    }
    let headers = resp.headers().clone();
    drop(resp);
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !ct.starts_with("text/event-stream") {
        run.fail(format!(
            "GET {path}: a 200 of content type {ct:?}, not text/event-stream"
        ));
    }
    let r = Reply {
        status: 200,
        headers,
        body: String::new(),
    };
    run.tally(&r);
    (r, rid)
}

/// The audit entries of the `/api/v1` patient-data requests (by `X-Request-Id`).
async fn v1_audit(run: &mut Run<'_>, root: &str, mark: i64) {
    let f = run.f;
    let mut by_request: HashMap<String, Vec<Value>> = HashMap::new();
    let mut before: Option<i64> = None;
    'pages: loop {
        let q = before.map_or(String::new(), |b| format!("&before_id={b}"));
        let r = f
            .api
            .get(&format!("/api/v1/audit?limit=1000{q}"), Some(root))
            .await;
        assert_eq!(r.status, 200, "{r}");
        let page = r.json();
        for e in page["entries"].as_array().cloned().unwrap_or_default() {
            if e["id"].as_i64().is_none_or(|id| id <= mark) {
                break 'pages;
            }
            if let Some(rid) = e["request_id"].as_str() {
                by_request
                    .entry(rid.to_owned())
                    .or_default()
                    .push(e.clone());
            }
        }
        match page["next_before_id"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let expects = std::mem::take(&mut run.audits);
    let mut seen = (0, 0);
    for e in &expects {
        let got = by_request
            .get(&e.request_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let of = |outcome: &str| {
            got.iter()
                .filter(|g| {
                    g["action"] == e.action
                        && g["outcome"] == outcome
                        && g["actor"] == e.actor.as_str()
                })
                .count()
        };
        let ok = match e.want {
            V1Audit::Nothing => got.is_empty(),
            V1Audit::Denied => {
                seen.0 += 1;
                got.len() == 1 && of("denied") == 1
            }
            V1Audit::Success => {
                seen.1 += 1;
                of("success") >= 1 && of("denied") == 0
            }
            V1Audit::NotDenied => of("denied") == 0,
            V1Audit::Verified => {
                seen.1 += 1;
                of("success") + of("failure") >= 1 && of("denied") == 0
            }
        };
        if !ok {
            run.fail(format!(
                "{}: expected the audit {:?} of {} by {}, found {}",
                e.what,
                e.want,
                e.action,
                e.actor,
                brief(got)
            ));
        }
    }
    eprintln!(
        "/api/v1 audit: {} requests of patient-data routes, {} denials and {} successes checked",
        expects.len(),
        seen.0,
        seen.1
    );
    assert!(
        seen.0 > 0 && seen.1 > 0,
        "audit of the /api/v1 patient-data routes: {} denials, {} successes checked",
        seen.0,
        seen.1
    );
}

/// "Study complete" (`/studies/{study_uid}/complete`): device tokens (of T) and users,
/// each within its write reach, for the study of each institution.
async fn complete_study(
    run: &mut Run<'_>,
    method: &str,
    path: &str,
    (action, audit): (Action, Option<&'static str>),
    c: &Caller,
) {
    let f = run.f;
    let op = format!("{method} {path}");
    // a device writes like a principal of its institution (T)
    let device = Principal::new(
        PrincipalKind::Device,
        f.inst[T].id,
        f.inst[T].alliance_id,
        &[],
    );
    let p = if c.device {
        Some(&device)
    } else {
        c.principal.as_ref()
    };
    let studies = f.studies.clone();
    for (at, uid) in &studies {
        let body = json!({});
        let (r, rid) = run
            .send_rid(
                method,
                &replace_param(path, uid),
                c.token.as_deref(),
                Some(&body),
            )
            .await;
        let what = format!("study of {at}");
        run.audited(c, rid, format!("{op} {} on the {what}", c.name), audit, &r);
        run.checked += 1;
        let Some(p) = p else {
            if (r.status, r.code().as_str()) != (401, "unauthenticated") {
                run.fail(format!(
                    "{op} anonymous: expected 401 unauthenticated, got {r}"
                ));
            }
            continue;
        };
        let allowed = authorize(p, action, scope_of(&f.inst[at])).is_allowed();
        // refused, who may not read the study is told it does not exist
        let hidden =
            ever_permitted(p.kind, action) && !visible(p, study_scope(f, c, at, uid).await);
        let ok = if allowed {
            r.status == 200 && r.body.contains(uid.as_str())
        } else if hidden {
            (r.status, r.code().as_str()) == (404, "not-found")
        } else {
            r.status == 403 && r.code() == "forbidden"
        };
        if !ok {
            run.fail(format!(
                "{op} {} on the {what}: {} by policy, got {r}",
                c.name,
                if allowed {
                    "allowed (200)"
                } else if hidden {
                    "denied and hidden (404 not-found)"
                } else {
                    "denied (403 forbidden)"
                }
            ));
        }
    }
    let r = run
        .send(
            method,
            &replace_param(path, "1.2.826.0.1.3680043.2.1143.424242"),
            c.token.as_deref(),
            Some(&json!({})),
        )
        .await;
    if let Some(p) = p {
        let want = if ever_permitted(p.kind, action) {
            404
        } else {
            403
        };
        if r.status != want {
            run.fail(format!(
                "{op} {}: unknown study answered {r}, expected {want}",
                c.name
            ));
        }
    }
}

fn own_scope(c: &Caller) -> TargetScope {
    c.principal
        .as_ref()
        .map_or(TargetScope::Hub, |p| TargetScope::Institution {
            institution_id: p.institution_id,
            alliance_id: p.alliance_id,
        })
}

fn no_foreign_content(run: &mut Run<'_>, c: &Caller, op: &str, r: &Reply) {
    if c.superadmin() {
        return;
    }
    let f = run.f;
    let p = c.principal.as_ref().expect("user");
    let in_b = p.alliance_id == f.inst[H2].alliance_id;
    // (marker, belongs to B)
    let mut markers: Vec<(String, bool)> = vec![
        ("gadmin.h2".into(), true),
        ("ECG-H2-1".into(), true),
        ("NEIGHBOUR".into(), true),
        ("gadmin.h\"".into(), false),
        ("ECG-T-1".into(), false),
        ("\"COUNTY\"".into(), false),
    ];
    // (the audit log may name a foreign study an own user was refused)
    if !op.ends_with("/audit") {
        for (at, uid) in &f.studies {
            markers.push((uid.clone(), *at == H2));
        }
    }
    for (m, of_b) in markers {
        if of_b != in_b && r.body.contains(&m) {
            run.fail(format!("{op} {}: shows {m} of another alliance", c.name));
        }
    }
}

/// Fill the (single) path parameter of an OpenAPI path.
fn replace_param(path: &str, value: &str) -> String {
    match (path.find('{'), path.find('}')) {
        (Some(a), Some(b)) if a < b => format!("{}{}{}", &path[..a], value, &path[b + 1..]),
        _ => path.to_owned(),
    }
}

fn short(at: &str) -> &'static str {
    match at {
        T => "T",
        V => "V",
        H => "H",
        _ => "H2",
    }
}

/// The `name` of every object in the answer's list (a JSON array, or the first array
/// field of an object).
fn listed_names(v: &Value) -> Vec<String> {
    let list = v
        .as_array()
        .cloned()
        .or_else(|| {
            v.as_object()
                .and_then(|o| o.values().find_map(|x| x.as_array().cloned()))
        })
        .unwrap_or_default();
    list.iter()
        .filter_map(|i| i["name"].as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------- DICOMweb

/// How this test aims each `/dicomweb` route of `dicomweb_route_rules()`. A new route must
/// be added here (the test fails until it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dw {
    /// `GET /dicomweb`: any user.
    Capabilities,
    /// A QIDO search over everything in the caller's reach.
    Search,
    /// A QIDO search inside the study (and series) of the path.
    SearchIn,
    /// A WADO read of the study in the path, asked with `accept`; a 200 answers `answer`.
    Read {
        accept: &'static str,
        answer: &'static str,
    },
    /// STOW-RS of a new study.
    Store,
    /// STOW-RS into the study of the path.
    StoreInto,
}

const DICOM_PARTS: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";
const FRAME_PARTS: &str = "multipart/related; type=\"application/octet-stream\"; transfer-syntax=*";
const DICOM_JSON: &str = "application/dicom+json";
/// The device of the fixture (at T): its serial is its audit actor.
const DEVICE_SERIAL: &str = "ECG-T-1";
/// STOW-RS FailureReason "not authorized" (0x0124).
const NOT_AUTHORIZED: u64 = 0x0124;

fn dw_aim(method: &str, path: &str) -> Option<Dw> {
    const RETRIEVE: Dw = Dw::Read {
        accept: DICOM_PARTS,
        answer: "multipart/related",
    };
    const METADATA: Dw = Dw::Read {
        accept: DICOM_JSON,
        answer: DICOM_JSON,
    };
    const FRAMES: Dw = Dw::Read {
        accept: FRAME_PARTS,
        answer: "multipart/related",
    };
    const IMAGE: Dw = Dw::Read {
        accept: "image/jpeg",
        answer: "image/jpeg",
    };
    const BULK: Dw = Dw::Read {
        accept: "application/octet-stream",
        answer: "application/octet-stream",
    };
    const STUDY: &str = "/dicomweb/studies/{study}";
    const SERIES: &str = "/dicomweb/studies/{study}/series/{series}";
    const INSTANCE: &str = "/dicomweb/studies/{study}/series/{series}/instances/{instance}";
    let rest = |base: &str| path.strip_prefix(base);
    Some(match (method, path) {
        ("GET", "/dicomweb") => Dw::Capabilities,
        ("GET", "/dicomweb/studies" | "/dicomweb/series" | "/dicomweb/instances") => Dw::Search,
        ("POST", "/dicomweb/studies") => Dw::Store,
        ("POST", STUDY) => Dw::StoreInto,
        ("GET", STUDY | SERIES | INSTANCE) => RETRIEVE,
        ("GET", _) => match (rest(INSTANCE), rest(SERIES), rest(STUDY)) {
            (Some("/metadata"), _, _) => METADATA,
            (Some("/frames/{frames}"), _, _) => FRAMES,
            (
                Some(
                    "/rendered"
                    | "/thumbnail"
                    | "/frames/{frames}/rendered"
                    | "/frames/{frames}/thumbnail",
                ),
                _,
                _,
            ) => IMAGE,
            (Some("/bulk/{path}"), _, _) => BULK,
            (None, Some("/instances"), _) => Dw::SearchIn,
            (None, Some("/metadata"), _) => METADATA,
            (None, Some("/thumbnail"), _) => IMAGE,
            (None, None, Some("/series" | "/instances")) => Dw::SearchIn,
            (None, None, Some("/metadata")) => METADATA,
            (None, None, Some("/thumbnail")) => IMAGE,
            _ => return None,
        },
        _ => return None,
    })
}

/// One stored study and its (first) series and image instance.
#[derive(Debug, Clone)]
struct DwTarget {
    /// Where the study is (None: not a fixture study).
    at: Option<&'static str>,
    study: String,
    series: String,
    sop: String,
}

/// Fill the parameters of a DICOMweb path template; None for a parameter this test does
/// not know. Frames: frame 1; bulk data: the pixel data.
fn fill_dw(path: &str, t: &DwTarget) -> Option<String> {
    let mut out = Vec::new();
    for seg in path.split('/') {
        out.push(match seg {
            "{study}" => t.study.as_str(),
            "{series}" => t.series.as_str(),
            "{instance}" => t.sop.as_str(),
            "{frames}" => "1",
            "{path}" => "7FE00010",
            s if s.contains(['{', '}']) => return None,
            s => s,
        });
    }
    Some(out.join("/"))
}

/// The object an audit entry must name.
#[derive(Debug, Clone)]
enum Obj {
    None,
    Study(String),
    /// The study, or no object.
    NoneOr(String),
}

#[derive(Debug, Clone)]
enum Audit {
    /// No entry (anonymous requests).
    Nothing,
    /// Exactly one entry.
    Entry {
        action: &'static str,
        outcome: &'static str,
        object: Obj,
    },
    /// A successful read: one `success` entry for the first read of the study by the
    /// caller, none for the next ones within the coalescing window.
    Read { action: &'static str, study: String },
}

#[derive(Debug)]
struct DwExpect {
    request_id: String,
    what: String,
    actor_kind: &'static str,
    actor: String,
    audit: Audit,
    at: std::time::Instant,
}

/// What a STOW-RS request should have left in the index.
#[derive(Debug)]
struct DwStored {
    what: String,
    study: String,
    sop: String,
    stored: bool,
    /// The institution the study must be in afterwards (a new study: the caller's).
    institution: Option<i64>,
}

#[derive(Default)]
struct DwRun {
    seq: usize,
    expects: Vec<DwExpect>,
    stored: Vec<DwStored>,
    /// Per rule (method, path): requests sent, anonymous answered 401, answers 2xx.
    exercised: HashMap<(&'static str, &'static str), (usize, bool, usize)>,
    /// Answers by status.
    statuses: BTreeMap<u16, usize>,
}

impl Caller {
    fn actor(&self) -> (&'static str, String) {
        if self.device {
            ("device", DEVICE_SERIAL.to_owned())
        } else {
            ("user", self.login.clone().unwrap_or_default())
        }
    }
}

impl DwRun {
    async fn send(
        &mut self,
        f: &Fixture,
        rule: &'static RouteRule,
        c: &Caller,
        path: &str,
        accept: &str,
        body: Option<(String, Vec<u8>)>,
    ) -> (Reply, String) {
        self.seq += 1;
        let rid = format!("authz-dw-{}", self.seq);
        let m = Method::from_bytes(rule.method.as_bytes()).expect("method");
        let mut rb = f
            .api
            .req(m, path, c.token.as_deref())
            .header("x-request-id", &rid)
            .header("accept", accept);
        if let Some((ct, bytes)) = body {
            rb = rb.header("content-type", ct).body(bytes);
        }
        let r = Reply::of(rb.send().await.expect("request")).await;
        *self.statuses.entry(r.status).or_default() += 1;
        let e = self.exercised.entry((rule.method, rule.path)).or_default();
        e.0 += 1;
        e.1 |= c.token.is_none() && r.status == 401;
        if (200..300).contains(&r.status) {
            e.2 += 1;
        }
        (r, rid)
    }

    fn expect(&mut self, request_id: String, what: String, c: &Caller, audit: Audit) {
        let (actor_kind, actor) = c.actor();
        self.expects.push(DwExpect {
            request_id,
            what,
            actor_kind,
            actor,
            audit: if c.token.is_none() {
                Audit::Nothing
            } else {
                audit
            },
            at: std::time::Instant::now(),
        });
    }
}

/// A STOW-RS request body of one Part 10 CT instance, and its Content-Type.
fn stow_body(spec: &CtSpec) -> (String, Vec<u8>) {
    let mut part10 = Vec::new();
    ct_object(spec)
        .with_meta(
            FileMetaTableBuilder::new()
                .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
                .media_storage_sop_instance_uid(spec.sop_uid.as_str())
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN),
        )
        .expect("file meta")
        .write_all(&mut part10)
        .expect("encode Part 10");
    let boundary = format!("authz-{}", new_uid().replace('.', ""));
    let mut body = format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
    body.extend_from_slice(&part10);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        body,
    )
}

/// Audit entries in short: `action outcome object_kind:object_id by actor_kind actor`.
fn brief(entries: &[Value]) -> String {
    let list: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {}:{} by {} {}",
                e["action"].as_str().unwrap_or("?"),
                e["outcome"].as_str().unwrap_or("?"),
                e["object_kind"].as_str().unwrap_or("-"),
                e["object_id"].as_str().unwrap_or("-"),
                e["actor_kind"].as_str().unwrap_or("?"),
                e["actor"].as_str().unwrap_or("?"),
            )
        })
        .collect();
    format!("[{}]", list.join("; "))
}

/// The first value of `tag` in a DICOM JSON object.
fn dj<'a>(item: &'a Value, tag: &str) -> &'a Value {
    &item[tag]["Value"][0]
}

/// Items of a sequence of a DICOM JSON object.
fn dj_items(v: &Value, tag: &str) -> Vec<Value> {
    v[tag]["Value"].as_array().cloned().unwrap_or_default()
}

/// The authorization matrix of `/dicomweb`: every rule of `dicomweb_route_rules()` × every
/// caller × the study of each institution (plus an unknown study and a path mixing two
/// studies); STOW of a new study and into each study; then the audit log, request by
/// request (by `X-Request-Id`), and what STOW left in the index.
async fn dicomweb(run: &mut Run<'_>) {
    let f = run.f;
    let rules = dicomweb_route_rules();
    let probe = DwTarget {
        at: None,
        study: "1.2".into(),
        series: "1.3".into(),
        sop: "1.4".into(),
    };
    let mut problems = Vec::new();
    for r in rules {
        if dw_aim(r.method, r.path).is_none() {
            problems.push(format!(
                "{} {}: this test does not know how to aim it (extend dw_aim())",
                r.method, r.path
            ));
        }
        if fill_dw(r.path, &probe).is_none() {
            problems.push(format!(
                "{} {}: a path parameter this test cannot fill (extend fill_dw())",
                r.method, r.path
            ));
        }
        if matches!(
            r.policy,
            RoutePolicy::Action(_) | RoutePolicy::UploadOnly(_)
        ) && r.patient_data.is_none()
        {
            problems.push(format!(
                "{} {}: a study route without an audit action",
                r.method, r.path
            ));
        }
        if dxhub_api::route_rules()
            .iter()
            .any(|v1| v1.method == r.method && v1.path == r.path)
        {
            problems.push(format!("{} {}: in both registries", r.method, r.path));
        }
    }
    assert!(
        problems.is_empty(),
        "DICOMweb route registry problems:\n{}",
        problems.join("\n")
    );

    let root = f
        .callers
        .iter()
        .find(|c| c.superadmin())
        .and_then(|c| c.token.clone())
        .expect("superadmin");
    // the series and image instance of each stored study, from the index (QIDO)
    let mut targets = Vec::new();
    for (at, study) in &f.studies {
        let r = Reply::of(
            f.api
                .req(
                    Method::GET,
                    // (not a route of the matrix: a search is audited once per window)
                    &format!("/dicomweb/instances?StudyInstanceUID={study}"),
                    Some(&root),
                )
                .header("accept", DICOM_JSON)
                .send()
                .await
                .expect("QIDO"),
        )
        .await;
        assert_eq!(
            r.status, 200,
            "QIDO instances of {study} as superadmin: {r}"
        );
        let v = r.json();
        let first = &v[0];
        let uid = |tag| dj(first, tag).as_str().unwrap_or_default().to_owned();
        assert_eq!(uid("0020000D"), *study, "{r}");
        targets.push(DwTarget {
            at: Some(*at),
            study: study.clone(),
            series: uid("0020000E"),
            sop: uid("00080018"),
        });
    }
    let unknown = DwTarget {
        at: None,
        study: "1.2.826.0.1.3680043.2.1143.424243".into(),
        series: "1.2.826.0.1.3680043.2.1143.424244".into(),
        sop: "1.2.826.0.1.3680043.2.1143.424245".into(),
    };
    // the study of T, addressed with the series and instance of H2's study
    let h2 = targets
        .iter()
        .find(|t| t.at == Some(H2))
        .cloned()
        .expect("H2");
    let mixed = DwTarget {
        at: None,
        study: targets[0].study.clone(),
        series: h2.series.clone(),
        sop: h2.sop.clone(),
    };
    assert_eq!(targets[0].at, Some(T));

    // the newest audit entry before the DICOMweb matrix
    let r = f.api.get("/api/v1/audit?limit=1", Some(&root)).await;
    assert_eq!(r.status, 200, "{r}");
    let mark = r.json()["entries"][0]["id"]
        .as_i64()
        .expect("an audit entry");

    let mut dw = DwRun::default();
    let started = std::time::Instant::now();
    // reads first: the stores add instances to the fixture studies
    for stores in [false, true] {
        for rule in rules {
            if (rule.method == "POST") != stores {
                continue;
            }
            let aim = dw_aim(rule.method, rule.path).expect("aim");
            for c in &f.callers {
                match aim {
                    Dw::Capabilities => dw_capabilities(run, &mut dw, rule, c).await,
                    Dw::Search => dw_search(run, &mut dw, rule, c, &targets).await,
                    Dw::SearchIn => {
                        for t in &targets {
                            dw_search_in(run, &mut dw, rule, c, t).await;
                        }
                    }
                    Dw::Read { accept, answer } => {
                        for t in targets.iter().chain([&unknown, &mixed]) {
                            if t.study == mixed.study
                                && t.series == mixed.series
                                && !rule.path.contains("{series}")
                            {
                                continue;
                            }
                            dw_read(run, &mut dw, rule, c, t, &targets, (accept, answer)).await;
                        }
                    }
                    Dw::Store => dw_store(run, &mut dw, rule, c, None).await,
                    Dw::StoreInto => {
                        for t in &targets {
                            dw_store(run, &mut dw, rule, c, Some(t)).await;
                        }
                    }
                }
            }
        }
    }
    let elapsed = started.elapsed();
    eprintln!(
        "DICOMweb matrix: {} rules × {} callers, {} requests in {elapsed:?}, answers by status {:?}",
        rules.len(),
        f.callers.len(),
        dw.seq,
        dw.statuses
    );

    // --- STOW-RS of another institution's SOP Instance UID, in a new study of the
    // caller's: the other institution's instance stays as it was for its readers, and the
    // caller does not get it through its own study
    foreign_sop(run, &h2).await;

    // --- every rule exercised: anonymous refused, someone answered 2xx
    for r in rules {
        match dw.exercised.get(&(r.method, r.path)) {
            Some((n, anon, ok)) if *n > 0 && *anon && *ok > 0 => {}
            other => run.fail(format!(
                "{} {}: not exercised (requests, anonymous 401, 2xx answers): {other:?}",
                r.method, r.path
            )),
        }
    }

    // --- the audit log, request by request
    let mut by_request: HashMap<String, Vec<Value>> = HashMap::new();
    let mut before: Option<i64> = None;
    'pages: loop {
        let q = before.map_or(String::new(), |b| format!("&before_id={b}"));
        let r = f
            .api
            .get(&format!("/api/v1/audit?limit=1000{q}"), Some(&root))
            .await;
        assert_eq!(r.status, 200, "{r}");
        let page = r.json();
        for e in page["entries"].as_array().cloned().unwrap_or_default() {
            if e["id"].as_i64().is_none_or(|id| id <= mark) {
                break 'pages;
            }
            if let Some(rid) = e["request_id"].as_str() {
                by_request
                    .entry(rid.to_owned())
                    .or_default()
                    .push(e.clone());
            }
        }
        match page["next_before_id"].as_i64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let expected_ids: std::collections::HashSet<&str> =
        dw.expects.iter().map(|e| e.request_id.as_str()).collect();
    let mut first_read: HashMap<(String, String), std::time::Instant> = HashMap::new();
    let (mut denied_seen, mut read_seen, mut search_seen) = (0, 0, 0);
    let mut unnamed: Vec<String> = Vec::new();
    for e in &dw.expects {
        let got = by_request
            .get(&e.request_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let entry_is = |g: &Value, action: &str, outcome: &str, object: &Obj| {
            let object_ok = match object {
                Obj::None => g["object_id"].is_null(),
                Obj::Study(s) => g["object_id"] == s.as_str() && g["object_kind"] == "study",
                Obj::NoneOr(s) => {
                    g["object_id"].is_null()
                        || (g["object_id"] == s.as_str() && g["object_kind"] == "study")
                }
            };
            g["action"] == action
                && g["outcome"] == outcome
                && g["actor_kind"] == e.actor_kind
                && g["actor"] == e.actor.as_str()
                && object_ok
        };
        let want: Option<(&str, &str, Obj)> = match &e.audit {
            Audit::Nothing => None,
            Audit::Entry {
                action,
                outcome,
                object,
            } => Some((action, outcome, object.clone())),
            Audit::Read { action, study } => {
                let key = (e.actor.clone(), study.clone());
                match first_read.get(&key) {
                    None => {
                        first_read.insert(key, e.at);
                        Some((action, "success", Obj::Study(study.clone())))
                    }
                    // coalesced, while the window lasts (a slow run may outlast it)
                    Some(t0) if e.at.duration_since(*t0).as_secs() < 290 => None,
                    Some(_) => {
                        if got.len() > 1
                            || got.iter().any(|g| {
                                !entry_is(g, action, "success", &Obj::Study(study.clone()))
                            })
                        {
                            run.fail(format!("{}: audit of a read: {}", e.what, brief(got)));
                        }
                        continue;
                    }
                }
            }
        };
        match want {
            None if got.is_empty() => {}
            None => run.fail(format!(
                "{}: expected no audit entry ({:?}), found {}",
                e.what,
                e.audit,
                brief(got)
            )),
            Some((action, outcome, object)) => {
                if got.len() == 1 && entry_is(&got[0], action, outcome, &object) {
                    match (outcome, action) {
                        ("denied", _) => denied_seen += 1,
                        (_, "study-read") => read_seen += 1,
                        (_, "study-search") => search_seen += 1,
                        _ => {}
                    }
                } else if matches!(object, Obj::Study(_))
                    && got.len() == 1
                    && entry_is(&got[0], action, outcome, &Obj::None)
                {
                    // the right entry without the study it was about: reported once below
                    unnamed.push(e.what.clone());
                } else {
                    run.fail(format!(
                        "{}: expected one audit entry {action} {outcome} {object:?} by {} {}, \
                         found {}",
                        e.what,
                        e.actor_kind,
                        e.actor,
                        brief(got)
                    ));
                }
            }
        }
    }
    if !unnamed.is_empty() {
        run.fail(format!(
            "{} refusals audited without the study they were about (object_id null), e.g.:\n  {}",
            unnamed.len(),
            unnamed
                .iter()
                .take(4)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        ));
    }
    for rid in by_request.keys() {
        if rid.starts_with("authz-dw-") && !expected_ids.contains(rid.as_str()) {
            run.fail(format!("audit entry of an unknown request {rid}"));
        }
    }
    if elapsed.as_secs() < 290 {
        assert!(
            denied_seen > 0 && read_seen > 0 && search_seen > 0,
            "audit: {denied_seen} denials, {read_seen} reads, {search_seen} searches checked"
        );
    }

    // --- what STOW-RS left in the index (seen by the superadmin)
    for s in &dw.stored {
        let r = f
            .api
            .get(&format!("/api/v1/studies/{}", s.study), Some(&root))
            .await;
        if let Some(inst) = s.institution {
            if r.status != 200 || r.json()["study"]["institution_id"] != inst {
                run.fail(format!(
                    "{}: the study should be in institution {inst}: {r}",
                    s.what
                ));
            }
        } else if s.stored || r.status != 404 {
            run.fail(format!("{}: a refused new study exists: {r}", s.what));
        }
        let q = Reply::of(
            f.api
                .req(
                    Method::GET,
                    &format!("/dicomweb/instances?SOPInstanceUID={}", s.sop),
                    Some(&root),
                )
                .header("accept", DICOM_JSON)
                .send()
                .await
                .expect("QIDO"),
        )
        .await;
        let found = q.status == 200 && q.body.contains(&s.sop);
        if found != s.stored {
            run.fail(format!(
                "{}: instance stored should be {}, is {found}: {q}",
                s.what, s.stored
            ));
        }
    }
}

async fn dw_capabilities(run: &mut Run<'_>, dw: &mut DwRun, rule: &'static RouteRule, c: &Caller) {
    let op = format!("{} {}", rule.method, rule.path);
    let (r, rid) = dw
        .send(run.f, rule, c, rule.path, "application/json", None)
        .await;
    dw.expect(rid, format!("{op} {}", c.name), c, Audit::Nothing);
    if run.gate(c, &op, &r) {
        run.checked += 1;
        if r.status != 200 || r.json()["qido"].is_null() {
            run.fail(format!("{op} {}: any user may call it, got {r}", c.name));
        }
    }
}

/// Refusals carry no patient data; 200s no other study than the target's.
fn dw_content(run: &mut Run<'_>, op: &str, c: &Caller, r: &Reply, own: Option<&str>) {
    if r.status != 200 {
        if r.body.contains("MX-") {
            run.fail(format!("{op} {}: patient data in a refusal: {r}", c.name));
        }
        return;
    }
    if let Some(own) = own {
        for (at, uid) in &run.f.studies {
            if uid != own && r.body.contains(uid.as_str()) {
                run.fail(format!(
                    "{op} {}: answers with the study of {at} too: {r}",
                    c.name
                ));
            }
        }
    }
}

async fn dw_search(
    run: &mut Run<'_>,
    dw: &mut DwRun,
    rule: &'static RouteRule,
    c: &Caller,
    targets: &[DwTarget],
) {
    let f = run.f;
    let op = format!("{} {}", rule.method, rule.path);
    let action = rule.patient_data.expect("audit action");
    let (r, rid) = dw.send(f, rule, c, rule.path, DICOM_JSON, None).await;
    let denied = Audit::Entry {
        action,
        outcome: "denied",
        object: Obj::None,
    };
    if !run.gate(c, &op, &r) {
        dw.expect(rid, format!("{op} {}", c.name), c, denied);
        return;
    }
    let allowed = may_list(c, Action::ReadStudy);
    run.decided(c, &op, "own institution", allowed, (200, false), &r);
    let audit = if r.status == 200 {
        Audit::Entry {
            action,
            outcome: "success",
            object: Obj::None,
        }
    } else {
        denied
    };
    dw.expect(rid, format!("{op} {}", c.name), c, audit);
    dw_content(run, &op, c, &r, None);
    if r.status != 200 {
        return;
    }
    let level_uid = |t: &DwTarget| match rule.path {
        "/dicomweb/series" => t.series.clone(),
        "/dicomweb/instances" => t.sop.clone(),
        _ => t.study.clone(),
    };
    for t in targets {
        let at = t.at.expect("fixture study");
        let may = c.may(Action::ReadStudy, listed_scope(f, c, at, &t.study).await);
        let listed = r.body.contains(&t.study);
        if listed && !may {
            run.fail(format!(
                "{op} {}: lists the study of {at} out of its reach",
                c.name
            ));
        }
        if may && !(listed && r.body.contains(&level_uid(t))) {
            run.fail(format!(
                "{op} {}: misses the study of {at} within its reach: {r}",
                c.name
            ));
        }
    }
}

async fn dw_search_in(
    run: &mut Run<'_>,
    dw: &mut DwRun,
    rule: &'static RouteRule,
    c: &Caller,
    t: &DwTarget,
) {
    let f = run.f;
    let at = t.at.expect("fixture study");
    let op = format!("{} {}", rule.method, rule.path);
    let action = rule.patient_data.expect("audit action");
    let path = fill_dw(rule.path, t).expect("fill");
    let (r, rid) = dw.send(f, rule, c, &path, DICOM_JSON, None).await;
    let what = format!("{op} {} on the study of {at}", c.name);
    let denied = Audit::Entry {
        action,
        outcome: "denied",
        object: Obj::NoneOr(t.study.clone()),
    };
    if !run.gate(c, &op, &r) {
        dw.expect(rid, what, c, denied);
        return;
    }
    // the search is allowed when the caller may read studies; the results are scoped
    let allowed = may_list(c, Action::ReadStudy);
    run.decided(c, &op, &format!("study of {at}"), allowed, (200, false), &r);
    dw.expect(
        rid,
        what,
        c,
        if r.status == 200 {
            Audit::Entry {
                action,
                outcome: "success",
                object: Obj::Study(t.study.clone()),
            }
        } else {
            denied
        },
    );
    dw_content(run, &op, c, &r, Some(&t.study));
    if r.status != 200 {
        return;
    }
    let may = c.may(Action::ReadStudy, study_scope(f, c, at, &t.study).await);
    let rows = r.json().as_array().cloned().unwrap_or_default();
    let uid = if rule.path.ends_with("/series") {
        &t.series
    } else {
        &t.sop
    };
    if may
        && !(r.body.contains(uid.as_str())
            && rows.iter().all(|x| dj(x, "0020000D") == t.study.as_str()))
    {
        run.fail(format!(
            "{op} {}: misses the study of {at} within its reach: {r}",
            c.name
        ));
    }
    if !may && (!rows.is_empty() || r.body.contains(&t.study)) {
        run.fail(format!(
            "{op} {}: shows the study of {at} out of its reach: {r}",
            c.name
        ));
    }
}

async fn dw_read(
    run: &mut Run<'_>,
    dw: &mut DwRun,
    rule: &'static RouteRule,
    c: &Caller,
    t: &DwTarget,
    targets: &[DwTarget],
    (accept, answer): (&str, &str),
) {
    let f = run.f;
    let op = format!("{} {}", rule.method, rule.path);
    let action = rule.patient_data.expect("audit action");
    let path = fill_dw(rule.path, t).expect("fill");
    let kind = match t.at {
        Some(at) => format!("the study of {at}"),
        None if targets.iter().any(|x| x.study == t.study) => {
            "the study of T with the series of H2".to_owned()
        }
        None => "an unknown study".to_owned(),
    };
    let what = format!("{op} {} on {kind}", c.name);
    let (r, rid) = dw.send(f, rule, c, &path, accept, None).await;
    let entry = |outcome| Audit::Entry {
        action,
        outcome,
        object: Obj::Study(t.study.clone()),
    };
    if !run.gate(c, &op, &r) {
        // a device's refusal names the study it asked for, like a user's
        dw.expect(rid, what, c, entry("denied"));
        dw_content(run, &op, c, &r, None);
        return;
    }
    run.checked += 1;
    let Some(at) = t.at else {
        // unknown study, or a series of another study: never an answer; 404 (or 403 when
        // the caller may not read the study it names)
        let ok = match r.status {
            404 => {
                dw.expect(rid, what.clone(), c, entry("not-found"));
                true
            }
            403 => {
                dw.expect(rid, what.clone(), c, entry("denied"));
                r.code() == "forbidden"
            }
            _ => {
                dw.expect(rid, what.clone(), c, Audit::Nothing);
                false
            }
        };
        if !ok {
            run.fail(format!("{what}: expected 404 (or 403), got {r}"));
        }
        if r.body.contains("MX-") {
            run.fail(format!("{what}: patient data in the answer: {r}"));
        }
        return;
    };
    let target = study_scope(f, c, at, &t.study).await;
    let allowed = c.may(Action::ReadStudy, target);
    // refused, who may not read the study is told it does not exist
    let hidden = c.hidden(Action::ReadStudy, target);
    run.decided(c, &op, &kind, allowed, (200, hidden), &r);
    dw.expect(
        rid,
        what.clone(),
        c,
        match r.status {
            200 => Audit::Read {
                action,
                study: t.study.clone(),
            },
            _ => entry("denied"),
        },
    );
    dw_content(run, &op, c, &r, Some(&t.study));
    if r.status == 200 {
        let ct = r.header("content-type").unwrap_or_default();
        if !ct.starts_with(answer) {
            run.fail(format!("{what}: answered {ct}, expected {answer}"));
        }
        let names_it = match answer {
            "multipart/related" if accept == DICOM_PARTS => r.body.contains(&t.sop),
            DICOM_JSON => r.body.contains(&t.sop) && r.body.contains(&t.study),
            _ => !r.body.is_empty(),
        };
        if !names_it {
            run.fail(format!("{what}: 200 without the instance: {r}"));
        }
    }
}

async fn dw_store(
    run: &mut Run<'_>,
    dw: &mut DwRun,
    rule: &'static RouteRule,
    c: &Caller,
    into: Option<&DwTarget>,
) {
    let f = run.f;
    let op = format!("{} {}", rule.method, rule.path);
    let action = rule.patient_data.expect("audit action");
    // the instance: of a new study, or of the study in the path (its patient)
    let (study, patient) = match into {
        Some(t) => {
            let at = t.at.expect("fixture study");
            (t.study.clone(), format!("MX-{}", short(at)))
        }
        None => (new_uid(), run.unique("MX-STOW-")),
    };
    let mut spec = CtSpec::new(&study, &new_uid(), 1);
    spec.patient_id = patient;
    let path = match into {
        Some(t) => fill_dw(rule.path, t).expect("fill"),
        None => rule.path.to_owned(),
    };
    let kind = into.map_or("a new study".to_owned(), |t| {
        format!("the study of {}", t.at.unwrap_or("?"))
    });
    let what = format!("{op} {} into {kind}", c.name);
    let (r, rid) = dw
        .send(f, rule, c, &path, DICOM_JSON, Some(stow_body(&spec)))
        .await;
    let path_study = || match into {
        Some(t) => Obj::Study(t.study.clone()),
        None => Obj::None,
    };
    let mut stored = false;
    if c.token.is_none() {
        if (r.status, r.code().as_str()) != (401, "unauthenticated") {
            run.fail(format!("{what}: expected 401 unauthenticated, got {r}"));
        }
        dw.expect(rid, what.clone(), c, Audit::Nothing);
    } else {
        run.checked += 1;
        // a device writes like a principal of its institution (T)
        let device = Principal::new(
            PrincipalKind::Device,
            f.inst[T].id,
            f.inst[T].alliance_id,
            &[],
        );
        let p = if c.device {
            &device
        } else {
            c.principal.as_ref().expect("user")
        };
        let may = |target| authorize(p, Action::WriteStudy, target).is_allowed();
        let own = TargetScope::Institution {
            institution_id: p.institution_id,
            alliance_id: p.alliance_id,
        };
        let (status, audit) = if !may(own) {
            (
                403,
                Audit::Entry {
                    action,
                    outcome: "denied",
                    object: path_study(),
                },
            )
        } else if into.is_none_or(|t| may(scope_of(&f.inst[t.at.expect("fixture")]))) {
            stored = true;
            (
                200,
                Audit::Entry {
                    action,
                    outcome: "success",
                    object: Obj::Study(study.clone()),
                },
            )
        } else {
            (
                409,
                Audit::Entry {
                    action,
                    outcome: "failure",
                    object: path_study(),
                },
            )
        };
        dw.expect(rid, what.clone(), c, audit);
        let v = r.json();
        let referenced = dj_items(&v, "00081199");
        let failed = dj_items(&v, "00081198");
        let sop_of = |x: &Value| dj(x, "00081155") == spec.sop_uid.as_str();
        let ok = r.status == status
            && match status {
                403 => r.code() == "forbidden",
                200 => referenced.iter().any(sop_of) && failed.is_empty(),
                _ => {
                    referenced.is_empty()
                        && failed.len() == 1
                        && sop_of(&failed[0])
                        && dj(&failed[0], "00081197").as_u64() == Some(NOT_AUTHORIZED)
                }
            };
        if !ok {
            let expected = match status {
                403 => "403 forbidden",
                200 => "200 with the instance in ReferencedSOPSequence",
                _ => "409 with FailedSOPSequence FailureReason 0x0124",
            };
            run.fail(format!("{what}: expected {expected}, got {r}"));
        }
    }
    dw.stored.push(DwStored {
        what,
        study,
        sop: spec.sop_uid.clone(),
        stored,
        institution: match into {
            // a store into a study never moves it
            Some(t) => Some(f.inst[t.at.expect("fixture")].id),
            None if stored => Some(if c.device {
                f.inst[T].id
            } else {
                c.principal.as_ref().expect("user").institution_id
            }),
            None => None,
        },
    });
}

async fn foreign_sop(run: &mut Run<'_>, h2: &DwTarget) {
    let f = run.f;
    let token = |login: &str| {
        f.callers
            .iter()
            .find(|c| c.login.as_deref() == Some(login))
            .and_then(|c| c.token.clone())
            .expect("caller")
    };
    let (tech, h2_admin) = (token("tech.t"), token("gadmin.h2"));
    let mut spec = CtSpec::new(&new_uid(), &new_uid(), 1);
    spec.sop_uid = h2.sop.clone();
    spec.patient_id = "MX-INJECTED".into();
    let (ct, body) = stow_body(&spec);
    let stow = Reply::of(
        f.api
            .req(Method::POST, "/dicomweb/studies", Some(&tech))
            .header("content-type", ct)
            .header("accept", DICOM_JSON)
            .body(body)
            .send()
            .await
            .expect("STOW"),
    )
    .await;
    let get = |path: String, t: String, accept: &'static str| {
        let api = f.api.clone();
        async move {
            Reply::of(
                api.req(Method::GET, &path, Some(&t))
                    .header("accept", accept)
                    .send()
                    .await
                    .expect("GET"),
            )
            .await
        }
    };
    let theirs = format!(
        "/dicomweb/studies/{}/series/{}/instances/{}",
        h2.study, h2.series, h2.sop
    );
    for (path, accept) in [
        (format!("{theirs}/metadata"), DICOM_JSON),
        (theirs.clone(), DICOM_PARTS),
    ] {
        let r = get(path.clone(), h2_admin.clone(), accept).await;
        if r.status != 200 || !r.body.contains("MX-H2") || r.body.contains("MX-INJECTED") {
            run.fail(format!(
                "STOW of H2's SOP Instance UID {} by tech.t (answered {stow}): GET {path} \
                 as gadmin.h2 should still answer H2's instance: {r}",
                h2.sop
            ));
        }
    }
    let mine = format!(
        "/dicomweb/studies/{}/series/{}/instances/{}",
        spec.study_uid, spec.series_uid, h2.sop
    );
    for (path, accept) in [
        (format!("{mine}/metadata"), DICOM_JSON),
        (mine.clone(), DICOM_PARTS),
    ] {
        let r = get(path.clone(), tech.clone(), accept).await;
        if r.body.contains("MX-H2") {
            run.fail(format!(
                "STOW of H2's SOP Instance UID by tech.t (answered {stow}): GET {path} as \
                 tech.t shows H2's patient: {r}"
            ));
        }
    }
}
