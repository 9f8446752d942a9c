//! The ECG centre's HTTP surface (issue #5):
//!
//! - `POST /api/v1/ecg`: one ECG (DICOM ECG waveform, SCP-ECG, HL7 aECG, the JSON or CSV form,
//!   detected by content), optionally gzip-encoded, with an optional `Idempotency-Key`;
//! - resumable uploads (tus 1.0.0 core + creation): `POST /api/v1/ecg/uploads`,
//!   `HEAD`/`PATCH`/`GET /api/v1/ecg/uploads/{id}`;
//! - `GET /api/v1/ecg/{id}` (the upload's response), `/original`, `/waveform`,
//!   `/render.svg`, `/render.png`;
//! - `GET /api/v1/stats/ecg-coverage`.
//!
//! An upload is answered 201 only after its original bytes and its DICOM instance are
//! durable and indexed and its analysis recorded; an identical re-send (same content, or
//! the same Idempotency-Key) is answered with the first response and stores nothing.

use std::io::Read as _;
use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dxhub_core::policy::{Action, TargetScope, authorize};
use dxhub_ecg::read::{Format, ReadError};
use dxhub_ecg::render::{Layout, RenderOptions};
use dxhub_ingest::{EcgOrigin, IngestContext, ProcessedEcg, Source};
use dxhub_store::{EcgRow, EcgUpload};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Caller, Identity};
use crate::dicomweb::require_read;
use crate::{ApiError, AppState};

/// Largest ECG after gzip decoding (a 24 h 3-lead Holter at 500 Hz as JSON is ~600 MB;
/// such recordings come as DICOM or SCP-ECG, far smaller).
pub const MAX_ECG_BYTES: u64 = 256 * 1024 * 1024;
/// Largest resumable upload.
pub const MAX_UPLOAD_BYTES: u64 = 256 * 1024 * 1024;
/// A resumable upload not completed within this time is deleted.
pub const UPLOAD_TTL_SECS: i64 = 24 * 3600;
const TUS_VERSION: &str = "1.0.0";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_ecg, list_ecgs))
        .routes(routes!(get_ecg))
        .routes(routes!(get_original))
        .routes(routes!(get_waveform))
        .routes(routes!(render_svg))
        .routes(routes!(render_png))
        .routes(routes!(create_upload))
        .routes(routes!(head_upload, patch_upload, get_upload))
        .routes(routes!(ecg_coverage))
}

fn coded(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Coded {
        status,
        code,
        message: message.into(),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

// ---------------------------------------------------------------- responses

/// The 201 body of an upload (and of `GET /api/v1/ecg/{id}`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EcgResponse {
    pub id: i64,
    pub study_instance_uid: String,
    pub sop_instance_uid: String,
    /// `dicom`, `scp-ecg`, `hl7-aecg` or `json`: the format detected from the content.
    pub format: String,
    /// Lead names in stored order (III, aVR, aVL, aVF derived when only 8 leads came).
    pub leads: Vec<String>,
    pub sample_rate_hz: f64,
    pub samples_per_lead: i64,
    pub acquired_at: Option<String>,
    /// True when the analysis raised a critical flag (危急值).
    pub critical: bool,
    /// Machine measurements, unconfirmed: signal quality, beats, HR, intervals, axes,
    /// rhythm flags, ST deviation per lead, critical flags.
    #[schema(value_type = Object)]
    pub analysis: Value,
}

fn response_of(row: &EcgRow) -> EcgResponse {
    EcgResponse {
        id: row.id,
        study_instance_uid: row.study_instance_uid.clone(),
        sop_instance_uid: row.sop_instance_uid.clone(),
        format: row.format.clone(),
        leads: serde_json::from_str(&row.leads).unwrap_or_default(),
        sample_rate_hz: row.sample_rate_hz,
        samples_per_lead: row.samples_per_lead,
        acquired_at: row.acquired_at.clone(),
        critical: row.critical != 0,
        analysis: serde_json::from_str(&row.analysis).unwrap_or(Value::Null),
    }
}

fn created(row: &EcgRow, replayed: bool) -> Response {
    let mut resp = (StatusCode::CREATED, Json(response_of(row))).into_response();
    resp.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/api/v1/ecg/{}", row.id))
            .unwrap_or(HeaderValue::from_static("/api/v1/ecg")),
    );
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp.extensions_mut().insert(crate::IdentitiesUnchanged);
    resp
}

// ---------------------------------------------------------------- upload

/// The institution a caller uploads for, once the policy allows it.
async fn upload_target(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let own = TargetScope::Institution {
        institution_id: caller.principal.institution_id,
        alliance_id: caller.principal.alliance_id,
    };
    if !authorize(&caller.principal, Action::UploadEcg, own).is_allowed() {
        caller.audit(state, "ecg-upload", None, "denied").await?;
        return Err(ApiError::Forbidden("not permitted: upload_ecg".into()));
    }
    Ok(())
}

fn device_id(caller: &Caller) -> Option<i64> {
    match &caller.identity {
        Identity::Device(d) => Some(d.id),
        Identity::User(_) => None,
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .map(|s| s.trim().trim_matches('"').to_owned())
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            coded(
                StatusCode::BAD_REQUEST,
                "bad-idempotency-key",
                "Idempotency-Key must be 1–255 visible ASCII characters",
            )
        })?;
    Ok(Some(key))
}

