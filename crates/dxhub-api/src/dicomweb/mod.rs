//! DICOMweb under `/dicomweb` (PS3.18): QIDO-RS search ([`qido`]), WADO-RS retrieve,
//! metadata, frames, bulk data, rendered and thumbnail ([`wado`]) and STOW-RS store
//! ([`stow`]) — enough for OHIF to work against dxhub unchanged.
//!
//! Every route is authenticated by the same [`Caller`] extractor as `/api/v1` (session
//! bearer token or cookie; STOW also takes device/gateway tokens), has a rule in
//! [`crate::policy::DICOMWEB_ROUTES`], is scoped to the caller's reach and audited. Reads
//! of the same study by the same caller are audited once per
//! [`READ_AUDIT_WINDOW`] (a viewer fetches hundreds of frames per study); denials always.

pub mod multipart;
pub mod qido;
pub mod stow;
pub mod wado;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::routing::get;
use dxhub_core::policy::{Action, TargetScope, authorize};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::Caller;
use crate::{ApiError, AppState};

/// Repeated reads of one study by one caller within this window make one audit entry.
pub const READ_AUDIT_WINDOW: Duration = Duration::from_secs(300);

/// The DICOM JSON media type.
pub const DICOM_JSON: &str = "application/dicom+json";

/// Caches and bookkeeping of the DICOMweb handlers (shared by all requests).
pub struct DicomWebState {
    /// Series-level `/metadata` responses (derived data: rebuilt from the index when the
    /// series changes).
    pub metadata_cache: ByteCache<(String, i64, i64)>,
    /// Frame layouts of recently served instances, by blob key.
    pub frame_index_cache: Mutex<HashMap<String, Arc<dxhub_dicom::pixel::FrameIndex>>>,
    read_audit: Mutex<HashMap<(String, &'static str, String), Instant>>,
}

impl Default for DicomWebState {
    fn default() -> Self {
        Self {
            metadata_cache: ByteCache::new(256 * 1024 * 1024),
            frame_index_cache: Mutex::new(HashMap::new()),
            read_audit: Mutex::new(HashMap::new()),
        }
    }
}

impl DicomWebState {
    /// Whether a successful read should be written to the audit log now.
    pub(crate) fn should_audit(&self, actor: &str, action: &'static str, object: &str) -> bool {
        let now = Instant::now();
        let Ok(mut seen) = self.read_audit.lock() else {
            return true;
        };
        if seen.len() > 100_000 {
            seen.retain(|_, t| now.duration_since(*t) < READ_AUDIT_WINDOW);
        }
        let key = (actor.to_owned(), action, object.to_owned());
        match seen.get(&key) {
            Some(t) if now.duration_since(*t) < READ_AUDIT_WINDOW => false,
            _ => {
                seen.insert(key, now);
                true
            }
        }
    }
}

/// A size-bounded cache of byte bodies, evicting the oldest insertions first.
pub struct ByteCache<K> {
    budget: usize,
    inner: Mutex<(HashMap<K, bytes::Bytes>, VecDeque<K>, usize)>,
}

impl<K: std::hash::Hash + Eq + Clone> ByteCache<K> {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::new((HashMap::new(), VecDeque::new(), 0)),
        }
    }

    pub fn get(&self, key: &K) -> Option<bytes::Bytes> {
        self.inner.lock().ok()?.0.get(key).cloned()
    }

    pub fn put(&self, key: K, value: bytes::Bytes) {
        if value.len() > self.budget {
            return;
        }
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        let (map, order, used) = &mut *g;
        if let Some(old) = map.insert(key.clone(), value.clone()) {
            *used -= old.len();
        } else {
            order.push_back(key);
        }
        *used += value.len();
        while *used > self.budget {
            let Some(k) = order.pop_front() else { break };
            if let Some(v) = map.remove(&k) {
                *used -= v.len();
            }
        }
    }
}

/// The `/dicomweb` routes with their own layers: CORS for the configured origins, the
/// cross-origin isolation headers, and the STOW-RS body limit (the API's small limit and
/// request timeout do not apply: studies are large and clinic links slow).
pub fn router(state: &AppState) -> Router<AppState> {
    let s = &state.settings;
    let read = Router::new()
        .route("/dicomweb", get(qido::capabilities))
        .route("/dicomweb/studies", get(qido::search_studies).post(stow::store))
        .route("/dicomweb/series", get(qido::search_series))
        .route("/dicomweb/instances", get(qido::search_instances))
        .route(
            "/dicomweb/studies/{study}",
            get(wado::retrieve_study).post(stow::store_into_study),
        )
        .route("/dicomweb/studies/{study}/series", get(qido::search_study_series))
        .route(
            "/dicomweb/studies/{study}/instances",
            get(qido::search_study_instances),
        )
        .route("/dicomweb/studies/{study}/metadata", get(wado::study_metadata))
        .route("/dicomweb/studies/{study}/thumbnail", get(wado::study_thumbnail))
        .route("/dicomweb/studies/{study}/series/{series}", get(wado::retrieve_series))
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances",
            get(qido::search_series_instances),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/metadata",
            get(wado::series_metadata),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/thumbnail",
            get(wado::series_thumbnail),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}",
            get(wado::retrieve_instance),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata",
            get(wado::instance_metadata),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            get(wado::frames),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered",
            get(wado::frames_rendered),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/thumbnail",
            get(wado::frames_thumbnail),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/rendered",
            get(wado::instance_rendered),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/thumbnail",
            get(wado::instance_thumbnail),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/bulk/{path}",
            get(wado::bulk),
        );
    read.layer(axum::extract::DefaultBodyLimit::max(
        usize::try_from(s.stow_max_bytes).unwrap_or(usize::MAX),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static("cross-origin-embedder-policy"),
        HeaderValue::from_static("require-corp"),
    ))
    .layer(SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    ))
    .layer(cors(&s.cors_origins))
    .layer(json_compression())
}

