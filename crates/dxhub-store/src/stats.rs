//! The alliance indicators (`/api/v1/stats/…`): aggregate figures over a range of local
//! (UTC+8) calendar days, for one alliance (or all) and optionally one institution and
//! those it heads. Figures only, never patient data: patients are counted by identity
//! hash and never returned.
//!
//! Days are day numbers of [`dxhub_core::stats`]; the store buckets instants by
//! `(epoch_us + 8 h) div 1 day` and answers days as `YYYY-MM-DD`.

use async_trait::async_trait;
use serde::Serialize;

use crate::catalog::Result;

/// What the figures are taken over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsScope {
    /// First local day (inclusive), a [`dxhub_core::stats`] day number.
    pub from_day: i64,
    /// Last local day (inclusive).
    pub to_day: i64,
    /// Only this alliance; `None`: every alliance.
    pub alliance_id: Option<i64>,
    /// Only these (source) institutions; `None`: every institution of the alliance.
    pub institution_ids: Option<Vec<i64>>,
}

impl StatsScope {
    /// The first instant of the range (epoch µs, inclusive).
    pub fn start_us(&self) -> i64 {
        dxhub_core::stats::day_start_us(self.from_day)
    }

    /// The instant after the range (epoch µs, exclusive).
    pub fn end_us(&self) -> i64 {
        dxhub_core::stats::day_start_us(self.to_day + 1)
    }

    /// Whether institution `id` is in scope by the institution filter (the alliance is
    /// checked by the query).
    pub fn has_institution(&self, id: i64) -> bool {
        self.institution_ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&id))
    }
}

/// Studies received on a day from an institution, of one modality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeRow {
    pub day: String,
    pub institution_id: i64,
    pub institution: String,
    /// The work item's modality, else the first of the study's modalities; `None`: none.
    pub modality: Option<String>,
    pub studies: i64,
    /// Distinct SOP instances of those studies (`studies.num_instances`).
    pub instances: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VolumeTotals {
    pub studies: i64,
    pub instances: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volumes {
    /// By day, institution id, modality (`None` last).
    pub rows: Vec<VolumeRow>,
    pub totals: VolumeTotals,
}

/// Turnaround figures of signed work items.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnaroundFigures {
    pub signed: i64,
    /// Nearest-rank percentiles of `done_at − ready_at`, in minutes; `None`: no items.
    pub p50_minutes: Option<f64>,
    pub p90_minutes: Option<f64>,
    pub p95_minutes: Option<f64>,
    /// Items whose clock breached (`breached_at` set, or signed after `due_at`).
    pub breached: i64,
    /// `breached / signed`; `None`: no items.
    pub breach_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnaroundRow {
    /// `None`: items signed without a pool (unrouted).
    pub pool_id: Option<i64>,
    /// The pool's label (`影像诊断组`).
    pub pool: Option<String>,
    #[serde(flatten)]
    pub figures: TurnaroundFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turnaround {
    /// Every pool of the alliance (also those with nothing signed), by id; then the
    /// unrouted items, if any.
    pub rows: Vec<TurnaroundRow>,
    pub overall: TurnaroundFigures,
}

/// Remote reads of one township or village institution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteReadRow {
    pub institution_id: i64,
    pub institution: String,
    /// `township` or `village`.
    pub level: String,
    pub population: Option<i64>,
    pub remote_reads: i64,
    /// `remote_reads × 10 000 / population`; `None` without a (positive) population.
    pub per_10k: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteReadTotals {
    /// The scope's population: see [`StatsStore::stats_remote_reads`].
    pub population: Option<i64>,
    pub remote_reads: i64,
    pub per_10k: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemoteReads {
    /// Every township and village institution in scope (also those with no reads), by id.
    pub rows: Vec<RemoteReadRow>,
    pub alliance: RemoteReadTotals,
}

/// Grassroots exams read above (基层检查、上级诊断) on a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrassrootsRow {
    pub day: String,
    /// Distinct patients (identity hash) that day.
    pub patients: i64,
    pub studies: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GrassrootsTotals {
    /// Distinct patients over the whole range (not a sum of days).
    pub patients: i64,
    pub studies: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Grassroots {
    /// Every day of the range, in order (zero days included).
    pub rows: Vec<GrassrootsRow>,
    pub totals: GrassrootsTotals,
}

/// Critical values raised in the range.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CriticalFigures {
    pub raised: i64,
    /// Of those raised, acknowledged (at any time up to now).
    pub acknowledged: i64,
    pub unacknowledged: i64,
    /// Nearest-rank percentiles of `ack_at − raised_at` of the acknowledged ones, minutes.
    pub ack_p50_minutes: Option<f64>,
    pub ack_p90_minutes: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CriticalRow {
    /// The category code.
    pub category: String,
    #[serde(flatten)]
    pub figures: CriticalFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criticals {
    /// By category code.
    pub rows: Vec<CriticalRow>,
    pub overall: CriticalFigures,
}

/// Recognition lookups made on a day by the users of an institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecognitionRow {
    pub day: String,
    pub institution_id: i64,
    pub institution: String,
    pub lookups: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recognition {
    /// By day, institution id.
    pub rows: Vec<RecognitionRow>,
    pub lookups: i64,
}

/// The indicators. Every figure is restricted to `scope`: its days, its alliance and, when
/// given, its institutions (the source institution of the study; for recognition, the
/// institution of the user who looked up).
#[async_trait]
pub trait StatsStore: Send + Sync {
    /// Studies by the local day of `studies.received_at` × source institution × modality.
    /// Studies without an institution are not counted.
    async fn stats_volumes(&self, scope: &StatsScope) -> Result<Volumes>;
    /// Work items in state `signed` whose `done_at` is in range, per reader pool.
    async fn stats_turnaround(&self, scope: &StatsScope) -> Result<Turnaround>;
    /// Signed work items (`done_at` in range) of studies from township and village
    /// institutions, per institution and per 10 000 population. Populations nest (a
    /// county's covers its townships', a township's its villages'), so the scope's
    /// population is the sum over the outermost institutions in scope that have one: an
    /// institution's population counts unless an institution above it (in scope) has one.
    /// With the county hospital's population set, that is the county's population.
    async fn stats_remote_reads(&self, scope: &StatsScope) -> Result<RemoteReads>;
    /// Signed work items (`done_at` in range, bucketed by it) of studies from township and
    /// village institutions: studies and distinct patients (the work item's identity
    /// hash; the study's patient record without one).
    async fn stats_grassroots(&self, scope: &StatsScope) -> Result<Grassroots>;
    /// Critical values by the day of `raised_at`, per category.
    async fn stats_criticals(&self, scope: &StatsScope) -> Result<Criticals>;
    /// Successful recognition lookups (audit entries `recognition-lookup` with outcome
    /// `success`), by day and the looking-up user's institution.
    async fn stats_recognition(&self, scope: &StatsScope) -> Result<Recognition>;
}
