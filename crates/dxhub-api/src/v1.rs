//! `/api/v1` handlers (see `API.md`): authentication, tenancy, users, devices, studies and
//! the audit log. Every route is registered through utoipa-axum so it appears in the
//! OpenAPI document, and has a rule in [`crate::policy::ROUTES`].

use std::collections::HashSet;

use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dxhub_core::InstitutionLevel;
use dxhub_core::password_policy::check_password;
use dxhub_core::policy::TargetScope;
use dxhub_core::roles::{Role, requires_totp};
use dxhub_store::identity::AuditFilter;
use dxhub_store::secrets::{
    hash_password, hash_token, new_device_token, new_session_token, verify_password,
};
use dxhub_store::{
    InstitutionUpdate, NewAuditEntry, NewDevice, NewInstitution, NewSession, NewUser,
    SESSION_ISSUED_BY_LOGIN, StudyFilter, User,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{
    CSRF_COOKIE, Caller, Identity, RequestMeta, SESSION_COOKIE, base32_encode, rfc3339,
    totp_verify, unix_now,
};
use crate::dto;
use crate::{ApiError, AppState};

/// JSON body whose rejections use the API's error shape: 400 `bad-request` for syntax
/// errors and missing content type, 422 `invalid-json` for a wrong shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::JsonRejection as R;
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(R::JsonDataError(e)) => Err(ApiError::InvalidJson(e.body_text())),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::PayloadTooLarge),
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// Query string with the API's error shape on rejection (400 `bad-request`).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Self(v))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(enroll_totp))
        .routes(routes!(confirm_totp))
        .routes(routes!(list_alliances, add_alliance))
        .routes(routes!(list_institutions, add_institution))
        .routes(routes!(update_institution))
        .routes(routes!(list_ae_titles, add_ae_title))
        .routes(routes!(delete_ae_title))
        .routes(routes!(list_users, add_user))
        .routes(routes!(disable_user))
        .routes(routes!(set_user_role))
        .routes(routes!(set_user_password))
        .routes(routes!(reset_user_totp))
        .routes(routes!(list_devices, add_device))
        .routes(routes!(revoke_device))
        .routes(routes!(list_studies))
        .routes(routes!(get_study))
        .routes(routes!(list_audit))
        .merge(crate::ecg::routes())
        .merge(crate::worklist::routes())
        .merge(crate::reports::routes())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

// ---------------------------------------------------------------- auth

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
    #[serde(default)]
    pub totp: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfo {
    pub id: i64,
    pub login: String,
    pub role: String,
    pub institution_id: i64,
    pub institution_name: String,
    pub alliance_id: i64,
}

impl From<&User> for UserInfo {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            login: u.login.clone(),
            role: u.role.as_str().to_owned(),
            institution_id: u.institution_id,
            institution_name: u.institution_name.clone(),
            alliance_id: u.alliance_id,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub token: String,
    /// RFC 3339.
    pub expires_at: String,
    pub csrf_token: String,
    pub user: UserInfo,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub user: UserInfo,
    pub totp_enrolled: bool,
    pub totp_required: bool,
}

fn login_audit(
    meta: &RequestMeta,
    login: &str,
    user: Option<&User>,
    outcome: &str,
) -> NewAuditEntry {
    NewAuditEntry {
        actor_kind: "user".into(),
        actor: login.trim().to_owned(),
        institution_id: user.map(|u| u.institution_id),
        action: "auth.login".into(),
        object_kind: Some("user".into()),
        object_id: Some(login.trim().to_owned()),
        outcome: outcome.into(),
        client: meta.client.clone(),
        request_id: meta.request_id.clone(),
    }
}

fn cookie_header(
    name: &str,
    value: &str,
    http_only: bool,
    secure: bool,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; SameSite=Strict");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Log in with login + password (+ TOTP code when enrolled).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, description = "invalid-credentials, totp-required or invalid-totp", body = dto::ErrorBody),
        (status = 423, description = "account-locked", body = dto::ErrorBody), (status = 429, description = "too-many-requests", body = dto::ErrorBody)))]
