//! Authentication: who is calling ([`Caller`]: a user session by bearer token or cookie, or
//! a device token), CSRF for cookie sessions, the TOTP-enrolment restriction, the route
//! policy lookup, TOTP codes (RFC 6238) and the per-address login rate limit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use dxhub_core::policy::{
    Action, Decision, Denial, ListScope, Principal, PrincipalKind, TargetScope, authorize,
    list_scope, needs_recognition, needs_routing,
};
use dxhub_core::roles::{Role, requires_totp};
use dxhub_store::secrets::{DEVICE_TOKEN_PREFIX, hash_token};
use dxhub_store::{Device, NewAuditEntry, SESSION_ISSUED_BY_CLI, Session, User};
use hmac::{Hmac, Mac};

use crate::policy::{RoutePolicy, RouteRule, find_rule};
use crate::{ApiError, AppState};

pub const SESSION_COOKIE: &str = "dxhub_session";
pub const CSRF_COOKIE: &str = "dxhub_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Request id and client address of a request (for audit entries).
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub client: Option<String>,
    /// The object a route names (`("study", uid)`, `("report", id)`), for audit entries
    /// of denials.
    pub object: Option<(&'static str, String)>,
}

impl RequestMeta {
    pub fn of(parts: &Parts) -> Self {
        Self {
            request_id: parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            client: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
            object: object_of_path(parts.uri.path()),
        }
    }
}

/// The object a request path names: a study (`/api/v1/studies/{uid}`,
/// `/dicomweb/studies/{uid}[/…]`) or a report (`/api/v1/reports/{id}[/…]`).
fn object_of_path(path: &str) -> Option<(&'static str, String)> {
    if let Some(uid) = path.strip_prefix("/api/v1/studies/") {
        return (!uid.is_empty() && !uid.contains('/')).then(|| ("study", uid.to_owned()));
    }
    if let Some(rest) = path.strip_prefix("/api/v1/reports/") {
        let id = rest.split('/').next().unwrap_or("");
        return (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .then(|| ("report", id.to_owned()));
    }
    let rest = path.strip_prefix("/dicomweb/studies/")?;
    let uid = rest.split('/').next().unwrap_or("");
    (!uid.is_empty()).then(|| ("study", uid.to_owned()))
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

/// Value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Equal without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An authenticated user session.
#[derive(Debug, Clone)]
pub struct UserCaller {
    pub user: User,
    pub session: Session,
    pub by_cookie: bool,
}

#[derive(Debug, Clone)]
pub enum Identity {
    User(Box<UserCaller>),
    Device(Device),
}

/// The authenticated caller of a non-public `/api/v1` route, its principal, the route's
/// rule and the request's audit metadata.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    pub principal: Principal,
    /// Every institution of the caller's alliance (for alliance-wide reach).
    pub alliance_institutions: Arc<Vec<i64>>,
    pub rule: &'static RouteRule,
    pub meta: RequestMeta,
}

/// How long a resolved token (session or device, its user and principal) is reused
/// without asking the index again. API writes clear the cache at once; a change made by
/// the CLI in another process (disable, revoke) takes effect within this time.
pub const IDENTITY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

type CachedIdentity = (Identity, Principal, Arc<Vec<i64>>);

/// Resolved tokens of the last [`IDENTITY_CACHE_TTL`], by token hash.
#[derive(Default)]
pub struct IdentityCache {
    entries: std::sync::Mutex<
        std::collections::HashMap<(String, bool), (std::time::Instant, CachedIdentity)>,
    >,
}

impl IdentityCache {
    fn get(&self, key: &(String, bool)) -> Option<CachedIdentity> {
        let entries = self.entries.lock().ok()?;
        let (at, v) = entries.get(key)?;
        (at.elapsed() < IDENTITY_CACHE_TTL).then(|| v.clone())
    }

    fn put(&self, key: (String, bool), v: CachedIdentity) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                entries.retain(|_, (at, _)| at.elapsed() < IDENTITY_CACHE_TTL);
            }
            entries.insert(key, (std::time::Instant::now(), v));
        }
    }

    /// Forget everything (after any write that may change a session, user or tenancy).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// The token of a request: `(token, sent as cookie)`.
