//! WADO-RS (PS3.18 10.4): retrieve of studies, series and instances as
//! `multipart/related; type="application/dicom"` (original bytes with `transfer-syntax=*`,
//! Explicit VR Little Endian with decoded pixel data otherwise, 406 when that cannot be
//! produced), `/metadata` (DICOM JSON from the index, series responses cached), `/frames`
//! (original compressed frames with their transfer syntax, or decoded), bulk data with
//! HTTP Range, and `/rendered` / `/thumbnail` (JPEG or PNG).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use dxhub_dicom::pixel::{self, FrameIndex, PixelError};
use dxhub_dicom::render::{self, ImageFormat, RenderOptions};
use dxhub_store::{InstanceScope, WadoInstance};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;

use super::multipart::{self, MediaRange, parse_accept};
use super::{DICOM_JSON, base_url, not_found, require_read};
use crate::auth::Caller;
use crate::{ApiError, AppState};

pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// Transfer syntaxes whose pixel data dxhub decodes (dicom-pixeldata with its native
/// JPEG and RLE decoders, CharLS and OpenJPEG).
const DECODABLE: &[&str] = &[
    IMPLICIT_VR_LE,
    EXPLICIT_VR_LE,
    EXPLICIT_VR_BE,
    DEFLATED,
    "1.2.840.10008.1.2.5",     // RLE
    "1.2.840.10008.1.2.4.50",  // JPEG baseline
    "1.2.840.10008.1.2.4.51",  // JPEG extended
    "1.2.840.10008.1.2.4.57",  // JPEG lossless
    "1.2.840.10008.1.2.4.70",  // JPEG lossless SV1
    "1.2.840.10008.1.2.4.80",  // JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  // JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  // JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  // JPEG 2000
    "1.2.840.10008.1.2.4.201", // HTJ2K lossless (OpenJPEG ≥ 2.5)
    "1.2.840.10008.1.2.4.202", // HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203", // HTJ2K
];

/// What representation of the stored bytes a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    /// `transfer-syntax=*`: as stored.
    Original,
    /// Explicit VR Little Endian (decoded pixel data).
    ExplicitLe,
    /// This transfer syntax only (served when stored so, else 406).
    Exactly(String),
}

fn want_of(ts: Option<&str>) -> Want {
    match ts {
        Some("*") => Want::Original,
        None => Want::ExplicitLe,
        Some(t) if t == EXPLICIT_VR_LE => Want::ExplicitLe,
        Some(t) => Want::Exactly(t.to_owned()),
    }
}

/// The representations a request accepts for parts of `part_type` (`application/dicom` or
/// `application/octet-stream`), best first: each instance is then served in the first of
/// them it can be served in (PS3.18 8.7.3.5). 406 when the header admits none of them.
fn negotiate(headers: &HeaderMap, part_type: &str) -> Result<Vec<Want>, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let mut wants = Vec::new();
    for r in parse_accept(accept) {
        let want = if r.is_any() || r.essence == "multipart/*" {
            Want::Original
        } else if (r.essence == "multipart/related" && of_type(&r, part_type))
            || r.essence == part_type
        {
            want_of(r.param("transfer-syntax"))
        } else {
            continue;
        };
        if !wants.contains(&want) {
            wants.push(want);
        }
    }
    if wants.is_empty() {
        return Err(ApiError::NotAcceptable(format!(
            "acceptable: multipart/related; type=\"{part_type}\" (transfer-syntax=* or {EXPLICIT_VR_LE})"
        )));
    }
    Ok(wants)
}

/// Whether a `multipart/related` range's `type` is `part_type` (absent: any).
fn of_type(r: &MediaRange, part_type: &str) -> bool {
    r.param("type")
        .is_none_or(|t| t.eq_ignore_ascii_case(part_type))
}

/// The single-frame media type of a compressed transfer syntax (PS3.18 Table 8.7.3-2).
fn frame_media_type(ts: &str) -> Option<&'static str> {
    Some(match ts {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91" => "image/jp2",
        "1.2.840.10008.1.2.4.92" | "1.2.840.10008.1.2.4.93" => "image/jpx",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            "image/jphc"
        }
        _ => return None,
    })
}

/// How the frames of an instance stored in `ts` are served.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FramePlan {
    /// The stored frames (fragments, or native frames read by range); else decoded.
    original: bool,
    /// The parts' media type: `application/octet-stream` or a single-frame image type.
    media: &'static str,
}