async fn login(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let catalog = &state.catalog;
    let key = meta.client.clone().unwrap_or_else(|| "unknown".into());
    if !state.login_limiter.try_acquire(&key) {
        catalog
            .append_audit(&login_audit(&meta, &req.login, None, "rate-limited"))
            .await?;
        return Err(ApiError::TooManyRequests);
    }
    let user = catalog.find_user_by_login(&req.login).await?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        // same work and answer as a wrong password
        let password = req.password.clone();
        let _ = blocking(move || verify_password(&password, dummy_phc())).await?;
        catalog
            .append_audit(&login_audit(&meta, &req.login, None, "failure"))
            .await?;
        return Err(ApiError::InvalidCredentials);
    };
    let now_us = i64::try_from(unix_now())
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000);
    if user.is_locked(now_us) {
        catalog
            .append_audit(&login_audit(&meta, &req.login, Some(&user), "locked"))
            .await?;
        return Err(ApiError::AccountLocked);
    }
    let (password, phc) = (req.password.clone(), user.password_hash.clone());
    let ok = blocking(move || verify_password(&password, &phc))
        .await?
        .map_err(internal)?;
    let fail = |outcome: &'static str, err: ApiError| {
        let state = state.clone();
        let meta = meta.clone();
        let user = user.clone();
        let login = req.login.clone();
        async move {
            let f = state.catalog.record_login_failure(user.id).await?;
            let locked = f.locked_until.is_some_and(|t| t > now_us) && f.failed_logins == 0;
            state
                .catalog
                .append_audit(&login_audit(&meta, &login, Some(&user), outcome))
                .await?;
            if locked {
                state
                    .catalog
                    .append_audit(&login_audit(&meta, &login, Some(&user), "lockout"))
                    .await?;
            }
            Err::<Response, ApiError>(err)
        }
    };
    if !ok {
        return fail("failure", ApiError::InvalidCredentials).await;
    }
    if let Some(secret) = user.totp_secret.as_deref() {
        match req.totp.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            None => {
                catalog
                    .append_audit(&login_audit(
                        &meta,
                        &req.login,
                        Some(&user),
                        "totp-required",
                    ))
                    .await?;
                return Err(ApiError::TotpRequired);
            }
            Some(code) if !totp_verify(secret, code, unix_now()) => {
                return fail("invalid-totp", ApiError::InvalidTotp).await;
            }
            Some(_) => {}
        }
    }
    catalog.reset_login_failures(user.id).await?;
    let token = new_session_token();
    let settings = &state.settings;
    let session = catalog
        .create_session(&NewSession {
            user_id: user.id,
            token_hash: hash_token(&token),
            ttl: settings.session_ttl,
            idle_timeout: Some(settings.session_idle),
            client: meta.client.clone(),
            issued_by: SESSION_ISSUED_BY_LOGIN.to_owned(),
        })
        .await?;
    catalog
        .append_audit(&login_audit(&meta, &req.login, Some(&user), "success"))
        .await?;
    let csrf = hash_token(&format!("csrf:{token}"))[..32].to_owned();
    let max_age = i64::try_from(settings.session_ttl.as_secs()).unwrap_or(i64::MAX);
    let body = LoginResponse {
        token: token.clone(),
        expires_at: rfc3339(session.expires_at),
        csrf_token: csrf.clone(),
        user: UserInfo::from(&user),
    };
    let mut resp = Json(body).into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookie_header(
            SESSION_COOKIE,
            &token,
            true,
            settings.secure_cookies,
            Some(max_age),
        ),
    );
    h.append(
        header::SET_COOKIE,
        cookie_header(
            CSRF_COOKIE,
            &csrf,
            false,
            settings.secure_cookies,
            Some(max_age),
        ),
    );
    Ok(resp)
}

/// argon2id of a random string: verified against when the login is unknown, so unknown
/// logins cost as much as wrong passwords.
fn dummy_phc() -> &'static str {
    static PHC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PHC.get_or_init(|| hash_password(&new_session_token()).unwrap_or_default())
}

/// End the session and clear the cookies.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    let Identity::User(u) = &caller.identity else {
        return Err(ApiError::DeviceTokenUploadOnly);
    };
    state.catalog.revoke_session(u.session.id).await?;
    caller
        .audit(
            &state,
            "auth.logout",
            Some(("user", &u.user.login)),
            "success",
        )
        .await?;
    let secure = state.settings.secure_cookies;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, "", true, secure, Some(0)),
    );
    h.append(
        header::SET_COOKIE,
        cookie_header(CSRF_COOKIE, "", false, secure, Some(0)),
    );
    Ok(resp)
}

fn session_user(caller: &Caller) -> Result<&User, ApiError> {
    caller.user().ok_or(ApiError::DeviceTokenUploadOnly)
}

