//! STOW-RS (PS3.18 10.5): `POST /dicomweb/studies[/{study}]` with
//! `multipart/related; type="application/dicom"`. Each part is streamed into a spool file
//! (memory stays flat however large the request) and goes through the same ingest as
//! C-STORE: stored, durable and indexed before it is listed as referenced. The response
//! is a DICOM JSON data set with ReferencedSOPSequence (with WarningReason B000 for a new
//! version of a known instance) and FailedSOPSequence (FailureReason: C000 not DICOM or
//! unparseable, A900 not of the target study / SOP class mismatch, 0122 not a storage SOP
//! class, A700 storage or index unavailable, 0124 the study belongs to an institution the
//! caller may not write to). HTTP 200 when all parts were stored, 202 when some failed or
//! carry warnings, 409 when none was stored.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dxhub_core::policy::{Action, authorize};
use dxhub_ingest::spool::SpoolWriter;
use dxhub_ingest::{Ingest, IngestContext, IngestError, OutcomeKind, Source};
use serde_json::{Map, Value, json};

use super::{DICOM_JSON, base_url};
use crate::auth::Caller;
use crate::{ApiError, AppState};

/// Largest `application/dicom+json` STOW-RS request (buffered: metadata and bulk data are
/// matched up before the data sets are written).
pub const JSON_STOW_MAX_BYTES: u64 = 512 * 1024 * 1024;
/// Largest Part 10 header (preamble + file meta group) accepted.
const MAX_HEADER: usize = 64 * 1024;

pub async fn store(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    stow(state, caller, headers, None, body).await
}

pub async fn store_into_study(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    stow(state, caller, headers, Some(study), body).await
}

/// What the parts of a STOW-RS request are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// Part 10 files.
    Dicom,
    /// A DICOM JSON array of data sets, then bulk data parts named by `Content-Location`.
    Json,
}

/// The boundary and root type of a `multipart/related` STOW-RS request.
fn related_boundary(headers: &HeaderMap) -> Result<(String, Root), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::UnsupportedMediaType("Content-Type is required".into()))?;
    // (a quoted parameter value, such as start-info, may hold a `;`)
    let mut parts = super::multipart::split_unquoted(ct, ';').into_iter();
    let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    if media != "multipart/related" {
        return Err(ApiError::UnsupportedMediaType(format!(
            "STOW-RS takes multipart/related; type=\"application/dicom\", not {media}"
        )));
    }
    let mut boundary = None;
    let mut root = Root::Dicom;
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "boundary" => boundary = Some(v.to_owned()),
            "type" if v.eq_ignore_ascii_case("application/dicom") => root = Root::Dicom,
            "type" if v.eq_ignore_ascii_case("application/dicom+json") => root = Root::Json,
            "type" => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "multipart/related of type {v} is not supported; send application/dicom \
                     or application/dicom+json parts"
                )));
            }
            _ => {}
        }
    }
    let boundary = boundary
        .ok_or_else(|| ApiError::BadRequest("multipart/related without a boundary".into()))?;
    Ok((boundary, root))
}

/// A part being written to the spool: the Part 10 header (preamble, `DICM`, file meta
/// group) is collected first so the spool knows where the data set starts.
struct PartSpool {
    writer: Option<SpoolWriter>,
    head: Vec<u8>,
    header_done: bool,
}