/// The representations in the `Accept` header that frames stored in `ts` can be served
/// in, best first: `application/octet-stream` as stored or decoded, or the compressed
/// frames under their single-frame media type (`type="image/jls"` …). 406 when none.
fn negotiate_frames(headers: &HeaderMap, ts: &str) -> Result<Vec<FramePlan>, ApiError> {
    const OCTETS: &str = "application/octet-stream";
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let native_le = ts == EXPLICIT_VR_LE || ts == IMPLICIT_VR_LE;
    let media = frame_media_type(ts);
    let mut plans: Vec<FramePlan> = Vec::new();
    let mut add = |p: FramePlan| {
        if !plans.contains(&p) {
            plans.push(p);
        }
    };
    for r in parse_accept(accept) {
        let want = if r.is_any() || r.essence == "multipart/*" {
            Want::Original
        } else if (r.essence == "multipart/related" && of_type(&r, OCTETS)) || r.essence == OCTETS {
            want_of(r.param("transfer-syntax"))
        } else {
            // multipart/related; type="image/jls" [; transfer-syntax=…]: the stored
            // fragments when that is their media type
            let asked = if r.essence == "multipart/related" {
                r.param("type")
            } else {
                None
            };
            if let (Some(asked), Some(media)) = (asked, media)
                && asked.eq_ignore_ascii_case(media)
                && r.param("transfer-syntax").is_none_or(|t| t == ts)
            {
                add(FramePlan {
                    original: true,
                    media,
                });
            }
            continue;
        };
        let original = match &want {
            Want::Original => true,
            Want::ExplicitLe => native_le,
            Want::Exactly(t) => t == ts || (native_le && t == EXPLICIT_VR_LE),
        };
        if original || (want == Want::ExplicitLe && DECODABLE.contains(&ts)) {
            add(FramePlan {
                original,
                media: OCTETS,
            });
        }
    }
    if !plans.is_empty() {
        return Ok(plans);
    }
    let mut offer = format!(
        "frames are stored as {ts}; acceptable: multipart/related; type=\"{OCTETS}\" with transfer-syntax=*"
    );
    if DECODABLE.contains(&ts) {
        offer.push_str(&format!(" or {EXPLICIT_VR_LE}"));
    }
    if let Some(media) = media {
        offer.push_str(&format!(", or type=\"{media}\""));
    }
    Err(ApiError::NotAcceptable(offer))
}

/// The instances a request names (404 when none), after the read check.
async fn named(
    state: &AppState,
    caller: &Caller,
    scope: InstanceScope,
    with_metadata: bool,
) -> Result<Vec<WadoInstance>, ApiError> {
    let list = state.catalog.wado_instances(&scope, with_metadata).await?;
    let what = match (&scope.series_instance_uid, &scope.sop_instance_uid) {
        (_, Some(i)) => format!("instance {i}"),
        (Some(s), None) => format!("series {s}"),
        _ => format!("study {}", scope.study_instance_uid),
    };
    let Some(first) = list.first() else {
        return Err(not_found(state, caller, &scope.study_instance_uid, what).await);
    };
    require_read(
        state,
        caller,
        &scope.study_instance_uid,
        first.institution_id,
        || what,
    )
    .await?;
    Ok(list)
}

fn scope(study: String, series: Option<String>, instance: Option<String>) -> InstanceScope {
    InstanceScope {
        study_instance_uid: study,
        series_instance_uid: series,
        sop_instance_uid: instance,
    }
}

// ---------------------------------------------------------------- retrieve

pub async fn retrieve_study(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
) -> Result<Response, ApiError> {
    retrieve(state, caller, headers, scope(study, None, None)).await
}

pub async fn retrieve_series(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    retrieve(state, caller, headers, scope(study, Some(series), None)).await
}

pub async fn retrieve_instance(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    retrieve(
        state,
        caller,
        headers,
        scope(study, Some(series), Some(instance)),
    )
    .await
}

/// Whether an instance stored in `ts` can be served as `want`, and how.
fn plan(ts: &str, want: &Want) -> Option<bool /* transcode */> {
    match want {
        Want::Original => Some(false),
        Want::ExplicitLe if ts == EXPLICIT_VR_LE => Some(false),
        Want::ExplicitLe => DECODABLE.contains(&ts).then_some(true),
        Want::Exactly(t) => (t == ts).then_some(false),
    }
}