/// The calling user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, body = MeResponse)))]
async fn me(caller: Caller) -> Result<Json<MeResponse>, ApiError> {
    let u = session_user(&caller)?;
    Ok(Json(MeResponse {
        user: UserInfo::from(u),
        totp_enrolled: u.totp_enrolled,
        totp_required: requires_totp(u.role),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollResponse {
    /// base32
    pub secret: String,
    pub otpauth_url: String,
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Re-enrolment proves the account's current factors (a stolen session alone must not
/// replace a user's second factor); a first enrolment needs no body.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct EnrollRequest {
    pub password: Option<String>,
    pub totp: Option<String>,
}

/// Start TOTP enrolment: a new pending secret. A user already enrolled sends their
/// password and a current code (401 otherwise, counted towards the lock-out).
#[utoipa::path(post, path = "/api/v1/auth/totp/enroll", tag = "auth", request_body = Option<EnrollRequest>,
    responses((status = 200, body = EnrollResponse), (status = 401, description = "re-enrolment without the password and a current code", body = dto::ErrorBody)))]
async fn enroll_totp(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> Result<Json<EnrollResponse>, ApiError> {
    let u = session_user(&caller)?;
    let req: EnrollRequest = if body.iter().all(u8::is_ascii_whitespace) {
        EnrollRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?
    };
    if u.totp_enrolled {
        let (Some(password), Some(totp)) = (req.password.as_deref(), req.totp.as_deref()) else {
            caller
                .audit(
                    &state,
                    "auth.totp.enroll",
                    Some(("user", &u.login)),
                    "failure",
                )
                .await?;
            return Err(ApiError::TotpRequired);
        };
        crate::reports::reauthenticate_for(&state, &caller, password, totp, "auth.totp.reauth")
            .await?;
    }
    let mut bytes = [0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
    let secret = base32_encode(&bytes);
    state.catalog.set_totp_secret(u.id, &secret).await?;
    caller
        .audit(
            &state,
            "auth.totp.enroll",
            Some(("user", &u.login)),
            "success",
        )
        .await?;
    let otpauth_url = format!(
        "otpauth://totp/dxhub:{}?secret={secret}&issuer=dxhub&algorithm=SHA1&digits=6&period=30",
        url_encode(&u.login)
    );
    Ok(Json(EnrollResponse {
        secret,
        otpauth_url,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfirmRequest {
    pub code: String,
}

/// Confirm the pending TOTP secret with a current code.
#[utoipa::path(post, path = "/api/v1/auth/totp/confirm", tag = "auth", request_body = ConfirmRequest,
    responses((status = 204), (status = 401, description = "invalid-totp", body = dto::ErrorBody)))]
async fn confirm_totp(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ConfirmRequest>,
) -> Result<StatusCode, ApiError> {
    let u = session_user(&caller)?;
    let pending = state.catalog.pending_totp_secret(u.id).await?;
    let ok = pending
        .as_deref()
        .is_some_and(|s| totp_verify(s, &req.code, unix_now()));
    if !ok {
        caller
            .audit(
                &state,
                "auth.totp.confirm",
                Some(("user", &u.login)),
                "failure",
            )
            .await?;
        return Err(ApiError::InvalidTotp);
    }
    state.catalog.confirm_totp(u.id).await?;
    caller
        .audit(
            &state,
            "auth.totp.confirm",
            Some(("user", &u.login)),
            "success",
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- tenancy

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewAllianceRequest {
    pub name: String,
}

fn created(v: impl Serialize) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

/// A response body passed through `serde_json::Value`, as the handlers always have: the
/// object keys come out sorted (serde_json without `preserve_order`), so the bytes on the
/// wire stay what they were before the bodies got typed DTOs.
fn as_value(v: impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(internal)
}

/// Alliances: all for superadmin, the caller's own otherwise.
#[utoipa::path(get, path = "/api/v1/alliances", tag = "tenancy", responses((status = 200, body = dto::AllianceList)))]
async fn list_alliances(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let all = state.catalog.list_alliances().await?;
    let mine: Vec<_> = all
        .into_iter()
        .filter(|a| caller.is_superadmin() || a.id == caller.principal.alliance_id)
        .collect();
    Ok(Json(as_value(dto::AllianceList {
        alliances: dto::rows(mine),
    })?))
}

/// Create an alliance (superadmin).
#[utoipa::path(post, path = "/api/v1/alliances", tag = "tenancy", request_body = NewAllianceRequest,
    responses((status = 201, body = dto::Alliance), (status = 403, body = dto::ErrorBody), (status = 409, body = dto::ErrorBody)))]
async fn add_alliance(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewAllianceRequest>,
) -> Result<Response, ApiError> {
    caller.require(&state, TargetScope::Hub).await?;
    let mut r = state.catalog.add_alliance(&req.name).await;
    if let Ok(a) = &r
        && let Err(e) = crate::reports::seed_defaults(&*state.catalog, a.id).await
    {
        r = Err(e);
    }
    let r = caller
        .audited(
            &state,
            "alliance.add",
            Some(("alliance", req.name.trim())),
            r,
        )
        .await;
    Ok(created(dto::Alliance::from(r?)))
}

/// Institutions within the caller's reach.
#[utoipa::path(get, path = "/api/v1/institutions", tag = "tenancy", responses((status = 200, body = dto::InstitutionList)))]
async fn list_institutions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let all = state.catalog.list_institutions().await?;
    let p = &caller.principal;
    let clinic = caller.role().is_some_and(Role::is_clinic);
    let mine: Vec<_> = all
        .into_iter()
        .filter(|i| {
            caller.is_superadmin()
                || (clinic && p.institution_path.contains(&i.id))
                || (!clinic && i.alliance_id == p.alliance_id)
        })
        .collect();
    Ok(Json(as_value(dto::InstitutionList {
        institutions: dto::rows(mine),
    })?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewInstitutionRequest {
    pub alliance: String,
    pub name: String,
    /// `county`, `township` or `village`.
    #[schema(value_type = String)]
    pub level: InstitutionLevel,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub population: Option<i64>,
}

/// Create an institution in an alliance.
#[utoipa::path(post, path = "/api/v1/institutions", tag = "tenancy", request_body = NewInstitutionRequest,
    responses((status = 201, body = dto::Institution), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody), (status = 409, body = dto::ErrorBody)))]
async fn add_institution(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewInstitutionRequest>,
) -> Result<Response, ApiError> {
    let alliance = state
        .catalog
        .list_alliances()
        .await?
        .into_iter()
        .find(|a| a.name == req.alliance.trim());
    let alliance_id = match &alliance {
        Some(a) => a.id,
        None if caller.is_superadmin() => {
            return Err(ApiError::NotFound(format!("alliance {:?}", req.alliance)));
        }
        // do not reveal other alliances' names: out of scope either way
        None => -1,
    };
    caller
        .require(&state, TargetScope::Alliance { alliance_id })
        .await?;
    let r = state
        .catalog
        .add_institution(&NewInstitution {
            alliance: req.alliance.clone(),
            name: req.name.clone(),
            level: req.level,
            parent: req.parent.clone(),
            population: req.population,
        })
        .await;
    let r = caller
        .audited(
            &state,
            "institution.add",
            Some(("institution", req.name.trim())),
            r,
        )
        .await;
    Ok(created(dto::Institution::from(r?)))
}

/// `Some(None)` for an explicit `null`, `None` (via `default`) when the field is absent.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstitutionRequest {
    /// New population; `null` clears it, absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub population: Option<Option<i64>>,
    /// New name (must be free).
    #[serde(default)]
    pub name: Option<String>,
    /// Move the institution under this institution (by name; same alliance; a county may
    /// head townships and villages, a township villages). Who sees whose studies follows.
    #[serde(default)]
    pub parent: Option<String>,
    /// Seconds without a new instance before this institution's studies are ready to read
    /// (0 … 86400); `null` returns to the configured default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub stable_after_s: Option<Option<i64>>,
}

/// Change an institution's population, name and/or parent (move it within its alliance),
/// or its stable age (worklist readiness).
#[utoipa::path(patch, path = "/api/v1/institutions/{id}", tag = "tenancy", params(("id" = i64, Path)),
    request_body = UpdateInstitutionRequest,
    responses((status = 200, body = dto::Institution), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody), (status = 409, body = dto::ErrorBody)))]
async fn update_institution(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<UpdateInstitutionRequest>,
) -> Result<Json<Value>, ApiError> {
    let institution = state
        .catalog
        .list_institutions()
        .await?
        .into_iter()
        .find(|i| i.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("institution {id}")))?;
    caller
        .require_found(
            &state,
            TargetScope::Institution {
                institution_id: institution.id,
                alliance_id: institution.alliance_id,
            },
            || format!("institution {id}"),
        )
        .await?;
    let r = async {
        if let Some(seconds) = req.stable_after_s {
            state.catalog.set_stable_after(id, seconds).await?;
        }
        state
            .catalog
            .update_institution(
                id,
                &InstitutionUpdate {
                    name: req.name.clone(),
                    population: req.population,
                    parent: req.parent.clone(),
                },
            )
            .await
    }
    .await;
    let r = caller
        .audited(
            &state,
            "institution.update",
            Some(("institution", &institution.name)),
            r,
        )
        .await;
    Ok(Json(as_value(dto::Institution::from(r?))?))
}

