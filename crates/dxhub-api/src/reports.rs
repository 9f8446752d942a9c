//! Reports (issue #7): templates, the exam catalogue and critical-value categories per
//! alliance; readers' SM2 signing keys; the report lifecycle (draft → submitted → signed
//! or returned; signed addenda; corrected versions) driving the work item; online
//! verification and the signed export for offline `dxhub verify`; PDF; critical values
//! with acknowledgement and escalation; DICOM push-back; FHIR `DiagnosticReport`; the
//! mutual-recognition lookup.
//!
//! Who may do what to a report is `dxhub_core::report::apply` (by role, authorship and
//! signing authority) after the route policy; the store checks the step's preconditions
//! (version, state, work-item holder) atomically.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dxhub_core::policy::{Action, TargetScope};
use dxhub_core::report::{
    self as rep, KekRing, ReportActor, ReportOp, ReportRefusal, ReportState, SignedContent,
    SignedReport, SigningKey,
};
use dxhub_core::roles::Role;
use dxhub_store::report::{
    CriticalFilter, DraftSpec, PacsTarget, PushResult, Report, ReportDefaults, ReportFilter,
    ReportVersion, Signature, VersionBody,
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, rfc3339, totp_verify, unix_now};
use crate::v1::{ApiJson, ApiQuery};
use crate::worklist::{actor_of, item_for, shanghai, user_id};
use crate::{ApiError, AppState};

/// Settings of reports (from the binary's `[reports]` configuration).
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// The key-encryption keys sealing readers' private keys; `None`: signing is off.
    pub keks: Option<KekRing>,
    /// Unacknowledged critical values escalate after this long.
    pub critical_ack_limit_s: i64,
    /// Our AE title when pushing reports to clinics' PACS.
    pub push_calling_ae: String,
    pub push_timeout: Duration,
    pub push_max_attempts: i64,
    /// The first retry's delay; it doubles with every failed attempt (up to 256×).
    pub push_retry: Duration,
    /// The CJK font for PDFs (default: found among installed fonts).
    pub pdf_font: Option<std::path::PathBuf>,
    /// The reading centre's name printed under the alliance on PDFs.
    pub centre_name: Option<String>,
    /// Lookups of the public verification page per client address and minute (its own
    /// bucket: a clinic behind one NAT address checks many printouts).
    pub verify_per_minute: u32,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            keks: None,
            critical_ack_limit_s: 600,
            push_calling_ae: "DXHUB".to_owned(),
            push_timeout: Duration::from_secs(30),
            push_max_attempts: 8,
            push_retry: Duration::from_secs(30),
            pdf_font: None,
            centre_name: None,
            verify_per_minute: 60,
        }
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(put_template))
        .routes(routes!(list_exam_types))
        .routes(routes!(put_exam_type))
        .routes(routes!(list_categories, put_categories))
        .routes(routes!(list_signing_keys))
        .routes(routes!(enrol_signing_key))
        .routes(routes!(set_signing_authority))
        .routes(routes!(set_duty_schedule))
        .routes(routes!(set_report_settings))
        .routes(routes!(prefill))
        .routes(routes!(save_draft))
        .routes(routes!(list_reports))
        .routes(routes!(get_report))
        .routes(routes!(submit))
        .routes(routes!(sign))
        .routes(routes!(return_report))
        .routes(routes!(add_addendum))
        .routes(routes!(correct))
        .routes(routes!(verify_report))
        .routes(routes!(signed_export))
        .routes(routes!(report_pdf))
        .routes(routes!(raise_critical))
        .routes(routes!(list_criticals))
        .routes(routes!(ack_critical))
        .routes(routes!(list_pushes))
        .routes(routes!(retry_push))
        .routes(routes!(fhir_report))
        .routes(routes!(recognition))
        .routes(routes!(report_events))
}

// ---------------------------------------------------------------- helpers

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn coded(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Coded {
        status,
        code,
        message: message.into(),
    }
}

/// Store conflicts with a stable code in front (`stale-version: …`) keep that code.
fn store_err(e: dxhub_store::catalog::Error) -> ApiError {
    use dxhub_store::catalog::Error as E;
    if let E::Conflict(m) = &e {
        for code in [
            "stale-version",
            "wrong-state",
            "not-holder",
            "already-acknowledged",
        ] {
            if m.starts_with(code) {
                return coded(StatusCode::CONFLICT, code, m.clone());
            }
        }
    }
    e.into()
}

fn refusal(r: ReportRefusal) -> ApiError {
    match r {
        ReportRefusal::WrongState => coded(
            StatusCode::CONFLICT,
            "wrong-state",
            "the report is not in a state that allows this",
        ),
        ReportRefusal::NotAuthor => coded(
            StatusCode::FORBIDDEN,
            "not-author",
            "only the report's author may do this",
        ),
        ReportRefusal::NotPermitted => coded(
            StatusCode::FORBIDDEN,
            "not-permitted",
            "your role may not do this to a report",
        ),
        ReportRefusal::OwnReport => coded(
            StatusCode::FORBIDDEN,
            "own-report",
            "a report is verified by another senior reader (or by its author holding signing authority)",
        ),
    }
}

fn parse_state(s: &str) -> Result<ReportState, ApiError> {
    Ok(match s {
        "draft" => ReportState::Draft,
        "submitted" => ReportState::Submitted,
        "signed" => ReportState::Signed,
        "returned" => ReportState::Returned,
        "superseded" => ReportState::Superseded,
        other => return Err(internal(format!("stored report state {other}"))),
    })
}

/// A report is judged as its study (readers: routed to them or a prior of their patient).
async fn report_scope(
    state: &AppState,
    caller: &Caller,
    action: Action,
    r: &Report,
) -> Result<TargetScope, ApiError> {
    Ok(match r.institution_id {
        Some(_) => {
            caller
                .study_scope(
                    state,
                    action,
                    &r.study_instance_uid,
                    r.institution_id,
                    r.alliance_id,
                )
                .await?
        }
        None => TargetScope::Alliance {
            alliance_id: r.alliance_id,
        },
    })
}

/// The report, if the route's action on it is allowed (403/404 otherwise). Every action
/// on a report also needs the report to be readable by the caller: a reader's write reach
/// is the alliance, but a reader writes, signs, returns, amends or flags only a report
/// routed to them (or a prior of their patient), and one they may not read is not found.
async fn report_for(state: &AppState, caller: &Caller, id: i64) -> Result<Report, ApiError> {
    let Some(r) = state.catalog.get_report(id).await? else {
        return Err(caller.unknown(state, format!("report {id}")).await);
    };
    let action = caller
        .action()
        .ok_or_else(|| ApiError::Internal("route has no action policy".into()))?;
    let read = report_scope(state, caller, Action::ReadReport, &r).await?;
    if action != Action::ReadReport {
        caller
            .require_action_found(state, Action::ReadReport, read, || format!("report {id}"))
            .await?;
    }
    let target = report_scope(state, caller, action, &r).await?;
    caller
        .require_action_seen(state, action, target, read, || format!("report {id}"))
        .await?;
    Ok(r)
}

/// Apply the report state machine for the caller (role, authorship, signing authority).
async fn allowed(
    state: &AppState,
    caller: &Caller,
    current: ReportState,
    op: ReportOp,
    author_id: Option<i64>,
) -> Result<ReportState, ApiError> {
    let role = caller
        .role()
        .ok_or_else(|| refusal(ReportRefusal::NotPermitted))?;
    let me = user_id(caller)?;
    let signing_authority = state.catalog.signing_authority(me).await?;
    rep::apply(
        current,
        op,
        ReportActor {
            role,
            is_author: author_id == Some(me),
            signing_authority,
        },
    )
    .map_err(refusal)
}

async fn institution(state: &AppState, id: i64) -> Result<dxhub_store::Institution, ApiError> {
    state
        .catalog
        .list_institutions()
        .await?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("institution {id}")))
}

fn alliance_of(caller: &Caller) -> i64 {
    caller.principal.alliance_id
}

/// Re-authentication for signing: the password and a current TOTP code of the caller.
/// Failures count towards the login lock-out and are audited.
async fn reauthenticate(
    state: &AppState,
    caller: &Caller,
    password: &str,
    totp: &str,
) -> Result<(), ApiError> {
    reauthenticate_for(state, caller, password, totp, "signing-reauth").await
}

/// [`reauthenticate`] for another step, audited as `audit_action`.
pub(crate) async fn reauthenticate_for(
    state: &AppState,
    caller: &Caller,
    password: &str,
    totp: &str,
    audit_action: &'static str,
) -> Result<(), ApiError> {
    let me = user_id(caller)?;
    let user = state
        .catalog
        .get_user(me)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if user.is_locked(state.worklist.now()) {
        caller.audit(state, audit_action, None, "locked").await?;
        return Err(ApiError::AccountLocked);
    }
    let Some(secret) = user.totp_secret.clone() else {
        caller.audit(state, audit_action, None, "failure").await?;
        return Err(coded(
            StatusCode::FORBIDDEN,
            "totp-enrollment-required",
            "signing needs a second factor: enrol TOTP first",
        ));
    };
    let (pw, phc) = (password.to_owned(), user.password_hash.clone());
    let ok = tokio::task::spawn_blocking(move || dxhub_store::secrets::verify_password(&pw, &phc))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let totp_ok = ok && totp_verify(&secret, totp.trim(), unix_now());
    if !totp_ok {
        state.catalog.record_login_failure(me).await?;
        caller.audit(state, audit_action, None, "failure").await?;
        return Err(if ok {
            ApiError::InvalidTotp
        } else {
            ApiError::InvalidCredentials
        });
    }
    caller.audit(state, audit_action, None, "success").await?;
    Ok(())
}

/// The caller's private key, unsealed (after [`reauthenticate`]): the KEK opens the
/// outer seal, the caller's password the inner one. A key from before the password layer
/// (the KEK alone opened it) is re-sealed with the password now.
async fn unlock_key(
    state: &AppState,
    me: i64,
    password: &str,
) -> Result<(i64, SigningKey), ApiError> {
    let ring = state.settings.reports.keks.as_ref().ok_or_else(|| {
        coded(
            StatusCode::SERVICE_UNAVAILABLE,
            "signing-unavailable",
            "no key-encryption key is configured ([reports] kek)",
        )
    })?;
    let key = state.catalog.active_signing_key(me).await?.ok_or_else(|| {
        coded(
            StatusCode::CONFLICT,
            "no-signing-key",
            "create a signing key first (POST /api/v1/me/signing-key)",
        )
    })?;
    let kek = ring.get(&key.kek_id).map_err(|e| {
        coded(
            StatusCode::SERVICE_UNAVAILABLE,
            "signing-unavailable",
            format!("{e} (KEK rotation: keep it in reports.previous_keks until `dxhub admin signing-keys reseal` ran)"),
        )
    })?;
    let opened = kek
        .open(&key.sealed_secret, me, &key.public_key)
        .map_err(internal)?;
    let (pw, public) = (password.to_owned(), key.public_key.clone());
    let ring = ring.clone();
    let (secret, upgraded) = tokio::task::spawn_blocking(move || {
        if rep::is_password_wrapped(&opened) {
            rep::unwrap_with_password(&opened, &pw, me, &public).map(|s| (s, None))
        } else {
            // a legacy key: seal it again with the password, under the current KEK
            let mut rng = rand_core::OsRng;
            let wrapped = rep::wrap_with_password(&opened, &pw, me, &public, &mut rng);
            let sealed = ring.current.seal(&wrapped, me, &public, &mut rng);
            Ok((opened, Some((sealed, ring.current.id().to_owned()))))
        }
    })
    .await
    .map_err(internal)?
    .map_err(|e| match e {
        rep::SealError::Password => {
            coded(StatusCode::CONFLICT, "signing-key-locked", e.to_string())
        }
        e => internal(e),
    })?;
    if let Some((sealed, kek_id)) = upgraded {
        state
            .catalog
            .reseal_signing_key(key.id, &key.kek_id, &sealed, &kek_id)
            .await?;
    }
    let sk = SigningKey::from_secret_bytes(&secret).map_err(internal)?;
    Ok((key.id, sk))
}