/// Is the body gzip-encoded: by `Content-Encoding`, or by its magic number (devices that
/// upload `.gz` files as they are)?
fn is_gzip(encoding: Option<&str>, body: &[u8]) -> Result<bool, ApiError> {
    match encoding.map(|e| e.trim().to_ascii_lowercase()) {
        None => Ok(body.starts_with(&[0x1f, 0x8b])),
        Some(e) if e == "identity" || e.is_empty() => Ok(false),
        Some(e) if e == "gzip" || e == "x-gzip" => Ok(true),
        Some(e) => Err(coded(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-content-encoding",
            format!("Content-Encoding {e:?} is not supported (gzip or identity)"),
        )),
    }
}

/// Decode gzip, refusing more than [`MAX_ECG_BYTES`] of output (no zip bombs). Blocking.
fn gunzip(body: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(body).take(MAX_ECG_BYTES + 1);
    dec.read_to_end(&mut out).map_err(|e| {
        coded(
            StatusCode::BAD_REQUEST,
            "bad-gzip",
            format!("the gzip body cannot be decoded: {e}"),
        )
    })?;
    if out.len() as u64 > MAX_ECG_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(out)
}

fn read_error(e: ReadError) -> ApiError {
    match e {
        ReadError::Unsupported(_) => coded(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-ecg-format",
            e.to_string(),
        ),
        ReadError::Malformed { .. } => coded(
            StatusCode::UNPROCESSABLE_ENTITY,
            "malformed-ecg",
            e.to_string(),
        ),
    }
}

/// A UID under 2.25 (PS3.5 B.2) from a name: the first 16 bytes of its sha256 as an
/// RFC 9562 version-8 UUID. The same ECG content in the same institution gets the same
/// UIDs, so even racing re-sends make one study.
pub(crate) fn uid_of(name: &str) -> String {
    let h = Sha256::digest(name.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!("2.25.{}", u128::from_be_bytes(b))
}

/// What reading an upload produced (off the runtime).
struct Prepared {
    format: Format,
    processed: Arc<ProcessedEcg>,
    /// The DICOM to ingest: the upload itself (format `dicom`) or the one made from it.
    dicom: Vec<u8>,
}

fn prepare(
    bytes: &[u8],
    institution_id: i64,
    sha: &str,
    institution_name: Option<String>,
) -> Result<Prepared, ApiError> {
    let (format, ecg) = dxhub_ecg::read::read(bytes).map_err(read_error)?;
    let processed = Arc::new(dxhub_ingest::ecg::process(ecg));
    let dicom = if format == Format::Dicom {
        if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
            bytes.to_vec()
        } else {
            // Part 10 without its preamble: give it one
            let mut v = vec![0u8; 128];
            v.extend_from_slice(bytes);
            v
        }
    } else {
        let seed = format!("{institution_id}/{sha}");
        let ids = dxhub_ecg::write::WriteIds {
            study_instance_uid: uid_of(&format!("study/{seed}")),
            series_instance_uid: uid_of(&format!("series/{seed}")),
            sop_instance_uid: uid_of(&format!("sop/{seed}")),
            series_number: 1,
            instance_number: 1,
            accession_number: None,
            institution_name,
            study_description: Some("ECG".into()),
            series_description: Some(format!("ECG ({})", format.as_str())),
        };
        dxhub_ecg::write::to_dicom(&processed.ecg, &ids).map_err(|e| {
            coded(
                StatusCode::UNPROCESSABLE_ENTITY,
                "malformed-ecg",
                format!("{format}: cannot be carried in a DICOM ECG waveform: {e}"),
            )
        })?
    };
    Ok(Prepared {
        format,
        processed,
        dicom,
    })
}

fn original_key(sha: &str) -> String {
    format!("ecg/originals/{}/{sha}", &sha[..2])
}

/// What [`accept`] did with an upload.
struct Accepted {
    row: EcgRow,
    /// Whether the ECG was already there (an identical or keyed re-send).
    replayed: bool,
    /// Whether the upload's audit entry was committed with the ECG (when it was stored).
    audited: bool,
}

/// Record the upload's outcome in the audit log unless [`accept`] committed it with the
/// ECG, then pass the outcome on as `(record, replayed)`.
async fn audit_upload(
    state: &AppState,
    caller: &Caller,
    r: Result<Accepted, ApiError>,
) -> Result<(EcgRow, bool), ApiError> {
    match r {
        Ok(a) if a.audited => Ok((a.row, a.replayed)),
        r => {
            let r = r.map(|a| (a.row, a.replayed));
            let object = r
                .as_ref()
                .ok()
                .map(|(row, _)| row.study_instance_uid.clone());
            caller
                .audited(
                    state,
                    "ecg-upload",
                    object.as_deref().map(|s| ("study", s)),
                    r,
                )
                .await
        }
    }
}

/// The lock of one institution's uploads of one content (by SHA-256), held until dropped.
async fn same_content_lock(institution_id: i64, sha: &str) -> tokio::sync::OwnedMutexGuard<()> {
    type Locks = std::collections::HashMap<(i64, String), std::sync::Weak<tokio::sync::Mutex<()>>>;
    static LOCKS: std::sync::LazyLock<std::sync::Mutex<Locks>> =
        std::sync::LazyLock::new(Default::default);
    let lock = {
        let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
        locks.retain(|_, w| w.strong_count() > 0);
        let key = (institution_id, sha.to_owned());
        match locks.get(&key).and_then(std::sync::Weak::upgrade) {
            Some(l) => l,
            None => {
                let l = std::sync::Arc::new(tokio::sync::Mutex::new(()));
                locks.insert(key, std::sync::Arc::downgrade(&l));
                l
            }
        }
    };
    lock.lock_owned().await
}

