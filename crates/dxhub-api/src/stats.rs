//! The alliance indicators (`GET /api/v1/stats/…`): volumes, turnaround, remote reads per
//! 10 000 population, grassroots exams read above, critical values, recognition lookups.
//! Aggregate figures only (no patient data, so nothing is audited); the figures
//! themselves are computed by [`dxhub_store::StatsStore`].
//!
//! Common query: `from`, `to` (inclusive `YYYY-MM-DD`, UTC+8; default: the 30 days ending
//! today), `institution_id` (that institution and those it heads), `alliance_id`
//! (superadmin: which alliance, default every one; others: their own only) and
//! `format=csv` (the `rows` as CSV with a header row, as a download).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dxhub_core::policy::{TargetScope, institution_subtree};
use dxhub_core::stats::{format_date, local_day, parse_date};
use dxhub_store::stats::{self as s, StatsScope};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Caller;
use crate::v1::ApiQuery;
use crate::{ApiError, AppState};

/// Days in the default range (ending today).
pub const DEFAULT_DAYS: i64 = 30;
/// Longest range accepted, in days.
pub const MAX_DAYS: i64 = 731;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(volumes))
        .routes(routes!(turnaround))
        .routes(routes!(remote_reads))
        .routes(routes!(grassroots))
        .routes(routes!(criticals))
        .routes(routes!(recognition))
}

// ---------------------------------------------------------------- query and scope

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct StatsQuery {
    /// First day, `YYYY-MM-DD` (UTC+8), inclusive; default: 29 days before `to`.
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC+8), inclusive; default: today.
    pub to: Option<String>,
    /// Only studies (values, lookups) of this institution and the institutions it heads.
    pub institution_id: Option<i64>,
    /// Superadmin: only this alliance (default: every alliance, or the institution's).
    /// Others: their own alliance (another → 403).
    pub alliance_id: Option<i64>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// What a request asks for, checked.
#[derive(Debug)]
struct Resolved {
    from: String,
    to: String,
    alliance_id: Option<i64>,
    institution_id: Option<i64>,
    scope: StatsScope,
    csv: bool,
}

fn day_param(name: &str, value: &str) -> Result<i64, ApiError> {
    parse_date(value)
        .ok_or_else(|| ApiError::BadRequest(format!("{name} must be a date YYYY-MM-DD: {value:?}")))
}

/// Check the query and the caller's reach: 400 for bad dates, format or range; 403 when
/// the caller may not read stats, or not of that alliance or institution; 404 for an
/// unknown alliance or institution.
async fn resolve(state: &AppState, caller: &Caller, q: &StatsQuery) -> Result<Resolved, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("unknown format {other:?}"))),
    };
    let today = local_day(state.worklist.now());
    let to_day = match q.to.as_deref() {
        Some(t) => day_param("to", t)?,
        None => today,
    };
    let from_day = match q.from.as_deref() {
        Some(f) => day_param("from", f)?,
        None => to_day - (DEFAULT_DAYS - 1),
    };
    if from_day > to_day {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    if to_day - from_day + 1 > MAX_DAYS {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_DAYS} days at once"
        )));
    }
    // the alliance: the action first (a reader or clinic user is refused whatever it asks)
    let mut alliance_id = if caller.is_superadmin() {
        q.alliance_id
    } else {
        Some(q.alliance_id.unwrap_or(caller.principal.alliance_id))
    };
    let target = match alliance_id {
        Some(alliance_id) => TargetScope::Alliance { alliance_id },
        None => TargetScope::Hub,
    };
    caller.require(state, target).await?;
    if let Some(a) = alliance_id
        && !state
            .catalog
            .list_alliances()
            .await?
            .iter()
            .any(|x| x.id == a)
    {
        return Err(ApiError::NotFound(format!("alliance {a}")));
    }
    let mut institution_ids = None;
    if let Some(id) = q.institution_id {
        let all = state.catalog.list_institutions().await?;
        let inst = all
            .iter()
            .find(|i| i.id == id)
            .ok_or_else(|| ApiError::NotFound(format!("institution {id}")))?;
        caller
            .require_found(
                state,
                TargetScope::Institution {
                    institution_id: inst.id,
                    alliance_id: inst.alliance_id,
                },
                || format!("institution {id}"),
            )
            .await?;
        match alliance_id {
            Some(a) if a != inst.alliance_id => {
                return Err(ApiError::BadRequest(format!(
                    "institution {id} is not of alliance {a}"
                )));
            }
            _ => alliance_id = Some(inst.alliance_id),
        }
        let pairs: Vec<(i64, Option<i64>)> = all
            .iter()
            .filter(|i| i.alliance_id == inst.alliance_id)
            .map(|i| (i.id, i.parent_id))
            .collect();
        institution_ids = Some(institution_subtree(id, &pairs));
    }
    Ok(Resolved {
        from: format_date(from_day),
        to: format_date(to_day),
        alliance_id,
        institution_id: q.institution_id,
        scope: StatsScope {
            from_day,
            to_day,
            alliance_id,
            institution_ids,
        },
        csv,
    })
}

