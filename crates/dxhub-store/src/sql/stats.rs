//! SQL of the alliance indicators (see [`crate::stats`]).
//!
//! Portable SQL only: each query selects the range by epoch-µs bounds (`$1` inclusive,
//! `$2` exclusive), the alliance by `COALESCE($3, …)`, the institutions by an inlined
//! integer list, and groups by the local day with integer arithmetic
//! (`(t + 8 h) / 1 day`, BIGINT on both databases; times in range are never negative).
//! Percentiles, distinct patients and the population rule are computed here in Rust.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use dxhub_core::stats::{format_date, local_day, nearest_rank};
use dxhub_core::worklist::{SHANGHAI_OFFSET_US, US_PER_MIN};

use super::{SqlCatalog, in_list};
use crate::catalog::Result;
use crate::stats::{
    CriticalFigures, CriticalRow, Criticals, Grassroots, GrassrootsRow, GrassrootsTotals,
    Recognition, RecognitionRow, RemoteReadRow, RemoteReadTotals, RemoteReads, StatsScope,
    StatsStore, Turnaround, TurnaroundFigures, TurnaroundRow, VolumeRow, VolumeTotals, Volumes,
};

/// The local day of column expression `t`, as SQL.
fn day_sql(t: &str) -> String {
    format!(
        "(({t} + {SHANGHAI_OFFSET_US}) / {})",
        dxhub_core::stats::US_PER_DAY
    )
}

/// ` AND {column} IN (…)` for the scope's institutions, or nothing.
fn institutions_sql(scope: &StatsScope, column: &str) -> String {
    match &scope.institution_ids {
        Some(ids) => format!(" AND {column} IN {}", in_list(ids)),
        None => String::new(),
    }
}

/// Work items in state `signed` with `done_at` in range, joined to their study (`s`) and
/// the study's source institution (`i`), in scope.
fn signed_items_from(scope: &StatsScope) -> String {
    format!(
        "FROM work_items w JOIN studies s ON s.id = w.study_id \
         JOIN institutions i ON i.id = s.institution_id \
         WHERE w.state = 'signed' AND w.done_at >= $1 AND w.done_at < $2 \
         AND i.alliance_id = COALESCE($3, i.alliance_id){}",
        institutions_sql(scope, "s.institution_id")
    )
}

const GRASSROOTS_LEVELS: &str = "i.level IN ('township', 'village')";

fn minutes(us: i64) -> f64 {
    us as f64 / US_PER_MIN as f64
}

/// Sort ascending (minutes are finite).
fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn ratio(n: i64, d: i64) -> Option<f64> {
    (d > 0).then(|| n as f64 / d as f64)
}

fn per_10k(reads: i64, population: Option<i64>) -> Option<f64> {
    population
        .filter(|p| *p > 0)
        .map(|p| reads as f64 * 10_000.0 / p as f64)
}

/// One signed work item's clock.
struct Clock {
    minutes: f64,
    breached: bool,
}

fn turnaround_of(clocks: &[&Clock]) -> TurnaroundFigures {
    let signed = clocks.len() as i64;
    let breached = clocks.iter().filter(|c| c.breached).count() as i64;
    let v = sorted(clocks.iter().map(|c| c.minutes).collect());
    TurnaroundFigures {
        signed,
        p50_minutes: nearest_rank(&v, 50.0),
        p90_minutes: nearest_rank(&v, 90.0),
        p95_minutes: nearest_rank(&v, 95.0),
        breached,
        breach_rate: ratio(breached, signed),
    }
}

/// `(raised_at, ack_at)` of critical values.
fn criticals_of(values: &[(i64, Option<i64>)]) -> CriticalFigures {
    let raised = values.len() as i64;
    let acks = sorted(
        values
            .iter()
            .filter_map(|(raised, ack)| ack.map(|a| minutes(a - raised)))
            .collect(),
    );
    let acknowledged = acks.len() as i64;
    CriticalFigures {
        raised,
        acknowledged,
        unacknowledged: raised - acknowledged,
        ack_p50_minutes: nearest_rank(&acks, 50.0),
        ack_p90_minutes: nearest_rank(&acks, 90.0),
    }
}