/// Store and index one complete upload (already gzip-decoded): the record, whether it
/// was already there, and whether its audit entry is written.
async fn accept(
    state: &AppState,
    caller: &Caller,
    bytes: Bytes,
    idem_key: Option<String>,
) -> Result<Accepted, ApiError> {
    let ingest = state
        .ingest
        .clone()
        .ok_or_else(|| ApiError::Unavailable("this server does not accept uploads".into()))?;
    let institution_id = caller.principal.institution_id;
    let _upload = crate::worklist::ecg_upload_started(state);
    let sha = hex::encode(Sha256::digest(&bytes));
    // one at a time per content in this process: a device's retry while its first request
    // is still being stored waits for it and is then answered as a replay (the DICOM made
    // from an ECG without an acquisition time carries the time it was made, so two
    // concurrent conversions would store two versions; across replicas the index makes
    // the later one a duplicate of the first, see `instance_with_steps`)
    let _same = same_content_lock(institution_id, &sha).await;

    if let Some(key) = &idem_key
        && let Some((bound_sha, row)) = state
            .catalog
            .find_ecg_by_idempotency_key(institution_id, key)
            .await?
    {
        if bound_sha != sha {
            return Err(coded(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "this Idempotency-Key was used for a different ECG",
            ));
        }
        return Ok(Accepted {
            row,
            replayed: true,
            audited: false,
        });
    }
    if let Some(row) = state
        .catalog
        .find_ecg_by_content(Some(institution_id), &sha)
        .await?
    {
        return Ok(Accepted {
            row,
            replayed: true,
            audited: false,
        });
    }

    let institution_name = match &caller.identity {
        Identity::Device(d) => Some(d.institution_name.clone()),
        Identity::User(_) => state
            .catalog
            .list_institutions()
            .await?
            .into_iter()
            .find(|i| i.id == institution_id)
            .map(|i| i.name),
    };
    let (b, s) = (bytes.clone(), sha.clone());
    // one hand-off to the blocking pool: read, analyse, write the DICOM, hash it, parse it
    // (in memory: the DICOM made here is not written to a spool file and read back)
    let (prepared, object, extracted) = tokio::task::spawn_blocking(move || {
        let mut prepared = prepare(&b, institution_id, &s, institution_name)?;
        let dicom = Bytes::from(std::mem::take(&mut prepared.dicom));
        let object = crate::dicomweb::stow::stage_part10(dicom).map_err(|e| match e {
            dxhub_ingest::IngestError::NotDicom(m) => coded(
                StatusCode::UNPROCESSABLE_ENTITY,
                "malformed-ecg",
                format!("dicom: {m}"),
            ),
            other => internal(other),
        })?;
        let extracted = dxhub_ingest::extract_bytes(&object.bytes);
        Ok::<_, ApiError>((prepared, object, extracted))
    })
    .await
    .map_err(internal)??;

    // the original first: once the instance is indexed, its ECG record points at it
    let original = if prepared.format == Format::Dicom {
        None
    } else {
        let key = original_key(&sha);
        state
            .blobs
            .put_bytes(&key, bytes.clone())
            .await
            .map_err(|e| ApiError::Unavailable(format!("object store: {e}")))?;
        Some(key)
    };
    let mut ctx = IngestContext::new(Source::EcgApi, Some(institution_id));
    ctx.writable_institutions = Some(vec![institution_id]);
    // the success entry is committed with the ECG when it is stored (one commit, not two)
    ctx.audit = extracted.as_ref().ok().map(|x| {
        caller.audit_entry(
            "ecg-upload",
            Some(("study", &x.study_instance_uid)),
            "success",
        )
    });
    ctx.ecg = Some(EcgOrigin {
        format: prepared.format.as_str().to_owned(),
        content_sha256: sha.clone(),
        original_key: original,
        original_size: bytes.len() as u64,
        device_id: device_id(caller),
        idempotency_key: idem_key,
        processed: prepared.processed,
    });
    let outcome = ingest
        .ingest_extracted(object, extracted, &ctx)
        .await
        .map_err(|e| {
            use dxhub_ingest::IngestError as E;
            match e {
                E::NotAuthorized(m) => ApiError::Forbidden(m),
                E::NotDicom(m) | E::CannotUnderstand(m) | E::DoesNotMatch(m) => coded(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "malformed-ecg",
                    format!("dicom: {m}"),
                ),
                E::SopClassNotSupported(m) => coded(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "malformed-ecg",
                    format!("dicom: SOP class {m} is not a storage SOP class"),
                ),
                other => ApiError::Unavailable(other.to_string()),
            }
        })?;
    let row = outcome
        .ecg
        .ok_or_else(|| internal("ingest recorded no ECG for an ECG upload"))?;
    let replayed =
        row.content_sha256 != sha || outcome.kind == dxhub_ingest::OutcomeKind::Duplicate;
    if !replayed {
        // an ECG is ready to read at once: routed off the response path, as soon as
        // uploads pause (the worklist sweep routes it too, should this fail)
        crate::worklist::route_ecg(state, row.study_instance_uid.clone());
    }
    Ok(Accepted {
        row,
        replayed,
        audited: outcome.audited,
    })
}

