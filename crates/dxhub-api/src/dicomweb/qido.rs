//! QIDO-RS (PS3.18 10.6): study, series and instance searches answered from the index.
//!
//! Matching (PS3.4 C.2.2.2): single value, `*`/`?` wildcards, UID lists (`,` or `\`),
//! DA/TM/DT ranges (`from-to`, open either side), `fuzzymatching=true` for Patient Name
//! (case- and width-insensitive, any component group, any component, prefix — see
//! `dxhub_core::pn`). Keys: the index's attributes (see [`key_of`]); others are reported in
//! a `Warning: 299` header and not matched. `includefield` takes tags, keywords or `all`;
//! `limit` (default 100, at most 1000) and `offset` page a stable order; a page with more
//! results after it carries `Warning: 299 … "There are additional results that can be
//! requested"` (PS3.18 8.3.4.4.1).

use std::collections::BTreeSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_dictionary_std::StandardDataDictionary;
use dxhub_core::policy::Action;
use dxhub_store::{QidoKey, QidoLevel, QidoMatch, QidoQuery, QidoRow};
use serde_json::{Map, Value, json};

use super::{DICOM_JSON, base_url};
use crate::auth::Caller;
use crate::{ApiError, AppState};

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// `GET /dicomweb`: what this server supports (for configuring viewers such as OHIF:
/// `qidoSupportsIncludeField`, `supportsWildcard`, `supportsFuzzyMatching`).
pub async fn capabilities(caller: Caller) -> Response {
    let _ = caller;
    axum::Json(json!({
        "qido": {
            "levels": ["studies", "series", "instances"],
            "includefield": true,
            "wildcard": true,
            "fuzzymatching": true,
            "uidListMatching": true,
            "rangeMatching": ["DA", "TM", "DT"],
            "limitOffset": true,
            "maxLimit": MAX_LIMIT,
        },
        "wado": {
            "retrieve": ["study", "series", "instance"],
            "metadata": ["study", "series", "instance"],
            "frames": true,
            "bulkdata": true,
            "rendered": ["image/jpeg", "image/png"],
            "thumbnail": ["image/jpeg", "image/png"],
            "transferSyntaxes": ["*", "1.2.840.10008.1.2.1"],
        },
        "stow": { "mediaTypes": ["application/dicom"] },
        "ohif": {
            "qidoSupportsIncludeField": true,
            "supportsWildcard": true,
            "supportsFuzzyMatching": true,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
        }
    }))
    .into_response()
}

/// The index key of an attribute, with its VR (decides the matching).
pub fn key_of(tag: Tag) -> Option<(QidoKey, &'static str)> {
    use QidoKey::*;
    Some(match (tag.group(), tag.element()) {
        (0x0010, 0x0010) => (PatientName, "PN"),
        (0x0010, 0x0020) => (PatientId, "LO"),
        (0x0010, 0x0021) => (IssuerOfPatientId, "LO"),
        (0x0010, 0x0030) => (PatientBirthDate, "DA"),
        (0x0010, 0x0040) => (PatientSex, "CS"),
        (0x0020, 0x000D) => (StudyInstanceUid, "UI"),
        (0x0008, 0x0020) => (StudyDate, "DA"),
        (0x0008, 0x0030) => (StudyTime, "TM"),
        (0x0008, 0x0050) => (AccessionNumber, "SH"),
        (0x0020, 0x0010) => (StudyId, "SH"),
        (0x0008, 0x1030) => (StudyDescription, "LO"),
        (0x0008, 0x0090) => (ReferringPhysicianName, "PN"),
        (0x0008, 0x0061) => (ModalitiesInStudy, "CS"),
        (0x0020, 0x000E) => (SeriesInstanceUid, "UI"),
        (0x0008, 0x0060) => (Modality, "CS"),
        (0x0020, 0x0011) => (SeriesNumber, "IS"),
        (0x0008, 0x103E) => (SeriesDescription, "LO"),
        (0x0008, 0x0021) => (SeriesDate, "DA"),
        (0x0008, 0x0031) => (SeriesTime, "TM"),
        (0x0018, 0x0015) => (BodyPartExamined, "CS"),
        (0x0008, 0x0018) => (SopInstanceUid, "UI"),
        (0x0008, 0x0016) => (SopClassUid, "UI"),
        (0x0020, 0x0013) => (InstanceNumber, "IS"),
        _ => return None,
    })
}