/// The modality a study is counted under: the work item's, else the first of the study's
/// (backslash-joined) modalities.
fn modality_of(item: Option<String>, in_study: Option<&str>) -> Option<String> {
    item.filter(|m| !m.trim().is_empty()).or_else(|| {
        in_study?
            .split('\\')
            .map(str::trim)
            .find(|m| !m.is_empty())
            .map(str::to_owned)
    })
}

type VolumeSqlRow = (i64, i64, String, Option<String>, Option<String>, i64, i64);
type InstitutionSqlRow = (i64, String, String, Option<i64>, Option<i64>);

#[async_trait]
impl StatsStore for SqlCatalog {
    async fn stats_volumes(&self, scope: &StatsScope) -> Result<Volumes> {
        let day = day_sql("s.received_at");
        let sql = format!(
            "SELECT {day} AS day, s.institution_id, i.name, w.modality, s.modalities_in_study, \
             COUNT(*) AS studies, CAST(SUM(s.num_instances) AS BIGINT) AS instances \
             FROM studies s JOIN institutions i ON i.id = s.institution_id \
             LEFT JOIN work_items w ON w.study_id = s.id \
             WHERE s.received_at >= $1 AND s.received_at < $2 \
             AND i.alliance_id = COALESCE($3, i.alliance_id){} \
             GROUP BY {day}, s.institution_id, i.name, w.modality, s.modalities_in_study",
            institutions_sql(scope, "s.institution_id")
        );
        let groups = sqlx::query_as::<_, VolumeSqlRow>(&sql)
            .bind(scope.start_us())
            .bind(scope.end_us())
            .bind(scope.alliance_id)
            .fetch_all(&self.read)
            .await?;
        // (day, institution, (no modality, modality)) → (name, studies, instances)
        let mut cells: BTreeMap<(i64, i64, (bool, Option<String>)), (String, i64, i64)> =
            BTreeMap::new();
        let mut totals = VolumeTotals::default();
        for (day, inst, name, item, in_study, studies, instances) in groups {
            let modality = modality_of(item, in_study.as_deref());
            let cell = cells
                .entry((day, inst, (modality.is_none(), modality)))
                .or_insert((name, 0, 0));
            cell.1 += studies;
            cell.2 += instances;
            totals.studies += studies;
            totals.instances += instances;
        }
        let rows = cells
            .into_iter()
            .map(
                |((day, institution_id, (_, modality)), (institution, studies, instances))| {
                    VolumeRow {
                        day: format_date(day),
                        institution_id,
                        institution,
                        modality,
                        studies,
                        instances,
                    }
                },
            )
            .collect();
        Ok(Volumes { rows, totals })
    }