async fn retrieve(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    scope: InstanceScope,
) -> Result<Response, ApiError> {
    let wants = negotiate(&headers, "application/dicom")?;
    // the metadata tells which JPEG instances have more than 8 bits (not decodable here)
    let list = named(&state, &caller, scope, wants.contains(&Want::ExplicitLe)).await?;
    let mut plans = Vec::with_capacity(list.len());
    for inst in &list {
        let ts = inst.transfer_syntax_uid.as_str();
        let transcode = wants
            .iter()
            .find_map(|w| plan(ts, w).filter(|t| !t || decodable_depth(inst)))
            .ok_or_else(|| {
                ApiError::NotAcceptable(format!(
                    "instance {} is stored as {ts} and cannot be served as requested; ask for transfer-syntax=*",
                    inst.sop_instance_uid
                ))
            })?;
        // a lower-weight range that takes the stored bytes, if decoding fails
        let fallback = transcode && wants.iter().any(|w| plan(ts, w) == Some(false));
        plans.push((transcode, fallback));
    }
    // The status is sent before the body: transcode the first instance now, so that a
    // single-instance request that cannot be decoded still gets its 406.
    let mut first: Option<Vec<u8>> = None;
    if let Some((true, fallback)) = plans.first().copied() {
        match transcoded(&state.blobs, &list[0]).await {
            Ok(out) => first = Some(out),
            Err(PixelError::Unsupported(_)) if fallback => plans[0] = (false, false),
            Err(PixelError::Unsupported(e)) => {
                return Err(ApiError::NotAcceptable(format!(
                    "{e}; ask for transfer-syntax=*"
                )));
            }
            Err(other) => return Err(pixel_error(other)),
        }
    }
    let boundary = multipart::boundary();
    let ct = multipart::content_type("application/dicom", &boundary);
    let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let blobs = state.blobs.clone();
    tokio::spawn(async move {
        for (inst, (transcode, fallback)) in list.into_iter().zip(plans) {
            let sent = if let Some(bytes) = first.take() {
                send_bytes(bytes, &boundary, &mut tx).await
            } else if transcode {
                match transcoded(&blobs, &inst).await {
                    Ok(out) => send_bytes(out, &boundary, &mut tx).await,
                    Err(_) if fallback => send_original(&blobs, &inst, &boundary, &mut tx).await,
                    Err(e) => Err(e.to_string()),
                }
            } else {
                send_original(&blobs, &inst, &boundary, &mut tx).await
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "WADO-RS retrieve aborted");
                let _ = tx.send(Err(std::io::Error::other(e))).await;
                return;
            }
        }
        let _ = tx.send(Ok(multipart::close(&boundary))).await;
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, header_value(&ct)?)],
        Body::from_stream(rx),
    )
        .into_response())
}

type Tx = futures::channel::mpsc::Sender<Result<Bytes, std::io::Error>>;

async fn send_original(
    blobs: &dxhub_store::Blobs,
    inst: &WadoInstance,
    boundary: &str,
    tx: &mut Tx,
) -> Result<(), String> {
    let (size, mut stream) = blobs
        .get_stream(&inst.blob_key)
        .await
        .map_err(|e| e.to_string())?;
    let ct = format!(
        "application/dicom; transfer-syntax={}",
        inst.transfer_syntax_uid
    );
    let head = multipart::part_head(boundary, &ct, &[("Content-Length", size.to_string())]);
    tx.send(Ok(head)).await.map_err(|e| e.to_string())?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        tx.send(Ok(chunk)).await.map_err(|e| e.to_string())?;
    }
    tx.send(Ok(Bytes::from_static(multipart::PART_END)))
        .await
        .map_err(|e| e.to_string())
}

/// Whether the pixel data's bit depth is one the decoders handle: JPEG with 12-bit DCT
/// precision (Extended, 1.2.840.10008.1.2.4.51) is not (jpeg-decoder reads 8-bit only).
fn decodable_depth(inst: &WadoInstance) -> bool {
    if inst.transfer_syntax_uid != "1.2.840.10008.1.2.4.51" {
        return true;
    }
    let bits = inst
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|v| v["00280101"]["Value"][0].as_u64());
    bits.is_none_or(|b| b <= 8)
}

async fn transcoded(
    blobs: &dxhub_store::Blobs,
    inst: &WadoInstance,
) -> Result<Vec<u8>, PixelError> {
    let bytes = blobs
        .get_bytes(&inst.blob_key)
        .await
        .map_err(|e| PixelError::Invalid(format!("blob {}: {e}", inst.blob_key)))?;
    tokio::task::spawn_blocking(move || pixel::transcode_explicit_le(&bytes))
        .await
        .map_err(|e| PixelError::Invalid(e.to_string()))?
}

async fn send_bytes(out: Vec<u8>, boundary: &str, tx: &mut Tx) -> Result<(), String> {
    let ct = format!("application/dicom; transfer-syntax={EXPLICIT_VR_LE}");
    let head = multipart::part_head(boundary, &ct, &[("Content-Length", out.len().to_string())]);
    tx.send(Ok(head)).await.map_err(|e| e.to_string())?;
    tx.send(Ok(Bytes::from(out)))
        .await
        .map_err(|e| e.to_string())?;
    tx.send(Ok(Bytes::from_static(multipart::PART_END)))
        .await
        .map_err(|e| e.to_string())
}

fn header_value(s: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(s).map_err(|e| ApiError::Internal(e.to_string()))
}

// ---------------------------------------------------------------- metadata

pub async fn study_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
) -> Result<Response, ApiError> {
    metadata(state, caller, headers, scope(study, None, None)).await
}

pub async fn series_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    metadata(state, caller, headers, scope(study, Some(series), None)).await
}