/// A tag from `00100010`, `0010,0010`, `(0010,0010)` or a keyword (`PatientName`).
pub fn parse_tag(s: &str) -> Option<Tag> {
    let t = s.trim().trim_start_matches('(').trim_end_matches(')');
    let hex: String = t.chars().filter(|c| *c != ',').collect();
    if hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let v = u32::from_str_radix(&hex, 16).ok()?;
        return Some(Tag((v >> 16) as u16, (v & 0xFFFF) as u16));
    }
    StandardDataDictionary.by_name(t).map(|e| e.tag())
}

fn parse_match(vr: &str, value: &str, fuzzy: bool) -> Option<QidoMatch> {
    let v = value.trim();
    if v.is_empty() || v == "*" {
        return None; // universal matching: return the attribute, match everything
    }
    let has_wild = v.contains(['*', '?']);
    Some(match vr {
        "UI" => {
            let list: Vec<String> = v
                .split([',', '\\'])
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            if list.len() == 1 {
                QidoMatch::Single(list.into_iter().next().unwrap_or_default())
            } else {
                QidoMatch::List(list)
            }
        }
        "DA" | "TM" | "DT" if v.contains('-') => {
            let (from, to) = v.split_once('-').unwrap_or((v, ""));
            let norm = |s: &str| {
                let s: String = s.trim().chars().filter(|c| *c != ':').collect();
                (!s.is_empty()).then_some(s)
            };
            QidoMatch::Range {
                from: norm(from),
                to: norm(to),
            }
        }
        "DA" | "TM" | "DT" => QidoMatch::Single(v.chars().filter(|c| *c != ':').collect()),
        "PN" if fuzzy => QidoMatch::Fuzzy(v.to_owned()),
        _ if has_wild => QidoMatch::Wildcard(v.to_owned()),
        "CS" | "IS" if v.contains(['\\', ',']) => QidoMatch::List(
            v.split(['\\', ','])
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
        _ => QidoMatch::Single(v.to_owned()),
    })
}

/// What to include beyond the defaults.
#[derive(Debug, Default)]
pub struct Include {
    all: bool,
    tags: BTreeSet<Tag>,
}

/// A parsed QIDO request.
#[derive(Debug)]
pub struct Parsed {
    pub query: QidoQuery,
    pub include: Include,
    /// Keys present in the request (returned even when empty).
    pub keys: BTreeSet<Tag>,
    /// Keys the index cannot match on (reported in a Warning header).
    pub unsupported: Vec<String>,
    /// A series or instance search not under one study (`/series`, `/instances`): its
    /// results carry the study attributes too (PS3.18 10.6.3.3.2, 10.6.3.3.3).
    pub all_studies: bool,
}

fn level_rank(l: QidoLevel) -> u8 {
    match l {
        QidoLevel::Study => 0,
        QidoLevel::Series => 1,
        QidoLevel::Instance => 2,
    }
}

pub fn parse(level: QidoLevel, raw: Option<&str>) -> Result<Parsed, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let fuzzy = pairs
        .iter()
        .any(|(k, v)| k == "fuzzymatching" && v.eq_ignore_ascii_case("true"));
    let mut out = Parsed {
        query: QidoQuery {
            level,
            conditions: Vec::new(),
            institution_ids: None,
            routed_to: None,
            limit: DEFAULT_LIMIT,
            offset: 0,
            with_attrs: false,
        },
        include: Include::default(),
        keys: BTreeSet::new(),
        unsupported: Vec::new(),
        all_studies: false,
    };
    for (k, v) in pairs {
        match k.as_str() {
            "fuzzymatching" => {}
            "limit" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| ApiError::BadRequest(format!("limit: not a number: {v}")))?;
                out.query.limit = n.clamp(0, MAX_LIMIT);
            }
            "offset" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| ApiError::BadRequest(format!("offset: not a number: {v}")))?;
                out.query.offset = n.max(0);
            }
            "includefield" => {
                for f in v.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if f.eq_ignore_ascii_case("all") {
                        out.include.all = true;
                    } else {
                        let tag = parse_tag(f).ok_or_else(|| {
                            ApiError::BadRequest(format!("includefield: unknown attribute {f}"))
                        })?;
                        out.include.tags.insert(tag);
                    }
                }
            }
            _ => {
                let tag = parse_tag(&k).ok_or_else(|| {
                    ApiError::BadRequest(format!("unknown query parameter or attribute: {k}"))
                })?;
                out.keys.insert(tag);
                // at study level, Modality means "a series of this modality" (as dcm4chee)
                let key = match key_of(tag) {
                    Some((QidoKey::Modality, vr)) if level == QidoLevel::Study => {
                        Some((QidoKey::ModalitiesInStudy, vr))
                    }
                    other => other,
                };
                match key {
                    Some((key, vr)) if level_rank(key.level()) <= level_rank(level) => {
                        if let Some(m) = parse_match(vr, &v, fuzzy) {
                            out.query.conditions.push((key, m));
                        }
                    }
                    _ if v.trim().is_empty() => {} // return key only
                    _ => out.unsupported.push(k.clone()),
                }
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------- handlers

pub async fn search_studies(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    search(state, caller, headers, QidoLevel::Study, q, vec![]).await
}

pub async fn search_series(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    search(state, caller, headers, QidoLevel::Series, q, vec![]).await
}

pub async fn search_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    search(state, caller, headers, QidoLevel::Instance, q, vec![]).await
}