enum Pending {
    More,
    NotDicom(&'static str),
}

impl PartSpool {
    fn new(writer: SpoolWriter) -> Self {
        Self {
            writer: Some(writer),
            head: Vec::new(),
            header_done: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) -> Result<(), IngestError> {
        let w = self
            .writer
            .as_mut()
            .ok_or_else(|| IngestError::Io(std::io::Error::other("part already finished")))?;
        if self.header_done {
            return Ok(w.write_dataset(chunk)?);
        }
        self.head.extend_from_slice(chunk);
        match header_len(&self.head) {
            Ok(n) => {
                w.write_header(&self.head[..n])?;
                w.write_dataset(&self.head[n..])?;
                self.head = Vec::new();
                self.header_done = true;
                Ok(())
            }
            Err(Pending::More) if self.head.len() <= MAX_HEADER => Ok(()),
            Err(Pending::More) => Err(IngestError::NotDicom("file meta group too large".into())),
            Err(Pending::NotDicom(why)) => Err(IngestError::NotDicom(why.into())),
        }
    }

    fn finish(mut self) -> Result<dxhub_ingest::spool::SpoolFile, IngestError> {
        if !self.header_done {
            return Err(IngestError::NotDicom(
                "part ends before its file meta group".into(),
            ));
        }
        let w = self
            .writer
            .take()
            .ok_or_else(|| IngestError::Io(std::io::Error::other("part already finished")))?;
        Ok(w.finish()?)
    }
}

/// Stage a complete Part 10 byte string (with preamble) that is already in memory: its
/// header checked as a streamed part's is, its hashes computed, no spool file written.
/// CPU-bound: call it from `spawn_blocking`.
pub(crate) fn stage_part10(bytes: bytes::Bytes) -> Result<dxhub_ingest::MemoryObject, IngestError> {
    let n = match header_len(&bytes) {
        Ok(n) => n,
        Err(Pending::More) => {
            return Err(IngestError::NotDicom(
                "part ends before its file meta group".into(),
            ));
        }
        Err(Pending::NotDicom(why)) => return Err(IngestError::NotDicom(why.into())),
    };
    Ok(dxhub_ingest::MemoryObject::new(bytes, n as u64)?)
}

/// Where the data set of a Part 10 byte string starts, once enough of it is here: after
/// the 128-byte preamble, `DICM` and the (explicit VR little endian) group 0002 elements.
fn header_len(b: &[u8]) -> Result<usize, Pending> {
    if b.len() < 132 {
        return Err(Pending::More);
    }
    if &b[128..132] != b"DICM" {
        return Err(Pending::NotDicom(
            "no DICM prefix: not a DICOM Part 10 object",
        ));
    }
    let mut pos = 132;
    loop {
        if b.len() < pos + 8 {
            return Err(Pending::More);
        }
        let group = u16::from_le_bytes([b[pos], b[pos + 1]]);
        if group != 0x0002 {
            return if pos == 132 {
                Err(Pending::NotDicom("no file meta group"))
            } else {
                Ok(pos)
            };
        }
        let vr = &b[pos + 4..pos + 6];
        let long = matches!(
            vr,
            b"OB"
                | b"OW"
                | b"OF"
                | b"SQ"
                | b"UT"
                | b"UN"
                | b"UC"
                | b"UR"
                | b"OD"
                | b"OL"
                | b"OV"
                | b"SV"
                | b"UV"
        );
        if long {
            if b.len() < pos + 12 {
                return Err(Pending::More);
            }
            let len = u32::from_le_bytes([b[pos + 8], b[pos + 9], b[pos + 10], b[pos + 11]]);
            if len == u32::MAX {
                return Err(Pending::NotDicom("undefined length in the file meta group"));
            }
            pos += 12 + len as usize;
        } else {
            let len = u16::from_le_bytes([b[pos + 6], b[pos + 7]]);
            pos += 8 + len as usize;
        }
        if pos > MAX_HEADER {
            return Err(Pending::NotDicom("file meta group too large"));
        }
    }
}

struct PartResult {
    sop_class_uid: Option<String>,
    sop_instance_uid: Option<String>,
    study_instance_uid: Option<String>,
    series_instance_uid: Option<String>,
    /// Ok(warning) or Err(failure reason, message).
    status: Result<Option<u16>, (u16, String)>,
}

async fn stow(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    study: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let ingest = state
        .ingest
        .clone()
        .ok_or_else(|| ApiError::Unavailable("this server does not accept STOW-RS".into()))?;
    // may the caller store into its own institution at all?
    let own = dxhub_core::policy::TargetScope::Institution {
        institution_id: caller.principal.institution_id,
        alliance_id: caller.principal.alliance_id,
    };
    if !authorize(&caller.principal, Action::WriteStudy, own).is_allowed() {
        caller
            .audit(
                &state,
                "study-store",
                study.as_deref().map(|s| ("study", s)),
                "denied",
            )
            .await?;
        return Err(ApiError::Forbidden("not permitted: write_study".into()));
    }
    let (boundary, root) = related_boundary(&headers)?;
    let limit = match root {
        Root::Dicom => state.settings.stow_max_bytes,
        // metadata and bulk data are held in memory until the data sets are assembled
        Root::Json => state.settings.stow_max_bytes.min(JSON_STOW_MAX_BYTES),
    };
    let stream = body.into_data_stream();
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limit)
            .per_field(limit),
    );
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    if root == Root::Json {
        let results = stow_json(&caller, &ingest, &mut multipart, study.as_deref()).await?;
        return respond(&state, &caller, &headers, study.as_deref(), results).await;
    }