    async fn stats_turnaround(&self, scope: &StatsScope) -> Result<Turnaround> {
        let pools = sqlx::query_as::<_, (i64, String)>(
            "SELECT id, label FROM reader_pools WHERE alliance_id = COALESCE($1, alliance_id) \
             ORDER BY id",
        )
        .bind(scope.alliance_id)
        .fetch_all(&self.read)
        .await?;
        let sql = format!(
            "SELECT w.pool_id, w.ready_at, w.done_at, w.due_at, w.breached_at {}",
            signed_items_from(scope)
        );
        let items = sqlx::query_as::<_, (Option<i64>, i64, i64, i64, Option<i64>)>(&sql)
            .bind(scope.start_us())
            .bind(scope.end_us())
            .bind(scope.alliance_id)
            .fetch_all(&self.read)
            .await?;
        let clocks: Vec<(Option<i64>, Clock)> = items
            .into_iter()
            .map(|(pool, ready, done, due, breached_at)| {
                (
                    pool,
                    Clock {
                        minutes: minutes(done - ready),
                        breached: breached_at.is_some() || done > due,
                    },
                )
            })
            .collect();
        let of_pool = |pool: Option<i64>| -> Vec<&Clock> {
            clocks
                .iter()
                .filter(|(p, _)| *p == pool)
                .map(|(_, c)| c)
                .collect()
        };
        let mut rows: Vec<TurnaroundRow> = pools
            .into_iter()
            .map(|(id, label)| TurnaroundRow {
                pool_id: Some(id),
                pool: Some(label),
                figures: turnaround_of(&of_pool(Some(id))),
            })
            .collect();
        // items of a pool of another alliance cannot occur (pools are per alliance); items
        // signed without a pool get a row of their own
        let unrouted = of_pool(None);
        if !unrouted.is_empty() {
            rows.push(TurnaroundRow {
                pool_id: None,
                pool: None,
                figures: turnaround_of(&unrouted),
            });
        }
        let all: Vec<&Clock> = clocks.iter().map(|(_, c)| c).collect();
        Ok(Turnaround {
            rows,
            overall: turnaround_of(&all),
        })
    }

    async fn stats_remote_reads(&self, scope: &StatsScope) -> Result<RemoteReads> {
        let institutions = sqlx::query_as::<_, InstitutionSqlRow>(
            "SELECT id, name, level, parent_id, population FROM institutions \
             WHERE alliance_id = COALESCE($1, alliance_id) ORDER BY id",
        )
        .bind(scope.alliance_id)
        .fetch_all(&self.read)
        .await?;
        let sql = format!(
            "SELECT s.institution_id, COUNT(*) {} AND {GRASSROOTS_LEVELS} \
             GROUP BY s.institution_id",
            signed_items_from(scope)
        );
        let reads: HashMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(&sql)
            .bind(scope.start_us())
            .bind(scope.end_us())
            .bind(scope.alliance_id)
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .collect();
        let in_scope: Vec<&InstitutionSqlRow> = institutions
            .iter()
            .filter(|i| scope.has_institution(i.0))
            .collect();
        // (parent, population) of the institutions in scope
        let by_id: HashMap<i64, (Option<i64>, Option<i64>)> =
            in_scope.iter().map(|i| (i.0, (i.3, i.4))).collect();
        let outermost = |id: i64| -> bool {
            let mut seen = HashSet::from([id]);
            let mut up = by_id.get(&id).and_then(|(parent, _)| *parent);
            while let Some(p) = up {
                if !seen.insert(p) {
                    break;
                }
                match by_id.get(&p) {
                    Some((_, Some(_))) => return false,
                    Some((parent, None)) => up = *parent,
                    None => break,
                }
            }
            true
        };
        let population = in_scope
            .iter()
            .filter(|i| i.4.is_some() && outermost(i.0))
            .filter_map(|i| i.4)
            .reduce(|a, b| a + b);
        let rows: Vec<RemoteReadRow> = in_scope
            .iter()
            .filter(|i| matches!(i.2.as_str(), "township" | "village"))
            .map(|i| {
                let n = reads.get(&i.0).copied().unwrap_or(0);
                RemoteReadRow {
                    institution_id: i.0,
                    institution: i.1.clone(),
                    level: i.2.clone(),
                    population: i.4,
                    remote_reads: n,
                    per_10k: per_10k(n, i.4),
                }
            })
            .collect();
        let remote_reads = rows.iter().map(|r| r.remote_reads).sum();
        Ok(RemoteReads {
            rows,
            alliance: RemoteReadTotals {
                population,
                remote_reads,
                per_10k: per_10k(remote_reads, population),
            },
        })
    }