/// Upload one ECG.
///
/// The body is the ECG file itself — DICOM 12-lead/General/Ambulatory ECG waveform,
/// SCP-ECG, HL7 aECG XML, the JSON form (schema `JsonEcg`) or the same form as CSV
/// (`#field=value` header lines, a lead-name row, a row per sample) — recognised by its content,
/// never by a file name. `Content-Encoding: gzip` (or a gzip body) is decoded. With an
/// `Idempotency-Key`, or when the same content was already received, the first response
/// is returned (with `Idempotent-Replayed: true`) and nothing new is stored.
#[utoipa::path(post, path = "/api/v1/ecg", tag = "ecg",
    request_body(content = dxhub_ecg::json::JsonEcg, description = "The ECG: DICOM ECG, SCP-ECG, HL7 aECG XML, this JSON form, or the CSV form (#sample_rate_hz=…, #uv_per_lsb=… and the other fields as #path=value lines, then a row of lead names and a row of integers per sample)", content_type = "application/octet-stream"),
    params(("Idempotency-Key" = Option<String>, Header, description = "Re-sends with this key return the first response")),
    responses((status = 201, body = EcgResponse), (status = 400, body = crate::dto::ErrorBody),
        (status = 403, body = crate::dto::ErrorBody), (status = 413, body = crate::dto::ErrorBody),
        (status = 415, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn upload_ecg(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    upload_target(&state, &caller).await?;
    let key = idempotency_key(&headers)?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let bytes = if is_gzip(encoding, &body)? {
        Bytes::from(
            tokio::task::spawn_blocking(move || gunzip(&body))
                .await
                .map_err(internal)??,
        )
    } else {
        body
    };
    let r = accept(&state, &caller, bytes, key).await;
    let (row, replayed) = audit_upload(&state, &caller, r).await?;
    Ok(created(&row, replayed))
}

// ---------------------------------------------------------------- reads

/// The ECG record, once the caller may read its study (audited).
async fn readable(state: &AppState, caller: &Caller, id: i64) -> Result<EcgRow, ApiError> {
    let Some(row) = state.catalog.find_ecg(id).await? else {
        return Err(caller.unknown(state, format!("ECG {id}")).await);
    };
    require_read(
        state,
        caller,
        &row.study_instance_uid,
        row.institution_id,
        || format!("ECG {id}"),
    )
    .await?;
    Ok(row)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Study Instance UID (required).
    pub study: String,
}

/// The ECGs of a study (oldest first).
#[utoipa::path(get, path = "/api/v1/ecg", tag = "ecg", params(ListQuery),
    responses((status = 200, description = "{ecgs:[EcgResponse]}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn list_ecgs(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let rows = state.catalog.find_ecgs_by_study(&q.study).await?;
    let Some(first) = rows.first() else {
        return Err(ApiError::NotFound(format!("no ECG in study {}", q.study)));
    };
    require_read(
        &state,
        &caller,
        &first.study_instance_uid,
        first.institution_id,
        || format!("no ECG in study {}", q.study),
    )
    .await?;
    let ecgs: Vec<EcgResponse> = rows.iter().map(response_of).collect();
    Ok(Json(json!({ "ecgs": ecgs })))
}

/// An ECG: the upload's response body.
#[utoipa::path(get, path = "/api/v1/ecg/{id}", tag = "ecg", params(("id" = i64, Path)),
    responses((status = 200, body = EcgResponse), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn get_ecg(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<EcgResponse>, ApiError> {
    let row = readable(&state, &caller, id).await?;
    Ok(Json(response_of(&row)))
}

/// The original bytes as received (after gzip decoding).
#[utoipa::path(get, path = "/api/v1/ecg/{id}/original", tag = "ecg", params(("id" = i64, Path)),
    responses((status = 200, description = "The original file"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn get_original(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let row = readable(&state, &caller, id).await?;
    let (size, stream) = state
        .blobs
        .get_stream(&row.original_key)
        .await
        .map_err(|e| ApiError::Unavailable(format!("object store: {e}")))?;
    let media = match row.format.as_str() {
        "dicom" => Format::Dicom.media_type(),
        "hl7-aecg" => Format::Hl7Aecg.media_type(),
        "json" => Format::Json.media_type(),
        "csv" => Format::Csv.media_type(),
        _ => Format::ScpEcg.media_type(),
    };
    let ext = match row.format.as_str() {
        "dicom" => "dcm",
        "hl7-aecg" => "xml",
        "json" => "json",
        "csv" => "csv",
        _ => "scp",
    };
    let body = Body::from_stream(stream.map(|r| r.map_err(std::io::Error::other)));
    Ok((
        [
            (header::CONTENT_TYPE, media.to_owned()),
            (header::CONTENT_LENGTH, size.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"ecg-{}.{ext}\"", row.id),
            ),
        ],
        body,
    )
        .into_response())
}

/// The normalised waveform of the ECG's DICOM instance, limb leads derived. Blocking work
/// off the runtime.
pub(crate) async fn load_ecg(state: &AppState, row: &EcgRow) -> Result<dxhub_ecg::Ecg, ApiError> {
    let bytes = state
        .blobs
        .get_bytes(&row.instance_blob_key)
        .await
        .map_err(|e| ApiError::Unavailable(format!("object store: {e}")))?;
    tokio::task::spawn_blocking(move || {
        let mut ecg = dxhub_ecg::read_dicom(&bytes).map_err(internal)?;
        dxhub_ecg::derive_limb_leads(&mut ecg);
        Ok::<_, ApiError>(ecg)
    })
    .await
    .map_err(internal)?
}

/// Points per lead of the waveform's overview.
pub const OVERVIEW_POINTS: usize = 1000;

/// Min/max per bucket, so peaks survive decimation.
fn overview(samples: &[f32], buckets: usize) -> (Vec<f32>, Vec<f32>) {
    if samples.is_empty() || buckets == 0 {
        return (Vec::new(), Vec::new());
    }
    let n = buckets.min(samples.len());
    let mut min = Vec::with_capacity(n);
    let mut max = Vec::with_capacity(n);
    for b in 0..n {
        let lo = b * samples.len() / n;
        let hi = ((b + 1) * samples.len() / n).max(lo + 1);
        let chunk = &samples[lo..hi];
        min.push(chunk.iter().copied().fold(f32::INFINITY, f32::min));
        max.push(chunk.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    }
    (min, max)
}

fn round1(v: f32) -> f64 {
    (f64::from(v) * 10.0).round() / 10.0
}

/// The waveform for the viewer: every sample in µV (0.1 µV resolution), and an overview
/// of at most 1000 min/max pairs per lead.
#[utoipa::path(get, path = "/api/v1/ecg/{id}/waveform", tag = "ecg", params(("id" = i64, Path)),
    responses((status = 200, description = "{sample_rate_hz, samples_per_lead, leads:[{code, samples_uv}], overview:{points, duration_s, leads:[{code, min_uv, max_uv}]}}"), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn get_waveform(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let row = readable(&state, &caller, id).await?;
    let ecg = load_ecg(&state, &row).await?;
    let body = tokio::task::spawn_blocking(move || {
        let n = ecg.samples_per_lead();
        let leads: Vec<Value> = ecg
            .leads
            .iter()
            .map(|l| {
                let s: Vec<f64> = l.samples_uv.iter().map(|v| round1(*v)).collect();
                json!({"code": l.code.name(), "samples_uv": s})
            })
            .collect();
        let over: Vec<Value> = ecg
            .leads
            .iter()
            .map(|l| {
                let (min, max) = overview(&l.samples_uv, OVERVIEW_POINTS);
                let min: Vec<f64> = min.into_iter().map(round1).collect();
                let max: Vec<f64> = max.into_iter().map(round1).collect();
                json!({"code": l.code.name(), "min_uv": min, "max_uv": max})
            })
            .collect();
        let duration = if ecg.sample_rate_hz > 0.0 {
            n as f64 / ecg.sample_rate_hz
        } else {
            0.0
        };
        serde_json::to_vec(&json!({
            "id": row.id,
            "sample_rate_hz": ecg.sample_rate_hz,
            "samples_per_lead": n,
            "duration_s": duration,
            "leads": leads,
            "overview": {"points": n.min(OVERVIEW_POINTS), "duration_s": duration, "leads": over},
        }))
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RenderQuery {
    /// Paper speed, mm/s: 25 (default) or 50.
    pub speed: Option<f64>,
    /// Gain, mm/mV: 5, 10 (default) or 20.
    pub gain: Option<f64>,
    /// `3x4` (default: 3×4 plus a lead II rhythm strip) or `12x1`.
    pub layout: Option<String>,
    /// PNG only: pixels per mm (default 8, 2–20).
    pub scale: Option<f32>,
}

fn render_options(q: &RenderQuery) -> Result<RenderOptions, ApiError> {
    let layout = match q.layout.as_deref() {
        None | Some("3x4") => Layout::ThreeByFour,
        Some("12x1") => Layout::TwelveByOne,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "layout {other:?}: use 3x4 or 12x1"
            )));
        }
    };
    let opts = RenderOptions {
        speed_mm_s: q.speed.unwrap_or(25.0),
        gain_mm_per_mv: q.gain.unwrap_or(10.0),
        layout,
    };
    opts.validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(opts)
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |x| format!("{}", x.round() as i64))
}

/// The header printed above the trace: patient, time, measurements, critical flags.
pub(crate) fn header_lines(ecg: &dxhub_ecg::Ecg, row: &EcgRow) -> Vec<String> {
    let p = &ecg.patient;
    let a: Value = serde_json::from_str(&row.analysis).unwrap_or(Value::Null);
    let mut lines = vec![format!(
        "{}  {}  {}  ID {}    {}",
        p.name.as_deref().unwrap_or("—").replace('^', " "),
        p.sex.as_deref().unwrap_or(""),
        p.birth_date.as_deref().unwrap_or(""),
        p.id.as_deref().unwrap_or("—"),
        ecg.acquired_at.as_deref().unwrap_or(""),
    )];
    lines.push(format!(
        "HR {} /min   PR {} ms   QRS {} ms   QT/QTc {}/{} ms   P/QRS/T {}/{}/{}°",
        fmt_opt(num(&a, "heart_rate_bpm")),
        fmt_opt(num(&a, "pr_ms")),
        fmt_opt(num(&a, "qrs_ms")),
        fmt_opt(num(&a, "qt_ms")),
        fmt_opt(num(&a, "qtc_bazett_ms")),
        fmt_opt(num(&a, "p_axis_deg")),
        fmt_opt(num(&a, "qrs_axis_deg")),
        fmt_opt(num(&a, "t_axis_deg")),
    ));
    let flags: Vec<String> = a
        .get("critical")
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .filter_map(|f| {
                    f.get("message_zh")
                        .or(f.get("message"))
                        .and_then(Value::as_str)
                })
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut last = "机器测量，未经确认 (machine measurements, unconfirmed)".to_owned();
    if !flags.is_empty() {
        last.push_str("   危急值: ");
        last.push_str(&flags.join("；"));
    }
    lines.push(last);
    lines
}

async fn render(
    state: &AppState,
    caller: &Caller,
    id: i64,
    q: &RenderQuery,
    png: bool,
) -> Result<Response, ApiError> {
    let opts = render_options(q)?;
    let scale = q.scale.unwrap_or(8.0);
    if !(2.0..=20.0).contains(&scale) {
        return Err(ApiError::BadRequest("scale: 2–20 pixels per mm".into()));
    }
    let row = readable(state, caller, id).await?;
    let ecg = load_ecg(state, &row).await?;
    let out = tokio::task::spawn_blocking(move || {
        let header = header_lines(&ecg, &row);
        if png {
            dxhub_ecg::render::png(&ecg, &header, &opts, scale).map(|b| (b, "image/png"))
        } else {
            dxhub_ecg::render::svg(&ecg, &header, &opts).map(|s| (s.into_bytes(), "image/svg+xml"))
        }
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, out.1),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        out.0,
    )
        .into_response())
}

/// The ECG on standard paper (SVG in millimetres: 1 mV = gain mm).
#[utoipa::path(get, path = "/api/v1/ecg/{id}/render.svg", tag = "ecg", params(("id" = i64, Path), RenderQuery),
    responses((status = 200, content_type = "image/svg+xml", description = "SVG"), (status = 400, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn render_svg(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(q): Query<RenderQuery>,
) -> Result<Response, ApiError> {
    render(&state, &caller, id, &q, false).await
}

/// The ECG on standard paper as PNG.
#[utoipa::path(get, path = "/api/v1/ecg/{id}/render.png", tag = "ecg", params(("id" = i64, Path), RenderQuery),
    responses((status = 200, content_type = "image/png", description = "PNG"), (status = 400, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody)))]
async fn render_png(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(q): Query<RenderQuery>,
) -> Result<Response, ApiError> {
    render(&state, &caller, id, &q, true).await
}

// ---------------------------------------------------------------- resumable uploads

fn tus_headers(resp: &mut Response) {
    resp.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn require_tus(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        Some(other) => Err(coded(
            StatusCode::PRECONDITION_FAILED,
            "tus-version-unsupported",
            format!("Tus-Resumable {other:?} is not supported (1.0.0)"),
        )),
        None => Err(coded(
            StatusCode::PRECONDITION_FAILED,
            "tus-version-unsupported",
            "Tus-Resumable: 1.0.0 is required",
        )),
    }
}

fn header_i64(headers: &HeaderMap, name: &str) -> Result<Option<i64>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("{name} must be a non-negative integer"))
                })
        })
        .transpose()
}