    let mut results: Vec<PartResult> = Vec::new();
    'parts: loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => match broken_off(e, &mut results) {
                Some(refusal) => return Err(refusal),
                None => break 'parts,
            },
        };
        if let Some(ct) = field.content_type() {
            let ok = ct.essence_str().eq_ignore_ascii_case("application/dicom");
            if !ok {
                results.push(PartResult {
                    sop_class_uid: None,
                    sop_instance_uid: None,
                    study_instance_uid: None,
                    series_instance_uid: None,
                    status: Err((
                        dxhub_core::status::CANNOT_UNDERSTAND,
                        format!("part of type {ct} is not application/dicom"),
                    )),
                });
                // drain it
                let mut field = field;
                while let Ok(Some(_)) = field.chunk().await {}
                continue;
            }
        }
        let writer = ingest
            .spool()
            .create()
            .map_err(|e| ApiError::Unavailable(format!("spool: {e}")))?;
        let mut part = PartSpool::new(writer);
        let mut field = field;
        let mut failure: Option<IngestError> = None;
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if failure.is_none()
                        && let Err(e) = part.push(&chunk)
                    {
                        failure = Some(e);
                    }
                }
                Ok(None) => break,
                Err(e) => match broken_off(e, &mut results) {
                    Some(refusal) => return Err(refusal),
                    None => break 'parts,
                },
            }
        }
        let result = match failure {
            Some(e) => failed(e),
            None => match part.finish() {
                Ok(file) => store_part(&caller, &ingest, file, study.as_deref()).await,
                Err(e) => failed(e),
            },
        };
        results.push(result);
    }
    if results.is_empty() {
        return Err(ApiError::BadRequest("the request has no parts".into()));
    }
    respond(&state, &caller, &headers, study.as_deref(), results).await
}