/// The body fields a signature covers, all from stored columns (so the online check can
/// rebuild them): `section.*`, `field.*` and `meta.*`.
fn signed_body(r: &Report, v: &ReportVersion) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (prefix, key) in [("section", "sections"), ("field", "fields")] {
        if let Some(map) = v.body.get(key).and_then(Value::as_object) {
            for (k, val) in map {
                let text = match val {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.insert(format!("{prefix}.{k}"), text);
            }
        }
    }
    let mut meta = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.insert(format!("meta.{k}"), v);
        }
    };
    meta("kind", Some(r.kind.clone()));
    meta("template", Some(r.template_code.clone()));
    meta("exam_code", r.exam_code.clone());
    meta("version_kind", Some(v.kind.clone()));
    meta("qc_grade", v.qc_grade.clone());
    meta("critical", Some(v.critical.to_string()));
    meta("critical_category", v.critical_category.clone());
    meta("machine", v.machine.as_ref().map(Value::to_string));
    meta("confirmed", v.confirmations.as_ref().map(Value::to_string));
    meta("key_images", v.key_images.as_ref().map(Value::to_string));
    if v.kind == "correction" {
        meta("reason", v.reason.clone());
    }
    out
}

fn content_of(
    r: &Report,
    v: &ReportVersion,
    verifier: &str,
    signed_at: i64,
    instances: Vec<(String, String)>,
) -> SignedContent {
    SignedContent {
        report_id: r.id,
        version: v.version,
        study_instance_uid: r.study_instance_uid.clone(),
        source_institution: r.institution_name.clone().unwrap_or_default(),
        patient_identity_hash: r.identity_hash.clone().unwrap_or_default(),
        author: v.author_login.clone(),
        verifier: verifier.to_owned(),
        written_at: v.written_at,
        signed_at,
        body: signed_body(r, v),
        instances,
    }
}

fn addendum_content(
    r: &Report,
    version: i64,
    text: &str,
    login: &str,
    now: i64,
    instances: Vec<(String, String)>,
) -> SignedContent {
    let mut body = BTreeMap::new();
    body.insert("addendum.text".to_owned(), text.to_owned());
    body.insert("addendum.to_version".to_owned(), version.to_string());
    body.insert("meta.kind".to_owned(), "addendum".to_owned());
    SignedContent {
        report_id: r.id,
        version,
        study_instance_uid: r.study_instance_uid.clone(),
        source_institution: r.institution_name.clone().unwrap_or_default(),
        patient_identity_hash: r.identity_hash.clone().unwrap_or_default(),
        author: login.to_owned(),
        verifier: login.to_owned(),
        written_at: now,
        signed_at: now,
        body,
        instances,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sign_content(
    content: &SignedContent,
    key_id: i64,
    sk: &SigningKey,
    me: i64,
) -> Result<Signature, ApiError> {
    Ok(Signature {
        signer_id: me,
        key_id,
        content: serde_json::to_string(content).map_err(internal)?,
        signature: hex(&sk.sign(&rep::canonical_bytes(content))),
    })
}

fn version_json(v: &ReportVersion) -> Value {
    let mut j = serde_json::to_value(v).unwrap_or(Value::Null);
    if let Some(o) = j.as_object_mut() {
        o.remove("signed_content");
        for k in ["written_at", "submitted_at", "signed_at", "returned_at"] {
            if let Some(t) = o.get(k).and_then(Value::as_i64) {
                o.insert(format!("{k}_local"), json!(shanghai(t)));
            }
        }
        // ECG: each machine value with the reader's verdict (confirmed as is / edited)
        if let Some(machine) = v.machine.as_ref().and_then(|m| {
            serde_json::from_value::<Vec<dxhub_core::report_template::MachineValue>>(m.clone()).ok()
        }) {
            let fields: BTreeMap<String, String> = v
                .body
                .get("fields")
                .cloned()
                .and_then(|f| serde_json::from_value(f).ok())
                .unwrap_or_default();
            let confirmed: Vec<String> = v
                .confirmations
                .clone()
                .and_then(|c| serde_json::from_value(c).ok())
                .unwrap_or_default();
            match dxhub_core::report_template::confirmations(&machine, &fields, &confirmed) {
                Ok(list) => {
                    o.insert("measurements".into(), json!(list));
                }
                Err(e) => {
                    o.insert("measurements_pending".into(), json!(e.to_string()));
                }
            }
        }
    }
    j
}

/// An addendum with its times also as Asia/Shanghai local time (`signed_at_local`).
fn addendum_json<T: serde::Serialize>(a: &T) -> Value {
    let mut j = serde_json::to_value(a).unwrap_or(Value::Null);
    if let Some(o) = j.as_object_mut() {
        for k in ["signed_at", "created_at"] {
            if let Some(t) = o.get(k).and_then(Value::as_i64) {
                o.insert(format!("{k}_local"), json!(shanghai(t)));
            }
        }
    }
    j
}

fn report_json(r: &Report) -> Value {
    let mut j = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Some(o) = j.as_object_mut() {
        o.insert("open_critical".into(), json!(r.open_critical > 0));
        if let Some(t) = r.signed_at {
            o.insert("signed_at_local".into(), json!(shanghai(t)));
        }
        o.insert(
            "links".into(),
            json!({
                "self": format!("/api/v1/reports/{}", r.id),
                "pdf": format!("/api/v1/reports/{}/pdf", r.id),
                "verify": format!("/api/v1/reports/{}/verify", r.id),
                "fhir": format!("/api/v1/fhir/DiagnosticReport/{}", r.id),
                "study": format!("/dicomweb/studies/{}", r.study_instance_uid),
            }),
        );
    }
    j
}

// ---------------------------------------------------------------- defaults

/// The defaults every alliance starts with: templates, the exam catalogue and the
/// critical-value categories (existing rows are never overwritten).
pub fn defaults() -> ReportDefaults {
    use dxhub_core::recognition::default_exam_catalogue;
    use dxhub_core::report_template::{default_critical_categories, default_templates};
    ReportDefaults {
        templates: default_templates()
            .into_iter()
            .map(|t| {
                (
                    t.code.clone(),
                    t.name.clone(),
                    serde_json::to_value(&t).unwrap_or(Value::Null),
                )
            })
            .collect(),
        exam_types: default_exam_catalogue()
            .into_iter()
            .map(|e| {
                (
                    e.code.clone(),
                    serde_json::to_value(&e).unwrap_or(Value::Null),
                    e.recognition_eligible,
                    e.validity_days.map(i64::from),
                )
            })
            .collect(),
        categories: default_critical_categories()
            .into_iter()
            .map(|c| {
                (
                    c.code.clone(),
                    serde_json::to_value(&c).unwrap_or(Value::Null),
                )
            })
            .collect(),
    }
}

/// Seed the defaults of `alliance_id` (at start-up for every alliance, and when one is
/// created).
pub async fn seed_defaults(
    catalog: &dyn dxhub_store::Catalog,
    alliance_id: i64,
) -> Result<(), dxhub_store::catalog::Error> {
    catalog
        .seed_report_defaults(
            alliance_id,
            &defaults(),
            dxhub_core::worklist::Clock::now_us(&dxhub_core::worklist::SystemClock),
        )
        .await
}

// ---------------------------------------------------------------- catalogue routes

/// The alliance's report templates.
#[utoipa::path(get, path = "/api/v1/report-templates", tag = "reports",
    responses((status = 200, description = "{templates:[{code, name, definition, enabled}]}")))]