/// Where resumable uploads keep their bytes: `uploads/` inside the spool directory. Not the
/// spool itself, whose files are removed at start-up and by `fsck --repair` (nothing in it
/// was acknowledged); an upload's bytes were (each PATCH's 204), and they outlive a
/// restart until the upload completes or expires.
fn uploads_dir(state: &AppState) -> Result<std::path::PathBuf, ApiError> {
    let ingest = state
        .ingest
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("this server does not accept uploads".into()))?;
    Ok(ingest.spool().dir().join("uploads"))
}

fn upload_path(state: &AppState, id: &str) -> Result<std::path::PathBuf, ApiError> {
    Ok(uploads_dir(state)?.join(id))
}

/// Create an upload's (empty) file durably: the file, its directory's entry, and the
/// directory's own entry in the spool the first time.
async fn create_upload_file(state: &AppState, id: &str) -> Result<(), ApiError> {
    let dir = uploads_dir(state)?;
    let path = dir.join(id);
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            if let Some(parent) = dir.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
        }
        std::fs::File::create(&path)?.sync_all()?;
        std::fs::File::open(&dir)?.sync_all()
    })
    .await
    .map_err(internal)?
    .map_err(|e| ApiError::Unavailable(format!("spool: {e}")))
}

/// One PATCH at a time per upload (in this process, which holds the upload's file): a
/// second one while the first still writes would truncate under it. Released on drop.
struct UploadBusy(String);