/// `type="application/dicom+json"`: the first part is a DICOM JSON array of data sets,
/// the others bulk data named by `Content-Location` (= a BulkDataURI of the metadata). Each
/// data set becomes a Part 10 file (Explicit VR Little Endian, or the transfer syntax of
/// its Pixel Data part's `transfer-syntax` parameter) and goes through the same ingest.
async fn stow_json(
    caller: &Caller,
    ingest: &Arc<Ingest>,
    multipart: &mut multer::Multipart<'_>,
    study: Option<&str>,
) -> Result<Vec<PartResult>, ApiError> {
    let mut metadata: Option<Value> = None;
    // Content-Location → (transfer syntax parameter, bytes)
    let mut bulk: std::collections::HashMap<String, (Option<String>, Vec<u8>)> =
        std::collections::HashMap::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e)),
        };
        let ct = field.content_type().cloned();
        let location = field
            .headers()
            .get(header::CONTENT_LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = field.bytes().await.map_err(multipart_error)?;
        if metadata.is_none() {
            let json_ok = ct.as_ref().is_none_or(|m| {
                let e = m.essence_str();
                e.eq_ignore_ascii_case("application/dicom+json")
                    || e.eq_ignore_ascii_case("application/json")
            });
            if !json_ok {
                return Err(ApiError::UnsupportedMediaType(
                    "the first part of a dicom+json STOW-RS request is the metadata (application/dicom+json)".into(),
                ));
            }
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ApiError::InvalidJson(format!("metadata part: {e}")))?;
            metadata = Some(match v {
                Value::Array(_) => v,
                Value::Object(_) => Value::Array(vec![v]),
                _ => {
                    return Err(ApiError::InvalidJson(
                        "metadata part: expected an array of DICOM JSON data sets".into(),
                    ));
                }
            });
            continue;
        }
        let Some(location) = location else {
            return Err(ApiError::BadRequest(
                "a bulk data part lacks Content-Location".into(),
            ));
        };
        let ts = ct.as_ref().and_then(|m| {
            m.get_param("transfer-syntax")
                .map(|v| v.as_str().to_owned())
        });
        bulk.insert(location, (ts, bytes.to_vec()));
    }
    let Some(Value::Array(datasets)) = metadata else {
        return Err(ApiError::BadRequest(
            "the request has no metadata part".into(),
        ));
    };
    let mut results = Vec::with_capacity(datasets.len());
    for ds in datasets {
        let Value::Object(obj) = ds else {
            results.push(failed(IngestError::CannotUnderstand(
                "a metadata entry is not a DICOM JSON object".into(),
            )));
            continue;
        };
        let uid = |tag: &str| {
            obj.get(tag)
                .and_then(|e| e.get("Value"))
                .and_then(|v| v.get(0))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        // the transfer syntax: that of the Pixel Data part, else Explicit VR LE
        let pixel_uri = obj
            .get("7FE00010")
            .and_then(|e| e.get("BulkDataURI"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let ts = pixel_uri
            .as_ref()
            .and_then(|u| bulk.get(u))
            .and_then(|(ts, _)| ts.clone())
            .unwrap_or_else(|| super::wado::EXPLICIT_VR_LE.to_owned());
        let built = {
            let mut resolve = |u: &str| bulk.get(u).map(|(_, b)| b.clone());
            dxhub_dicom::from_json::part10_from_json(&obj, &ts, &mut resolve)
        };
        let file = match built {
            Ok(bytes) => bytes,
            Err(e) => {
                let mut r = failed(IngestError::CannotUnderstand(format!("metadata: {e}")));
                r.sop_class_uid = uid("00080016");
                r.sop_instance_uid = uid("00080018");
                results.push(r);
                continue;
            }
        };
        let writer = ingest
            .spool()
            .create()
            .map_err(|e| ApiError::Unavailable(format!("spool: {e}")))?;
        let mut part = PartSpool::new(writer);
        let spooled = part.push(&file).and_then(|()| part.finish());
        results.push(match spooled {
            Ok(f) => store_part(caller, ingest, f, study).await,
            Err(e) => failed(e),
        });
    }
    Ok(results)
}

/// The body broke off (malformed, over the size limit, the client gone). Before anything
/// was stored the request is refused as a whole (400/413: nothing stored); after parts were
/// stored, the rest is one failed entry and the answer tells what was stored (202) and is
/// audited like any other (`None`).
fn broken_off(e: multer::Error, results: &mut Vec<PartResult>) -> Option<ApiError> {
    if !results.iter().any(|r| r.status.is_ok()) {
        return Some(multipart_error(e));
    }
    let reason = match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            dxhub_core::status::OUT_OF_RESOURCES
        }
        _ => dxhub_core::status::CANNOT_UNDERSTAND,
    };
    results.push(PartResult {
        sop_class_uid: None,
        sop_instance_uid: None,
        study_instance_uid: None,
        series_instance_uid: None,
        status: Err((reason, format!("the body broke off here: {e}"))),
    });
    None
}

fn multipart_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            ApiError::PayloadTooLarge
        }
        other => ApiError::BadRequest(format!("malformed multipart body: {other}")),
    }
}

