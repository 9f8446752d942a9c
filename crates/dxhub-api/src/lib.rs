//! The HTTP surface of dxhub (axum): `/healthz`, `/readyz`, `/metrics` (Prometheus) and
//! the `/api/v1` JSON API of issue #3 (authentication, tenancy, users, devices, studies,
//! audit; contract in `API.md`), its OpenAPI document generated from the handlers, the
//! route-policy registry ([`policy`]) and the authentication extractor ([`auth`]).
//!
//! Depends on core/store/ingest; must not depend on the DIMSE crate or the binary.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod dicomweb;
pub mod dto;
pub mod ecg;
pub mod error;
pub mod outbound;
pub mod policy;
mod report_pdf;
pub mod reports;
pub mod stats;
pub mod v1;
mod verify_public;
pub mod worklist;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, State};
use axum::http::{HeaderMap, HeaderName, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dxhub_core::roles::Role;
use dxhub_store::{Blobs, Catalog};
use prometheus_client::registry::Registry;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;
pub use policy::{RoutePolicy, RouteRule, dicomweb_route_rules, route_rules};

/// HTTP settings the API needs (from the binary's `http` configuration).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Absolute session lifetime.
    pub session_ttl: Duration,
    /// Sessions end when unused this long.
    pub session_idle: Duration,
    /// Bearer token that may read `/metrics` (besides admin sessions).
    pub metrics_token: Option<String>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Mark cookies `Secure` (served over HTTPS).
    pub secure_cookies: bool,
    /// Origins allowed to call `/dicomweb` from a browser (CORS); `*` for any.
    pub cors_origins: Vec<String>,
    /// Largest STOW-RS request.
    pub stow_max_bytes: u64,
    /// The URL clients reach the hub at (RetrieveURL, BulkDataURI); default: from the
    /// request's Host.
    pub public_url: Option<String>,
    /// The web app's build output (`viewer/dist`), served at `/`; `None`: not served.
    pub viewer_dir: Option<std::path::PathBuf>,
    /// Reports: signing keys' KEKs, critical-value limit, push-back, PDF.
    pub reports: reports::ReportSettings,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(43_200),
            session_idle: Duration::from_secs(1_800),
            metrics_token: None,
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(60),
            secure_cookies: false,
            cors_origins: Vec::new(),
            stow_max_bytes: 4 * 1024 * 1024 * 1024,
            public_url: None,
            viewer_dir: None,
            reports: reports::ReportSettings::default(),
        }
    }
}

/// Logins per client address per minute.
pub const LOGIN_RATE_PER_MINUTE: u32 = 10;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub blobs: Blobs,
    pub registry: Arc<Registry>,
    pub settings: Arc<ApiSettings>,
    pub login_limiter: Arc<auth::LoginLimiter>,
    /// The public verification page's limit per client address
    /// (`reports.verify_per_minute`).
    pub verify_limiter: Arc<auth::LoginLimiter>,
    /// The ingest pipeline (STOW-RS); `None` where the router only reads.
    pub ingest: Option<Arc<dxhub_ingest::Ingest>>,
    pub dicomweb: Arc<dicomweb::DicomWebState>,
    pub touches: Arc<auth::Touches>,
    pub identities: Arc<auth::IdentityCache>,
    pub worklist: Arc<worklist::WorklistState>,
}

impl AppState {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        blobs: Blobs,
        registry: Arc<Registry>,
        settings: ApiSettings,
    ) -> Self {
        Self {
            catalog,
            blobs,
            registry,
            login_limiter: Arc::new(auth::LoginLimiter::new(
                LOGIN_RATE_PER_MINUTE,
                Duration::from_secs(60),
            )),
            verify_limiter: Arc::new(auth::LoginLimiter::new(
                settings.reports.verify_per_minute.max(1),
                Duration::from_secs(60),
            )),
            settings: Arc::new(settings),
            ingest: None,
            dicomweb: Arc::new(dicomweb::DicomWebState::default()),
            touches: Arc::new(auth::Touches::default()),
            identities: Arc::new(auth::IdentityCache::default()),
            worklist: Arc::new(worklist::WorklistState::default()),
        }
    }

    /// Use this clock and these worklist settings.
    pub fn with_worklist(mut self, worklist: worklist::WorklistState) -> Self {
        self.worklist = Arc::new(worklist);
        self
    }

    /// Accept STOW-RS through this ingest pipeline.
    pub fn with_ingest(mut self, ingest: Arc<dxhub_ingest::Ingest>) -> Self {
        self.ingest = Some(ingest);
        self
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(info(
    title = "dxhub API",
    version = "1",
    description = "See API.md (issue #3)."
))]
struct ApiDoc;

/// The OpenAPI document served at `GET /api/v1/openapi.json` (one operation per route in
/// [`policy::ROUTES`]).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3 document")))]
async fn get_openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(utoipa_axum::routes!(get_openapi))
        .merge(v1::routes())
        .merge(stats::routes())
        .merge(verify_public::routes())
}

/// The OpenAPI document of `/api/v1`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let (api, _) = api_router().split_for_parts();
    let settings = state.settings.clone();
    let dicomweb = dicomweb::router(&state);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .fallback_service(viewer_service(settings.viewer_dir.as_deref()))
        // extractors (JSON) buffer up to the same limit as the body-limit layer
        .layer(axum::extract::DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(settings.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        // DICOMweb has its own limits (large studies over slow links)
        .merge(dicomweb)
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(|m| m.as_str().to_owned())
                        .unwrap_or_else(|| "unmatched".to_owned());
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    tracing::info_span!("http", method = %req.method(), route = %route, request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(axum::middleware::map_response(error_shape))
                .layer(axum::middleware::from_fn(close_if_body_unread))
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    forget_identities_after_writes,
                )),
        )
        .with_state(state)
}