static UPLOADS_BUSY: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

impl UploadBusy {
    fn take(id: &str) -> Result<Self, ApiError> {
        let mut busy = UPLOADS_BUSY.lock().unwrap_or_else(|p| p.into_inner());
        if busy.insert(id.to_owned()) {
            Ok(UploadBusy(id.to_owned()))
        } else {
            // 423: tus clients retry it
            Err(coded(
                StatusCode::LOCKED,
                "upload-busy",
                "another PATCH of this upload is in progress",
            ))
        }
    }
}

impl Drop for UploadBusy {
    fn drop(&mut self) {
        UPLOADS_BUSY
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.0);
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The caller's own upload (other institutions' uploads do not exist for it).
async fn own_upload(state: &AppState, caller: &Caller, id: &str) -> Result<EcgUpload, ApiError> {
    upload_target(state, caller).await?;
    let u = state
        .catalog
        .find_ecg_upload(id)
        .await?
        .filter(|u| u.institution_id == caller.principal.institution_id)
        .ok_or_else(|| ApiError::NotFound(format!("upload {id}")))?;
    if u.expires_at < now_us() {
        return Err(coded(
            StatusCode::GONE,
            "upload-expired",
            format!("upload {id} expired"),
        ));
    }
    Ok(u)
}

/// Start a resumable upload (tus 1.0.0 creation): `Upload-Length` (bytes as sent, gzip
/// included), `Tus-Resumable: 1.0.0`; optional `Idempotency-Key`, and
/// `Upload-Metadata: content-encoding Z3ppcA==` (base64 of `gzip`) for a gzip file.
/// Answers 201 with `Location: /api/v1/ecg/uploads/{id}`.
#[utoipa::path(post, path = "/api/v1/ecg/uploads", tag = "ecg",
    params(("Upload-Length" = i64, Header), ("Tus-Resumable" = String, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, description = "Created; Location names the upload"), (status = 412, body = crate::dto::ErrorBody), (status = 413, body = crate::dto::ErrorBody)))]