/// The institution named `name` as a policy target; 404 when unknown.
async fn institution_target(state: &AppState, name: &str) -> Result<(i64, TargetScope), ApiError> {
    let i = state
        .catalog
        .find_institution(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("institution {name:?}")))?;
    Ok((
        i.id,
        TargetScope::Institution {
            institution_id: i.id,
            alliance_id: i.alliance_id,
        },
    ))
}

/// Ids of institutions the caller's alliance-wide listing may show (`None`: all).
async fn alliance_institutions(
    _state: &AppState,
    caller: &Caller,
) -> Result<Option<HashSet<i64>>, ApiError> {
    if caller.is_superadmin() {
        return Ok(None);
    }
    // resolved with the caller's token (the identity cache is cleared after every write)
    Ok(Some(caller.alliance_institutions.iter().copied().collect()))
}

fn alliance_scope(caller: &Caller) -> TargetScope {
    TargetScope::Alliance {
        alliance_id: caller.principal.alliance_id,
    }
}

/// AE titles within the caller's reach: clinic users see their institution's and those of
/// the institutions it heads; group admins the alliance's.
#[utoipa::path(get, path = "/api/v1/ae-titles", tag = "tenancy", responses((status = 200, body = dto::AeTitleList), (status = 403, body = dto::ErrorBody)))]
async fn list_ae_titles(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    // clinics: their own and the institutions they head; group admins: the alliance
    let scope = caller.require_list(&state).await?.institution_ids;
    let list: Vec<_> = state
        .catalog
        .list_ae_titles()
        .await?
        .into_iter()
        .filter(|a| scope.as_ref().is_none_or(|s| s.contains(&a.institution_id)))
        .collect();
    Ok(Json(as_value(dto::AeTitleList {
        ae_titles: dto::rows(list),
    })?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewAeTitleRequest {
    pub institution: String,
    pub ae_title: String,
    #[serde(default)]
    pub host: Option<String>,
    /// The priority this sender's studies start with on the worklist (`stat`, `urgent`,
    /// `routine`; raises, never lowers, the routing rule's).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub priority: Option<dxhub_core::worklist::Priority>,
}

/// Register a calling AE title for an institution.
#[utoipa::path(post, path = "/api/v1/ae-titles", tag = "tenancy", request_body = NewAeTitleRequest,
    responses((status = 201, body = dto::AeTitle), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody), (status = 409, body = dto::ErrorBody)))]
