//! The HTTP surface of dxhub (axum). For now: `/healthz`, `/readyz` and `/metrics`
//! (Prometheus); DICOMweb and `/api/v1` build on the same state and error type.
//!
//! Depends on store/ingest; must not depend on the DIMSE crate or the binary.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod error;

use axum::extract::{MatchedPath, State};
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use dxhub_store::{Blobs, Catalog};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub catalog: Arc<dyn Catalog>,
    pub blobs: Blobs,
    pub registry: Arc<Registry>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map(|m| m.as_str().to_owned())
                    .unwrap_or_else(|| "unmatched".to_owned());
                tracing::info_span!("http", method = %req.method(), route = %route)
            }),
        )
        .with_state(state)
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

async fn metrics(State(state): State<AppState>) -> Response {
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