/// gzip for DICOM JSON (QIDO results, metadata: 10 KB per CT instance) when the client
/// accepts it — clinic links are slow; pixel data and images are sent as they are.
fn json_compression()
-> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{Predicate, SizeAbove};
    let json = |_: axum::http::StatusCode,
                _: axum::http::Version,
                h: &HeaderMap,
                _: &axum::http::Extensions| {
        h.get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.starts_with("application/dicom+json") || ct.starts_with("application/json")
            })
    };
    tower_http::compression::CompressionLayer::new()
        .quality(tower_http::CompressionLevel::Fastest)
        .compress_when(SizeAbove::new(1024).and(json))
}

/// CORS for the configured origins (`*` allows any origin, without credentials).
fn cors(origins: &[String]) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::ACCEPT,
            header::CONTENT_TYPE,
            header::RANGE,
            HeaderName::from_static("x-csrf-token"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::WARNING,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(Duration::from_secs(600));
    if origins.iter().any(|o| o == "*") {
        return base.allow_origin(tower_http::cors::Any);
    }
    let list: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    base.allow_origin(AllowOrigin::list(list))
        .allow_credentials(true)
}

/// The absolute URL of the DICOMweb root as the client reached it (for RetrieveURL and
/// BulkDataURI): `http.public_url` when configured, else from `X-Forwarded-Proto`/`Host`.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = state.settings.public_url.as_deref() {
        return format!("{}/dicomweb", u.trim_end_matches('/'));
    }
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(if state.settings.secure_cookies {
            "https"
        } else {
            "http"
        });
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("{proto}://{host}/dicomweb")
}

/// The policy target of a study for `action` by `caller` (its institution's alliance, and
/// for readers whether it is routed to them).
pub async fn study_target(
    state: &AppState,
    caller: &Caller,
    action: Action,
    study_uid: &str,
    institution_id: Option<i64>,
) -> Result<TargetScope, ApiError> {
    let alliance_id = match institution_id {
        // the caller's own alliance is known without a query
        Some(id) if caller.alliance_institutions.contains(&id) => caller.principal.alliance_id,
        Some(id) => state
            .catalog
            .list_institutions()
            .await?
            .into_iter()
            .find(|i| i.id == id)
            .map_or(-1, |i| i.alliance_id),
        None => -1,
    };
    caller
        .study_scope(state, action, study_uid, institution_id, alliance_id)
        .await
}

/// May the caller read this study? Denials are audited; successes once per window.
pub async fn require_read(
    state: &AppState,
    caller: &Caller,
    study_uid: &str,
    institution_id: Option<i64>,
    not_found: impl FnOnce() -> String,
) -> Result<(), ApiError> {
    let target = study_target(state, caller, Action::ReadStudy, study_uid, institution_id).await?;
    let action = caller.rule.patient_data.unwrap_or("study-read");
    if !authorize(&caller.principal, Action::ReadStudy, target).is_allowed() {
        caller
            .audit(state, action, Some(("study", study_uid)), "denied")
            .await?;
        // who may not read a study is not told that it exists: the route's 404
        return Err(if caller.sees(target) {
            ApiError::Forbidden("out of scope".into())
        } else {
            ApiError::NotFound(not_found())
        });
    }
    audit_read(state, caller, action, Some(study_uid)).await
}

/// Record a successful read (coalesced per caller, action and study).
pub async fn audit_read(
    state: &AppState,
    caller: &Caller,
    action: &'static str,
    study_uid: Option<&str>,
) -> Result<(), ApiError> {
    let (_, actor) = caller.actor();
    let object = study_uid.unwrap_or("");
    if study_uid.is_some() && !state.dicomweb.should_audit(&actor, action, object) {
        return Ok(());
    }
    caller
        .audit(state, action, study_uid.map(|s| ("study", s)), "success")
        .await
}

/// 404 for a study/series/instance that does not exist (audited like a read).
pub async fn not_found(
    state: &AppState,
    caller: &Caller,
    study_uid: &str,
    what: String,
) -> ApiError {
    let action = caller.rule.patient_data.unwrap_or("study-read");
    if let Err(e) = caller
        .audit(state, action, Some(("study", study_uid)), "not-found")
        .await
    {
        return e;
    }
    ApiError::NotFound(what)
}