fn failed(e: IngestError) -> PartResult {
    PartResult {
        sop_class_uid: None,
        sop_instance_uid: None,
        study_instance_uid: None,
        series_instance_uid: None,
        status: Err((e.status(), e.to_string())),
    }
}

async fn store_part(
    caller: &Caller,
    ingest: &Arc<Ingest>,
    file: dxhub_ingest::spool::SpoolFile,
    study: Option<&str>,
) -> PartResult {
    let path = file.path().to_owned();
    let extracted =
        match tokio::task::spawn_blocking(move || dxhub_dicom::extract_file(&path)).await {
            Ok(x) => x,
            Err(e) => return failed(IngestError::Io(std::io::Error::other(e))),
        };
    let (sop_class, sop_instance, study_uid, series_uid) = match &extracted {
        Ok(x) => (
            Some(x.sop_class_uid.clone()),
            Some(x.sop_instance_uid.clone()),
            Some(x.study_instance_uid.clone()),
            Some(x.series_instance_uid.clone()),
        ),
        Err(_) => (None, None, None, None),
    };
    let with_ids = |status| PartResult {
        sop_class_uid: sop_class.clone(),
        sop_instance_uid: sop_instance.clone(),
        study_instance_uid: study_uid.clone(),
        series_instance_uid: series_uid.clone(),
        status,
    };
    let mut ctx = IngestContext::new(Source::Stow, Some(caller.principal.institution_id));
    ctx.expected_study_instance_uid = study.map(str::to_owned);
    ctx.writable_institutions = writable_institutions(caller);
    match ingest.ingest_extracted(file, extracted, &ctx).await {
        Ok(o) => with_ids(Ok((o.kind == OutcomeKind::NewVersion).then_some(o.status()))),
        Err(e) => with_ids(Err((e.status(), e.to_string()))),
    }
}

/// The institutions whose studies the caller may add to (the policy's WriteStudy reach);
/// `None` for the superadmin.
fn writable_institutions(caller: &Caller) -> Option<Vec<i64>> {
    if caller.is_superadmin() {
        return None;
    }
    let p = &caller.principal;
    let mut ids: Vec<i64> = caller
        .alliance_institutions
        .iter()
        .copied()
        .filter(|id| {
            let target = dxhub_core::policy::TargetScope::Institution {
                institution_id: *id,
                alliance_id: p.alliance_id,
            };
            authorize(p, Action::WriteStudy, target).is_allowed()
        })
        .collect();
    if ids.is_empty() {
        ids.push(p.institution_id);
    }
    Some(ids)
}

fn us(v: u16) -> Value {
    json!({ "vr": "US", "Value": [v] })
}

fn ui(v: &str) -> Value {
    json!({ "vr": "UI", "Value": [v] })
}