/// A response sent before its request's body was read to the end (a 423 to a tus PATCH,
/// a 413, a 401 to an upload) ends its HTTP/1.1 connection with `Connection: close`.
/// Hyper gives up such a connection after the response anyway, but without the header
/// the client has already pooled it, and its next request on it fails
/// (`IncompleteMessage`): a clinic's retrying uploader would see a spurious error.
async fn close_if_body_unread(
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    if req.version() > axum::http::Version::HTTP_11 {
        return next.run(req).await;
    }
    let read = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let req = req.map(|body| axum::body::Body::new(ReadToEnd::new(body, read.clone())));
    let mut resp = next.run(req).await;
    if !read.load(std::sync::atomic::Ordering::Acquire) {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// A request body that records when it has been read to its end.
struct ReadToEnd {
    inner: axum::body::Body,
    read: Arc<std::sync::atomic::AtomicBool>,
}

impl ReadToEnd {
    fn new(inner: axum::body::Body, read: Arc<std::sync::atomic::AtomicBool>) -> Self {
        use http_body::Body as _;
        if inner.is_end_stream() {
            read.store(true, std::sync::atomic::Ordering::Release);
        }
        Self { inner, read }
    }
}

impl http_body::Body for ReadToEnd {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, std::task::Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, std::sync::atomic::Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Marks a successful write that cannot change what a token resolves to (an ECG upload, a
/// STOW-RS store): the identity cache survives it. A device uploading all day keeps its
/// resolution for the cache's second instead of two index reads per upload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdentitiesUnchanged;

/// Any other write (logout, user disable, role change, device revocation, tenancy change …)
/// may change what a token resolves to: the identity cache is cleared once it is done.
async fn forget_identities_after_writes(
    State(state): State<AppState>,
    req: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    let write = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    let resp = next.run(req).await;
    if write && resp.extensions().get::<IdentitiesUnchanged>().is_none() {
        state.identities.clear();
    }
    resp
}

/// Responses of the body-limit and timeout layers get the API's error shape.
async fn error_shape<B>(resp: Response<B>) -> Response
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    match resp.status() {
        StatusCode::PAYLOAD_TOO_LARGE if !json => ApiError::PayloadTooLarge.into_response(),
        StatusCode::REQUEST_TIMEOUT if !json => ApiError::Timeout.into_response(),
        _ => resp.map(axum::body::Body::new),
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the index answers and the object store can be listed.
async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .catalog
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(format!("index: {e}")))?;
    state
        .blobs
        .head(".dxhub-readyz-probe")
        .await
        .map_err(|e| ApiError::Unavailable(format!("object store: {e}")))?;
    Ok(Json(serde_json::json!({ "status": "ready" })))
}

/// `/metrics` needs `Bearer <http.metrics_token>` or a session of a group_admin or
/// superadmin.
async fn authorize_metrics(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(expected) = state
        .settings
        .metrics_token
        .as_deref()
        .filter(|t| !t.is_empty())
        && let Some(sent) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
        && auth::constant_time_eq(sent.trim().as_bytes(), expected.as_bytes())
    {
        return Ok(());
    }
    match auth::resolve_identity(state, headers).await? {
        auth::Identity::Device(_) => Err(ApiError::DeviceTokenUploadOnly),
        auth::Identity::User(u) => {
            if auth::enrollment_pending(&u) {
                return Err(ApiError::TotpEnrollmentRequired);
            }
            if matches!(u.user.role, Role::GroupAdmin | Role::Superadmin) {
                Ok(())
            } else {
                Err(ApiError::Forbidden(
                    "metrics need a group_admin or superadmin".into(),
                ))
            }
        }
    }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(e) = authorize_metrics(&state, &headers).await {
        return e.into_response();
    }
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &state.registry) {
        return ApiError::Internal(e.to_string()).into_response();
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".into())
}

/// What answers paths no route claims: the web app's files (its `index.html` for the app's
/// own paths, so a reload of `/worklist` works), never for `/api/` or `/dicomweb/`, which
/// get the JSON 404.
fn viewer_service(dir: Option<&std::path::Path>) -> axum::routing::MethodRouter {
    use axum::extract::Request;
    use axum::response::IntoResponse;
    use tower::ServiceExt;
    let Some(dir) = dir.map(std::path::Path::to_path_buf) else {
        return get(not_found).fallback(not_found);
    };
    let files = tower_http::services::ServeDir::new(&dir)
        .append_index_html_on_directories(true)
        .fallback(tower_http::services::ServeFile::new(dir.join("index.html")));
    let serve = move |req: Request| {
        let files = files.clone();
        async move {
            let path = req.uri().path();
            if path.starts_with("/api/") || path.starts_with("/dicomweb/") {
                return not_found().await.into_response();
            }
            match files.oneshot(req).await {
                Ok(r) => r.into_response(),
                Err(e) => ApiError::Internal(format!("viewer: {e}")).into_response(),
            }
        }
    };
    get(serve.clone()).head(serve).fallback(not_found)
}

#[cfg(test)]
mod tests;