async fn add_ae_title(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewAeTitleRequest>,
) -> Result<Response, ApiError> {
    let (_, target) = institution_target(&state, &req.institution).await?;
    caller
        .require_found(&state, target, || {
            format!("institution {:?}", req.institution)
        })
        .await?;
    let r = async {
        let ae = state
            .catalog
            .add_ae_title(&req.institution, &req.ae_title, req.host.as_deref())
            .await?;
        if req.priority.is_some() {
            state.catalog.set_ae_priority(ae.id, req.priority).await?;
        }
        Ok::<_, dxhub_store::catalog::Error>(ae)
    }
    .await;
    let r = caller
        .audited(&state, "ae.add", Some(("ae_title", req.ae_title.trim())), r)
        .await;
    Ok(created(dto::AeTitle::from(r?)))
}

/// Remove a calling AE title.
#[utoipa::path(delete, path = "/api/v1/ae-titles/{id}", tag = "tenancy", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody)))]
async fn delete_ae_title(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let ae = state
        .catalog
        .get_ae_title(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("AE title {id}")))?;
    let (_, target) = institution_target(&state, &ae.institution_name).await?;
    caller
        .require_found(&state, target, || format!("AE title {id}"))
        .await?;
    let r = state.catalog.delete_ae_title(id).await;
    let r = caller
        .audited(&state, "ae.delete", Some(("ae_title", &ae.ae_title)), r)
        .await;
    r?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- users

/// Users of the caller's alliance (never hashes or TOTP secrets).
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = dto::UserList), (status = 403, body = dto::ErrorBody)))]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require(&state, alliance_scope(&caller)).await?;
    let scope = alliance_institutions(&state, &caller).await?;
    let list: Vec<_> = state
        .catalog
        .list_users()
        .await?
        .into_iter()
        .filter(|u| scope.as_ref().is_none_or(|s| s.contains(&u.institution_id)))
        .collect();
    Ok(Json(as_value(dto::UserList {
        users: dto::rows(list),
    })?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUserRequest {
    pub institution: String,
    pub login: String,
    /// clinic_tech, clinic_doctor, reader, senior_reader, group_admin, auditor, superadmin
    #[schema(value_type = String)]
    pub role: Role,
    pub password: String,
}

/// Create a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUserRequest,
    responses((status = 201, body = dto::User), (status = 403, body = dto::ErrorBody), (status = 409, body = dto::ErrorBody), (status = 422, description = "weak-password", body = dto::ErrorBody)))]