// ---------------------------------------------------------------- answers

/// A CSV cell: numbers as they are, text quoted when it must be and defused when a
/// spreadsheet would take it for a formula.
fn csv_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => {
            let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{s}")
            } else {
                s.clone()
            };
            if s.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s
            }
        }
        other => other.to_string(),
    }
}

/// The JSON body, or with `format=csv` its `rows` as CSV (`columns` in this order).
fn respond<T: Serialize>(
    r: &Resolved,
    name: &str,
    columns: &[&str],
    body: &T,
) -> Result<Response, ApiError> {
    if !r.csv {
        let v = serde_json::to_value(body).map_err(|e| ApiError::Internal(e.to_string()))?;
        return Ok(Json(v).into_response());
    }
    let v = serde_json::to_value(body).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut out = columns.join(",");
    out.push_str("\r\n");
    for row in v["rows"].as_array().into_iter().flatten() {
        let cells: Vec<String> = columns.iter().map(|c| csv_cell(&row[*c])).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    let disposition = format!(
        "attachment; filename=\"dxhub-{name}-{}-{}.csv\"",
        r.from, r.to
    );
    let mut resp = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response();
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(resp)
}

// ---------------------------------------------------------------- volumes

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VolumeRow {
    /// `YYYY-MM-DD` (UTC+8) of `received_at`.
    pub day: String,
    pub institution_id: i64,
    pub institution: String,
    /// The work item's modality, else the study's first; null: none.
    pub modality: Option<String>,
    pub studies: i64,
    pub instances: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VolumeTotals {
    pub studies: i64,
    pub instances: i64,
}

/// `GET /api/v1/stats/volumes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VolumesResponse {
    pub from: String,
    pub to: String,
    /// null: every alliance (superadmin).
    pub alliance_id: Option<i64>,
    pub institution_id: Option<i64>,
    pub totals: VolumeTotals,
    pub rows: Vec<VolumeRow>,
}

/// Studies received per day (UTC+8, `received_at`) × source institution × modality.
#[utoipa::path(get, path = "/api/v1/stats/volumes", tag = "stats", params(StatsQuery),
    responses((status = 200, description = "JSON, or text/csv with format=csv",
        content((VolumesResponse = "application/json"), (String = "text/csv"))),
        (status = 400, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody),
        (status = 404, body = crate::dto::ErrorBody)))]
