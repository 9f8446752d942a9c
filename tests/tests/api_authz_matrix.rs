//! The authorization matrix of `/api/v1` (issue #3): every operation of the OpenAPI
//! document × every principal (each role, a user of another alliance, a device token, no
//! token) × own and foreign objects. Expectations come from the route-policy registry
//! (`dxhub_api::route_rules`) and the pure policy (`dxhub_core::authorize`), so the test
//! follows them; an operation without a rule, or one this test does not know how to aim
//! at an own and a foreign object, fails it. On SQLite and on PostgreSQL.
//!
//! Tenancy: alliance A (county hospital H → township T → village V) and alliance B
//! (county hospital H2); one study stored by DIMSE into each of T, V, H and H2.

use std::collections::{BTreeMap, HashMap};

use dxhub_api::{RoutePolicy, route_rules};
use dxhub_core::{Action, Principal, PrincipalKind, Role, TargetScope, authorize};
use dxhub_e2e::api::{
    Api, PASSWORD, Reply, add_device, add_user, admin_list, device_id, issue_token,
    postgres_options, store_study,
};
use dxhub_e2e::hub::{HubOptions, TestHub};
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
}

/// How this test aims each operation. A new operation must be added here (the test fails
/// until it is) — and to the registry, or the test fails on that too.
fn aim(method: &str, path: &str) -> Option<Aim> {
    Some(match (method, path) {
        ("GET", "/api/v1/openapi.json")
        | ("POST", "/api/v1/auth/login")
        | ("POST", "/api/v1/auth/logout")
        | ("GET", "/api/v1/auth/me")
        | ("POST", "/api/v1/auth/totp/enroll")
        | ("POST", "/api/v1/auth/totp/confirm")
        | ("GET", "/api/v1/alliances")
        | ("GET", "/api/v1/institutions") => Aim::None,
        ("POST", "/api/v1/alliances") => Aim::Hub,
        ("POST", "/api/v1/institutions") => Aim::BodyAlliance,
        ("GET", "/api/v1/ae-titles")
        | ("GET", "/api/v1/users")
        | ("GET", "/api/v1/devices")
        | ("GET", "/api/v1/audit") => Aim::OwnAlliance,
        ("POST", "/api/v1/ae-titles") | ("POST", "/api/v1/users") | ("POST", "/api/v1/devices") => {
            Aim::BodyInstitution
        }
        ("POST", "/api/v1/users/{}/disable")
        | ("POST", "/api/v1/users/{}/role")
        | ("POST", "/api/v1/users/{}/password") => Aim::PathUser,
        ("PATCH", "/api/v1/institutions/{}") => Aim::PathInstitution,
        ("DELETE", "/api/v1/ae-titles/{}") => Aim::PathAe,
        ("POST", "/api/v1/devices/{}/revoke") => Aim::PathDevice,
        ("GET", "/api/v1/studies") => Aim::StudyList,
        ("GET", "/api/v1/studies/{}") => Aim::PathStudy,
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
}

impl Caller {
    fn may(&self, action: Action, target: TargetScope) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|p| authorize(p, action, target).is_allowed())
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
}

fn scope_of(i: &Inst) -> TargetScope {
    TargetScope::Institution {
        institution_id: i.id,
        alliance_id: i.alliance_id,
    }
}

async fn fixture(opts: HubOptions) -> Fixture {
    let mut hub = TestHub::spawn(opts);
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
    }];
    callers.push(Caller {
        name: "device@T".into(),
        token: Some(add_device(&hub, T, "ECG-T-1")),
        principal: None,
        device: true,
        login: None,
    });
    // a device of B, for the foreign-content checks of the device lists
    add_device(&hub, H2, "ECG-H2-1");
    for (login, role, at) in users {
        add_user(&hub, at, login, role, PASSWORD);
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
        });
    }
    let api = Api::new(&hub);
    Fixture {
        hub,
        api,
        inst,
        studies,
        callers,
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
        &self,
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
        Reply::of(rb.send().await.expect("request")).await
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
    /// `forbidden` (or 404 when `hide` allows it).
    fn decided(
        &mut self,
        c: &Caller,
        op: &str,
        what: &str,
        allowed: bool,
        (ok, hide): (u16, bool),
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
        } else if !(r.status == 403 && r.code() == "forbidden" || hide && r.status == 404) {
            self.fail(format!(
                "{op} {} on {what}: denied by policy, expected 403 forbidden, got {r}",
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
    };
    for (method, path) in &v1 {
        let rule = rules
            .iter()
            .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
            .expect("rule");
        let aim = aim(method, &template(path)).expect("aim");
        for c in &f.callers {
            check_operation(&mut run, method, path, rule.policy, aim, c).await;
        }
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
    let root = f
        .callers
        .iter()
        .find(|c| c.superadmin())
        .and_then(|c| c.token.clone())
        .expect("superadmin");
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
    policy: RoutePolicy,
    aim: Aim,
    c: &Caller,
) {
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
        RoutePolicy::UploadOnly(_) => {
            run.fail(format!(
                "{op}: upload routes are not in this matrix yet; extend it"
            ));
        }
        RoutePolicy::AnyUser => any_user(run, method, path, c).await,
        RoutePolicy::Action(action) => {
            match aim {
                Aim::None => run.fail(format!("{op}: an Action route needs an aim")),
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
                    let r = run.send(method, path, token, None).await;
                    if run.gate(c, &op, &r) {
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
                        let p = c.principal.as_ref().expect("user");
                        let own = TargetScope::Institution {
                            institution_id: p.institution_id,
                            alliance_id: p.alliance_id,
                        };
                        let allowed = c.may(action, own);
                        run.decided(c, &op, "own institution", allowed, (200, false), &r);
                        if r.status == 200 {
                            for (at, uid) in &f.studies {
                                let may = c.may(action, scope_of(&f.inst[at]));
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
                        let allowed = c.may(action, scope_of(&f.inst[at]));
                        run.decided(c, &op, &format!("study of {at}"), allowed, (200, true), &r);
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
                    if run.gate(c, &op, &r) && !matches!(r.status, 403 | 404) {
                        run.fail(format!("{op} {}: unknown study answered {r}", c.name));
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
                                (201, true),
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
                            allowed = c.may(action, scope_of(&f.inst[at]));
                            run.decided(
                                c,
                                &op,
                                &format!("institution {at}"),
                                allowed,
                                (201, true),
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
                                (ok, true),
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
                    if run.gate(c, &op, &r) && !matches!(r.status, 403 | 404) {
                        run.fail(format!("{op} {}: unknown object answered {r}", c.name));
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
                    let disable_or_revoke = body.is_none();
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
                                (ok, true),
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
    let body = match path {
        "/api/v1/auth/totp/confirm" => Some(json!({ "code": "000000" })),
        _ if method == "POST" => Some(json!({})),
        _ => None,
    };
    let r = run.send(method, path, token, body.as_ref()).await;
    if !run.gate(c, &op, &r) {
        return;
    }
    run.checked += 1;
    let ok = match path {
        "/api/v1/auth/logout" => r.status == 204,
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