async fn create_upload(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    upload_target(&state, &caller).await?;
    require_tus(&headers)?;
    let length = header_i64(&headers, "upload-length")?
        .ok_or_else(|| ApiError::BadRequest("Upload-Length is required".into()))?;
    if length as u64 > MAX_UPLOAD_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let idem = idempotency_key(&headers)?;
    let gzip = headers
        .get("upload-metadata")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| {
            m.split(',').any(|pair| {
                let mut it = pair.split_whitespace();
                it.next() == Some("content-encoding") && it.next() == Some("Z3ppcA==")
            })
        });
    let id = hex::encode(rand::random::<[u8; 16]>());
    create_upload_file(&state, &id).await?;
    let now = now_us();
    state
        .catalog
        .create_ecg_upload(&EcgUpload {
            id: id.clone(),
            institution_id: caller.principal.institution_id,
            device_id: device_id(&caller),
            upload_length: length,
            upload_offset: 0,
            idem_key: idem,
            content_encoding: gzip.then(|| "gzip".to_owned()),
            ecg_id: None,
            error: None,
            created_at: now,
            updated_at: now,
            expires_at: now + UPLOAD_TTL_SECS * 1_000_000,
        })
        .await?;
    let mut resp = StatusCode::CREATED.into_response();
    tus_headers(&mut resp);
    resp.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&format!("/api/v1/ecg/uploads/{id}")).map_err(internal)?,
    );
    Ok(resp)
}

/// The offset reached (tus): `Upload-Offset`, `Upload-Length`.
#[utoipa::path(head, path = "/api/v1/ecg/uploads/{upload_id}", tag = "ecg", params(("upload_id" = String, Path)),
    responses((status = 200, description = "Upload-Offset and Upload-Length headers"), (status = 404, body = crate::dto::ErrorBody), (status = 410, body = crate::dto::ErrorBody)))]
async fn head_upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> Result<Response, ApiError> {
    let u = own_upload(&state, &caller, &upload_id).await?;
    let mut resp = StatusCode::OK.into_response();
    tus_headers(&mut resp);
    let h = resp.headers_mut();
    h.insert("upload-offset", HeaderValue::from(u.upload_offset));
    h.insert("upload-length", HeaderValue::from(u.upload_length));
    Ok(resp)
}

/// Append bytes at `Upload-Offset` (tus, `Content-Type: application/offset+octet-stream`).
/// Bytes that arrive before a connection breaks are kept: `HEAD` then tells where to go on.
/// The PATCH that completes the upload processes the ECG and answers 204 with
/// `Location: /api/v1/ecg/{id}`; a broken ECG answers its 4xx here (and on `GET`).
#[utoipa::path(patch, path = "/api/v1/ecg/uploads/{upload_id}", tag = "ecg", params(("upload_id" = String, Path), ("Upload-Offset" = i64, Header)),
    responses((status = 204, description = "New Upload-Offset"), (status = 409, body = crate::dto::ErrorBody), (status = 404, body = crate::dto::ErrorBody), (status = 410, body = crate::dto::ErrorBody), (status = 415, body = crate::dto::ErrorBody), (status = 422, body = crate::dto::ErrorBody)))]
async fn patch_upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_tus(&headers)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.eq_ignore_ascii_case("application/offset+octet-stream") {
        return Err(ApiError::UnsupportedMediaType(
            "PATCH needs Content-Type: application/offset+octet-stream".into(),
        ));
    }
    let _busy = UploadBusy::take(&upload_id)?;
    let u = own_upload(&state, &caller, &upload_id).await?;
    let offset = header_i64(&headers, "upload-offset")?
        .ok_or_else(|| ApiError::BadRequest("Upload-Offset is required".into()))?;
    if offset != u.upload_offset {
        return Err(coded(
            StatusCode::CONFLICT,
            "upload-offset-mismatch",
            format!(
                "Upload-Offset {offset} but the upload is at {}",
                u.upload_offset
            ),
        ));
    }
    if u.ecg_id.is_some() || u.upload_offset == u.upload_length {
        return Err(coded(
            StatusCode::CONFLICT,
            "upload-complete",
            "the upload is complete",
        ));
    }
    let path = upload_path(&state, &upload_id)?;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .await
        .map_err(|e| ApiError::Unavailable(format!("spool: {e}")))?;
    // drop anything past the recorded offset (a write that was never acknowledged)
    file.set_len(offset as u64)
        .await
        .map_err(|e| ApiError::Unavailable(format!("spool: {e}")))?;
    file.seek(std::io::SeekFrom::Start(offset as u64))
        .await
        .map_err(|e| ApiError::Unavailable(format!("spool: {e}")))?;
    let mut pos = offset;
    let mut stream = body.into_data_stream();
    let mut broken = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                if pos + c.len() as i64 > u.upload_length {
                    broken = Some(coded(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "upload-too-long",
                        "more bytes than Upload-Length",
                    ));
                    break;
                }
                if let Err(e) = file.write_all(&c).await {
                    broken = Some(ApiError::Unavailable(format!("spool: {e}")));
                    break;
                }
                pos += c.len() as i64;
            }
            Err(_) => {
                // the connection broke: keep what arrived
                broken = Some(ApiError::BadRequest("the request body was cut off".into()));
                break;
            }
        }
    }
    file.flush()
        .await
        .map_err(|e| ApiError::Unavailable(format!("spool: {e}")))?;
    file.sync_data()
        .await
        .map_err(|e| ApiError::Unavailable(format!("spool: {e}")))?;
    file.set_len(pos as u64)
        .await
        .map_err(|e| ApiError::Unavailable(format!("spool: {e}")))?;
    drop(file);
    let complete = broken.is_none() && pos == u.upload_length;
    // The last bytes are recorded only with their outcome: should storing the ECG fail on
    // the server's side (or this request be dropped meanwhile), the offset stays where it
    // was, HEAD says so, and the client's retry of the last PATCH completes the upload.
    if !complete
        && !state
            .catalog
            .set_ecg_upload_offset(&upload_id, offset, pos)
            .await?
    {
        return Err(coded(
            StatusCode::CONFLICT,
            "upload-offset-mismatch",
            "a concurrent PATCH moved the offset",
        ));
    }
    if let Some(e) = broken {
        return Err(e);
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if complete {
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| ApiError::Unavailable(format!("spool: {e}")))?;
        let gzip =
            u.content_encoding.as_deref() == Some("gzip") || bytes.starts_with(&[0x1f, 0x8b]);
        let decoded = if gzip {
            tokio::task::spawn_blocking(move || gunzip(&bytes).map(Bytes::from))
                .await
                .map_err(internal)?
        } else {
            Ok(Bytes::from(bytes))
        };
        let r = match decoded {
            Ok(b) => accept(&state, &caller, b, u.idem_key.clone()).await,
            Err(e) => Err(e),
        };
        if r.is_ok() || r.as_ref().is_err_and(|e| e.status().is_client_error()) {
            state
                .catalog
                .set_ecg_upload_offset(&upload_id, offset, pos)
                .await?;
        }
        match &r {
            Ok(Accepted { row, .. }) => {
                state
                    .catalog
                    .finish_ecg_upload(&upload_id, Some(row.id), None)
                    .await?;
                let _ = tokio::fs::remove_file(&path).await;
                resp.headers_mut().insert(
                    header::LOCATION,
                    HeaderValue::from_str(&format!("/api/v1/ecg/{}", row.id)).map_err(internal)?,
                );
            }
            Err(e) if e.status().is_client_error() => {
                state
                    .catalog
                    .finish_ecg_upload(&upload_id, None, Some(&format!("{}: {e}", e.code())))
                    .await?;
                let _ = tokio::fs::remove_file(&path).await;
            }
            Err(_) => {} // a server-side failure: the offset is unchanged, the client retries
        }
        audit_upload(&state, &caller, r).await?;
    }
    tus_headers(&mut resp);
    resp.headers_mut()
        .insert("upload-offset", HeaderValue::from(pos));
    Ok(resp)
}