async fn volumes(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Response, ApiError> {
    let r = resolve(&state, &caller, &q).await?;
    let v = state.catalog.stats_volumes(&r.scope).await?;
    let body = VolumesResponse {
        from: r.from.clone(),
        to: r.to.clone(),
        alliance_id: r.alliance_id,
        institution_id: r.institution_id,
        totals: VolumeTotals {
            studies: v.totals.studies,
            instances: v.totals.instances,
        },
        rows: v
            .rows
            .into_iter()
            .map(|x| VolumeRow {
                day: x.day,
                institution_id: x.institution_id,
                institution: x.institution,
                modality: x.modality,
                studies: x.studies,
                instances: x.instances,
            })
            .collect(),
    };
    respond(
        &r,
        "volumes",
        &[
            "day",
            "institution_id",
            "institution",
            "modality",
            "studies",
            "instances",
        ],
        &body,
    )
}

// ---------------------------------------------------------------- turnaround

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TurnaroundFigures {
    pub signed: i64,
    /// Nearest-rank percentiles of `done_at − ready_at`, minutes; null: nothing signed.
    pub p50_minutes: Option<f64>,
    pub p90_minutes: Option<f64>,
    pub p95_minutes: Option<f64>,
    /// `breached_at` set, or signed after `due_at`.
    pub breached: i64,
    /// `breached / signed`; null: nothing signed.
    pub breach_rate: Option<f64>,
}

impl From<s::TurnaroundFigures> for TurnaroundFigures {
    fn from(f: s::TurnaroundFigures) -> Self {
        Self {
            signed: f.signed,
            p50_minutes: f.p50_minutes,
            p90_minutes: f.p90_minutes,
            p95_minutes: f.p95_minutes,
            breached: f.breached,
            breach_rate: f.breach_rate,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TurnaroundRow {
    /// null: work items signed without a pool.
    pub pool_id: Option<i64>,
    /// The pool's label.
    pub pool: Option<String>,
    pub signed: i64,
    pub p50_minutes: Option<f64>,
    pub p90_minutes: Option<f64>,
    pub p95_minutes: Option<f64>,
    pub breached: i64,
    pub breach_rate: Option<f64>,
}

/// `GET /api/v1/stats/turnaround`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TurnaroundResponse {
    pub from: String,
    pub to: String,
    pub alliance_id: Option<i64>,
    pub institution_id: Option<i64>,
    pub overall: TurnaroundFigures,
    pub rows: Vec<TurnaroundRow>,
}

/// Report turnaround per reader pool: work items in state `signed` with `done_at` in
/// range; turnaround = `done_at − ready_at`.
#[utoipa::path(get, path = "/api/v1/stats/turnaround", tag = "stats", params(StatsQuery),
    responses((status = 200, description = "JSON, or text/csv with format=csv",
        content((TurnaroundResponse = "application/json"), (String = "text/csv"))),
        (status = 400, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody),
        (status = 404, body = crate::dto::ErrorBody)))]
async fn turnaround(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Response, ApiError> {
    let r = resolve(&state, &caller, &q).await?;
    let t = state.catalog.stats_turnaround(&r.scope).await?;
    let body = TurnaroundResponse {
        from: r.from.clone(),
        to: r.to.clone(),
        alliance_id: r.alliance_id,
        institution_id: r.institution_id,
        overall: t.overall.into(),
        rows: t
            .rows
            .into_iter()
            .map(|x| TurnaroundRow {
                pool_id: x.pool_id,
                pool: x.pool,
                signed: x.figures.signed,
                p50_minutes: x.figures.p50_minutes,
                p90_minutes: x.figures.p90_minutes,
                p95_minutes: x.figures.p95_minutes,
                breached: x.figures.breached,
                breach_rate: x.figures.breach_rate,
            })
            .collect(),
    };
    respond(
        &r,
        "turnaround",
        &[
            "pool_id",
            "pool",
            "signed",
            "p50_minutes",
            "p90_minutes",
            "p95_minutes",
            "breached",
            "breach_rate",
        ],
        &body,
    )
}

// ---------------------------------------------------------------- remote reads

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RemoteReadRow {
    pub institution_id: i64,
    pub institution: String,
    /// `township` or `village`.
    pub level: String,
    pub population: Option<i64>,
    pub remote_reads: i64,
    /// null: no population.
    pub per_10k: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RemoteReadTotals {
    /// The outermost populations in scope (the county's when set); null: none known.
    pub population: Option<i64>,
    pub remote_reads: i64,
    pub per_10k: Option<f64>,
}

/// `GET /api/v1/stats/remote-reads`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RemoteReadsResponse {
    pub from: String,
    pub to: String,
    pub alliance_id: Option<i64>,
    pub institution_id: Option<i64>,
    pub alliance: RemoteReadTotals,
    pub rows: Vec<RemoteReadRow>,
}

/// Remote reads per 10 000 population (远程诊断/万人口): signed work items (`done_at` in
/// range) of studies from township and village institutions.
#[utoipa::path(get, path = "/api/v1/stats/remote-reads", tag = "stats", params(StatsQuery),
    responses((status = 200, description = "JSON, or text/csv with format=csv",
        content((RemoteReadsResponse = "application/json"), (String = "text/csv"))),
        (status = 400, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody),
        (status = 404, body = crate::dto::ErrorBody)))]