pub async fn search_study_series(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let fixed = vec![(QidoKey::StudyInstanceUid, QidoMatch::Single(study))];
    search(state, caller, headers, QidoLevel::Series, q, fixed).await
}

pub async fn search_study_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(study): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let fixed = vec![(QidoKey::StudyInstanceUid, QidoMatch::Single(study))];
    search(state, caller, headers, QidoLevel::Instance, q, fixed).await
}

pub async fn search_series_instances(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((study, series)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let fixed = vec![
        (QidoKey::StudyInstanceUid, QidoMatch::Single(study)),
        (QidoKey::SeriesInstanceUid, QidoMatch::Single(series)),
    ];
    search(state, caller, headers, QidoLevel::Instance, q, fixed).await
}

fn accepts_json(headers: &HeaderMap) -> bool {
    super::multipart::accepts_dicom_json(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()))
}

async fn search(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    level: QidoLevel,
    raw: Option<String>,
    fixed: Vec<(QidoKey, QidoMatch)>,
) -> Result<Response, ApiError> {
    if !accepts_json(&headers) {
        return Err(ApiError::NotAcceptable(
            "QIDO-RS answers application/dicom+json only".into(),
        ));
    }
    let Some(reach) = caller.list_reach(Action::ReadStudy) else {
        caller.audit(&state, "study-search", None, "denied").await?;
        return Err(ApiError::Forbidden("not permitted: read_study".into()));
    };
    let mut parsed = parse(level, raw.as_deref())?;
    parsed.query.with_attrs = parsed.include.all
        || parsed
            .include
            .tags
            .iter()
            .any(|t| !DEFAULT_TAGS.contains(&tag_key(*t).as_str()));
    parsed.all_studies = level != QidoLevel::Study
        && !fixed
            .iter()
            .any(|(k, _)| matches!(k, QidoKey::StudyInstanceUid));
    parsed.query.conditions.extend(fixed);
    parsed.query.institution_ids = reach.institution_ids;
    parsed.query.routed_to = reach.routed_to;
    // one row more than the page: whether there are more results to tell of (PS3.18
    // 8.3.4.4.1, a Warning header, so a client that does not page knows it has a part)
    let limit = parsed.query.limit;
    parsed.query.limit = limit + 1;
    let mut rows = state.catalog.qido(&parsed.query).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    parsed.query.limit = limit;
    let study_in_path = parsed
        .query
        .conditions
        .iter()
        .find_map(|(k, m)| match (k, m) {
            (QidoKey::StudyInstanceUid, QidoMatch::Single(s)) => Some(s.clone()),
            _ => None,
        });
    // a search is one audit entry (the results are not enumerated); the same search by
    // the same caller is recorded once per window, like repeated reads of a study
    let (_, actor) = caller.actor();
    let search_key = format!(
        "{level:?}|{:?}|{}",
        parsed.query.conditions,
        raw.as_deref().unwrap_or("")
    );
    if state
        .dicomweb
        .should_audit(&actor, "study-search", &search_key)
    {
        caller
            .audit(
                &state,
                "study-search",
                study_in_path.as_deref().map(|s| ("study", s)),
                "success",
            )
            .await?;
    }
    let base = base_url(&state, &headers);
    let body: Vec<Value> = rows
        .iter()
        .map(|r| Value::Object(result(level, r, &parsed, &base)))
        .collect();
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(DICOM_JSON))],
        serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?,
    )
        .into_response();
    if !parsed.unsupported.is_empty() {
        let msg = format!(
            "299 dxhub \"The following attributes are not supported for matching: {}\"",
            parsed.unsupported.join(", ")
        );
        if let Ok(v) = HeaderValue::from_str(&msg) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    if more {
        resp.headers_mut().append(
            header::WARNING,
            HeaderValue::from_static(
                "299 dxhub \"There are additional results that can be requested\"",
            ),
        );
    }
    Ok(resp)
}