/// The state of an upload: offset, length, and once complete the ECG (the 201 body of
/// `POST /api/v1/ecg`) or the error that refused it.
#[utoipa::path(get, path = "/api/v1/ecg/uploads/{upload_id}", tag = "ecg", params(("upload_id" = String, Path)),
    responses((status = 200, description = "{id, upload_offset, upload_length, ecg, error}"), (status = 404, body = crate::dto::ErrorBody), (status = 410, body = crate::dto::ErrorBody)))]
async fn get_upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(upload_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let u = own_upload(&state, &caller, &upload_id).await?;
    let ecg = match u.ecg_id {
        Some(id) => state.catalog.find_ecg(id).await?.map(|r| response_of(&r)),
        None => None,
    };
    Ok(Json(json!({
        "id": u.id,
        "upload_offset": u.upload_offset,
        "upload_length": u.upload_length,
        "ecg": ecg,
        "error": u.error,
    })))
}

/// Remove expired uploads and their bytes (called periodically by the server).
pub async fn sweep_uploads(state: &AppState) -> Result<usize, ApiError> {
    let ids = state.catalog.delete_expired_ecg_uploads(now_us()).await?;
    for id in &ids {
        if let Ok(p) = upload_path(state, id) {
            let _ = tokio::fs::remove_file(p).await;
        }
    }
    Ok(ids.len())
}

// ---------------------------------------------------------------- coverage

/// Village ECG-device coverage (心电设备村级配备率) per alliance: village clinics with at
/// least one active ECG device (kind `ecg`, not revoked) over all village clinics; plus
/// township figures and ECGs received per institution (total and last 30 days).
#[utoipa::path(get, path = "/api/v1/stats/ecg-coverage", tag = "ecg",
    responses((status = 200, description = "{alliances:[{alliance_id, village_clinics, villages_with_device, coverage, townships, townships_with_device, institutions:[…]}]}"), (status = 403, body = crate::dto::ErrorBody)))]
async fn ecg_coverage(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let scope = if caller.is_superadmin() {
        None
    } else {
        caller
            .require(
                &state,
                TargetScope::Alliance {
                    alliance_id: caller.principal.alliance_id,
                },
            )
            .await?;
        Some(caller.principal.alliance_id)
    };
    let rows = state.catalog.ecg_coverage().await?;
    let mut alliances: Vec<Value> = Vec::new();
    let mut ids: Vec<i64> = rows.iter().map(|r| r.alliance_id).collect();
    ids.dedup();
    for a in ids.into_iter().filter(|a| scope.is_none_or(|s| s == *a)) {
        let of: Vec<_> = rows.iter().filter(|r| r.alliance_id == a).collect();
        let count = |level: &str, with: bool| {
            of.iter()
                .filter(|r| r.level == level && (!with || r.active_devices > 0))
                .count()
        };
        let (v, vw) = (count("village", false), count("village", true));
        let (t, tw) = (count("township", false), count("township", true));
        let ratio = |n: usize, d: usize| {
            if d == 0 {
                Value::Null
            } else {
                json!(n as f64 / d as f64)
            }
        };
        alliances.push(json!({
            "alliance_id": a,
            "village_clinics": v,
            "villages_with_device": vw,
            "coverage": ratio(vw, v),
            "townships": t,
            "townships_with_device": tw,
            "township_coverage": ratio(tw, t),
            "institutions": of,
        }));
    }
    Ok(Json(json!({ "alliances": alliances })))
}