async fn remote_reads(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Response, ApiError> {
    let r = resolve(&state, &caller, &q).await?;
    let t = state.catalog.stats_remote_reads(&r.scope).await?;
    let body = RemoteReadsResponse {
        from: r.from.clone(),
        to: r.to.clone(),
        alliance_id: r.alliance_id,
        institution_id: r.institution_id,
        alliance: RemoteReadTotals {
            population: t.alliance.population,
            remote_reads: t.alliance.remote_reads,
            per_10k: t.alliance.per_10k,
        },
        rows: t
            .rows
            .into_iter()
            .map(|x| RemoteReadRow {
                institution_id: x.institution_id,
                institution: x.institution,
                level: x.level,
                population: x.population,
                remote_reads: x.remote_reads,
                per_10k: x.per_10k,
            })
            .collect(),
    };
    respond(
        &r,
        "remote-reads",
        &[
            "institution_id",
            "institution",
            "level",
            "population",
            "remote_reads",
            "per_10k",
        ],
        &body,
    )
}

// ---------------------------------------------------------------- grassroots

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrassrootsRow {
    /// `YYYY-MM-DD` (UTC+8) of `done_at`.
    pub day: String,
    pub patients: i64,
    pub studies: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrassrootsTotals {
    /// Distinct patients over the whole range.
    pub patients: i64,
    pub studies: i64,
}

/// `GET /api/v1/stats/grassroots`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrassrootsResponse {
    pub from: String,
    pub to: String,
    pub alliance_id: Option<i64>,
    pub institution_id: Option<i64>,
    pub totals: GrassrootsTotals,
    pub rows: Vec<GrassrootsRow>,
}

/// Grassroots exams read above (基层检查、上级诊断): signed work items (`done_at` in range)
/// of studies from township and village institutions, and their distinct patients.
#[utoipa::path(get, path = "/api/v1/stats/grassroots", tag = "stats", params(StatsQuery),
    responses((status = 200, description = "JSON, or text/csv with format=csv",
        content((GrassrootsResponse = "application/json"), (String = "text/csv"))),
        (status = 400, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody),
        (status = 404, body = crate::dto::ErrorBody)))]