async fn add_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewUserRequest>,
) -> Result<Response, ApiError> {
    let (_, target) = institution_target(&state, &req.institution).await?;
    caller
        .require_found(&state, target, || {
            format!("institution {:?}", req.institution)
        })
        .await?;
    if req.role == Role::Superadmin && !caller.is_superadmin() {
        return Err(ApiError::Forbidden(
            "only a superadmin creates superadmins".into(),
        ));
    }
    check_password(req.login.trim(), &req.password)
        .map_err(|e| ApiError::WeakPassword(e.to_string()))?;
    let password = req.password.clone();
    let phc = blocking(move || hash_password(&password))
        .await?
        .map_err(internal)?;
    let r = state
        .catalog
        .add_user(&NewUser {
            institution: req.institution.clone(),
            login: req.login.clone(),
            role: req.role,
            password_hash: phc,
        })
        .await;
    let r = caller
        .audited(&state, "user.add", Some(("user", req.login.trim())), r)
        .await;
    Ok(created(dto::User::from(r?)))
}

/// Disable a user; their sessions stop working.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody)))]
async fn disable_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let user = managed_user(&state, &caller, id).await?;
    if user.role == Role::Superadmin && !caller.is_superadmin() {
        return Err(ApiError::Forbidden(
            "only a superadmin disables superadmins".into(),
        ));
    }
    state.catalog.disable_user(id).await?;
    caller
        .audit(
            &state,
            "user.disable",
            Some(("user", &user.login)),
            "success",
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user `id` after the route's policy check on their institution (ManageUsers for
/// the user routes); 404 when unknown.
pub(crate) async fn managed_user(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<User, ApiError> {
    let user = state
        .catalog
        .get_user(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id}")))?;
    caller
        .require_found(
            state,
            TargetScope::Institution {
                institution_id: user.institution_id,
                alliance_id: user.alliance_id,
            },
            || format!("user {id}"),
        )
        .await?;
    Ok(user)
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetRoleRequest {
    /// clinic_tech, clinic_doctor, reader, senior_reader, group_admin, auditor, superadmin
    #[schema(value_type = String)]
    pub role: Role,
}

/// Change a user's role; their sessions are revoked.
#[utoipa::path(post, path = "/api/v1/users/{id}/role", tag = "users", params(("id" = i64, Path)),
    request_body = SetRoleRequest,
    responses((status = 200, body = dto::User), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody)))]
async fn set_user_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<SetRoleRequest>,
) -> Result<Json<Value>, ApiError> {
    let user = managed_user(&state, &caller, id).await?;
    if (req.role == Role::Superadmin || user.role == Role::Superadmin) && !caller.is_superadmin() {
        return Err(ApiError::Forbidden(
            "only a superadmin grants or changes the superadmin role".into(),
        ));
    }
    let r = state.catalog.set_user_role(id, req.role).await;
    let r = caller
        .audited(&state, "user.role", Some(("user", &user.login)), r)
        .await;
    Ok(Json(as_value(dto::User::from(r?))?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SetPasswordRequest {
    pub password: String,
}

/// Set a user's password: clears the lock-out and revokes their sessions.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", params(("id" = i64, Path)),
    request_body = SetPasswordRequest,
    responses((status = 204), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody), (status = 422, description = "weak-password", body = dto::ErrorBody)))]