// ---------------------------------------------------------------- results

/// Attributes every result carries (from index columns) at some level: asking for them
/// with `includefield` needs no level JSON. Modality (00080060) is a series attribute that
/// a study result reports as ModalitiesInStudy.
const DEFAULT_TAGS: &[&str] = &[
    "00080020", "00080030", "00080050", "00080056", "00080060", "00080061", "00080090", "00081030",
    "00081190", "00100010", "00100020", "00100021", "00100030", "00100040", "0020000D", "00200010",
    "00201206", "00201208", "0020000E", "00200011", "0008103E", "00080021", "00080031", "00180015",
    "00201209", "00080016", "00080018", "00083002", "00200013", "00280008",
];

fn put(m: &mut Map<String, Value>, tag: &str, vr: &str, value: Option<Value>) {
    let mut e = Map::new();
    e.insert("vr".into(), Value::String(vr.into()));
    if let Some(v) = value {
        e.insert("Value".into(), Value::Array(vec![v]));
    }
    m.insert(tag.into(), Value::Object(e));
}

fn text(v: &Option<String>) -> Option<Value> {
    v.as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.into()))
}

fn pn(v: &Option<String>) -> Option<Value> {
    let s = v.as_deref().filter(|s| !s.is_empty())?;
    let mut groups = s.split('=');
    let mut o = Map::new();
    for name in ["Alphabetic", "Ideographic", "Phonetic"] {
        if let Some(g) = groups.next().filter(|g| !g.is_empty()) {
            o.insert(name.into(), Value::String(g.into()));
        }
    }
    (!o.is_empty()).then_some(Value::Object(o))
}

fn int(v: Option<i64>) -> Option<Value> {
    v.map(|n| Value::Number(n.into()))
}

fn multi(m: &mut Map<String, Value>, tag: &str, vr: &str, v: &Option<String>) {
    let values: Vec<Value> = v
        .as_deref()
        .unwrap_or("")
        .split('\\')
        .filter(|s| !s.is_empty())
        .map(|s| Value::String(s.into()))
        .collect();
    let mut e = Map::new();
    e.insert("vr".into(), Value::String(vr.into()));
    if !values.is_empty() {
        e.insert("Value".into(), Value::Array(values));
    }
    m.insert(tag.into(), Value::Object(e));
}

fn study_part(m: &mut Map<String, Value>, r: &QidoRow) {
    put(m, "00080020", "DA", text(&r.study_date));
    put(m, "00080030", "TM", text(&r.study_time));
    put(m, "00080050", "SH", text(&r.accession_number));
    put(m, "00080090", "PN", pn(&r.referring_physician_name));
    put(m, "00081030", "LO", text(&r.study_description));
    put(m, "00100010", "PN", pn(&r.patient_name));
    put(
        m,
        "00100020",
        "LO",
        Some(Value::String(r.patient_id.clone())),
    );
    put(m, "00100021", "LO", text(&r.issuer_of_patient_id));
    put(m, "00100030", "DA", text(&r.patient_birth_date));
    put(m, "00100040", "CS", text(&r.patient_sex));
    put(
        m,
        "0020000D",
        "UI",
        Some(Value::String(r.study_instance_uid.clone())),
    );
    put(m, "00200010", "SH", text(&r.study_id_attr));
}