async fn grassroots(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Response, ApiError> {
    let r = resolve(&state, &caller, &q).await?;
    let g = state.catalog.stats_grassroots(&r.scope).await?;
    let body = GrassrootsResponse {
        from: r.from.clone(),
        to: r.to.clone(),
        alliance_id: r.alliance_id,
        institution_id: r.institution_id,
        totals: GrassrootsTotals {
            patients: g.totals.patients,
            studies: g.totals.studies,
        },
        rows: g
            .rows
            .into_iter()
            .map(|x| GrassrootsRow {
                day: x.day,
                patients: x.patients,
                studies: x.studies,
            })
            .collect(),
    };
    respond(&r, "grassroots", &["day", "patients", "studies"], &body)
}

// ---------------------------------------------------------------- criticals

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CriticalFigures {
    pub raised: i64,
    pub acknowledged: i64,
    pub unacknowledged: i64,
    /// Nearest-rank percentiles of `ack_at − raised_at`, minutes; null: none acknowledged.
    pub ack_p50_minutes: Option<f64>,
    pub ack_p90_minutes: Option<f64>,
}

impl From<s::CriticalFigures> for CriticalFigures {
    fn from(f: s::CriticalFigures) -> Self {
        Self {
            raised: f.raised,
            acknowledged: f.acknowledged,
            unacknowledged: f.unacknowledged,
            ack_p50_minutes: f.ack_p50_minutes,
            ack_p90_minutes: f.ack_p90_minutes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CriticalRow {
    /// The category code.
    pub category: String,
    pub raised: i64,
    pub acknowledged: i64,
    pub unacknowledged: i64,
    pub ack_p50_minutes: Option<f64>,
    pub ack_p90_minutes: Option<f64>,
}

/// `GET /api/v1/stats/criticals`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CriticalsResponse {
    pub from: String,
    pub to: String,
    pub alliance_id: Option<i64>,
    pub institution_id: Option<i64>,
    pub overall: CriticalFigures,
    pub rows: Vec<CriticalRow>,
}

/// Critical values raised in range (`raised_at`), per category.
#[utoipa::path(get, path = "/api/v1/stats/criticals", tag = "stats", params(StatsQuery),
    responses((status = 200, description = "JSON, or text/csv with format=csv",
        content((CriticalsResponse = "application/json"), (String = "text/csv"))),
        (status = 400, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody),
        (status = 404, body = crate::dto::ErrorBody)))]
async fn criticals(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Response, ApiError> {
    let r = resolve(&state, &caller, &q).await?;
    let c = state.catalog.stats_criticals(&r.scope).await?;
    let body = CriticalsResponse {
        from: r.from.clone(),
        to: r.to.clone(),
        alliance_id: r.alliance_id,
        institution_id: r.institution_id,
        overall: c.overall.into(),
        rows: c
            .rows
            .into_iter()
            .map(|x| CriticalRow {
                category: x.category,
                raised: x.figures.raised,
                acknowledged: x.figures.acknowledged,
                unacknowledged: x.figures.unacknowledged,
                ack_p50_minutes: x.figures.ack_p50_minutes,
                ack_p90_minutes: x.figures.ack_p90_minutes,
            })
            .collect(),
    };
    respond(
        &r,
        "criticals",
        &[
            "category",
            "raised",
            "acknowledged",
            "unacknowledged",
            "ack_p50_minutes",
            "ack_p90_minutes",
        ],
        &body,
    )
}

// ---------------------------------------------------------------- recognition

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecognitionRow {
    /// `YYYY-MM-DD` (UTC+8) of the lookup.
    pub day: String,
    /// The looking-up user's institution.
    pub institution_id: i64,
    pub institution: String,
    pub lookups: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecognitionTotals {
    pub lookups: i64,
}

/// `GET /api/v1/stats/recognition`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecognitionResponse {
    pub from: String,
    pub to: String,
    pub alliance_id: Option<i64>,
    pub institution_id: Option<i64>,
    pub totals: RecognitionTotals,
    pub rows: Vec<RecognitionRow>,
}

/// Recognition lookups (`GET /api/v1/recognition`), counted from their audit entries
/// (`recognition-lookup`, outcome `success`) by day and the user's institution. The audit
/// entry does not record whether anything was found, so there is no `found`.
#[utoipa::path(get, path = "/api/v1/stats/recognition", tag = "stats", params(StatsQuery),
    responses((status = 200, description = "JSON, or text/csv with format=csv",
        content((RecognitionResponse = "application/json"), (String = "text/csv"))),
        (status = 400, body = crate::dto::ErrorBody), (status = 403, body = crate::dto::ErrorBody),
        (status = 404, body = crate::dto::ErrorBody)))]
async fn recognition(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> Result<Response, ApiError> {
    let r = resolve(&state, &caller, &q).await?;
    let c = state.catalog.stats_recognition(&r.scope).await?;
    let body = RecognitionResponse {
        from: r.from.clone(),
        to: r.to.clone(),
        alliance_id: r.alliance_id,
        institution_id: r.institution_id,
        totals: RecognitionTotals { lookups: c.lookups },
        rows: c
            .rows
            .into_iter()
            .map(|x| RecognitionRow {
                day: x.day,
                institution_id: x.institution_id,
                institution: x.institution,
                lookups: x.lookups,
            })
            .collect(),
    };
    respond(
        &r,
        "recognition",
        &["day", "institution_id", "institution", "lookups"],
        &body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell(&json!(null)), "");
        assert_eq!(csv_cell(&json!(3)), "3");
        assert_eq!(csv_cell(&json!(0.25)), "0.25");
        assert_eq!(csv_cell(&json!("某镇卫生院")), "某镇卫生院");
        assert_eq!(csv_cell(&json!("a,b")), "\"a,b\"");
        assert_eq!(csv_cell(&json!("say \"hi\"")), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell(&json!("=1+1")), "'=1+1");
    }
}