pub async fn instance_metadata(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series, instance)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    metadata(
        state,
        caller,
        headers,
        scope(study, Some(series), Some(instance)),
    )
    .await
}

fn json_response(body: Bytes) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(DICOM_JSON))],
        body,
    )
        .into_response()
}

async fn metadata(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    scope: InstanceScope,
) -> Result<Response, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if !multipart::accepts_dicom_json(accept) {
        return Err(ApiError::NotAcceptable(
            "metadata is served as application/dicom+json".into(),
        ));
    }
    let base = base_url(&state, &headers);
    // a whole series: the cached response while the series is unchanged
    let cache_key =
        if let (Some(series_uid), None) = (&scope.series_instance_uid, &scope.sop_instance_uid) {
            match state.catalog.get_series(series_uid).await? {
                Some(se) if se.study_instance_uid == scope.study_instance_uid => {
                    let key = (
                        format!("{base}|{series_uid}"),
                        se.updated_at,
                        se.num_instances,
                    );
                    if let Some(hit) = state.dicomweb.metadata_cache.get(&key) {
                        let study = state.catalog.get_study(&scope.study_instance_uid).await?;
                        let institution = study.and_then(|s| s.institution_id);
                        require_read(
                            &state,
                            &caller,
                            &scope.study_instance_uid,
                            institution,
                            || format!("series {series_uid}"),
                        )
                        .await?;
                        return Ok(json_response(hit));
                    }
                    Some(key)
                }
                _ => None,
            }
        } else {
            None
        };
    let list = named(&state, &caller, scope, true).await?;
    let mut out = Vec::with_capacity(list.len() * 4096 + 2);
    out.push(b'[');
    for (n, inst) in list.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let json = match &inst.metadata {
            Some(j) => j.clone(),
            None => rebuild_metadata(&state, inst).await?,
        };
        let prefix = format!(
            "{base}/studies/{}/series/{}/instances/{}/bulk/",
            inst.study_instance_uid, inst.series_instance_uid, inst.sop_instance_uid
        );
        out.extend_from_slice(json.replace("dxhub-bulk:", &prefix).as_bytes());
    }
    out.push(b']');
    let body = Bytes::from(out);
    if let Some(key) = cache_key {
        state.dicomweb.metadata_cache.put(key, body.clone());
    }
    Ok(json_response(body))
}