fn merge_attrs(m: &mut Map<String, Value>, attrs: Option<&str>, include: &Include) {
    if !include.all && include.tags.is_empty() {
        return;
    }
    let Some(Ok(Value::Object(a))) = attrs.map(serde_json::from_str::<Value>) else {
        return;
    };
    for (k, v) in a {
        if m.contains_key(&k) {
            continue;
        }
        // no bulk data in search results
        if v.get("BulkDataURI").is_some() || v.get("InlineBinary").is_some() {
            continue;
        }
        let wanted = include.all || parse_tag(&k).is_some_and(|t| include.tags.contains(&t));
        if wanted {
            m.insert(k, v);
        }
    }
}

fn tag_key(t: Tag) -> String {
    format!("{:04X}{:04X}", t.group(), t.element())
}

/// One result object: the level's required and OHIF-read attributes, the keys of the
/// request, and what `includefield` asks for.
pub fn result(level: QidoLevel, r: &QidoRow, p: &Parsed, base: &str) -> Map<String, Value> {
    let mut m = Map::new();
    put(
        &mut m,
        "00080005",
        "CS",
        Some(Value::String("ISO_IR 192".into())),
    );
    put(
        &mut m,
        "00080056",
        "CS",
        Some(Value::String("ONLINE".into())),
    );
    let study_url = format!("{base}/studies/{}", r.study_instance_uid);
    match level {
        QidoLevel::Study => {
            study_part(&mut m, r);
            multi(&mut m, "00080061", "CS", &r.modalities_in_study);
            put(&mut m, "00201206", "IS", int(Some(r.num_series)));
            put(&mut m, "00201208", "IS", int(Some(r.num_study_instances)));
            put(&mut m, "00081190", "UR", Some(Value::String(study_url)));
            merge_attrs(&mut m, r.study_attrs.as_deref(), &p.include);
        }
        QidoLevel::Series | QidoLevel::Instance => {
            let series_uid = r.series_instance_uid.clone().unwrap_or_default();
            put(
                &mut m,
                "0020000D",
                "UI",
                Some(Value::String(r.study_instance_uid.clone())),
            );
            put(&mut m, "00080060", "CS", text(&r.modality));
            put(
                &mut m,
                "0020000E",
                "UI",
                Some(Value::String(series_uid.clone())),
            );
            put(&mut m, "00200011", "IS", int(r.series_number));
            put(&mut m, "0008103E", "LO", text(&r.series_description));
            put(&mut m, "00080021", "DA", text(&r.series_date));
            put(&mut m, "00080031", "TM", text(&r.series_time));
            put(&mut m, "00180015", "CS", text(&r.body_part_examined));
            let series_url = format!("{study_url}/series/{series_uid}");
            if level == QidoLevel::Series {
                put(&mut m, "00201209", "IS", int(r.num_series_instances));
                put(&mut m, "00081190", "UR", Some(Value::String(series_url)));
            } else {
                let sop = r.sop_instance_uid.clone().unwrap_or_default();
                put(&mut m, "00080016", "UI", text(&r.sop_class_uid));
                put(&mut m, "00080018", "UI", Some(Value::String(sop.clone())));
                put(&mut m, "00083002", "UI", text(&r.transfer_syntax_uid));
                put(&mut m, "00200013", "IS", int(r.instance_number));
                put(&mut m, "00280008", "IS", int(r.number_of_frames));
                put(
                    &mut m,
                    "00081190",
                    "UR",
                    Some(Value::String(format!("{series_url}/instances/{sop}"))),
                );
                // image geometry from the instance's metadata, then what includefield asks
                let mut inc = Include {
                    all: p.include.all,
                    tags: p.include.tags.clone(),
                };
                for t in [
                    Tag(0x0028, 0x0010),
                    Tag(0x0028, 0x0011),
                    Tag(0x0028, 0x0100),
                ] {
                    inc.tags.insert(t);
                }
                merge_attrs(&mut m, r.instance_metadata.as_deref(), &inc);
            }
            // the study's attributes: all of them when the search is not under one study;
            // else those asked for by includefield or as matching keys
            let mut st = Map::new();
            study_part(&mut st, r);
            if p.all_studies {
                multi(&mut st, "00080061", "CS", &r.modalities_in_study);
                put(&mut st, "00201206", "IS", int(Some(r.num_series)));
                put(&mut st, "00201208", "IS", int(Some(r.num_study_instances)));
            }
            for (k, v) in st {
                let wanted = p.all_studies
                    || p.include.all
                    || parse_tag(&k)
                        .is_some_and(|t| p.include.tags.contains(&t) || p.keys.contains(&t));
                if wanted {
                    m.entry(k).or_insert(v);
                }
            }
            if p.include.all || p.include.tags.iter().any(|t| study_level(*t)) {
                merge_attrs(&mut m, r.study_attrs.as_deref(), &p.include);
            }
            merge_attrs(&mut m, r.series_attrs.as_deref(), &p.include);
        }
    }
    // keys of the request are returned, empty when the index has no value
    for t in &p.keys {
        let k = tag_key(*t);
        if !m.contains_key(&k) {
            let vr = StandardDataDictionary
                .by_tag(*t)
                .map(|e| e.vr().relaxed().to_string())
                .unwrap_or("UN");
            put(&mut m, &k, vr, None);
        }
    }
    m
}