fn token_of(headers: &HeaderMap) -> Option<(String, bool)> {
    match bearer(headers) {
        Some(t) => Some((t.to_owned(), false)),
        None => match cookie(headers, SESSION_COOKIE) {
            Some(t) if !t.is_empty() => Some((t, true)),
            _ => None,
        },
    }
}

/// [`resolve_identity`] and [`principal_of`], reusing a resolution of the last second.
async fn cached_identity(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<CachedIdentity, ApiError> {
    let (token, by_cookie) = token_of(headers).ok_or(ApiError::Unauthenticated)?;
    let key = (hash_token(&token), by_cookie);
    if let Some(hit) = state.identities.get(&key) {
        return Ok(hit);
    }
    let identity = resolve_identity(state, headers).await?;
    let institutions = state.catalog.list_institutions().await?;
    let principal = principal_from(&identity, &institutions);
    let alliance: Vec<i64> = institutions
        .iter()
        .filter(|i| i.alliance_id == principal.alliance_id)
        .map(|i| i.id)
        .collect();
    let v = (identity, principal, Arc::new(alliance));
    state.identities.put(key, v.clone());
    Ok(v)
}

/// Resolve the bearer token or session cookie of a request (no policy checks).
pub async fn resolve_identity(state: &AppState, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let (token, by_cookie) = match bearer(headers) {
        Some(t) => (t.to_owned(), false),
        None => match cookie(headers, SESSION_COOKIE) {
            Some(t) if !t.is_empty() => (t, true),
            _ => return Err(ApiError::Unauthenticated),
        },
    };
    let hash = hash_token(&token);
    if token.starts_with(DEVICE_TOKEN_PREFIX) && !by_cookie {
        let device = state
            .catalog
            .find_device_by_token_hash(&hash)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if state
            .touches
            .due(("device", device.id), touch_interval(state))
        {
            state.catalog.touch_device(device.id).await?;
        }
        return Ok(Identity::Device(device));
    }
    let session = state
        .catalog
        .find_session(&hash)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let user = state
        .catalog
        .get_user(session.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(ApiError::Unauthenticated)?;
    if state
        .touches
        .due(("session", session.id), touch_interval(state))
    {
        state.catalog.touch_session(session.id).await?;
    }
    Ok(Identity::User(Box::new(UserCaller {
        user,
        session,
        by_cookie,
    })))
}

/// How often a session's or device's last use is written: a viewer makes hundreds of
/// requests a minute, and each write goes through the index's single writer. A twentieth
/// of the idle timeout (at most 15 s) keeps idle expiry accurate to that.
fn touch_interval(state: &AppState) -> std::time::Duration {
    (state.settings.session_idle / 20).min(std::time::Duration::from_secs(15))
}

/// When each session/device was last recorded as used (by this process).
#[derive(Debug, Default)]
pub struct Touches {
    seen: std::sync::Mutex<std::collections::HashMap<(&'static str, i64), std::time::Instant>>,
}

impl Touches {
    /// Whether the use of `key` should be written now (and note that it is).
    pub fn due(&self, key: (&'static str, i64), every: std::time::Duration) -> bool {
        let now = std::time::Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return true;
        };
        if seen.len() > 100_000 {
            seen.clear();
        }
        match seen.get(&key) {
            Some(t) if now.duration_since(*t) < every => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }
}

/// The principal of an identity, its institution path from the catalog.
pub async fn principal_of(state: &AppState, identity: &Identity) -> Result<Principal, ApiError> {
    let institutions = state.catalog.list_institutions().await?;
    Ok(principal_from(identity, &institutions))
}

fn principal_from(identity: &Identity, institutions: &[dxhub_store::Institution]) -> Principal {
    let (kind, institution_id, alliance_id) = match identity {
        Identity::User(u) => (
            PrincipalKind::User { role: u.user.role },
            u.user.institution_id,
            u.user.alliance_id,
        ),
        Identity::Device(d) => (PrincipalKind::Device, d.institution_id, d.alliance_id),
    };
    let tree: Vec<(i64, Option<i64>)> = institutions
        .iter()
        .filter(|i| i.alliance_id == alliance_id)
        .map(|i| (i.id, i.parent_id))
        .collect();
    Principal::new(kind, institution_id, alliance_id, &tree)
}

/// Whether a user must enrol TOTP before using anything but `/auth/*` with this session.
pub fn enrollment_pending(u: &UserCaller) -> bool {
    requires_totp(u.user.role)
        && !u.user.totp_enrolled
        && u.session.issued_by != SESSION_ISSUED_BY_CLI
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let path = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        // Fail closed: a route without a rule is a bug, not an open door.
        let rule = find_rule(parts.method.as_str(), &path).ok_or_else(|| {
            ApiError::Internal(format!("no route policy for {} {path}", parts.method))
        })?;
        let meta = RequestMeta::of(parts);
        let (identity, principal, alliance_institutions) =
            cached_identity(state, &parts.headers).await?;
        let refusal = check_gates(parts, &path, &identity, rule)
            .and_then(|()| check_action(&principal, rule));
        let caller = Caller {
            identity,
            principal,
            alliance_institutions,
            rule,
            meta,
        };
        if let Err(e) = refusal {
            // denials on patient-data routes are audited
            if let Some(action) = rule.patient_data {
                caller
                    .audit(state, action, caller.named_object(), "denied")
                    .await?;
            }
            return Err(e);
        }
        Ok(caller)
    }
}

/// Device tokens only on upload routes, CSRF for cookie sessions, TOTP enrolment.
fn check_gates(
    parts: &Parts,
    path: &str,
    identity: &Identity,
    rule: &RouteRule,
) -> Result<(), ApiError> {
    match (identity, rule.policy) {
        (Identity::Device(_), RoutePolicy::UploadOnly(_)) => {}
        (Identity::Device(_), _) => return Err(ApiError::DeviceTokenUploadOnly),
        (Identity::User(u), _) => {
            let unsafe_method = !matches!(
                parts.method,
                Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
            );
            if u.by_cookie && unsafe_method {
                let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                let expected = cookie(&parts.headers, CSRF_COOKIE);
                let ok = matches!((sent, expected.as_deref()), (Some(s), Some(e))
                        if !e.is_empty() && constant_time_eq(s.as_bytes(), e.as_bytes()));
                if !ok {
                    return Err(ApiError::CsrfFailed);
                }
            }
            if enrollment_pending(u) && !path.starts_with("/api/v1/auth/") {
                return Err(ApiError::TotpEnrollmentRequired);
            }
        }
    }
    Ok(())
}

/// A route whose action the principal never has is refused here, before the handler
/// looks its object up: the 403 is the same whether the object exists or not.
fn check_action(principal: &Principal, rule: &RouteRule) -> Result<(), ApiError> {
    match rule.policy {
        RoutePolicy::Action(a) | RoutePolicy::UploadOnly(a)
            if !dxhub_core::policy::ever_permitted(principal.kind, a) =>
        {
            Err(ApiError::Forbidden(format!(
                "not permitted: {}",
                a.as_str()
            )))
        }
        _ => Ok(()),
    }
}

/// What a list may contain (see [`Caller::list_reach`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReach {
    /// Only objects of these institutions; `None`: every institution.
    pub institution_ids: Option<Vec<i64>>,
    /// Only objects of studies routed to this reader (user id) and those patients' priors.
    pub routed_to: Option<i64>,
}

impl Caller {
    pub fn user(&self) -> Option<&User> {
        match &self.identity {
            Identity::User(u) => Some(&u.user),
            Identity::Device(_) => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        self.principal.role()
    }

    /// How lists of `action`'s objects (studies, reports, critical values) are narrowed
    /// for this caller, from [`dxhub_core::policy::list_scope`]; `None`: not at all
    /// permitted. A clinic sees its institution and those it heads, group admins the
    /// alliance, readers the alliance's studies routed to them and those patients' priors.
    pub fn list_reach(&self, action: Action) -> Option<ListReach> {
        let alliance = || Some(self.alliance_institutions.as_ref().clone());
        match list_scope(&self.principal, action) {
            ListScope::Nothing => None,
            ListScope::Everything => Some(ListReach::default()),
            ListScope::Institutions { institution_ids } => Some(ListReach {
                institution_ids: Some(institution_ids),
                routed_to: None,
            }),
            ListScope::Alliance { .. } => Some(ListReach {
                institution_ids: alliance(),
                routed_to: None,
            }),
            ListScope::RoutedInAlliance { .. } => Some(ListReach {
                institution_ids: alliance(),
                routed_to: Some(self.user()?.id),
            }),
        }
    }

    /// [`Self::list_reach`] for the route's action, or 403 (audited on patient-data
    /// routes) when the caller may not list at all.
    pub async fn require_list(&self, state: &AppState) -> Result<ListReach, ApiError> {
        let action = self
            .action()
            .ok_or_else(|| ApiError::Internal("route has no action policy".into()))?;
        match self.list_reach(action) {
            Some(r) => Ok(r),
            None => {
                if let Some(name) = self.rule.patient_data {
                    self.audit(state, name, self.named_object(), "denied")
                        .await?;
                }
                Err(ApiError::Forbidden(format!(
                    "not permitted: {}",
                    action.as_str()
                )))
            }
        }
    }

    /// The policy target of a study of `institution_id` (`None`: a study without an
    /// institution, which only the superadmin reaches) for `action`: whether the study is
    /// routed to the caller is looked up only when the policy needs it (readers).
    pub async fn study_scope(
        &self,
        state: &AppState,
        action: Action,
        study_uid: &str,
        institution_id: Option<i64>,
        alliance_id: i64,
    ) -> Result<TargetScope, ApiError> {
        let Some(institution_id) = institution_id else {
            return Ok(TargetScope::Hub);
        };
        let routed = match self.user() {
            Some(u) if needs_routing(&self.principal, action) => {
                state.catalog.study_routed_to(study_uid, u.id).await?
            }
            _ => false,
        };
        // a clinic doctor opens another institution's study only when its result is
        // recognised (looked up only then: the own subtree needs no look-up)
        let recognised = needs_recognition(&self.principal, action)
            && alliance_id == self.principal.alliance_id
            && institution_id != self.principal.institution_id
            && !self.principal.institution_path.contains(&institution_id)
            && crate::reports::study_recognised(state, alliance_id, study_uid).await?;
        Ok(TargetScope::Study {
            institution_id,
            alliance_id,
            routed,
            recognised,
        })
    }

    pub fn is_superadmin(&self) -> bool {
        self.role() == Some(Role::Superadmin)
    }

    /// The action the route's policy asks for.
    pub fn action(&self) -> Option<Action> {
        match self.rule.policy {
            RoutePolicy::Action(a) | RoutePolicy::UploadOnly(a) => Some(a),
            RoutePolicy::Public | RoutePolicy::AnyUser => None,
        }
    }

    /// `(actor_kind, actor)` for audit entries.
    pub fn actor(&self) -> (&'static str, String) {
        match &self.identity {
            Identity::User(u) => ("user", u.user.login.clone()),
            Identity::Device(d) => ("device", d.serial.clone()),
        }
    }

    /// An audit entry by this caller.
    pub fn audit_entry(
        &self,
        action: &str,
        object: Option<(&str, &str)>,
        outcome: &str,
    ) -> NewAuditEntry {
        let (actor_kind, actor) = self.actor();
        NewAuditEntry {
            actor_kind: actor_kind.to_owned(),
            actor,
            institution_id: Some(self.principal.institution_id),
            action: action.to_owned(),
            object_kind: object.map(|o| o.0.to_owned()),
            object_id: object.map(|o| o.1.to_owned()),
            outcome: outcome.to_owned(),
            client: self.meta.client.clone(),
            request_id: self.meta.request_id.clone(),
        }
    }

    /// The study or report the request path names (the object of a denial's audit entry).
    fn named_object(&self) -> Option<(&str, &str)> {
        self.meta
            .object
            .as_ref()
            .map(|(kind, id)| (*kind, id.as_str()))
    }

    /// The 404 of an object the path names that does not exist, audited (`not-found`) on
    /// patient-data routes as a refusal is (`denied`): both answers are the same 404 and
    /// cost the same audit write, so neither the body nor the time tells a caller whether
    /// an object it may not see exists.
    pub async fn unknown(&self, state: &AppState, what: String) -> ApiError {
        if let Some(name) = self.rule.patient_data
            && let Err(e) = self
                .audit(state, name, self.named_object(), "not-found")
                .await
        {
            return e;
        }
        ApiError::NotFound(what)
    }

    /// Append an audit entry; a failure to record is an error of the request.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        object: Option<(&str, &str)>,
        outcome: &str,
    ) -> Result<(), ApiError> {
        state
            .catalog
            .append_audit(&self.audit_entry(action, object, outcome))
            .await?;
        Ok(())
    }

    /// Record a write's outcome (`success` / `failure`) in the audit log, then pass its
    /// result on: every audited write of the API goes through here.
    pub async fn audited<T, E>(
        &self,
        state: &AppState,
        action: &str,
        object: Option<(&str, &str)>,
        r: Result<T, E>,
    ) -> Result<T, ApiError>
    where
        ApiError: From<E>,
    {
        let outcome = if r.is_ok() { "success" } else { "failure" };
        self.audit(state, action, object, outcome).await?;
        r.map_err(ApiError::from)
    }

    /// Ask the policy for the route's action on `target`: 403 `forbidden` when denied (and,
    /// on patient-data routes, an audit entry of the denial).
    pub async fn require(&self, state: &AppState, target: TargetScope) -> Result<(), ApiError> {
        let action = self
            .action()
            .ok_or_else(|| ApiError::Internal("route has no action policy".into()))?;
        self.require_action(state, action, target).await
    }

    pub async fn require_action(
        &self,
        state: &AppState,
        action: Action,
        target: TargetScope,
    ) -> Result<(), ApiError> {
        match authorize(&self.principal, action, target) {
            Decision::Allow => Ok(()),
            Decision::Deny(why) => {
                if let Some(name) = self.rule.patient_data {
                    self.audit(state, name, self.named_object(), "denied")
                        .await?;
                }
                Err(ApiError::Forbidden(match why {
                    Denial::ActionNotPermitted => format!("not permitted: {}", action.as_str()),
                    Denial::OutOfScope => "out of scope".to_owned(),
                }))
            }
        }
    }

    /// [`Caller::require`] for an object the route looked up (by id or UID): when the
    /// caller may not even know it exists ([`dxhub_core::policy::visible`]: another
    /// alliance's, a study out of the caller's read reach), the refusal is `not_found`,
    /// the same 404 as for an object that does not exist; otherwise 403. Audited as
    /// `require`.
    pub async fn require_found(
        &self,
        state: &AppState,
        target: TargetScope,
        not_found: impl FnOnce() -> String,
    ) -> Result<(), ApiError> {
        let action = self
            .action()
            .ok_or_else(|| ApiError::Internal("route has no action policy".into()))?;
        self.require_action_found(state, action, target, not_found)
            .await
    }

    /// [`Caller::require_found`] for another action than the route's.
    pub async fn require_action_found(
        &self,
        state: &AppState,
        action: Action,
        target: TargetScope,
        not_found: impl FnOnce() -> String,
    ) -> Result<(), ApiError> {
        self.require_action_seen(state, action, target, target, not_found)
            .await
    }

    /// [`Caller::require_action_found`] where what the action is judged on (`target`)
    /// is narrower than what decides whether the caller may know the object (`seen`).
    pub async fn require_action_seen(
        &self,
        state: &AppState,
        action: Action,
        target: TargetScope,
        seen: TargetScope,
        not_found: impl FnOnce() -> String,
    ) -> Result<(), ApiError> {
        match self.require_action(state, action, target).await {
            Err(ApiError::Forbidden(_)) if !self.sees(seen) => Err(ApiError::NotFound(not_found())),
            other => other,
        }
    }

    /// Whether the caller may do `action` to `target` (no audit: for what a response
    /// includes, not for a refusal).
    pub fn may(&self, action: Action, target: TargetScope) -> bool {
        authorize(&self.principal, action, target).is_allowed()
    }

    /// Whether the caller may know that `target` exists.
    pub fn sees(&self, target: TargetScope) -> bool {
        dxhub_core::policy::visible(&self.principal, target)
    }
}

// ---- TOTP (RFC 6238: SHA-1, 6 digits, 30 s, ±1 step) ----

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    let mut buf: u32 = 0;
    let mut bits = 0;
    for &b in data {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf: u32 = 0;
    let mut bits = 0;
    for c in s.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let v = BASE32
            .iter()
            .position(|&x| x == c.to_ascii_uppercase() as u8)? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buf >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// The 6-digit code of `secret` for time step `step`.
pub fn totp_code(secret: &[u8], step: u64) -> String {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// Whether `code` is valid for the base32 `secret` at `unix_secs` (±1 step).
pub fn totp_verify(secret_b32: &str, code: &str, unix_secs: u64) -> bool {
    let Some(secret) = base32_decode(secret_b32) else {
        return false;
    };
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let step = unix_secs / 30;
    [step.saturating_sub(1), step, step + 1]
        .iter()
        .any(|s| constant_time_eq(totp_code(&secret, *s).as_bytes(), code.as_bytes()))
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Epoch µs as RFC 3339 UTC (`2026-11-22T13:00:00Z`).
pub fn rfc3339(epoch_us: i64) -> String {
    let secs = epoch_us.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil from days (Howard Hinnant)
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
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

// ---- login rate limit ----

/// A token bucket per client address: `capacity` logins, refilled over `per`.
#[derive(Debug)]
pub struct LoginLimiter {
    capacity: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl LoginLimiter {
    pub fn new(capacity: u32, per: std::time::Duration) -> Self {
        Self {
            capacity: f64::from(capacity),
            per_sec: f64::from(capacity) / per.as_secs_f64().max(0.001),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `key`; false when the bucket is empty.
    pub fn try_acquire(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut map = match self.buckets.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() > 100_000 {
            let full = self.capacity;
            let per_sec = self.per_sec;
            map.retain(|_, (t, at)| *t + now.duration_since(*at).as_secs_f64() * per_sec < full);
        }
        let (tokens, at) = map.entry(key.to_owned()).or_insert((self.capacity, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_sec).min(self.capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, secret "12345678901234567890", 8 digits → last 6 here.
        let secret = b"12345678901234567890";
        assert_eq!(totp_code(secret, 59 / 30), "287082");
        assert_eq!(totp_code(secret, 1_111_111_109 / 30), "081804");
        assert_eq!(totp_code(secret, 1_234_567_890 / 30), "005924");
        let b32 = base32_encode(secret);
        assert_eq!(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32_decode(&b32).as_deref(), Some(&secret[..]));
        assert!(totp_verify(&b32, "081804", 1_111_111_109));
        assert!(
            totp_verify(&b32, "081804", 1_111_111_109 + 30),
            "one step late"
        );
        assert!(!totp_verify(&b32, "081804", 1_111_111_109 + 90));
        assert!(!totp_verify(&b32, "08180", 1_111_111_109));
    }

    #[test]
    fn denials_name_the_study_or_report_of_the_path() {
        let o = |p: &str| object_of_path(p);
        assert_eq!(o("/api/v1/studies/1.2.3"), Some(("study", "1.2.3".into())));
        assert_eq!(
            o("/dicomweb/studies/1.2.3/series/4"),
            Some(("study", "1.2.3".into()))
        );
        assert_eq!(
            o("/api/v1/reports/42/verify"),
            Some(("report", "42".into()))
        );
        assert_eq!(o("/api/v1/reports/42"), Some(("report", "42".into())));
        assert_eq!(o("/api/v1/reports/x1"), None);
        assert_eq!(o("/api/v1/reports"), None);
        assert_eq!(o("/api/v1/studies"), None);
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_352_400_000_000), "2026-11-22T13:00:00Z");
        assert_eq!(rfc3339(951_782_400_000_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn limiter_allows_capacity_then_refuses() {
        let l = LoginLimiter::new(10, std::time::Duration::from_secs(60));
        for _ in 0..10 {
            assert!(l.try_acquire("a"));
        }
        assert!(!l.try_acquire("a"));
        assert!(l.try_acquire("b"), "per address");
    }

    #[test]
    fn cookies_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; dxhub_session=dxs_x ; dxhub_csrf=c".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("dxs_x"));
        assert_eq!(cookie(&h, CSRF_COOKIE).as_deref(), Some("c"));
        assert_eq!(cookie(&h, "x"), None);
    }
}