/// Metadata of an instance indexed before the index kept it: derived from the stored
/// object and written back (derived data, rebuildable at any time).
async fn rebuild_metadata(state: &AppState, inst: &WadoInstance) -> Result<String, ApiError> {
    let bytes = state
        .blobs
        .get_bytes(&inst.blob_key)
        .await
        .map_err(|e| ApiError::Internal(format!("blob {}: {e}", inst.blob_key)))?;
    let json = tokio::task::spawn_blocking(move || {
        dxhub_dicom::json::file_to_json(&bytes, &dxhub_dicom::json::JsonOptions::default())
            .map(|m| serde_json::Value::Object(m).to_string())
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(format!("metadata of {}: {e}", inst.sop_instance_uid)))?;
    state.catalog.set_instance_metadata(inst.id, &json).await?;
    Ok(json)
}

// ---------------------------------------------------------------- frames

fn parse_frames(list: &str) -> Result<Vec<u32>, ApiError> {
    let frames: Result<Vec<u32>, _> = list.split(',').map(|f| f.trim().parse::<u32>()).collect();
    match frames {
        Ok(f) if !f.is_empty() && f.iter().all(|n| *n >= 1) => Ok(f),
        _ => Err(ApiError::BadRequest(format!(
            "frame list must be comma-separated numbers from 1: {list}"
        ))),
    }
}

async fn one_instance(
    state: &AppState,
    caller: &Caller,
    study: String,
    series: String,
    instance: String,
) -> Result<WadoInstance, ApiError> {
    let mut list = named(
        state,
        caller,
        scope(study, Some(series), Some(instance)),
        false,
    )
    .await?;
    list.pop()
        .ok_or_else(|| ApiError::Internal("named() returned no instance".into()))
}

fn pixel_error(e: PixelError) -> ApiError {
    match e {
        PixelError::NoPixelData => ApiError::NotFound("the instance has no pixel data".into()),
        PixelError::FrameOutOfRange(..) => ApiError::NotFound(e.to_string()),
        PixelError::Unsupported(_) => ApiError::NotAcceptable(e.to_string()),
        PixelError::Invalid(_) => ApiError::Conflict(e.to_string()),
    }
}

async fn frame_index(
    state: &AppState,
    inst: &WadoInstance,
    bytes: Option<&Bytes>,
) -> Result<Arc<FrameIndex>, ApiError> {
    if let Some(hit) = state
        .dicomweb
        .frame_index_cache
        .lock()
        .ok()
        .and_then(|c| c.get(&inst.blob_key).cloned())
    {
        return Ok(hit);
    }
    let bytes = match bytes {
        Some(b) => b.clone(),
        None => blob_bytes(state, inst).await?,
    };
    let index = tokio::task::spawn_blocking(move || pixel::frame_index(&bytes))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(pixel_error)?;
    let index = Arc::new(index);
    if let Ok(mut c) = state.dicomweb.frame_index_cache.lock() {
        if c.len() > 20_000 {
            c.clear();
        }
        c.insert(inst.blob_key.clone(), index.clone());
    }
    Ok(index)
}

async fn blob_bytes(state: &AppState, inst: &WadoInstance) -> Result<Bytes, ApiError> {
    state
        .blobs
        .get_bytes(&inst.blob_key)
        .await
        .map_err(|e| ApiError::Internal(format!("blob {}: {e}", inst.blob_key)))
}

/// The frame parts `(content type, bytes)` of `numbers` as `plan` says.
async fn frame_parts(
    state: &AppState,
    inst: &WadoInstance,
    numbers: &[u32],
    plan: &FramePlan,
) -> Result<Vec<(String, Bytes)>, ApiError> {
    let FramePlan { original, media } = *plan;
    let ts = inst.transfer_syntax_uid.as_str();
    let addressable = ts != EXPLICIT_VR_BE && ts != DEFLATED;
    let mut parts: Vec<(String, Bytes)> = Vec::with_capacity(numbers.len());
    if original && addressable {
        // as stored: fragments (or native frames) read by range, no decoding
        let index = frame_index(state, inst, None).await?;
        let label = if index.encapsulated {
            index.transfer_syntax_uid.clone()
        } else {
            EXPLICIT_VR_LE.to_owned()
        };
        for n in numbers {
            let ranges = index.frames.get(*n as usize - 1).ok_or_else(|| {
                pixel_error(PixelError::FrameOutOfRange(*n, index.frames.len() as u32))
            })?;
            let mut data =
                Vec::with_capacity(ranges.iter().map(|r| (r.end - r.start) as usize).sum());
            for r in ranges {
                let b = state
                    .blobs
                    .get_range(&inst.blob_key, r.clone())
                    .await
                    .map_err(|e| ApiError::Internal(format!("blob {}: {e}", inst.blob_key)))?;
                data.extend_from_slice(&b);
            }
            parts.push((
                format!("{media}; transfer-syntax={label}"),
                Bytes::from(data),
            ));
        }
        return Ok(parts);
    }
    let bytes = blob_bytes(state, inst).await?;
    let decode = !original;
    let numbers = numbers.to_vec();
    let decoded = tokio::task::spawn_blocking(move || {
        numbers
            .iter()
            .map(|n| {
                if decode {
                    pixel::decoded_frame(&bytes, *n).map(|b| (b, EXPLICIT_VR_LE.to_owned()))
                } else {
                    pixel::original_frame(&bytes, *n)
                }
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(pixel_error)?;
    for (data, label) in decoded {
        parts.push((
            format!("{media}; transfer-syntax={label}"),
            Bytes::from(data),
        ));
    }
    Ok(parts)
}

pub async fn frames(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series, instance, list)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let numbers = parse_frames(&list)?;
    let inst = one_instance(&state, &caller, study, series, instance).await?;
    let plans = negotiate_frames(&headers, &inst.transfer_syntax_uid)?;
    let mut plan = plans[0].clone();
    let parts = match frame_parts(&state, &inst, &numbers, &plan).await {
        // not decodable here (a codec dxhub lacks, or stored data its decoder refuses): a
        // lower-weight range that takes the stored frames gets them as they are
        Err(e @ ApiError::NotAcceptable(_)) | Err(e @ ApiError::Conflict(_))
            if matches!(e, ApiError::NotAcceptable(_)) || !plan.original =>
        {
            match plans.iter().skip(1).find(|p| p.original) {
                Some(p) => {
                    plan = p.clone();
                    frame_parts(&state, &inst, &numbers, &plan).await?
                }
                None => return Err(e),
            }
        }
        other => other?,
    };
    let media = plan.media;
    let boundary = multipart::boundary();
    let ct = multipart::content_type(media, &boundary);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, header_value(&ct)?)],
        multipart::body(&boundary, parts),
    )
        .into_response())
}

// ---------------------------------------------------------------- bulk data