async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let t = state.catalog.list_templates(alliance_of(&caller)).await?;
    Ok(Json(json!({ "templates": t })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TemplateBody {
    /// `dxhub_core::report_template::Template` (its `code` must match the path).
    #[schema(value_type = Object)]
    pub definition: Value,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// Create or replace a template (group admins).
#[utoipa::path(put, path = "/api/v1/report-templates/{code}", tag = "reports", params(("code" = String, Path)),
    request_body = TemplateBody,
    responses((status = 200, description = "The template"), (status = 403, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn put_template(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<TemplateBody>,
) -> Result<Json<Value>, ApiError> {
    let alliance_id = alliance_of(&caller);
    caller
        .require(&state, TargetScope::Alliance { alliance_id })
        .await?;
    let t: dxhub_core::report_template::Template =
        serde_json::from_value(req.definition.clone())
            .map_err(|e| ApiError::InvalidJson(format!("definition: {e}")))?;
    if t.code != code {
        return Err(ApiError::InvalidJson(
            "definition.code must match the path".into(),
        ));
    }
    t.validate()
        .map_err(|e| ApiError::InvalidJson(format!("definition: {e}")))?;
    let r = state
        .catalog
        .put_template(
            alliance_id,
            &code,
            &t.name,
            &req.definition,
            req.enabled,
            state.worklist.now(),
        )
        .await;
    let row = caller
        .audited(&state, "template-write", Some(("template", &code)), r)
        .await?;
    Ok(Json(json!(row)))
}

/// The alliance's exam catalogue (recognition eligibility, validity).
#[utoipa::path(get, path = "/api/v1/exam-types", tag = "reports",
    responses((status = 200, description = "{exam_types:[…]}")))]
async fn list_exam_types(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let e = state.catalog.list_exam_types(alliance_of(&caller)).await?;
    Ok(Json(json!({ "exam_types": e })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ExamTypeBody {
    /// `dxhub_core::recognition::ExamType` (its `code` must match the path).
    #[schema(value_type = Object)]
    pub definition: Value,
}

/// Create or replace an exam type (group admins).
#[utoipa::path(put, path = "/api/v1/exam-types/{code}", tag = "reports", params(("code" = String, Path)),
    request_body = ExamTypeBody,
    responses((status = 200, description = "The exam type"), (status = 403, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn put_exam_type(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<ExamTypeBody>,
) -> Result<Json<Value>, ApiError> {
    let alliance_id = alliance_of(&caller);
    caller
        .require(&state, TargetScope::Alliance { alliance_id })
        .await?;
    let e: dxhub_core::recognition::ExamType = serde_json::from_value(req.definition.clone())
        .map_err(|e| ApiError::InvalidJson(format!("definition: {e}")))?;
    if e.code != code {
        return Err(ApiError::InvalidJson(
            "definition.code must match the path".into(),
        ));
    }
    let r = state
        .catalog
        .put_exam_type(
            alliance_id,
            &code,
            &req.definition,
            e.recognition_eligible,
            e.validity_days.map(i64::from),
            state.worklist.now(),
        )
        .await;
    let row = caller
        .audited(&state, "exam-type-write", Some(("exam_type", &code)), r)
        .await?;
    Ok(Json(json!(row)))
}

/// Critical-value categories (ECG: 2017 consensus; imaging items).
#[utoipa::path(get, path = "/api/v1/critical-categories", tag = "reports",
    responses((status = 200, description = "{categories:[{code, definition, position}]}")))]
async fn list_categories(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let c = state
        .catalog
        .list_critical_categories(alliance_of(&caller))
        .await?;
    Ok(Json(json!({ "categories": c })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CategoriesBody {
    /// `dxhub_core::report_template::CriticalCategory` items, in display order.
    #[schema(value_type = Vec<Object>)]
    pub categories: Vec<Value>,
}

/// Replace the alliance's list of critical-value categories (group admins).
#[utoipa::path(put, path = "/api/v1/critical-categories", tag = "reports", request_body = CategoriesBody,
    responses((status = 200, description = "{categories:[…]}"), (status = 403, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn put_categories(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CategoriesBody>,
) -> Result<Json<Value>, ApiError> {
    let alliance_id = alliance_of(&caller);
    caller
        .require(&state, TargetScope::Alliance { alliance_id })
        .await?;
    let mut list = Vec::new();
    for v in req.categories {
        let c: dxhub_core::report_template::CriticalCategory = serde_json::from_value(v.clone())
            .map_err(|e| ApiError::InvalidJson(format!("category: {e}")))?;
        if list.iter().any(|(code, _)| *code == c.code) {
            return Err(ApiError::InvalidJson(format!(
                "duplicate category {}",
                c.code
            )));
        }
        list.push((c.code.clone(), v));
    }
    let r = state
        .catalog
        .replace_critical_categories(alliance_id, &list)
        .await;
    caller
        .audited(&state, "critical-categories-write", None, r)
        .await?;
    let c = state.catalog.list_critical_categories(alliance_id).await?;
    Ok(Json(json!({ "categories": c })))
}

// ---------------------------------------------------------------- keys

/// The hub's public signing keys (revoked ones too: they verify what they signed), in the
/// form `dxhub verify --keys` reads.
#[utoipa::path(get, path = "/api/v1/signing-keys", tag = "reports",
    responses((status = 200, description = "{keys:[{login, public_key, fingerprint, created_at, revoked_at}]}")))]
async fn list_signing_keys(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let alliance = (!caller.is_superadmin()).then(|| alliance_of(&caller));
    let keys: Vec<Value> = state
        .catalog
        .list_signing_keys(alliance)
        .await?
        .into_iter()
        .map(|k| {
            json!({"login": k.login, "public_key": k.public_key, "fingerprint": k.fingerprint,
                   "created_at": k.created_at, "revoked_at": k.revoked_at})
        })
        .collect();
    Ok(Json(json!({ "keys": keys })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReauthBody {
    pub password: String,
    pub totp: String,
}

/// Create the caller's SM2 key pair (re-authenticated); a previous key is revoked.
#[utoipa::path(post, path = "/api/v1/me/signing-key", tag = "reports", request_body = ReauthBody,
    responses((status = 201, description = "{id, public_key, fingerprint}"), (status = 401, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody)))]
async fn enrol_signing_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ReauthBody>,
) -> Result<Response, ApiError> {
    caller
        .require(
            &state,
            TargetScope::Institution {
                institution_id: caller.principal.institution_id,
                alliance_id: alliance_of(&caller),
            },
        )
        .await?;
    let ring = state.settings.reports.keks.clone().ok_or_else(|| {
        coded(
            StatusCode::SERVICE_UNAVAILABLE,
            "signing-unavailable",
            "no key-encryption key is configured ([reports] kek)",
        )
    })?;
    reauthenticate(&state, &caller, &req.password, &req.totp).await?;
    let me = user_id(&caller)?;
    let password = req.password.clone();
    let (public, fingerprint, sealed) = tokio::task::spawn_blocking(move || {
        let mut rng = rand_core::OsRng;
        let sk = SigningKey::generate(&mut rng);
        let public = sk.public_key();
        let public_hex = hex(&public);
        // the signer's password locks it, the KEK seals that
        let wrapped =
            rep::wrap_with_password(&sk.secret_bytes(), &password, me, &public_hex, &mut rng);
        let sealed = ring.current.seal(&wrapped, me, &public_hex, &mut rng);
        (public_hex, rep::fingerprint(&public), sealed)
    })
    .await
    .map_err(internal)?;
    let kek_id = state
        .settings
        .reports
        .keks
        .as_ref()
        .map(|r| r.current.id().to_owned())
        .unwrap_or_default();
    let r = state
        .catalog
        .add_signing_key(
            me,
            &public,
            &fingerprint,
            &sealed,
            &kek_id,
            state.worklist.now(),
        )
        .await;
    let key = caller
        .audited(&state, "signing-key-create", None, r)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": key.id, "public_key": key.public_key, "fingerprint": key.fingerprint})),
    )
        .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AuthorityBody {
    pub granted: bool,
}

/// Grant or withdraw a reader's right to sign their own reports (group admins).
#[utoipa::path(put, path = "/api/v1/users/{id}/signing-authority", tag = "reports", params(("id" = i64, Path)),
    request_body = AuthorityBody,
    responses((status = 200, description = "{user_id, signing_authority}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn set_signing_authority(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<AuthorityBody>,
) -> Result<Json<Value>, ApiError> {
    crate::v1::managed_user(&state, &caller, id).await?;
    let r = state.catalog.set_signing_authority(id, req.granted).await;
    caller
        .audited(
            &state,
            "signing-authority",
            Some(("user", &id.to_string())),
            r,
        )
        .await?;
    Ok(Json(
        json!({"user_id": id, "signing_authority": req.granted}),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DutyScheduleBody {
    /// China Standard Time: `DAYS HH:MM-HH:MM` entries separated by `;`, days `mon`…`sun`,
    /// ranges (`mon-fri`), lists (`sat,sun`) or `daily`; a window past midnight belongs
    /// to the day it starts on. `null` or blank: always on duty.
    pub schedule: Option<String>,
}

/// Set a clinic user's on-duty schedule (group admins): a critical value alerts the
/// source institution's clinic users on duty when it is raised (everybody when nobody is).
#[utoipa::path(put, path = "/api/v1/users/{id}/duty-schedule", tag = "reports", params(("id" = i64, Path)),
    request_body = DutyScheduleBody,
    responses((status = 200, body = crate::dto::User), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 422, description = "invalid schedule", body = crate::dto::ErrorBody)))]
async fn set_duty_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<DutyScheduleBody>,
) -> Result<Json<crate::dto::User>, ApiError> {
    let user = crate::v1::managed_user(&state, &caller, id).await?;
    if !matches!(user.role, Role::ClinicDoctor | Role::ClinicTech) {
        return Err(ApiError::Coded {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "not-a-clinic-user",
            message: format!(
                "duty schedules are for clinic users; {} is a {}",
                user.login,
                user.role.as_str()
            ),
        });
    }
    let r = state
        .catalog
        .set_duty_schedule(id, req.schedule.as_deref())
        .await;
    caller
        .audited(&state, "duty-schedule", Some(("user", &id.to_string())), r)
        .await?;
    let user = state
        .catalog
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id}")))?;
    Ok(Json(user.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReportSettingsBody {
    /// The user critical values escalate to (`null` clears).
    #[serde(default, deserialize_with = "crate::worklist::double_option")]
    #[schema(value_type = Option<i64>)]
    pub head_user_id: Option<Option<i64>>,
    /// The clinic's own PACS for push-back (`null` turns push-back off).
    #[serde(default, deserialize_with = "crate::worklist::double_option")]
    #[schema(value_type = Option<Object>)]
    pub pacs: Option<Option<PacsTarget>>,
}

/// An institution's report settings: escalation head and DICOM push-back target.
#[utoipa::path(patch, path = "/api/v1/institutions/{id}/report-settings", tag = "reports", params(("id" = i64, Path)),
    request_body = ReportSettingsBody,
    responses((status = 200, description = "{head_user_id, pacs}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn set_report_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ReportSettingsBody>,
) -> Result<Json<Value>, ApiError> {
    let inst = institution(&state, id).await?;
    caller
        .require_found(
            &state,
            TargetScope::Institution {
                institution_id: inst.id,
                alliance_id: inst.alliance_id,
            },
            || format!("institution {id}"),
        )
        .await?;
    if let Some(Some(head)) = req.head_user_id {
        let u = state.catalog.get_user(head).await?;
        if u.is_none_or(|u| u.institution_id != id) {
            return Err(ApiError::InvalidJson(
                "head_user_id: not a user of this institution".into(),
            ));
        }
    }
    if let Some(Some(p)) = &req.pacs {
        let ae = p.ae_title.trim();
        if ae.is_empty() || ae.len() > 16 || p.host.trim().is_empty() || p.port == 0 {
            return Err(ApiError::InvalidJson(
                "pacs: {ae_title (1–16 characters), host, port} required".into(),
            ));
        }
    }
    let r = state
        .catalog
        .set_institution_report_settings(id, req.head_user_id, req.pacs)
        .await;
    caller
        .audited(
            &state,
            "institution-report-settings",
            Some(("institution", &id.to_string())),
            r,
        )
        .await?;
    Ok(Json(json!(
        state.catalog.institution_report_settings(id).await?
    )))
}

// ---------------------------------------------------------------- drafting

#[derive(Debug, Deserialize, IntoParams)]
pub struct PrefillQuery {
    /// Template code (default: the exam's template, else the first of the modality).
    pub template: Option<String>,
}

/// The machine values (ECG) of the study of a work item.
async fn machine_values(state: &AppState, study_uid: &str) -> Result<Option<Value>, ApiError> {
    let ecgs = state.catalog.find_ecgs_by_study(study_uid).await?;
    let Some(ecg) = ecgs.first() else {
        return Ok(None);
    };
    let analysis: Value = serde_json::from_str(&ecg.analysis).map_err(internal)?;
    let values = dxhub_core::report_template::ecg_prefill(&analysis);
    Ok(Some(serde_json::to_value(values).map_err(internal)?))
}

async fn template_of(
    state: &AppState,
    alliance_id: i64,
    code: &str,
) -> Result<dxhub_core::report_template::Template, ApiError> {
    let row = state
        .catalog
        .get_template(alliance_id, code)
        .await?
        .filter(|t| t.enabled)
        .ok_or_else(|| ApiError::InvalidJson(format!("template {code}: unknown or disabled")))?;
    serde_json::from_value(row.definition).map_err(internal)
}

/// What to start a report from: the template (chosen or suggested), its "normal" text and
/// fields, and for an ECG the machine measurements to confirm.
#[utoipa::path(get, path = "/api/v1/worklist/{id}/report-prefill", tag = "reports", params(("id" = i64, Path), PrefillQuery),
    responses((status = 200, description = "{template, normal:{sections, fields}, machine:[…]|null, report}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn prefill(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiQuery(q): ApiQuery<PrefillQuery>,
) -> Result<Json<Value>, ApiError> {
    let item = item_for(&state, &caller, id).await?;
    let templates = state.catalog.list_templates(item.alliance_id).await?;
    let exam_code = state.catalog.study_exam_code(item.study_id).await?;
    let exams = state.catalog.list_exam_types(item.alliance_id).await?;
    let code = match q.template {
        Some(c) => c,
        None => {
            let from_exam = exam_code.as_deref().and_then(|c| {
                exams
                    .iter()
                    .find(|e| e.code == c)
                    .and_then(|e| e.definition.get("template_code"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            let modality = item.modality.clone().unwrap_or_default();
            from_exam
                .or_else(|| {
                    templates
                        .iter()
                        .find(|t| {
                            t.enabled
                                && t.definition
                                    .get("modality")
                                    .and_then(Value::as_array)
                                    .is_some_and(|m| m.iter().any(|x| x == modality.as_str()))
                        })
                        .map(|t| t.code.clone())
                })
                .or_else(|| templates.first().map(|t| t.code.clone()))
                .ok_or_else(|| ApiError::NotFound("no report templates".into()))?
        }
    };
    let t = template_of(&state, item.alliance_id, &code).await?;
    let (sections, fields) = t.normal_fill();
    let machine = machine_values(&state, &item.study_instance_uid).await?;
    let report = state
        .catalog
        .report_of_study(&item.study_instance_uid)
        .await?
        .map(|r| json!({"id": r.id, "current_version": r.current_version, "state": r.state}));
    caller
        .audit(
            &state,
            "report-prefill",
            Some(("work_item", &id.to_string())),
            "success",
        )
        .await?;
    Ok(Json(json!({
        "template": t,
        "exam_code": exam_code,
        "normal": {"sections": sections, "fields": fields},
        "machine": machine,
        "report": report,
    })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DraftBody {
    pub template_code: String,
    pub exam_code: Option<String>,
    /// The current version the editor was at (absent for the first save).
    pub base_version: Option<i64>,
    /// `findings`, `impression`, `recommendation` → text.
    #[serde(default)]
    pub sections: BTreeMap<String, String>,
    /// Structured fields of the template → value.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// ECG: the machine values the reader confirmed (keys).
    #[serde(default)]
    pub confirmed: Vec<String>,
    /// Key images for the PDF: `[{"sop_instance_uid","frame"}]`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub key_images: Option<Value>,
    /// `jia`, `yi`, `bing` (images) or `acceptable`, `unacceptable` (ECG).
    pub qc_grade: Option<String>,
    #[serde(default)]
    pub critical: bool,
    pub critical_category: Option<String>,
}

fn check_key_images(v: &Option<Value>) -> Result<(), ApiError> {
    if let Some(v) = v {
        let ok = v.as_array().is_some_and(|a| {
            a.len() <= 8
                && a.iter().all(|x| {
                    x.get("sop_instance_uid").and_then(Value::as_str).is_some()
                        && x.get("frame").is_none_or(|f| f.as_u64().is_some())
                })
        });
        if !ok {
            return Err(ApiError::InvalidJson(
                "key_images: at most 8 of {sop_instance_uid, frame}".into(),
            ));
        }
    }
    Ok(())
}

/// Validate a body against its template and the alliance's lists; the content to store.
async fn content_from(
    state: &AppState,
    alliance_id: i64,
    kind: &str,
    t: &dxhub_core::report_template::Template,
    req: &DraftBody,
    machine: Option<Value>,
) -> Result<VersionBody, ApiError> {
    if let Some(bad) = req
        .sections
        .keys()
        .find(|k| !t.sections.iter().any(|s| &s.key == *k))
    {
        return Err(ApiError::InvalidJson(format!(
            "sections.{bad}: not a section of template {}",
            t.code
        )));
    }
    t.check_fields(&req.fields, false)
        .map_err(|errs| ApiError::InvalidJson(field_errors(&errs)))?;
    if let Some(q) = &req.qc_grade {
        let grade: dxhub_core::recognition::QcGrade =
            serde_json::from_value(json!(q)).map_err(|_| {
                ApiError::InvalidJson(format!(
                    "qc_grade {q}: jia, yi, bing (images) or acceptable, unacceptable (ECG)"
                ))
            })?;
        if !grade.valid_for(t.kind) {
            return Err(ApiError::InvalidJson(format!(
                "qc_grade {q} is not a grade for a {kind} report"
            )));
        }
    }
    if req.critical || req.critical_category.is_some() {
        let Some(cat) = &req.critical_category else {
            return Err(ApiError::InvalidJson(
                "critical_category is required when critical".into(),
            ));
        };
        let cats = state.catalog.list_critical_categories(alliance_id).await?;
        if !cats.iter().any(|c| &c.code == cat) {
            return Err(ApiError::InvalidJson(format!(
                "critical_category {cat}: not in the alliance's list"
            )));
        }
    }
    check_key_images(&req.key_images)?;
    let mut confirmed = req.confirmed.clone();
    confirmed.sort();
    confirmed.dedup();
    Ok(VersionBody {
        body: json!({"sections": req.sections, "fields": req.fields}),
        confirmations: machine.as_ref().map(|_| json!(confirmed)),
        machine,
        key_images: req.key_images.clone(),
        qc_grade: req.qc_grade.clone(),
        critical: req.critical,
        critical_category: req.critical_category.clone(),
    })
}

fn field_errors(errs: &[dxhub_core::report_template::FieldError]) -> String {
    errs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn kind_str(k: dxhub_core::report_template::ReportKind) -> &'static str {
    match k {
        dxhub_core::report_template::ReportKind::Ecg => "ecg",
        dxhub_core::report_template::ReportKind::Imaging => "imaging",
    }
}

/// Save the report of a work item as a new draft version (autosave; every version kept).
/// The caller must hold the item.
#[utoipa::path(post, path = "/api/v1/worklist/{id}/report", tag = "reports", params(("id" = i64, Path)),
    request_body = DraftBody,
    responses((status = 200, description = "{report, version}"), (status = 403, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody, description = "not-holder, stale-version, wrong-state"), (status = 422, body = crate::dto::ErrorBody)))]
async fn save_draft(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<DraftBody>,
) -> Result<Json<Value>, ApiError> {
    let item = item_for(&state, &caller, id).await?;
    let existing = state
        .catalog
        .report_of_study(&item.study_instance_uid)
        .await?;
    let current = match &existing {
        Some(r) => parse_state(&r.state)?,
        None => ReportState::Draft,
    };
    let me = user_id(&caller)?;
    let holder = if item.claimed_by == Some(me) {
        Some(me)
    } else {
        None
    };
    allowed(&state, &caller, current, ReportOp::SaveDraft, holder).await?;
    let t = template_of(&state, item.alliance_id, &req.template_code).await?;
    let kind = kind_str(t.kind);
    let machine = if kind == "ecg" {
        machine_values(&state, &item.study_instance_uid).await?
    } else {
        None
    };
    let content = content_from(&state, item.alliance_id, kind, &t, &req, machine).await?;
    let exam_code = match &req.exam_code {
        Some(c) => Some(c.clone()),
        None => match state.catalog.study_exam_code(item.study_id).await? {
            Some(c) => Some(c),
            None => state
                .catalog
                .list_exam_types(item.alliance_id)
                .await?
                .into_iter()
                .find(|e| {
                    e.definition.get("template_code").and_then(Value::as_str)
                        == Some(t.code.as_str())
                })
                .map(|e| e.code),
        },
    };
    let spec = DraftSpec {
        work_item_id: id,
        template_code: t.code.clone(),
        exam_code,
        kind: kind.to_owned(),
        content,
        base_version: req.base_version,
    };
    let r = state
        .catalog
        .save_draft(
            &spec,
            &actor_of(&caller),
            state.worklist.now(),
            state.worklist.settings.lease_ttl_s,
        )
        .await
        .map_err(store_err);
    let (report, version) = caller
        .audited(
            &state,
            "report-write",
            Some(("work_item", &id.to_string())),
            r,
        )
        .await?;
    Ok(Json(
        json!({"report": report_json(&report), "version": version_json(&version)}),
    ))
}

// ---------------------------------------------------------------- reading

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportListQuery {
    /// Patient ID (exact).
    pub patient: Option<String>,
    /// `draft`, `submitted`, `signed`, `returned`.
    pub state: Option<String>,
    /// Study date from (YYYYMMDD or YYYY-MM-DD), inclusive.
    pub from: Option<String>,
    pub to: Option<String>,
    pub study: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

fn dicom_date(s: &Option<String>, what: &str) -> Result<Option<String>, ApiError> {
    match s {
        None => Ok(None),
        Some(s) => {
            let d: String = s.chars().filter(char::is_ascii_digit).collect();
            if d.len() != 8 {
                return Err(ApiError::BadRequest(format!(
                    "{what}: a date YYYYMMDD or YYYY-MM-DD"
                )));
            }
            Ok(Some(d))
        }
    }
}

/// Reports of the caller's reach (clinics: their institution and those it heads), newest
/// first, filtered by patient, state and study date.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports", params(ReportListQuery),
    responses((status = 200, description = "{reports:[…]}"), (status = 403, body = crate::dto::ErrorBody)))]
async fn list_reports(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportListQuery>,
) -> Result<Json<Value>, ApiError> {
    let reach = caller.require_list(&state).await?;
    if let Some(s) = &q.state
        && !["draft", "submitted", "signed", "returned"].contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(
            "state: draft, submitted, signed or returned".into(),
        ));
    }
    let filter = ReportFilter {
        alliance_id: (!caller.is_superadmin()).then(|| alliance_of(&caller)),
        institution_ids: reach.institution_ids,
        routed_to: reach.routed_to,
        patient_id: q.patient.clone(),
        state: q.state.clone(),
        date_from: dicom_date(&q.from, "from")?,
        date_to: dicom_date(&q.to, "to")?,
        study_instance_uid: q.study.clone(),
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
        offset: q.offset.unwrap_or(0).max(0),
    };
    let reports = state.catalog.list_reports(&filter).await?;
    caller.audit(&state, "report-list", None, "success").await?;
    Ok(Json(
        json!({"reports": reports.iter().map(report_json).collect::<Vec<_>>()}),
    ))
}

/// One report: the version in force (or the current draft for readers), every version
/// with who/when/why, addenda, critical values with their communication record, and
/// push-back deliveries.
#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "reports", params(("id" = i64, Path)),
    responses((status = 200, description = "{report, current, versions:[…], addenda:[…], critical_values:[…], pushes:[…]}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn get_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    let clinic = caller.role().is_some_and(Role::is_clinic);
    let versions = state.catalog.report_versions(id).await?;
    // clinics see signed versions only (drafts are the reader's work in progress)
    let visible: Vec<&ReportVersion> = versions
        .iter()
        .filter(|v| !clinic || matches!(v.state.as_str(), "signed" | "superseded"))
        .collect();
    let current = if clinic {
        r.signed_version
            .and_then(|s| versions.iter().find(|v| v.version == s))
    } else {
        versions.iter().find(|v| v.version == r.current_version)
    };
    let addenda = state.catalog.report_addenda(id).await?;
    let mut criticals = Vec::new();
    for c in state
        .catalog
        .list_criticals(&CriticalFilter {
            report_id: Some(id),
            limit: 100,
            ..Default::default()
        })
        .await?
    {
        let log = state.catalog.critical_log(c.id).await?;
        criticals.push(json!({"critical": c, "log": log}));
    }
    // push-backs to the source clinic's PACS stay the source's (as in list_pushes): not
    // shown to a doctor who reads the report only as a recognised result
    let target = report_scope(&state, &caller, Action::ReadReport, &r).await?;
    let pushes = if caller.may(Action::ReadReport, target.unrecognised()) {
        state.catalog.list_pushes(id).await?
    } else {
        Vec::new()
    };
    caller
        .audit(
            &state,
            "report-read",
            Some(("report", &id.to_string())),
            "success",
        )
        .await?;
    Ok(Json(json!({
        "report": report_json(&r),
        "current": current.map(version_json),
        "versions": visible.iter().map(|v| version_json(v)).collect::<Vec<_>>(),
        "addenda": addenda.iter().map(addendum_json).collect::<Vec<_>>(),
        "critical_values": criticals,
        "pushes": pushes,
    })))
}

// ---------------------------------------------------------------- lifecycle

#[derive(Debug, Deserialize, ToSchema)]
pub struct VersionBodyReq {
    pub version: i64,
}

async fn current_version(
    state: &AppState,
    r: &Report,
    version: i64,
) -> Result<ReportVersion, ApiError> {
    if version != r.current_version {
        return Err(coded(
            StatusCode::CONFLICT,
            "stale-version",
            format!("the report is at version {}", r.current_version),
        ));
    }
    state
        .catalog
        .report_version(r.id, version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("report {} version {version}", r.id)))
}

/// Everything a submitted version must have: required fields, every section of the
/// template that has a normal text filled, a QC grade, and for an ECG every machine value
/// confirmed or edited.
async fn check_complete(state: &AppState, r: &Report, v: &ReportVersion) -> Result<(), ApiError> {
    let t = template_of(state, r.alliance_id, &r.template_code).await?;
    let fields: BTreeMap<String, String> = v
        .body
        .get("fields")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(internal)?
        .unwrap_or_default();
    t.check_fields(&fields, true)
        .map_err(|errs| ApiError::InvalidJson(field_errors(&errs)))?;
    let impression = v
        .body
        .pointer("/sections/impression")
        .and_then(Value::as_str)
        .unwrap_or("");
    if impression.trim().is_empty() {
        return Err(coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "incomplete",
            "sections.impression (诊断意见) is empty",
        ));
    }
    if v.qc_grade.is_none() {
        return Err(coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "incomplete",
            "qc_grade: record the image-quality grade (甲/乙/丙, or acceptable/unacceptable for an ECG)",
        ));
    }
    if let Some(machine) = &v.machine {
        let machine: Vec<dxhub_core::report_template::MachineValue> =
            serde_json::from_value(machine.clone()).map_err(internal)?;
        let confirmed: Vec<String> = v
            .confirmations
            .clone()
            .map(serde_json::from_value)
            .transpose()
            .map_err(internal)?
            .unwrap_or_default();
        dxhub_core::report_template::confirmations(&machine, &fields, &confirmed).map_err(|e| {
            coded(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unconfirmed-measurements",
                e.to_string(),
            )
        })?;
    }
    Ok(())
}

/// Submit the current version for verification (its author, holding the work item).
#[utoipa::path(post, path = "/api/v1/reports/{id}/submit", tag = "reports", params(("id" = i64, Path)),
    request_body = VersionBodyReq,
    responses((status = 200, description = "{report, version}"), (status = 403, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<VersionBodyReq>,
) -> Result<Json<Value>, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    let v = current_version(&state, &r, req.version).await?;
    allowed(
        &state,
        &caller,
        parse_state(&r.state)?,
        ReportOp::Submit,
        Some(r.author_id),
    )
    .await?;
    check_complete(&state, &r, &v).await?;
    let res = state
        .catalog
        .submit_report(
            id,
            req.version,
            &actor_of(&caller),
            state.worklist.now(),
            state.worklist.settings.lease_ttl_s,
        )
        .await
        .map_err(store_err);
    let (report, version) = caller
        .audited(
            &state,
            "report-submit",
            Some(("report", &id.to_string())),
            res,
        )
        .await?;
    Ok(Json(
        json!({"report": report_json(&report), "version": version_json(&version)}),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignBody {
    pub version: i64,
    pub password: String,
    pub totp: String,
}

/// Verify and sign the submitted version (a senior reader; the author when holding signing
/// authority), re-authenticated with password and TOTP. The signature covers the report
/// and the sha256 of every instance of the study.
#[utoipa::path(post, path = "/api/v1/reports/{id}/sign", tag = "reports", params(("id" = i64, Path)),
    request_body = SignBody,
    responses((status = 200, description = "{report, version, fingerprint}"), (status = 401, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn sign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<SignBody>,
) -> Result<Json<Value>, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    let v = current_version(&state, &r, req.version).await?;
    allowed(
        &state,
        &caller,
        parse_state(&r.state)?,
        ReportOp::Sign,
        Some(r.author_id),
    )
    .await?;
    reauthenticate(&state, &caller, &req.password, &req.totp).await?;
    let me = user_id(&caller)?;
    let (key_id, sk) = unlock_key(&state, me, &req.password).await?;
    let login = caller.actor().1;
    let now = state.worklist.now();
    let instances = state.catalog.study_instance_hashes(r.study_id).await?;
    let content = content_of(&r, &v, &login, now, instances);
    let signature = sign_content(&content, key_id, &sk, me)?;
    let fingerprint = rep::fingerprint(&sk.public_key());
    let res = state
        .catalog
        .sign_report(
            id,
            req.version,
            &signature,
            &actor_of(&caller),
            now,
            state.worklist.settings.lease_ttl_s,
        )
        .await
        .map_err(store_err);
    let (report, version) = caller
        .audited(
            &state,
            "report-sign",
            Some(("report", &id.to_string())),
            res,
        )
        .await?;
    Ok(Json(json!({
        "report": report_json(&report),
        "version": version_json(&version),
        "fingerprint": fingerprint,
    })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReturnBody {
    pub version: i64,
    pub reason: String,
}

/// Return the submitted version to its author with a reason (a senior reader).
#[utoipa::path(post, path = "/api/v1/reports/{id}/return", tag = "reports", params(("id" = i64, Path)),
    request_body = ReturnBody,
    responses((status = 200, description = "{report, version}"), (status = 403, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn return_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ReturnBody>,
) -> Result<Json<Value>, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    if req.reason.trim().is_empty() {
        return Err(ApiError::InvalidJson("reason is required".into()));
    }
    current_version(&state, &r, req.version).await?;
    allowed(
        &state,
        &caller,
        parse_state(&r.state)?,
        ReportOp::Return,
        Some(r.author_id),
    )
    .await?;
    let res = state
        .catalog
        .return_report(
            id,
            req.version,
            req.reason.trim(),
            &actor_of(&caller),
            state.worklist.now(),
            state.worklist.settings.lease_ttl_s,
        )
        .await
        .map_err(store_err);
    let (report, version) = caller
        .audited(
            &state,
            "report-return",
            Some(("report", &id.to_string())),
            res,
        )
        .await?;
    Ok(Json(
        json!({"report": report_json(&report), "version": version_json(&version)}),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AddendumBody {
    /// The signed version it adds to.
    pub version: i64,
    pub text: String,
    pub password: String,
    pub totp: String,
}

/// Add a signed addendum to the signed version (its author or a senior reader).
#[utoipa::path(post, path = "/api/v1/reports/{id}/addenda", tag = "reports", params(("id" = i64, Path)),
    request_body = AddendumBody,
    responses((status = 201, description = "The addendum"), (status = 401, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn add_addendum(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<AddendumBody>,
) -> Result<Response, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    if req.text.trim().is_empty() {
        return Err(ApiError::InvalidJson("text is required".into()));
    }
    if r.signed_version != Some(req.version) {
        return Err(coded(
            StatusCode::CONFLICT,
            "stale-version",
            "addenda go to the version in force",
        ));
    }
    allowed(
        &state,
        &caller,
        ReportState::Signed,
        ReportOp::Addendum,
        Some(r.author_id),
    )
    .await?;
    reauthenticate(&state, &caller, &req.password, &req.totp).await?;
    let me = user_id(&caller)?;
    let (key_id, sk) = unlock_key(&state, me, &req.password).await?;
    let now = state.worklist.now();
    let instances = state.catalog.study_instance_hashes(r.study_id).await?;
    let content = addendum_content(
        &r,
        req.version,
        req.text.trim(),
        &caller.actor().1,
        now,
        instances,
    );
    let signature = sign_content(&content, key_id, &sk, me)?;
    let res = state
        .catalog
        .add_addendum(
            id,
            req.version,
            req.text.trim(),
            &signature,
            &actor_of(&caller),
            now,
        )
        .await
        .map_err(store_err);
    let a = caller
        .audited(
            &state,
            "report-addendum",
            Some(("report", &id.to_string())),
            res,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(a))).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CorrectBody {
    /// The signed version it supersedes.
    pub version: i64,
    pub reason: String,
    #[serde(flatten)]
    pub content: DraftBody,
    pub password: String,
    pub totp: String,
}

/// Supersede the signed version with a corrected one, signed at once (a senior reader).
/// The old version stays visible, marked superseded, with the reason.
#[utoipa::path(post, path = "/api/v1/reports/{id}/correct", tag = "reports", params(("id" = i64, Path)),
    request_body = CorrectBody,
    responses((status = 200, description = "{report, version, fingerprint}"), (status = 401, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn correct(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<CorrectBody>,
) -> Result<Json<Value>, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    if req.reason.trim().is_empty() {
        return Err(ApiError::InvalidJson("reason is required".into()));
    }
    if r.signed_version != Some(req.version) || r.state != "signed" {
        return Err(coded(
            StatusCode::CONFLICT,
            "stale-version",
            "corrections supersede the version in force",
        ));
    }
    allowed(
        &state,
        &caller,
        ReportState::Signed,
        ReportOp::Correct,
        Some(r.author_id),
    )
    .await?;
    let t = template_of(&state, r.alliance_id, &r.template_code).await?;
    let machine = state
        .catalog
        .report_version(id, req.version)
        .await?
        .and_then(|v| v.machine);
    let content = content_from(&state, r.alliance_id, &r.kind, &t, &req.content, machine).await?;
    reauthenticate(&state, &caller, &req.password, &req.totp).await?;
    let me = user_id(&caller)?;
    let (key_id, sk) = unlock_key(&state, me, &req.password).await?;
    let login = caller.actor().1;
    let now = state.worklist.now();
    // the new version as the store will write it
    let v = ReportVersion {
        report_id: id,
        version: r.current_version + 1,
        kind: "correction".into(),
        state: "signed".into(),
        body: content.body.clone(),
        machine: content.machine.clone(),
        confirmations: content.confirmations.clone(),
        key_images: content.key_images.clone(),
        qc_grade: content.qc_grade.clone(),
        critical: content.critical,
        critical_category: content.critical_category.clone(),
        author_id: me,
        author_login: login.clone(),
        written_at: now,
        submitted_at: Some(now),
        reason: Some(req.reason.trim().to_owned()),
        returned_by: None,
        returned_by_login: None,
        returned_at: None,
        verifier_id: Some(me),
        verifier_login: Some(login.clone()),
        signed_at: Some(now),
        signed_content: None,
        signature: None,
        key_id: Some(key_id),
        superseded_at: None,
    };
    let instances = state.catalog.study_instance_hashes(r.study_id).await?;
    let signed = content_of(&r, &v, &login, now, instances);
    let signature = sign_content(&signed, key_id, &sk, me)?;
    let res = state
        .catalog
        .correct_report(
            id,
            req.version,
            &content,
            req.reason.trim(),
            &signature,
            &actor_of(&caller),
            now,
        )
        .await
        .map_err(store_err);
    let (report, version) = caller
        .audited(
            &state,
            "report-correct",
            Some(("report", &id.to_string())),
            res,
        )
        .await?;
    Ok(Json(json!({
        "report": report_json(&report),
        "version": version_json(&version),
        "fingerprint": rep::fingerprint(&sk.public_key()),
    })))
}

// ---------------------------------------------------------------- verification

#[derive(Debug, Deserialize, IntoParams)]
pub struct VersionQuery {
    /// Default: the version in force.
    pub version: Option<i64>,
}

pub(crate) async fn signed_version_of(
    state: &AppState,
    r: &Report,
    version: Option<i64>,
) -> Result<ReportVersion, ApiError> {
    let v = version.or(r.signed_version).ok_or_else(|| {
        coded(
            StatusCode::CONFLICT,
            "not-signed",
            "the report is not signed",
        )
    })?;
    let rv = state
        .catalog
        .report_version(r.id, v)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("report {} version {v}", r.id)))?;
    if rv.signature.is_none() {
        return Err(coded(
            StatusCode::CONFLICT,
            "not-signed",
            format!("version {v} is not signed"),
        ));
    }
    Ok(rv)
}

/// The checks of one signed thing: the signature under the signer's registered key, the
/// key belongs to the signer and was not revoked before the signing time, and the signed
/// content equals what the hub holds now (report text and the sha256 of every instance
/// the signature covers).
async fn check_signed(
    state: &AppState,
    stored_content: &str,
    signature: &str,
    key_id: i64,
    expected: &SignedContent,
) -> Result<Value, ApiError> {
    let mut problems: Vec<String> = Vec::new();
    let key = state.catalog.get_signing_key(key_id).await?;
    let content: Option<SignedContent> = serde_json::from_str(stored_content).ok();
    if content.is_none() {
        problems.push("the stored signed content is unreadable".into());
    }
    let sig_ok = match (&key, &content) {
        (Some(k), Some(c)) => {
            let ok = rep::from_hex(&k.public_key)
                .zip(rep::from_hex(signature))
                .is_some_and(|(pk, sig)| rep::verify(&pk, &rep::canonical_bytes(c), &sig).is_ok());
            if !ok {
                problems.push("the signature does not match the content and key".into());
            }
            ok
        }
        _ => {
            problems.push("the signing key is unknown".into());
            false
        }
    };
    let owner_ok = match (&key, &content) {
        (Some(k), Some(c)) => {
            let ok = k.login == c.verifier
                && rep::fingerprint(&rep::from_hex(&k.public_key).unwrap_or_default())
                    == k.fingerprint;
            if !ok {
                problems.push(format!(
                    "the key belongs to {}, not to the signer {}",
                    k.login, c.verifier
                ));
            }
            ok
        }
        _ => false,
    };
    let in_force = match (&key, &content) {
        (Some(k), Some(c)) => match k.revoked_at.filter(|r| c.signed_at > *r) {
            Some(revoked_at) => {
                problems.push(format!(
                    "the signing key was revoked at {}, before the signing time {}",
                    rfc3339(revoked_at),
                    rfc3339(c.signed_at)
                ));
                false
            }
            None => true,
        },
        _ => false,
    };
    let mut content_ok = false;
    let mut instances_ok = false;
    if let Some(c) = &content {
        let mut a = c.clone();
        let mut b = expected.clone();
        a.instances.sort();
        b.instances.sort();
        instances_ok = a.instances == b.instances;
        if !instances_ok {
            let changed: Vec<&String> = a
                .instances
                .iter()
                .filter(|x| !b.instances.contains(x))
                .chain(b.instances.iter().filter(|x| !a.instances.contains(x)))
                .map(|(uid, _)| uid)
                .collect();
            problems.push(format!(
                "the study's instances differ from those signed: {}",
                changed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        a.instances = Vec::new();
        b.instances = Vec::new();
        content_ok = a == b;
        if !content_ok {
            let fields: Vec<String> = a
                .body
                .keys()
                .chain(b.body.keys())
                .filter(|k| a.body.get(*k) != b.body.get(*k))
                .cloned()
                .collect();
            problems.push(if fields.is_empty() {
                "the report record differs from what was signed".into()
            } else {
                format!("the report record differs from what was signed: {}", {
                    let mut f = fields;
                    f.dedup();
                    f.join(", ")
                })
            });
        }
    }
    Ok(json!({
        "valid": sig_ok && owner_ok && in_force && content_ok && instances_ok,
        "checks": {"signature": sig_ok, "key_owner": owner_ok, "key_in_force": in_force,
                   "content": content_ok, "instances": instances_ok},
        "signer": content.as_ref().map(|c| c.verifier.clone()),
        "signed_at": content.as_ref().map(|c| rfc3339(c.signed_at)),
        "fingerprint": key.as_ref().map(|k| k.fingerprint.clone()),
        "problems": problems,
    }))
}

/// Accept, in `expected` (rebuilt from the record), the source institution's name as it
/// was signed in `stored` when that is a former name of the report's institution: a
/// township renamed since still names its signed reports truly. Returns the note to show.
/// A name that the report's institution never had (the report was moved) still fails.
async fn accept_former_name(
    state: &AppState,
    r: &Report,
    expected: &mut SignedContent,
    stored: &str,
) -> Result<Option<String>, ApiError> {
    let Some(signed) = serde_json::from_str::<SignedContent>(stored)
        .ok()
        .map(|c| c.source_institution)
        .filter(|n| *n != expected.source_institution)
    else {
        return Ok(None);
    };
    let Some(institution_id) = r.institution_id else {
        return Ok(None);
    };
    if !state
        .catalog
        .institution_former_names(institution_id)
        .await?
        .contains(&signed)
    {
        return Ok(None);
    }
    let note = format!(
        "signed at {signed}, since renamed {}",
        expected.source_institution
    );
    expected.source_institution = signed;
    Ok(Some(note))
}

/// A signed version as the record holds it now.
struct RecordContent {
    /// What verification compares with the signed content and what the offline export
    /// carries, so that online and offline verification agree.
    expected: SignedContent,
    /// The note when the source institution was renamed since signing.
    renamed: Option<String>,
    /// Instances the study received after signing: not covered by the signature.
    added: Vec<(String, String)>,
    /// Every instance of the study now (addenda are matched against it).
    current: Vec<(String, String)>,
}

/// `(SOP Instance UID, sha256 hex)` pairs.
type InstanceHashes = Vec<(String, String)>;

/// Split the study's instances now (`current`) into those a signature covers and those
/// received since. When every `(SOP Instance UID, sha256)` signed in `stored` is still
/// there unchanged, the signature is compared with exactly those and the rest arrived
/// after signing (a late slice, a key image saved later: a note, the report still
/// verifies). Otherwise every current instance is compared, so a changed or removed
/// instance fails the check.
fn covered_instances(
    current: &[(String, String)],
    stored: &str,
) -> (InstanceHashes, InstanceHashes) {
    let Ok(signed) = serde_json::from_str::<SignedContent>(stored) else {
        return (current.to_vec(), Vec::new());
    };
    let now: std::collections::HashSet<&(String, String)> = current.iter().collect();
    if !signed.instances.iter().all(|i| now.contains(i)) {
        return (current.to_vec(), Vec::new());
    }
    let signed: std::collections::HashSet<&(String, String)> = signed.instances.iter().collect();
    current.iter().cloned().partition(|i| signed.contains(i))
}

/// The signed version's content as the record holds it now (report, version, the study's
/// instances the signature covers).
async fn record_content(
    state: &AppState,
    r: &Report,
    v: &ReportVersion,
) -> Result<RecordContent, ApiError> {
    let current = state.catalog.study_instance_hashes(r.study_id).await?;
    let stored = v.signed_content.as_deref().unwrap_or("");
    let (covered, added) = covered_instances(&current, stored);
    let verifier = v.verifier_login.clone().unwrap_or_default();
    let mut expected = content_of(r, v, &verifier, v.signed_at.unwrap_or_default(), covered);
    let renamed = accept_former_name(state, r, &mut expected, stored).await?;
    Ok(RecordContent {
        expected,
        renamed,
        added,
        current,
    })
}

/// Verify a signed version (and its addenda): the checks, problems and notes the online
/// verification answers (also behind the public page the PDF's QR code opens).
pub(crate) async fn verify_version(
    state: &AppState,
    r: &Report,
    v: &ReportVersion,
) -> Result<Value, ApiError> {
    let rc = record_content(state, r, v).await?;
    let mut out = check_signed(
        state,
        v.signed_content.as_deref().unwrap_or(""),
        v.signature.as_deref().unwrap_or(""),
        v.key_id.unwrap_or_default(),
        &rc.expected,
    )
    .await?;
    let mut addenda = Vec::new();
    for a in state.catalog.report_addenda(r.id).await? {
        if a.version != v.version {
            continue;
        }
        let (covered, _) = covered_instances(&rc.current, &a.signed_content);
        let mut expected =
            addendum_content(r, a.version, &a.text, &a.author_login, a.signed_at, covered);
        accept_former_name(state, r, &mut expected, &a.signed_content).await?;
        let mut check =
            check_signed(state, &a.signed_content, &a.signature, a.key_id, &expected).await?;
        check["id"] = json!(a.id);
        addenda.push(check);
    }
    let all_ok = out["valid"].as_bool() == Some(true)
        && addenda.iter().all(|a| a["valid"].as_bool() == Some(true));
    out["report_id"] = json!(r.id);
    out["version"] = json!(v.version);
    out["superseded"] = json!(v.state == "superseded");
    out["addenda"] = json!(addenda);
    out["all_valid"] = json!(all_ok);
    out["current_version"] = json!(r.signed_version);
    out["instances_added"] = json!(rc.added.iter().map(|(uid, _)| uid).collect::<Vec<_>>());
    let superseded = r
        .signed_version
        .filter(|in_force| *in_force != v.version)
        .map(|in_force| {
            format!(
                "version {} is superseded: version {in_force} is the one in force",
                v.version
            )
        });
    out["notes"] = json!(
        rc.renamed
            .into_iter()
            .chain(rep::late_instances_note(&rc.added))
            .chain(superseded)
            .collect::<Vec<_>>()
    );
    Ok(out)
}

/// Verify a signed version online (and its addenda).
#[utoipa::path(get, path = "/api/v1/reports/{id}/verify", tag = "reports", params(("id" = i64, Path), VersionQuery),
    responses((status = 200, description = "{valid, checks:{signature, key_owner, key_in_force, content, instances}, problems:[…], addenda:[…], notes:[…], instances_added:[uid…], current_version}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn verify_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<Json<Value>, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    let v = signed_version_of(&state, &r, q.version).await?;
    let out = verify_version(&state, &r, &v).await?;
    let all_ok = out["all_valid"].as_bool() == Some(true);
    caller
        .audit(
            &state,
            "report-verify",
            Some(("report", &id.to_string())),
            if all_ok { "success" } else { "failure" },
        )
        .await?;
    Ok(Json(out))
}

/// The signed version as a file for offline verification (`dxhub verify FILE --keys
/// KEYS.json`, keys from `GET /api/v1/signing-keys`).
#[utoipa::path(get, path = "/api/v1/reports/{id}/signed", tag = "reports", params(("id" = i64, Path), VersionQuery),
    responses((status = 200, description = "{format:\"dxhub-signed-report-v1\", content, signature, public_key}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn signed_export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<Response, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    let v = signed_version_of(&state, &r, q.version).await?;
    let key = state
        .catalog
        .get_signing_key(v.key_id.unwrap_or_default())
        .await?
        .ok_or_else(|| internal("signing key of a signed version is missing"))?;
    // the content as the record holds it now (not the stored copy of what was signed):
    // a record changed since signing then fails offline as it fails online
    let rc = record_content(&state, &r, &v).await?;
    let export = SignedReport {
        format: rep::SIGNED_REPORT_FORMAT.to_owned(),
        content: rc.expected,
        signature: v.signature.clone().unwrap_or_default(),
        public_key: key.public_key,
        instances_added: rc.added,
    };
    caller
        .audit(
            &state,
            "report-export",
            Some(("report", &id.to_string())),
            "success",
        )
        .await?;
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"report-{id}-v{}.json\"", v.version),
        )],
        Json(json!(export)),
    )
        .into_response())
}

// ---------------------------------------------------------------- PDF

/// The report as an A4 PDF (the version in force; a draft is marked as such).
#[utoipa::path(get, path = "/api/v1/reports/{id}/pdf", tag = "reports", params(("id" = i64, Path), VersionQuery),
    responses((status = 200, description = "application/pdf", content_type = "application/pdf"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn report_pdf(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Path(id): Path<i64>,
    ApiQuery(q): ApiQuery<VersionQuery>,
) -> Result<Response, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    let clinic = caller.role().is_some_and(Role::is_clinic);
    let version = match q.version {
        Some(v) => v,
        None if clinic => r.signed_version.ok_or_else(|| {
            coded(
                StatusCode::CONFLICT,
                "not-signed",
                "the report is not signed",
            )
        })?,
        None => r.signed_version.unwrap_or(r.current_version),
    };
    let v = state
        .catalog
        .report_version(id, version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("report {id} version {version}")))?;
    if clinic && v.signature.is_none() {
        return Err(coded(
            StatusCode::CONFLICT,
            "not-signed",
            "the version is not signed",
        ));
    }
    let root = crate::report_pdf::root_url(&state, Some(&headers));
    let pdf = crate::report_pdf::render(&state, &r, &v, &root).await?;
    caller
        .audit(
            &state,
            "report-pdf",
            Some(("report", &id.to_string())),
            "success",
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"report-{id}-v{version}.pdf\""),
            ),
        ],
        pdf,
    )
        .into_response())
}

// ---------------------------------------------------------------- critical values

#[derive(Debug, Deserialize, ToSchema)]
pub struct CriticalBody {
    pub category: String,
    pub note: Option<String>,
}

/// Flag the report critical: the source institution's clinic users are alerted (in-app,
/// SSE, webhook) and must acknowledge; unacknowledged it escalates.
#[utoipa::path(post, path = "/api/v1/reports/{id}/critical", tag = "reports", params(("id" = i64, Path)),
    request_body = CriticalBody,
    responses((status = 201, description = "The critical value"), (status = 403, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn raise_critical(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<CriticalBody>,
) -> Result<Response, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    if !matches!(caller.role(), Some(Role::Reader | Role::SeniorReader)) {
        return Err(refusal(ReportRefusal::NotPermitted));
    }
    let cats = state
        .catalog
        .list_critical_categories(r.alliance_id)
        .await?;
    if !cats.iter().any(|c| c.code == req.category) {
        return Err(ApiError::InvalidJson(format!(
            "category {}: not in the alliance's list",
            req.category
        )));
    }
    let res = state
        .catalog
        .raise_critical(
            id,
            &req.category,
            req.note.as_deref().map(str::trim).filter(|s| !s.is_empty()),
            &actor_of(&caller),
            state.worklist.now(),
            state.settings.reports.critical_ack_limit_s,
        )
        .await
        .map_err(store_err);
    let c = caller
        .audited(
            &state,
            "critical-raise",
            Some(("report", &id.to_string())),
            res,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!(c))).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CriticalQuery {
    /// `open` or `acknowledged`.
    pub state: Option<String>,
    pub report_id: Option<i64>,
    pub limit: Option<i64>,
}

/// Critical values of the caller's reach (clinics: their own), with their communication
/// record.
#[utoipa::path(get, path = "/api/v1/critical-values", tag = "reports", params(CriticalQuery),
    responses((status = 200, description = "{critical_values:[{critical, log}]}"), (status = 403, body = crate::dto::ErrorBody)))]
async fn list_criticals(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CriticalQuery>,
) -> Result<Json<Value>, ApiError> {
    let reach = caller.require_list(&state).await?;
    if let Some(s) = &q.state
        && !["open", "acknowledged"].contains(&s.as_str())
    {
        return Err(ApiError::BadRequest("state: open or acknowledged".into()));
    }
    let list = state
        .catalog
        .list_criticals(&CriticalFilter {
            alliance_id: (!caller.is_superadmin()).then(|| alliance_of(&caller)),
            institution_ids: reach.institution_ids,
            routed_to: reach.routed_to,
            state: q.state.clone(),
            report_id: q.report_id,
            limit: q.limit.unwrap_or(100).clamp(1, 1000),
        })
        .await?;
    let mut out = Vec::new();
    for c in list {
        let log = state.catalog.critical_log(c.id).await?;
        out.push(json!({"critical": c, "log": log}));
    }
    caller
        .audit(&state, "critical-list", None, "success")
        .await?;
    Ok(Json(json!({ "critical_values": out })))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AckBody {
    /// Who took the call (the clinic doctor's name as written in the record).
    pub name: String,
    /// What was done (e.g. 已通知患者立即转诊县医院急诊).
    pub action: String,
}

/// Acknowledge a critical value (a clinic user of its institution): name, time and action
/// taken are recorded and appended to the report.
#[utoipa::path(post, path = "/api/v1/critical-values/{id}/ack", tag = "reports", params(("id" = i64, Path)),
    request_body = AckBody,
    responses((status = 200, description = "The critical value"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody, description = "already-acknowledged")))]
async fn ack_critical(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<AckBody>,
) -> Result<Json<Value>, ApiError> {
    let Some(c) = state.catalog.get_critical(id).await? else {
        return Err(caller.unknown(&state, format!("critical value {id}")).await);
    };
    // judged on the source institution; known to whoever may read its report (a doctor
    // of another institution gets the 404 of an unknown id unless the result is
    // recognised, and then a 403)
    let seen = match state.catalog.get_report(c.report_id).await? {
        Some(r) => report_scope(&state, &caller, Action::ReadReport, &r).await?,
        None => TargetScope::Hub,
    };
    caller
        .require_action_seen(
            &state,
            Action::AcknowledgeCritical,
            match c.institution_id {
                Some(institution_id) => TargetScope::Institution {
                    institution_id,
                    alliance_id: c.alliance_id,
                },
                None => TargetScope::Alliance {
                    alliance_id: c.alliance_id,
                },
            },
            seen,
            || format!("critical value {id}"),
        )
        .await?;
    if req.name.trim().is_empty() || req.action.trim().is_empty() {
        return Err(ApiError::InvalidJson("name and action are required".into()));
    }
    let res = state
        .catalog
        .acknowledge_critical(
            id,
            req.name.trim(),
            req.action.trim(),
            &actor_of(&caller),
            state.worklist.now(),
        )
        .await
        .map_err(store_err);
    let c = caller
        .audited(
            &state,
            "critical-ack",
            Some(("critical", &id.to_string())),
            res,
        )
        .await?;
    Ok(Json(json!(c)))
}

/// Escalate critical values nobody acknowledged in time (the periodic job); audited.
pub async fn escalate_once(state: &AppState) -> Result<usize, ApiError> {
    // each escalation is a conditional update: racing replicas never escalate twice
    let now = state.worklist.now();
    let done = state.catalog.escalate_due_criticals(now, 100).await?;
    for c in &done {
        let entry = dxhub_store::NewAuditEntry {
            actor_kind: "system".to_owned(),
            actor: "reports".to_owned(),
            institution_id: c.institution_id,
            action: "critical-escalate".to_owned(),
            object_kind: Some("critical".to_owned()),
            object_id: Some(c.id.to_string()),
            outcome: "success".to_owned(),
            client: None,
            request_id: None,
        };
        state.catalog.append_audit(&entry).await?;
    }
    Ok(done.len())
}

// ---------------------------------------------------------------- push-back

/// Push-back deliveries of a report (state, attempts, last DIMSE status or error).
#[utoipa::path(get, path = "/api/v1/reports/{id}/pushes", tag = "reports", params(("id" = i64, Path)),
    responses((status = 200, description = "{pushes:[…]}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn list_pushes(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let r = state
        .catalog
        .get_report(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("report {id}")))?;
    let action = caller
        .action()
        .ok_or_else(|| ApiError::Internal("route has no action policy".into()))?;
    // Delivery to the source clinic's own PACS (its AE, host, errors) is the source's
    // business: a recognised result opens to other member institutions' doctors, its
    // push-backs do not.
    let target = report_scope(&state, &caller, action, &r).await?;
    // (who may not even read the report is not told it exists)
    caller
        .require_action_seen(&state, action, target.unrecognised(), target, || {
            format!("report {id}")
        })
        .await?;
    let pushes = state.catalog.list_pushes(id).await?;
    caller
        .audit(
            &state,
            "report-pushes",
            Some(("report", &id.to_string())),
            "success",
        )
        .await?;
    Ok(Json(json!({ "pushes": pushes })))
}

/// Send a dead (or delivered) push-back again.
#[utoipa::path(post, path = "/api/v1/report-pushes/{id}/retry", tag = "reports", params(("id" = i64, Path)),
    responses((status = 204, description = "Queued"), (status = 403, body = crate::dto::ErrorBody), (status = 409, body = crate::dto::ErrorBody)))]
async fn retry_push(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let push = state
        .catalog
        .get_push(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("push {id}")))?;
    let inst = institution(&state, push.institution_id).await?;
    caller
        .require_found(
            &state,
            TargetScope::Institution {
                institution_id: inst.id,
                alliance_id: inst.alliance_id,
            },
            || format!("push {id}"),
        )
        .await?;
    let r = state.catalog.retry_push(id, state.worklist.now()).await;
    caller
        .audited(
            &state,
            "report-push-retry",
            Some(("push", &id.to_string())),
            r,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deliver due push-backs (the periodic job): an Encapsulated PDF and a Basic Text SR by
/// C-STORE to the clinic's PACS, retried with back-off, then dead-lettered.
pub async fn push_once(state: &AppState) -> Result<usize, ApiError> {
    let now = state.worklist.now();
    let settings = &state.settings.reports;
    let due = state.catalog.take_due_pushes(now, 10, 120).await?;
    let n = due.len();
    for p in due {
        let result = match crate::report_pdf::push(state, &p).await {
            Ok(statuses) if statuses.iter().all(|s| *s == 0 || (*s & 0xF000) == 0xB000) => {
                PushResult::Delivered {
                    status: statuses
                        .iter()
                        .map(|s| format!("{s:04X}"))
                        .collect::<Vec<_>>()
                        .join(","),
                }
            }
            Ok(statuses) => PushResult::Failed {
                status: Some(
                    statuses
                        .iter()
                        .map(|s| format!("{s:04X}"))
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                error: "the PACS refused the report".into(),
                retry_at: retry_at(p.attempts, settings, now),
            },
            Err(e) => PushResult::Failed {
                status: None,
                error: e.to_string(),
                retry_at: retry_at(p.attempts, settings, now),
            },
        };
        let outcome = if matches!(result, PushResult::Delivered { .. }) {
            "success"
        } else {
            "failure"
        };
        state.catalog.finish_push(p.id, &result, now).await?;
        let entry = dxhub_store::NewAuditEntry {
            actor_kind: "system".to_owned(),
            actor: "reports".to_owned(),
            institution_id: Some(p.institution_id),
            action: "report-push".to_owned(),
            object_kind: Some("report".to_owned()),
            object_id: Some(p.report_id.to_string()),
            outcome: outcome.to_owned(),
            client: None,
            request_id: None,
        };
        state.catalog.append_audit(&entry).await?;
    }
    Ok(n)
}

/// When a push whose `attempts`-th attempt (counted from 1) just failed is tried again:
/// the base delay, doubled per further attempt (at most 256×); `None` (dead) once the
/// attempts are spent.
fn retry_at(attempts: i64, settings: &ReportSettings, now: i64) -> Option<i64> {
    let base = i64::try_from(settings.push_retry.as_micros()).unwrap_or(i64::MAX / 512);
    (attempts < settings.push_max_attempts)
        .then(|| now.saturating_add(base.saturating_mul(1 << (attempts - 1).clamp(0, 8))))
}

// ---------------------------------------------------------------- FHIR

/// The report as a FHIR R4 `DiagnosticReport` (with its `ImagingStudy` and `Patient`
/// contained), for HIS/EMR integration.
#[utoipa::path(get, path = "/api/v1/fhir/DiagnosticReport/{id}", tag = "reports", params(("id" = i64, Path)),
    responses((status = 200, description = "A FHIR R4 DiagnosticReport (application/fhir+json)"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn fhir_report(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let r = report_for(&state, &caller, id).await?;
    let clinic = caller.role().is_some_and(Role::is_clinic);
    let version = if clinic {
        r.signed_version.ok_or_else(|| {
            coded(
                StatusCode::CONFLICT,
                "not-signed",
                "the report is not signed",
            )
        })?
    } else {
        r.signed_version.unwrap_or(r.current_version)
    };
    let v = state
        .catalog
        .report_version(id, version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("report {id} version {version}")))?;
    let root = crate::report_pdf::root_url(&state, Some(&headers));
    let resource = crate::report_pdf::fhir(&state, &r, &v, &root).await?;
    caller
        .audit(
            &state,
            "report-fhir",
            Some(("report", &id.to_string())),
            "success",
        )
        .await?;
    Ok((
        [(header::CONTENT_TYPE, "application/fhir+json")],
        Json(resource),
    )
        .into_response())
}

// ---------------------------------------------------------------- clinic event stream

/// Event kinds a clinic follows.
const CLINIC_EVENTS: [&str; 6] = [
    "report_signed",
    "report_corrected",
    "report_addendum",
    "critical_raised",
    "critical_escalated",
    "critical_acknowledged",
];

/// Server-sent events of reports and critical values within the caller's reach (clinics:
/// their institution and those it heads): `report_signed`, `report_corrected`,
/// `report_addendum`, `critical_raised`, `critical_escalated`, `critical_acknowledged`
/// (`data:` `{id, kind, work_item_id, at, actor, detail:{report_id, …}}`; `id:` for
/// `Last-Event-ID`). Readers follow the worklist stream, which carries the same kinds.
#[utoipa::path(get, path = "/api/v1/reports/events", tag = "reports",
    params(("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event")),
    responses((status = 200, content_type = "text/event-stream", description = "The stream"), (status = 403, body = crate::dto::ErrorBody)))]
async fn report_events(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
) -> Result<
    axum::response::sse::Sse<
        impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    let reach = caller.require_list(&state).await?;
    let routed_to = reach.routed_to;
    let reach = reach.institution_ids;
    let alliance_id = alliance_of(&caller);
    caller
        .audit(&state, "report-stream", None, "success")
        .await?;
    // the institution of each work item seen (events carry the item, not the clinic)
    let institution_of = std::sync::Arc::new(tokio::sync::Mutex::new(std::collections::HashMap::<
        i64,
        Option<i64>,
    >::new()));
    let catalog = state.catalog.clone();
    let reach = std::sync::Arc::new(reach);
    let visible = move |e: dxhub_store::worklist::WorkEvent| {
        let (catalog, reach, institution_of) =
            (catalog.clone(), reach.clone(), institution_of.clone());
        async move {
            if !CLINIC_EVENTS.contains(&e.kind.as_str()) {
                return None;
            }
            let Some(reach) = reach.as_ref() else {
                return Some(e);
            };
            if e.alliance_id != alliance_id {
                return None;
            }
            if let Some(user) = routed_to {
                // a reader: the item's study must (still) be routed to them
                let item = catalog.get_work_item(e.work_item_id).await.ok().flatten()?;
                let routed = catalog
                    .study_routed_to(&item.study_instance_uid, user)
                    .await
                    .ok()?;
                return (routed && item.institution_id.is_some_and(|i| reach.contains(&i)))
                    .then_some(e);
            }
            let mut cache = institution_of.lock().await;
            let inst = match cache.get(&e.work_item_id) {
                Some(i) => *i,
                None => {
                    let i = catalog
                        .get_work_item(e.work_item_id)
                        .await
                        .ok()
                        .flatten()
                        .and_then(|w| w.institution_id);
                    cache.insert(e.work_item_id, i);
                    i
                }
            };
            inst.is_some_and(|i| reach.contains(&i)).then_some(e)
        }
    };
    crate::worklist::event_sse(&state, &headers, visible).await
}

// ---------------------------------------------------------------- recognition

#[derive(Debug, Deserialize, IntoParams)]
pub struct RecognitionQuery {
    /// The patient's ID: a resident identity number finds results across the alliance;
    /// another ID needs `issuer` (else only the caller's own institution matches).
    pub patient: String,
    pub issuer: Option<String>,
    /// Include signed results that do not carry the HR mark (with the reason).
    #[serde(default)]
    pub all: bool,
}

/// How a signed result stands for mutual recognition today.
struct Judged {
    /// Eligible exam and passing QC (the HR rule) …
    hr: bool,
    /// … and within the alliance's reference validity.
    within: bool,
    qc: Option<dxhub_core::recognition::QcGrade>,
    age: Option<i64>,
}

fn judge(row: &dxhub_store::report::RecognitionRow, today: (i32, u32, u32)) -> Judged {
    let qc: Option<dxhub_core::recognition::QcGrade> = row
        .qc_grade
        .as_ref()
        .and_then(|g| serde_json::from_value(json!(g)).ok());
    let hr = dxhub_core::recognition::hr_mark(row.recognition_eligible, true, false, qc);
    let age = row
        .study_date
        .as_deref()
        .and_then(|d| dxhub_core::recognition::age_days(d, today));
    let within = age.is_some_and(|a| {
        dxhub_core::recognition::within_validity(
            a,
            row.validity_days.and_then(|d| u32::try_from(d).ok()),
        )
    });
    Judged {
        hr,
        within,
        qc,
        age,
    }
}

/// Whether the study's signed result carries the HR mark: what lets a clinic doctor of
/// another member institution open it from the recognition lookup. The reference validity
/// is advice for the receiving physician, who judges whether the result is still useful,
/// so an older HR result stays open to them.
pub(crate) async fn study_recognised(
    state: &AppState,
    alliance_id: i64,
    study_instance_uid: &str,
) -> Result<bool, ApiError> {
    let today = shanghai_date(state.worklist.now());
    Ok(state
        .catalog
        .recognition_of_study(alliance_id, study_instance_uid)
        .await?
        .iter()
        .any(|row| judge(row, today).hr))
}

/// A patient's recognised (HR) results across the alliance, for a clinic doctor deciding
/// whether to repeat an exam: exam, institution, date, age in days, QC, links. The raw
/// result is what is recognised; the conclusion is information.
#[utoipa::path(get, path = "/api/v1/recognition", tag = "reports", params(RecognitionQuery),
    responses((status = 200, description = "{results:[…]}"), (status = 403, body = crate::dto::ErrorBody)))]
async fn recognition(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RecognitionQuery>,
) -> Result<Json<Value>, ApiError> {
    let alliance_id = alliance_of(&caller);
    caller
        .require(&state, TargetScope::Alliance { alliance_id })
        .await?;
    let pid = q.patient.trim();
    if pid.is_empty() {
        return Err(ApiError::BadRequest("patient is required".into()));
    }
    let local = dxhub_store::catalog::patient_key(
        Some(caller.principal.institution_id),
        q.issuer.as_deref().map(str::trim).filter(|s| !s.is_empty()),
        pid,
    );
    let basis = dxhub_core::worklist::identity_basis(pid, q.issuer.as_deref(), &[], &local);
    let hash = dxhub_store::worklist::identity_hash(&basis);
    let rows = state.catalog.recognition(alliance_id, &hash).await?;
    let today = shanghai_date(state.worklist.now());
    let mut results = Vec::new();
    for row in rows {
        let Judged {
            hr,
            within,
            qc,
            age,
        } = judge(&row, today);
        if !(q.all || (hr && within)) {
            continue;
        }
        let mut why_not = Vec::new();
        if !row.recognition_eligible {
            why_not.push("exam type not recognition-eligible");
        }
        if !qc.is_some_and(|g| g.passes()) {
            why_not.push("quality control not passed");
        }
        if !within {
            why_not.push("older than the alliance's reference validity");
        }
        // a result this caller may not open (no HR mark, not of their reach: `all=true`
        // lists it with its reasons) shows neither its conclusion nor its links
        let opens = hr
            || caller.may(
                Action::ReadReport,
                caller
                    .study_scope(
                        &state,
                        Action::ReadReport,
                        &row.study_instance_uid,
                        row.institution_id,
                        alliance_id,
                    )
                    .await?,
            );
        results.push(json!({
            // recognised today: the HR mark and within the reference validity
            "hr": hr && within,
            // the HR mark alone (eligible exam, passing QC): what opens the result's
            // images, report and PDF to this doctor; the validity is advice
            "hr_mark": hr,
            "within_validity": within,
            "not_recognised_because": why_not,
            "report_id": row.report_id,
            "version": row.version,
            "study_instance_uid": row.study_instance_uid,
            "exam_code": row.exam_code,
            "exam_name": row.exam.as_ref().and_then(|e| e.get("name")),
            "exam": row.exam,
            "institution": row.institution_name,
            "institution_id": row.institution_id,
            "kind": row.kind,
            "study_date": row.study_date,
            "age_days": age,
            "validity_days": row.validity_days,
            "qc_grade": row.qc_grade,
            "modalities": row.modalities_in_study,
            "signed_at": row.signed_at.map(shanghai),
            "opens": opens,
            "conclusion": if opens { row.body.pointer("/sections/impression").cloned() } else { None },
            "conclusion_note": "结论仅供参考，互认的是检查结果本身；是否仍可采用由接诊医师判断。",
            "links": opens.then(|| json!({
                "images": format!("/dicomweb/studies/{}", row.study_instance_uid),
                "report": format!("/api/v1/reports/{}", row.report_id),
                "pdf": format!("/api/v1/reports/{}/pdf", row.report_id),
            })),
        }));
    }
    caller
        .audit(
            &state,
            "recognition-lookup",
            Some(("patient_identity", &hash)),
            "success",
        )
        .await?;
    Ok(Json(json!({ "results": results })))
}

/// The Asia/Shanghai calendar date of an instant (proleptic Gregorian).
fn shanghai_date(epoch_us: i64) -> (i32, u32, u32) {
    let days = (epoch_us + dxhub_core::worklist::SHANGHAI_OFFSET_US).div_euclid(86_400_000_000);
    // Howard Hinnant's civil_from_days
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    (y as i32, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_retries_back_off_then_stop() {
        let s = ReportSettings {
            push_max_attempts: 4,
            push_retry: Duration::from_secs(30),
            ..ReportSettings::default()
        };
        let at = |n| retry_at(n, &s, 1_000).map(|t| (t - 1_000) / 1_000_000);
        assert_eq!(
            [at(1), at(2), at(3), at(4)],
            [Some(30), Some(60), Some(120), None]
        );
        let s = ReportSettings {
            push_max_attempts: 100,
            ..s
        };
        assert_eq!(retry_at(50, &s, 0), Some(30 * 256 * 1_000_000));
    }

    #[test]
    fn shanghai_dates() {
        // 2026-11-22T16:00:00Z is 2026-11-23 00:00 in Shanghai
        assert_eq!(shanghai_date(1_795_363_200_000_000), (2026, 11, 23));
        assert_eq!(shanghai_date(1_795_363_199_000_000), (2026, 11, 22));
        assert_eq!(shanghai_date(951_782_400_000_000), (2000, 2, 29));
        assert_eq!(shanghai_date(0), (1970, 1, 1));
    }
}