async fn respond(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    study: Option<&str>,
    results: Vec<PartResult>,
) -> Result<Response, ApiError> {
    let base = base_url(state, headers);
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    let mut warnings = false;
    let mut stored_studies: Vec<String> = Vec::new();
    for r in &results {
        match &r.status {
            Ok(warning) => {
                let mut item = Map::new();
                if let Some(c) = &r.sop_class_uid {
                    item.insert("00081150".into(), ui(c));
                }
                if let Some(i) = &r.sop_instance_uid {
                    item.insert("00081155".into(), ui(i));
                }
                if let (Some(st), Some(se), Some(i)) = (
                    &r.study_instance_uid,
                    &r.series_instance_uid,
                    &r.sop_instance_uid,
                ) {
                    item.insert(
                        "00081190".into(),
                        json!({"vr": "UR", "Value": [format!("{base}/studies/{st}/series/{se}/instances/{i}")]}),
                    );
                    if !stored_studies.contains(st) {
                        stored_studies.push(st.clone());
                    }
                }
                if let Some(w) = warning {
                    warnings = true;
                    item.insert("00081196".into(), us(*w));
                }
                referenced.push(Value::Object(item));
            }
            Err((reason, message)) => {
                tracing::info!(reason = format!("{reason:04X}"), %message, "STOW-RS part refused");
                let mut item = Map::new();
                if let Some(c) = &r.sop_class_uid {
                    item.insert("00081150".into(), ui(c));
                }
                if let Some(i) = &r.sop_instance_uid {
                    item.insert("00081155".into(), ui(i));
                }
                item.insert("00081197".into(), us(*reason));
                // a human-readable reason (Error Comment)
                item.insert(
                    "00000902".into(),
                    json!({"vr": "LO", "Value": [message.chars().take(64).collect::<String>()]}),
                );
                failed.push(Value::Object(item));
            }
        }
    }
    for st in &stored_studies {
        caller
            .audit(state, "study-store", Some(("study", st)), "success")
            .await?;
    }
    if !failed.is_empty() {
        caller
            .audit(state, "study-store", study.map(|s| ("study", s)), "failure")
            .await?;
    }
    let mut body = Map::new();
    if let Some(st) = study.or(stored_studies.first().map(String::as_str))
        && stored_studies.len() <= 1
    {
        body.insert(
            "00081190".into(),
            json!({"vr": "UR", "Value": [format!("{base}/studies/{st}")]}),
        );
    }
    if !failed.is_empty() {
        body.insert("00081198".into(), json!({"vr": "SQ", "Value": failed}));
    }
    if !referenced.is_empty() {
        body.insert("00081199".into(), json!({"vr": "SQ", "Value": referenced}));
    }
    let status = if referenced.is_empty() {
        StatusCode::CONFLICT
    } else if !failed.is_empty() || warnings {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let bytes =
        serde_json::to_vec(&Value::Object(body)).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(DICOM_JSON))],
        axum::Extension(crate::IdentitiesUnchanged),
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part10_head(meta: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b.extend_from_slice(b"DICM");
        b.extend_from_slice(meta);
        b
    }

    #[test]
    fn header_length_walks_the_meta_group() {
        // (0002,0000) UL 4 = 10; (0002,0001) OB 2 bytes; then (0008,0005)
        let mut meta = vec![0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0, 10, 0, 0, 0];
        meta.extend_from_slice(&[0x02, 0x00, 0x01, 0x00, b'O', b'B', 0, 0, 2, 0, 0, 0, 0, 1]);
        let head = part10_head(&meta);
        assert!(matches!(header_len(&head), Err(Pending::More)));
        let mut full = head.clone();
        full.extend_from_slice(&[0x08, 0x00, 0x05, 0x00]);
        full.extend_from_slice(b"CS\x0a\x00ISO_IR 192");
        assert_eq!(header_len(&full).ok(), Some(head.len()));
        assert!(matches!(header_len(&[0u8; 200]), Err(Pending::NotDicom(_))));
    }

    #[test]
    fn boundary_needs_multipart_related_of_dicom() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("multipart/related; type=\"application/dicom\"; boundary=abc"),
        );
        assert_eq!(
            related_boundary(&h).ok(),
            Some(("abc".to_owned(), Root::Dicom))
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                "multipart/related; type=\"application/dicom+json\"; boundary=abc",
            ),
        );
        assert_eq!(
            related_boundary(&h).ok(),
            Some(("abc".to_owned(), Root::Json))
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/dicom"),
        );
        assert!(matches!(
            related_boundary(&h),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                "multipart/related; type=\"application/dicom+xml\"; boundary=abc",
            ),
        );
        assert!(matches!(
            related_boundary(&h),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        // a `;` or `=` inside a quoted value is part of the value, not a new parameter
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(
                "multipart/related; boundary=\"a=b:c\"; start-info=\"x; boundary=evil\"; type=\"application/dicom\"",
            ),
        );
        assert_eq!(
            related_boundary(&h).ok(),
            Some(("a=b:c".to_owned(), Root::Dicom))
        );
    }
}