pub async fn bulk(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series, instance, path)): Path<(String, String, String, String)>,
) -> Result<Response, ApiError> {
    let inst = one_instance(&state, &caller, study, series, instance).await?;
    let bytes = blob_bytes(&state, &inst).await?;
    let value = tokio::task::spawn_blocking(move || bulk_value(&bytes, &path))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let total = value.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(RangeAsk::Whole, |r| parse_range(r, total));
    if range == RangeAsk::Unsatisfiable {
        let mut r = ApiError::Coded {
            status: StatusCode::RANGE_NOT_SATISFIABLE,
            code: "range-not-satisfiable",
            message: format!("the Range is outside the {total} bytes of the value"),
        }
        .into_response();
        r.headers_mut().insert(
            header::CONTENT_RANGE,
            header_value(&format!("bytes */{total}"))?,
        );
        return Ok(r);
    }
    if let RangeAsk::Part(start, end) = range {
        let slice = value.slice(start as usize..=end as usize);
        return Ok((
            StatusCode::PARTIAL_CONTENT,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
                (
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes {start}-{end}/{total}"))?,
                ),
            ],
            slice,
        )
            .into_response());
    }
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let raw = parse_accept(accept)
        .first()
        .is_some_and(|r| r.essence == "application/octet-stream");
    if raw {
        return Ok((
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                ),
                (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
            ],
            value,
        )
            .into_response());
    }
    let boundary = multipart::boundary();
    let ct = multipart::content_type("application/octet-stream", &boundary);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, header_value(&ct)?),
            (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
        ],
        multipart::body(&boundary, vec![("application/octet-stream".into(), value)]),
    )
        .into_response())
}