    async fn stats_grassroots(&self, scope: &StatsScope) -> Result<Grassroots> {
        let sql = format!(
            "SELECT w.done_at, w.identity_hash, s.patient_ref {} AND {GRASSROOTS_LEVELS}",
            signed_items_from(scope)
        );
        let items = sqlx::query_as::<_, (i64, Option<String>, i64)>(&sql)
            .bind(scope.start_us())
            .bind(scope.end_us())
            .bind(scope.alliance_id)
            .fetch_all(&self.read)
            .await?;
        let mut days: BTreeMap<i64, (HashSet<String>, i64)> = BTreeMap::new();
        let mut everyone = HashSet::new();
        for (done, identity, patient_ref) in &items {
            let who = identity
                .clone()
                .unwrap_or_else(|| format!("patient-record:{patient_ref}"));
            let d = days.entry(local_day(*done)).or_default();
            d.0.insert(who.clone());
            d.1 += 1;
            everyone.insert(who);
        }
        let rows = (scope.from_day..=scope.to_day)
            .map(|day| {
                let (patients, studies) = days
                    .get(&day)
                    .map(|(p, n)| (p.len() as i64, *n))
                    .unwrap_or((0, 0));
                GrassrootsRow {
                    day: format_date(day),
                    patients,
                    studies,
                }
            })
            .collect();
        Ok(Grassroots {
            rows,
            totals: GrassrootsTotals {
                patients: everyone.len() as i64,
                studies: items.len() as i64,
            },
        })
    }

    async fn stats_criticals(&self, scope: &StatsScope) -> Result<Criticals> {
        let sql = format!(
            "SELECT c.category, c.raised_at, c.ack_at FROM critical_values c \
             WHERE c.raised_at >= $1 AND c.raised_at < $2 \
             AND c.alliance_id = COALESCE($3, c.alliance_id){}",
            institutions_sql(scope, "c.institution_id")
        );
        let values = sqlx::query_as::<_, (String, i64, Option<i64>)>(&sql)
            .bind(scope.start_us())
            .bind(scope.end_us())
            .bind(scope.alliance_id)
            .fetch_all(&self.read)
            .await?;
        let mut by_category: BTreeMap<&str, Vec<(i64, Option<i64>)>> = BTreeMap::new();
        for (category, raised, ack) in &values {
            by_category
                .entry(category.as_str())
                .or_default()
                .push((*raised, *ack));
        }
        let all: Vec<(i64, Option<i64>)> = values.iter().map(|(_, r, a)| (*r, *a)).collect();
        Ok(Criticals {
            rows: by_category
                .into_iter()
                .map(|(category, v)| CriticalRow {
                    category: category.to_owned(),
                    figures: criticals_of(&v),
                })
                .collect(),
            overall: criticals_of(&all),
        })
    }

    async fn stats_recognition(&self, scope: &StatsScope) -> Result<Recognition> {
        let day = day_sql("a.at");
        let sql = format!(
            "SELECT {day} AS day, a.institution_id, i.name, COUNT(*) AS lookups \
             FROM audit_log a JOIN institutions i ON i.id = a.institution_id \
             WHERE a.action = 'recognition-lookup' AND a.outcome = 'success' \
             AND a.at >= $1 AND a.at < $2 AND i.alliance_id = COALESCE($3, i.alliance_id){} \
             GROUP BY {day}, a.institution_id, i.name",
            institutions_sql(scope, "a.institution_id")
        );
        let mut groups = sqlx::query_as::<_, (i64, i64, String, i64)>(&sql)
            .bind(scope.start_us())
            .bind(scope.end_us())
            .bind(scope.alliance_id)
            .fetch_all(&self.read)
            .await?;
        groups.sort_by_key(|g| (g.0, g.1));
        let lookups = groups.iter().map(|g| g.3).sum();
        Ok(Recognition {
            rows: groups
                .into_iter()
                .map(
                    |(day, institution_id, institution, lookups)| RecognitionRow {
                        day: format_date(day),
                        institution_id,
                        institution,
                        lookups,
                    },
                )
                .collect(),
            lookups,
        })
    }
}