async fn set_user_password(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<SetPasswordRequest>,
) -> Result<StatusCode, ApiError> {
    let user = managed_user(&state, &caller, id).await?;
    if user.role == Role::Superadmin && !caller.is_superadmin() {
        return Err(ApiError::Forbidden(
            "only a superadmin sets a superadmin's password".into(),
        ));
    }
    check_password(&user.login, &req.password)
        .map_err(|e| ApiError::WeakPassword(e.to_string()))?;
    let password = req.password.clone();
    let phc = blocking(move || hash_password(&password))
        .await?
        .map_err(internal)?;
    let r = state.catalog.set_user_password(id, &phc).await;
    let r = caller
        .audited(&state, "user.password", Some(("user", &user.login)), r)
        .await;
    r?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reset a user's TOTP (a lost or replaced phone): the enrolled secret is forgotten and
/// the user's sessions are revoked; at the next login the user enrols a new one.
#[utoipa::path(post, path = "/api/v1/users/{id}/totp/reset", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody)))]
async fn reset_user_totp(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let user = managed_user(&state, &caller, id).await?;
    if user.role == Role::Superadmin && !caller.is_superadmin() {
        return Err(ApiError::Forbidden(
            "only a superadmin resets a superadmin's TOTP".into(),
        ));
    }
    let r = state.catalog.reset_totp(id).await;
    let r = caller
        .audited(&state, "user.totp-reset", Some(("user", &user.login)), r)
        .await;
    r?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- devices

/// Devices within the caller's reach: clinic users see their institution's and those of
/// the institutions it heads; group admins the alliance's.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", responses((status = 200, body = dto::DeviceList), (status = 403, body = dto::ErrorBody)))]
async fn list_devices(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    // clinics: their own and the institutions they head; group admins: the alliance
    let scope = caller.require_list(&state).await?.institution_ids;
    let list: Vec<_> = state
        .catalog
        .list_devices()
        .await?
        .into_iter()
        .filter(|d| scope.as_ref().is_none_or(|s| s.contains(&d.institution_id)))
        .collect();
    Ok(Json(as_value(dto::DeviceList {
        devices: dto::rows(list),
    })?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewDeviceRequest {
    pub institution: String,
    pub serial: String,
    #[serde(default)]
    pub model: Option<String>,
    /// `ecg` (an acquiring ECG device, the default; counts for the coverage indicator) or
    /// `gateway` (a clinic gateway).
    #[serde(default)]
    pub kind: Option<String>,
}

/// Register a device; its upload token is shown once.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = NewDeviceRequest,
    responses((status = 201, body = dto::DeviceCreated), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody), (status = 409, body = dto::ErrorBody)))]
async fn add_device(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewDeviceRequest>,
) -> Result<Response, ApiError> {
    let (_, target) = institution_target(&state, &req.institution).await?;
    caller
        .require_found(&state, target, || {
            format!("institution {:?}", req.institution)
        })
        .await?;
    let token = new_device_token();
    let r = state
        .catalog
        .add_device(&NewDevice {
            kind: req.kind.clone(),
            institution: req.institution.clone(),
            serial: req.serial.clone(),
            model: req.model.clone(),
            token_hash: hash_token(&token),
        })
        .await;
    let r = caller
        .audited(&state, "device.add", Some(("device", req.serial.trim())), r)
        .await;
    Ok(created(as_value(dto::DeviceCreated::new(r?, token))?))
}

/// Revoke a device token.
#[utoipa::path(post, path = "/api/v1/devices/{id}/revoke", tag = "devices", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody)))]
async fn revoke_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let device = state
        .catalog
        .list_devices()
        .await?
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("device {id}")))?;
    caller
        .require_found(
            &state,
            TargetScope::Institution {
                institution_id: device.institution_id,
                alliance_id: device.alliance_id,
            },
            || format!("device {id}"),
        )
        .await?;
    state.catalog.revoke_device(id).await?;
    caller
        .audit(
            &state,
            "device.revoke",
            Some(("device", &device.serial)),
            "success",
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- studies

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StudyQuery {
    /// At most this many (default 100, max 1000).
    pub limit: Option<i64>,
    /// Keyset cursor: the `next_after_id` of the previous page.
    pub after_id: Option<i64>,
    /// `asc` (default: oldest first) or `desc` (most recently received first).
    pub order: Option<String>,
}

/// Studies within the caller's reach (audited: patient data), each with its place in the
/// reading workflow (`workflow.status`: received → queued → reading → reported).
#[utoipa::path(get, path = "/api/v1/studies", tag = "studies", params(StudyQuery),
    responses((status = 200, body = dto::StudyList), (status = 403, body = dto::ErrorBody)))]
async fn list_studies(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StudyQuery>,
) -> Result<Json<Value>, ApiError> {
    // May the caller read studies at all, and which?
    let action = caller.action().ok_or_else(|| internal("no action"))?;
    let Some(reach) = caller.list_reach(action) else {
        caller.audit(&state, "study-list", None, "denied").await?;
        return Err(ApiError::Forbidden(format!(
            "not permitted: {}",
            action.as_str()
        )));
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let newest_first = match q.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => {
            return Err(ApiError::BadRequest(format!(
                "order must be asc or desc, not {o:?}"
            )));
        }
    };
    let rows = state
        .catalog
        .list_studies(&StudyFilter {
            institution_ids: reach.institution_ids,
            routed_to: reach.routed_to,
            after_id: q.after_id,
            newest_first,
            limit: Some(limit),
        })
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut flows: std::collections::HashMap<i64, _> = state
        .catalog
        .study_workflows(&ids)
        .await?
        .into_iter()
        .map(|w| (w.study_id, w))
        .collect();
    caller.audit(&state, "study-list", None, "success").await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    let now = state.worklist.now();
    let studies = rows
        .into_iter()
        .map(|r| {
            let workflow = dto::StudyWorkflow::from_row(flows.remove(&r.id), now);
            dto::StudyListEntry {
                study: r.into(),
                workflow,
            }
        })
        .collect();
    Ok(Json(as_value(dto::StudyList {
        studies,
        next_after_id: next,
    })?))
}