/// What a `Range` header asks of a value of `total` bytes (RFC 9110 14.2).
#[derive(Debug, PartialEq, Eq)]
enum RangeAsk {
    /// Not a single byte range this server serves (other units, several ranges, bad
    /// syntax): ignored, the whole value is sent.
    Whole,
    /// Inclusive bounds within the value.
    Part(u64, u64),
    /// Outside the value: 416.
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` (one range) within `total` bytes.
fn parse_range(h: &str, total: u64) -> RangeAsk {
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeAsk::Whole;
    };
    let num = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            Some(0) => return RangeAsk::Unsatisfiable,
            Some(n) => (total.saturating_sub(n), total.saturating_sub(1)),
            None => return RangeAsk::Whole,
        },
        (a, "") => match num(a) {
            Some(a) => (a, total.saturating_sub(1)),
            None => return RangeAsk::Whole,
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => (a, b.min(total.saturating_sub(1))),
            _ => return RangeAsk::Whole,
        },
    };
    if total == 0 || start >= total {
        return RangeAsk::Unsatisfiable;
    }
    RangeAsk::Part(start, end)
}

/// The value bytes of the element at a bulk data path (`7FE00010`,
/// `00540016.0.00181074`): binary values as stored (little endian), encapsulated Pixel
/// Data as its fragments concatenated.
fn bulk_value(file: &[u8], path: &str) -> Result<Bytes, ApiError> {
    use dicom_core::value::Value as V;
    use dicom_object::OpenFileOptions;
    let obj = OpenFileOptions::new()
        .from_reader(file)
        .map_err(|e| ApiError::Conflict(format!("stored object unreadable: {e}")))?;
    let not_found = || ApiError::NotFound(format!("no bulk data at {path}"));
    let steps: Vec<&str> = path.split('.').collect();
    let tag_of = |s: &str| super::qido::parse_tag(s).ok_or_else(not_found);
    let mut current: &dicom_object::InMemDicomObject = &obj;
    let mut i = 0;
    loop {
        let tag = tag_of(steps[i])?;
        let elem = current.get(tag).ok_or_else(not_found)?;
        if i + 1 == steps.len() {
            return match elem.value() {
                V::Primitive(p) => Ok(Bytes::from(p.to_bytes().into_owned())),
                V::PixelSequence(seq) => Ok(Bytes::from(
                    seq.fragments()
                        .iter()
                        .flat_map(|f| f.iter().copied())
                        .collect::<Vec<u8>>(),
                )),
                V::Sequence(_) => Err(not_found()),
            };
        }
        let index: usize = steps
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(not_found)?;
        let items = elem.items().ok_or_else(not_found)?;
        current = items.get(index).ok_or_else(not_found)?;
        i += 2;
        if i >= steps.len() {
            return Err(not_found());
        }
    }
}

// ---------------------------------------------------------------- rendered, thumbnail

#[derive(Debug, Default, Deserialize)]
pub struct RenderQuery {
    /// `center,width[,function]`
    pub window: Option<String>,
    /// `width,height`
    pub viewport: Option<String>,
    pub quality: Option<u8>,
    /// Ignored (annotations are not burnt in).
    pub annotation: Option<String>,
    pub charset: Option<String>,
}

fn render_options(
    q: &RenderQuery,
    headers: &HeaderMap,
    frame: u32,
    thumbnail: bool,
) -> Result<RenderOptions, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let mut format = None;
    for r in parse_accept(accept) {
        format = match r.essence.as_str() {
            "image/jpeg" | "image/*" | "*/*" => Some(ImageFormat::Jpeg),
            "image/png" => Some(ImageFormat::Png),
            _ => continue,
        };
        break;
    }
    let format = format.ok_or_else(|| {
        ApiError::NotAcceptable("rendered images are image/jpeg or image/png".into())
    })?;
    let nums = |s: &str| -> Result<Vec<f64>, ApiError> {
        s.split(',')
            .take(2)
            .map(|v| {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| ApiError::BadRequest(format!("not a number: {v}")))
            })
            .collect()
    };
    let window = match &q.window {
        Some(w) => {
            let v = nums(w)?;
            if v.len() != 2 {
                return Err(ApiError::BadRequest(
                    "window=center,width[,function]".into(),
                ));
            }
            Some((v[0], v[1]))
        }
        None => None,
    };
    let viewport = match &q.viewport {
        Some(v) => {
            let v = nums(v)?;
            if v.len() != 2 || v.iter().any(|n| *n < 0.0 || *n > 8192.0) {
                return Err(ApiError::BadRequest("viewport=width,height".into()));
            }
            Some((v[0] as u32, v[1] as u32))
        }
        None if thumbnail => Some((128, 128)),
        None => None,
    };
    Ok(RenderOptions {
        frame,
        window,
        viewport,
        quality: q
            .quality
            .unwrap_or(if thumbnail { 75 } else { 90 })
            .clamp(1, 100),
        format,
    })
}

async fn render_instance(
    state: &AppState,
    inst: &WadoInstance,
    opts: RenderOptions,
) -> Result<Response, ApiError> {
    let bytes = blob_bytes(state, inst).await?;
    let media = opts.format.media_type();
    let image = tokio::task::spawn_blocking(move || render::render(&bytes, &opts))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(pixel_error)?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            ),
        ],
        image,
    )
        .into_response())
}

pub async fn instance_rendered(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series, instance)): Path<(String, String, String)>,
    Query(q): Query<RenderQuery>,
) -> Result<Response, ApiError> {
    let opts = render_options(&q, &headers, 1, false)?;
    let inst = one_instance(&state, &caller, study, series, instance).await?;
    render_instance(&state, &inst, opts).await
}

pub async fn instance_thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series, instance)): Path<(String, String, String)>,
    Query(q): Query<RenderQuery>,
) -> Result<Response, ApiError> {
    let opts = render_options(&q, &headers, 1, true)?;
    let inst = one_instance(&state, &caller, study, series, instance).await?;
    render_instance(&state, &inst, opts).await
}

pub async fn frames_rendered(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series, instance, list)): Path<(String, String, String, String)>,
    Query(q): Query<RenderQuery>,
) -> Result<Response, ApiError> {
    let frame = parse_frames(&list)?[0];
    let opts = render_options(&q, &headers, frame, false)?;
    let inst = one_instance(&state, &caller, study, series, instance).await?;
    render_instance(&state, &inst, opts).await
}

pub async fn frames_thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series, instance, list)): Path<(String, String, String, String)>,
    Query(q): Query<RenderQuery>,
) -> Result<Response, ApiError> {
    let frame = parse_frames(&list)?[0];
    let opts = render_options(&q, &headers, frame, true)?;
    let inst = one_instance(&state, &caller, study, series, instance).await?;
    render_instance(&state, &inst, opts).await
}

/// The thumbnail of a study or series: its middle image instance's first frame.
async fn representative_thumbnail(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    scope: InstanceScope,
    q: RenderQuery,
) -> Result<Response, ApiError> {
    let opts = render_options(&q, &headers, 1, true)?;
    let list = named(&state, &caller, scope, false).await?;
    let mid = list.len() / 2;
    // try the middle instance, then the others (the series may hold non-images)
    let order = std::iter::once(mid).chain((0..list.len()).filter(move |i| *i != mid));
    for i in order.take(8) {
        match render_instance(&state, &list[i], opts.clone()).await {
            Ok(r) => return Ok(r),
            Err(ApiError::NotFound(_)) | Err(ApiError::NotAcceptable(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::NotFound("no renderable image".into()))
}

pub async fn series_thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series)): Path<(String, String)>,
    Query(q): Query<RenderQuery>,
) -> Result<Response, ApiError> {
    representative_thumbnail(state, caller, headers, scope(study, Some(series), None), q).await
}

pub async fn study_thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
    Query(q): Query<RenderQuery>,
) -> Result<Response, ApiError> {
    representative_thumbnail(state, caller, headers, scope(study, None, None), q).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsk::*;
        assert_eq!(parse_range("bytes=0-9", 100), Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-500", 100), Part(0, 99));
        assert_eq!(parse_range("bytes=50-500", 100), Part(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Whole);
        assert_eq!(parse_range("bytes=9-1", 100), Whole);
        assert_eq!(parse_range("bytes=x-1", 100), Whole);
        assert_eq!(parse_range("items=0-1", 100), Whole);
    }

    fn accept(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn negotiation() {
        let dicom = "application/dicom";
        assert_eq!(
            negotiate(&HeaderMap::new(), dicom).ok(),
            Some(vec![Want::Original])
        );
        let h = accept("multipart/related; type=\"application/octet-stream\"; transfer-syntax=*");
        assert_eq!(
            negotiate(&h, "application/octet-stream").ok(),
            Some(vec![Want::Original])
        );
        assert!(negotiate(&h, dicom).is_err());
        let h = accept("multipart/related; type=\"application/dicom\"");
        assert_eq!(negotiate(&h, dicom).ok(), Some(vec![Want::ExplicitLe]));
        // every acceptable range, best first; q=0 is not acceptable
        let h = accept(
            "multipart/related; type=\"application/dicom\"; transfer-syntax=*;q=0.5, \
             multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50, \
             multipart/related; type=\"application/dicom\";q=0",
        );
        assert_eq!(
            negotiate(&h, dicom).ok(),
            Some(vec![
                Want::Exactly("1.2.840.10008.1.2.4.50".into()),
                Want::Original
            ])
        );
        assert!(
            negotiate(
                &accept("multipart/related; type=\"application/dicom\";q=0"),
                dicom
            )
            .is_err()
        );
        assert_eq!(
            plan("1.2.840.10008.1.2.4.80", &Want::ExplicitLe),
            Some(true)
        );
        assert_eq!(plan("1.2.840.10008.1.2.4.100", &Want::ExplicitLe), None);
        assert_eq!(plan(EXPLICIT_VR_LE, &Want::ExplicitLe), Some(false));
    }

    #[test]
    fn frame_negotiation() {
        let jls = "1.2.840.10008.1.2.4.80";
        let octets = |original| FramePlan {
            original,
            media: "application/octet-stream",
        };
        let image = |media| FramePlan {
            original: true,
            media,
        };
        let ask =
            |h: &'static str, ts: &str| negotiate_frames(&accept(h), ts).ok().map(|p| p[0].clone());
        assert_eq!(
            ask("multipart/related; type=\"image/jls\"", jls),
            Some(image("image/jls"))
        );
        assert_eq!(
            ask(
                "multipart/related; type=\"image/jls\"; transfer-syntax=1.2.840.10008.1.2.4.80",
                jls
            ),
            Some(image("image/jls"))
        );
        // near-lossless asked, lossless stored: the next range
        assert_eq!(
            ask(
                "multipart/related; type=\"image/jls\"; transfer-syntax=1.2.840.10008.1.2.4.81, \
                 multipart/related; type=\"application/octet-stream\"; transfer-syntax=1.2.840.10008.1.2.1;q=0.9",
                jls
            ),
            Some(octets(false))
        );
        assert_eq!(
            ask(
                "multipart/related; type=\"image/jp2\"",
                "1.2.840.10008.1.2.4.90"
            ),
            Some(image("image/jp2"))
        );
        assert_eq!(
            ask(
                "multipart/related; type=\"image/jpeg\"",
                "1.2.840.10008.1.2.4.70"
            ),
            Some(image("image/jpeg"))
        );
        assert_eq!(ask("multipart/related; type=\"image/jp2\"", jls), None);
        // a stored syntax asked exactly, else decoded at lower weight
        let h = "multipart/related; type=\"application/octet-stream\"; transfer-syntax=1.2.840.10008.1.2.4.90, \
                 multipart/related; type=\"application/octet-stream\";q=0.5";
        assert_eq!(ask(h, jls), Some(octets(false)));
        assert_eq!(ask(h, "1.2.840.10008.1.2.4.90"), Some(octets(true)));
        // native frames are Explicit VR Little Endian as stored
        assert_eq!(
            ask(
                "multipart/related; type=\"application/octet-stream\"",
                IMPLICIT_VR_LE
            ),
            Some(octets(true))
        );
        // not decodable, and as stored not accepted
        assert_eq!(
            ask(
                "multipart/related; type=\"application/octet-stream\"",
                "1.2.840.10008.1.2.4.100"
            ),
            None
        );
        assert_eq!(ask("*/*", jls), Some(octets(true)));
        // every servable range, best first (the stored frames follow a failed decode)
        let h = "multipart/related; type=\"application/octet-stream\", \
                 multipart/related; type=\"image/jls\";q=0.5, */*;q=0.1";
        assert_eq!(
            negotiate_frames(&accept(h), jls).ok(),
            Some(vec![octets(false), image("image/jls"), octets(true)])
        );
    }

    #[test]
    fn frame_lists() {
        assert_eq!(parse_frames("1,3, 5").ok(), Some(vec![1, 3, 5]));
        assert!(parse_frames("0").is_err());
        assert!(parse_frames("a").is_err());
        assert!(parse_frames("").is_err());
    }
}