fn study_level(t: Tag) -> bool {
    matches!(key_of(t), Some((k, _)) if k.level() == QidoLevel::Study)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_from_hex_and_keywords() {
        assert_eq!(parse_tag("00100010"), Some(Tag(0x0010, 0x0010)));
        assert_eq!(parse_tag("0010,0010"), Some(Tag(0x0010, 0x0010)));
        assert_eq!(parse_tag("PatientName"), Some(Tag(0x0010, 0x0010)));
        assert_eq!(parse_tag("StudyInstanceUID"), Some(Tag(0x0020, 0x000D)));
        assert_eq!(parse_tag("NoSuchKeyword"), None);
    }

    #[test]
    fn matching_kinds_follow_the_vr() {
        use QidoMatch as M;
        assert_eq!(
            parse_match("UI", "1.2,1.3", false),
            Some(M::List(vec!["1.2".into(), "1.3".into()]))
        );
        assert_eq!(
            parse_match("UI", "1.2", false),
            Some(M::Single("1.2".into()))
        );
        assert_eq!(
            parse_match("DA", "20240101-", false),
            Some(M::Range {
                from: Some("20240101".into()),
                to: None
            })
        );
        assert_eq!(
            parse_match("TM", "10:00-12:30", false),
            Some(M::Range {
                from: Some("1000".into()),
                to: Some("1230".into())
            })
        );
        assert_eq!(
            parse_match("PN", "wang", true),
            Some(M::Fuzzy("wang".into()))
        );
        assert_eq!(
            parse_match("PN", "W*", false),
            Some(M::Wildcard("W*".into()))
        );
        assert_eq!(
            parse_match("CS", "CT\\MR", false),
            Some(M::List(vec!["CT".into(), "MR".into()]))
        );
        assert_eq!(parse_match("CS", "*", false), None);
        assert_eq!(parse_match("LO", "", false), None);
    }

    #[test]
    fn parse_rejects_unknown_parameters_and_reports_unsupported_keys() {
        assert!(parse(QidoLevel::Study, Some("Bogus=1")).is_err());
        assert!(parse(QidoLevel::Study, Some("limit=x")).is_err());
        let p = parse(
            QidoLevel::Study,
            Some("PatientName=wang&fuzzymatching=true&limit=5000&offset=3&includefield=00081030,all&Modality=CT&InstitutionName=X"),
        )
        .unwrap();
        assert_eq!(p.query.limit, MAX_LIMIT);
        assert_eq!(p.query.offset, 3);
        assert!(p.include.all);
        assert_eq!(
            p.query.conditions,
            vec![
                (QidoKey::PatientName, QidoMatch::Fuzzy("wang".into())),
                (QidoKey::ModalitiesInStudy, QidoMatch::Single("CT".into())),
            ]
        );
        assert_eq!(p.unsupported, vec!["InstitutionName".to_owned()]);
    }
}
