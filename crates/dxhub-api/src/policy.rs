//! The route-policy registry: for every `/api/v1` operation, who may call it. The
//! authentication extractor ([`crate::auth::Caller`]) looks each request up here (by
//! method and matched path) and handlers ask [`crate::auth::Caller::require`], which takes
//! the action from here; a unit test checks that the operations of the OpenAPI document
//! and this table are the same set, so no route can exist without a policy.

use dxhub_core::policy::Action;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutePolicy {
    /// No authentication.
    Public,
    /// Any user session (device tokens refused).
    AnyUser,
    /// A user session allowed this action on the handler's target.
    Action(Action),
    /// Upload routes: device tokens and users allowed this action.
    UploadOnly(Action),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRule {
    /// Upper-case HTTP method.
    pub method: &'static str,
    /// The OpenAPI path template (axum's matched path), e.g. `/api/v1/users/{id}/disable`.
    pub path: &'static str,
    pub policy: RoutePolicy,
    /// Reads patient data: every read and every denial is audited under this action
    /// (`study-list`, `study-read`).
    pub patient_data: Option<&'static str>,
}

const fn rule(method: &'static str, path: &'static str, policy: RoutePolicy) -> RouteRule {
    RouteRule {
        method,
        path,
        policy,
        patient_data: None,
    }
}

const fn patient(
    method: &'static str,
    path: &'static str,
    policy: RoutePolicy,
    audit_action: &'static str,
) -> RouteRule {
    RouteRule {
        method,
        path,
        policy,
        patient_data: Some(audit_action),
    }
}

use Action as A;
use RoutePolicy as P;

/// Every `/api/v1` operation.
pub const ROUTES: &[RouteRule] = &[
    rule("GET", "/api/v1/openapi.json", P::Public),
    rule("POST", "/api/v1/auth/login", P::Public),
    // the page a report PDF's QR code opens: an unguessable per-version code, no login
    rule("GET", "/api/v1/verify/{code}", P::Public),
    rule("POST", "/api/v1/auth/logout", P::AnyUser),
    rule("GET", "/api/v1/auth/me", P::AnyUser),
    rule("POST", "/api/v1/auth/totp/enroll", P::AnyUser),
    rule("POST", "/api/v1/auth/totp/confirm", P::AnyUser),
    rule("GET", "/api/v1/alliances", P::AnyUser),
    rule("POST", "/api/v1/alliances", P::Action(A::ManageInstitution)),
    rule("GET", "/api/v1/institutions", P::AnyUser),
    rule(
        "POST",
        "/api/v1/institutions",
        P::Action(A::ManageInstitution),
    ),
    rule(
        "PATCH",
        "/api/v1/institutions/{id}",
        P::Action(A::ManageInstitution),
    ),
    rule("GET", "/api/v1/ae-titles", P::Action(A::ReadSetup)),
    rule(
        "DELETE",
        "/api/v1/ae-titles/{id}",
        P::Action(A::ManageInstitution),
    ),
    rule("POST", "/api/v1/ae-titles", P::Action(A::ManageInstitution)),
    rule("GET", "/api/v1/users", P::Action(A::ManageUsers)),
    rule("POST", "/api/v1/users", P::Action(A::ManageUsers)),
    rule(
        "POST",
        "/api/v1/users/{id}/disable",
        P::Action(A::ManageUsers),
    ),
    rule("POST", "/api/v1/users/{id}/role", P::Action(A::ManageUsers)),
    rule(
        "POST",
        "/api/v1/users/{id}/password",
        P::Action(A::ManageUsers),
    ),
    rule(
        "POST",
        "/api/v1/users/{id}/totp/reset",
        P::Action(A::ManageUsers),
    ),
    rule("GET", "/api/v1/devices", P::Action(A::ReadSetup)),
    rule("POST", "/api/v1/devices", P::Action(A::ManageDevices)),
    rule(
        "POST",
        "/api/v1/devices/{id}/revoke",
        P::Action(A::ManageDevices),
    ),
    patient(
        "GET",
        "/api/v1/studies",
        P::Action(A::ReadStudy),
        "study-list",
    ),
    patient(
        "GET",
        "/api/v1/studies/{study_uid}",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    rule("GET", "/api/v1/audit", P::Action(A::ReadAudit)),
    patient(
        "POST",
        "/api/v1/ecg",
        P::UploadOnly(A::UploadEcg),
        "ecg-upload",
    ),
    patient(
        "POST",
        "/api/v1/ecg/uploads",
        P::UploadOnly(A::UploadEcg),
        "ecg-upload",
    ),
    patient(
        "HEAD",
        "/api/v1/ecg/uploads/{upload_id}",
        P::UploadOnly(A::UploadEcg),
        "ecg-upload",
    ),
    patient(
        "PATCH",
        "/api/v1/ecg/uploads/{upload_id}",
        P::UploadOnly(A::UploadEcg),
        "ecg-upload",
    ),
    patient(
        "GET",
        "/api/v1/ecg/uploads/{upload_id}",
        P::UploadOnly(A::UploadEcg),
        "ecg-upload",
    ),
    patient("GET", "/api/v1/ecg", P::Action(A::ReadStudy), "ecg-read"),
    patient(
        "GET",
        "/api/v1/ecg/{id}",
        P::Action(A::ReadStudy),
        "ecg-read",
    ),
    patient(
        "GET",
        "/api/v1/ecg/{id}/original",
        P::Action(A::ReadStudy),
        "ecg-read",
    ),
    patient(
        "GET",
        "/api/v1/ecg/{id}/waveform",
        P::Action(A::ReadStudy),
        "ecg-read",
    ),
    patient(
        "GET",
        "/api/v1/ecg/{id}/render.svg",
        P::Action(A::ReadStudy),
        "ecg-read",
    ),
    patient(
        "GET",
        "/api/v1/ecg/{id}/render.png",
        P::Action(A::ReadStudy),
        "ecg-read",
    ),
    rule(
        "GET",
        "/api/v1/stats/ecg-coverage",
        P::Action(A::ManageDevices),
    ),
    // the alliance indicators (aggregate figures, no patient data)
    rule("GET", "/api/v1/stats/volumes", P::Action(A::ReadStats)),
    rule("GET", "/api/v1/stats/turnaround", P::Action(A::ReadStats)),
    rule("GET", "/api/v1/stats/remote-reads", P::Action(A::ReadStats)),
    rule("GET", "/api/v1/stats/grassroots", P::Action(A::ReadStats)),
    rule("GET", "/api/v1/stats/criticals", P::Action(A::ReadStats)),
    rule("GET", "/api/v1/stats/recognition", P::Action(A::ReadStats)),
    // worklist: pools, rules, webhooks (group admins), work items (readers of the item's
    // pool; supervisors), priors, the event stream, notifications
    rule("GET", "/api/v1/pools", P::Action(A::ReadWorklist)),
    rule("POST", "/api/v1/pools", P::Action(A::ManageRouting)),
    rule("PATCH", "/api/v1/pools/{id}", P::Action(A::ManageRouting)),
    rule(
        "GET",
        "/api/v1/pools/{id}/members",
        P::Action(A::ReadWorklist),
    ),
    rule(
        "PUT",
        "/api/v1/pools/{id}/members/{user_id}",
        P::Action(A::ManageRouting),
    ),
    rule(
        "DELETE",
        "/api/v1/pools/{id}/members/{user_id}",
        P::Action(A::ManageRouting),
    ),
    rule("GET", "/api/v1/routing-rules", P::Action(A::ManageRouting)),
    rule("POST", "/api/v1/routing-rules", P::Action(A::ManageRouting)),
    rule(
        "PUT",
        "/api/v1/routing-rules/{id}",
        P::Action(A::ManageRouting),
    ),
    rule(
        "DELETE",
        "/api/v1/routing-rules/{id}",
        P::Action(A::ManageRouting),
    ),
    patient(
        "POST",
        "/api/v1/routing-rules/dry-run",
        P::Action(A::ManageRouting),
        "routing-rule.dry-run",
    ),
    patient(
        "POST",
        "/api/v1/studies/{study_uid}/complete",
        P::UploadOnly(A::WriteStudy),
        "study-complete",
    ),
    patient(
        "GET",
        "/api/v1/worklist",
        P::Action(A::ReadWorklist),
        "worklist-read",
    ),
    patient(
        "POST",
        "/api/v1/worklist/next",
        P::Action(A::ClaimWork),
        "work-claim",
    ),
    rule("GET", "/api/v1/worklist/events", P::Action(A::ReadWorklist)),
    patient(
        "GET",
        "/api/v1/worklist/{id}",
        P::Action(A::ReadWorklist),
        "worklist-read",
    ),
    patient(
        "POST",
        "/api/v1/worklist/{id}/claim",
        P::Action(A::ClaimWork),
        "work-claim",
    ),
    // the viewer renews its lease every few tens of seconds: the claim is audited, not
    // each renewal
    rule(
        "POST",
        "/api/v1/worklist/{id}/heartbeat",
        P::Action(A::ClaimWork),
    ),
    patient(
        "POST",
        "/api/v1/worklist/{id}/release",
        P::Action(A::ClaimWork),
        "work-release",
    ),
    patient(
        "POST",
        "/api/v1/worklist/{id}/reassign",
        P::Action(A::SuperviseWork),
        "work-reassign",
    ),
    patient(
        "POST",
        "/api/v1/worklist/{id}/break-lock",
        P::Action(A::SuperviseWork),
        "work-break-lock",
    ),
    patient(
        "POST",
        "/api/v1/worklist/{id}/cancel",
        P::Action(A::SuperviseWork),
        "work-cancel",
    ),
    patient(
        "POST",
        "/api/v1/worklist/{id}/priority",
        P::Action(A::SuperviseWork),
        "work-priority",
    ),
    patient(
        "GET",
        "/api/v1/worklist/{id}/priors",
        P::Action(A::ReadWorklist),
        "priors-read",
    ),
    rule("GET", "/api/v1/notifications", P::AnyUser),
    rule("POST", "/api/v1/notifications/{id}/read", P::AnyUser),
    rule("GET", "/api/v1/webhooks", P::Action(A::ManageRouting)),
    rule("POST", "/api/v1/webhooks", P::Action(A::ManageRouting)),
    rule(
        "DELETE",
        "/api/v1/webhooks/{id}",
        P::Action(A::ManageRouting),
    ),
    rule(
        "GET",
        "/api/v1/webhooks/{id}/deliveries",
        P::Action(A::ManageRouting),
    ),
    rule(
        "POST",
        "/api/v1/webhooks/deliveries/{id}/retry",
        P::Action(A::ManageRouting),
    ),
    // reports: templates, catalogue and categories (group admins edit, users read)
    rule("GET", "/api/v1/report-templates", P::AnyUser),
    rule(
        "PUT",
        "/api/v1/report-templates/{code}",
        P::Action(A::ManageCatalogue),
    ),
    rule("GET", "/api/v1/exam-types", P::AnyUser),
    rule(
        "PUT",
        "/api/v1/exam-types/{code}",
        P::Action(A::ManageCatalogue),
    ),
    rule("GET", "/api/v1/critical-categories", P::AnyUser),
    rule(
        "PUT",
        "/api/v1/critical-categories",
        P::Action(A::ManageCatalogue),
    ),
    rule("GET", "/api/v1/signing-keys", P::AnyUser),
    rule("POST", "/api/v1/me/signing-key", P::Action(A::SignReport)),
    rule(
        "PUT",
        "/api/v1/users/{id}/signing-authority",
        P::Action(A::ManageUsers),
    ),
    rule(
        "PUT",
        "/api/v1/users/{id}/duty-schedule",
        P::Action(A::ManageUsers),
    ),
    rule(
        "PATCH",
        "/api/v1/institutions/{id}/report-settings",
        P::Action(A::ManageInstitution),
    ),
    // reports: writing (the author holding the work item), verifying, reading
    patient(
        "GET",
        "/api/v1/worklist/{id}/report-prefill",
        P::Action(A::WriteReport),
        "report-prefill",
    ),
    patient(
        "POST",
        "/api/v1/worklist/{id}/report",
        P::Action(A::WriteReport),
        "report-write",
    ),
    patient(
        "GET",
        "/api/v1/reports",
        P::Action(A::ReadReport),
        "report-list",
    ),
    patient(
        "GET",
        "/api/v1/reports/events",
        P::Action(A::ReadReport),
        "report-stream",
    ),
    patient(
        "GET",
        "/api/v1/reports/{id}",
        P::Action(A::ReadReport),
        "report-read",
    ),
    patient(
        "POST",
        "/api/v1/reports/{id}/submit",
        P::Action(A::WriteReport),
        "report-submit",
    ),
    patient(
        "POST",
        "/api/v1/reports/{id}/sign",
        P::Action(A::SignReport),
        "report-sign",
    ),
    patient(
        "POST",
        "/api/v1/reports/{id}/return",
        P::Action(A::SignReport),
        "report-return",
    ),
    patient(
        "POST",
        "/api/v1/reports/{id}/addenda",
        P::Action(A::WriteReport),
        "report-addendum",
    ),
    patient(
        "POST",
        "/api/v1/reports/{id}/correct",
        P::Action(A::AmendReport),
        "report-correct",
    ),
    patient(
        "GET",
        "/api/v1/reports/{id}/verify",
        P::Action(A::ReadReport),
        "report-verify",
    ),
    patient(
        "GET",
        "/api/v1/reports/{id}/signed",
        P::Action(A::ReadReport),
        "report-export",
    ),
    patient(
        "GET",
        "/api/v1/reports/{id}/pdf",
        P::Action(A::ReadReport),
        "report-pdf",
    ),
    patient(
        "POST",
        "/api/v1/reports/{id}/critical",
        P::Action(A::WriteReport),
        "critical-raise",
    ),
    patient(
        "GET",
        "/api/v1/critical-values",
        P::Action(A::ReadReport),
        "critical-list",
    ),
    patient(
        "POST",
        "/api/v1/critical-values/{id}/ack",
        P::Action(A::AcknowledgeCritical),
        "critical-ack",
    ),
    patient(
        "GET",
        "/api/v1/reports/{id}/pushes",
        P::Action(A::ReadReport),
        "report-pushes",
    ),
    rule(
        "POST",
        "/api/v1/report-pushes/{id}/retry",
        P::Action(A::ManageInstitution),
    ),
    patient(
        "GET",
        "/api/v1/fhir/DiagnosticReport/{id}",
        P::Action(A::ReadReport),
        "report-fhir",
    ),
    patient(
        "GET",
        "/api/v1/recognition",
        P::Action(A::LookupRecognition),
        "recognition-lookup",
    ),
];

/// Every `/dicomweb` operation (PS3.18; not in the OpenAPI document). QIDO searches are
/// audited as `study-search`, WADO reads as `study-read`; STOW takes device/gateway
/// tokens as well as users allowed to write studies.
pub const DICOMWEB_ROUTES: &[RouteRule] = &[
    rule("GET", "/dicomweb", P::AnyUser),
    patient(
        "GET",
        "/dicomweb/studies",
        P::Action(A::ReadStudy),
        "study-search",
    ),
    patient(
        "GET",
        "/dicomweb/series",
        P::Action(A::ReadStudy),
        "study-search",
    ),
    patient(
        "GET",
        "/dicomweb/instances",
        P::Action(A::ReadStudy),
        "study-search",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series",
        P::Action(A::ReadStudy),
        "study-search",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/instances",
        P::Action(A::ReadStudy),
        "study-search",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/instances",
        P::Action(A::ReadStudy),
        "study-search",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/metadata",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/thumbnail",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/metadata",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/thumbnail",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/instances/{instance}",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/thumbnail",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/instances/{instance}/rendered",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/instances/{instance}/thumbnail",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "GET",
        "/dicomweb/studies/{study}/series/{series}/instances/{instance}/bulk/{path}",
        P::Action(A::ReadStudy),
        "study-read",
    ),
    patient(
        "POST",
        "/dicomweb/studies",
        P::UploadOnly(A::WriteStudy),
        "study-store",
    ),
    patient(
        "POST",
        "/dicomweb/studies/{study}",
        P::UploadOnly(A::WriteStudy),
        "study-store",
    ),
];

/// The registry (for tests that enumerate routes).
pub fn route_rules() -> &'static [RouteRule] {
    ROUTES
}

/// The `/dicomweb` registry.
pub fn dicomweb_route_rules() -> &'static [RouteRule] {
    DICOMWEB_ROUTES
}

/// The rule of `method` on the matched `path`.
pub fn find_rule(method: &str, path: &str) -> Option<&'static RouteRule> {
    ROUTES
        .iter()
        .chain(DICOMWEB_ROUTES)
        .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}