/// One study (audited, allowed or not).
#[utoipa::path(get, path = "/api/v1/studies/{study_uid}", tag = "studies", params(("study_uid" = String, Path)),
    responses((status = 200, body = dto::StudyDetail), (status = 403, body = dto::ErrorBody), (status = 404, body = dto::ErrorBody)))]
async fn get_study(
    State(state): State<AppState>,
    caller: Caller,
    Path(study_uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let object = Some(("study", study_uid.as_str()));
    let Some(study) = state.catalog.get_study(&study_uid).await? else {
        caller
            .audit(&state, "study-read", object, "not-found")
            .await?;
        return Err(ApiError::NotFound(format!("study {study_uid}")));
    };
    let action = caller.action().ok_or_else(|| internal("no action"))?;
    let target =
        crate::dicomweb::study_target(&state, &caller, action, &study_uid, study.institution_id)
            .await?;
    if !dxhub_core::policy::authorize(&caller.principal, action, target).is_allowed() {
        caller.audit(&state, "study-read", object, "denied").await?;
        // who may not read it is not told that it exists
        return Err(if caller.sees(target) {
            ApiError::Forbidden("out of scope".into())
        } else {
            ApiError::NotFound(format!("study {study_uid}"))
        });
    }
    caller
        .audit(&state, "study-read", object, "success")
        .await?;
    let series = state.catalog.list_series_of_study(&study_uid).await?;
    Ok(Json(as_value(dto::StudyDetail {
        study: study.into(),
        series: dto::rows(series),
    })?))
}

// ---------------------------------------------------------------- audit

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub object_id: Option<String>,
    pub before_id: Option<i64>,
    /// At most this many (default and max 1000).
    pub limit: Option<i64>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The audit log (alliance; superadmin: everything), newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "JSON, or text/csv with format=csv",
        content((dto::AuditList = "application/json"), (String = "text/csv"))), (status = 403, body = dto::ErrorBody)))]
async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let target = if caller.is_superadmin() {
        TargetScope::Hub
    } else {
        alliance_scope(&caller)
    };
    caller.require(&state, target).await?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("unknown format {other:?}"))),
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    // the auditor's alliance, filtered by the index (superadmin: everything)
    let scope = alliance_institutions(&state, &caller).await?;
    let out = state
        .catalog
        .list_audit(&AuditFilter {
            actor: q.actor.clone(),
            action: q.action.clone(),
            object_id: q.object_id.clone(),
            before_id: q.before_id,
            limit: Some(limit),
            institution_ids: scope.map(|s| s.into_iter().collect()),
            ..Default::default()
        })
        .await?;
    caller.audit(&state, "audit.list", None, "success").await?;
    if csv {
        let mut body = String::from(
            "id,at,actor_kind,actor,institution_id,action,object_kind,object_id,outcome,client,request_id,prev_hash,hash\n",
        );
        for e in &out {
            let cols = [
                e.id.to_string(),
                rfc3339(e.at),
                csv_field(&e.actor_kind),
                csv_field(&e.actor),
                e.institution_id.map(|i| i.to_string()).unwrap_or_default(),
                csv_field(&e.action),
                csv_field(e.object_kind.as_deref().unwrap_or("")),
                csv_field(e.object_id.as_deref().unwrap_or("")),
                csv_field(&e.outcome),
                csv_field(e.client.as_deref().unwrap_or("")),
                csv_field(e.request_id.as_deref().unwrap_or("")),
                e.prev_hash.clone(),
                e.hash.clone(),
            ];
            body.push_str(&cols.join(","));
            body.push('\n');
        }
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response());
    }
    let next = (out.len() as i64 == limit)
        .then(|| out.last().map(|e| e.id))
        .flatten();
    Ok(Json(as_value(dto::AuditList {
        entries: dto::rows(out),
        next_before_id: next,
    })?)
    .into_response())
}
