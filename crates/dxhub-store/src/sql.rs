//! [`SqlCatalog`]: the [`Catalog`] over sqlx's `Any` driver, on SQLite or PostgreSQL.
//!
//! SQL is portable (`$n` parameters, `RETURNING`, `ON CONFLICT`, BIGINT ids and epoch-µs
//! times). On SQLite every write goes through one connection (a pool of one), so writers
//! queue in the pool instead of failing with `SQLITE_BUSY`; reads use a separate pool.
//! On PostgreSQL one pool serves both, and every write to a study first locks the study
//! row, so concurrent ingest into one study is serialised and its counters stay exact.

use std::sync::Once;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use dxhub_core::InstitutionLevel;
use dxhub_core::tenancy::{normalize_ae_title, validate_ae_title};
use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Transaction};

use crate::catalog::{
    AeTitle, Alliance, Catalog, CatalogOptions, Counts, Dialect, Error, IngestLookup,
    InsertOutcome, InsertedWith, InstanceExtras, InstanceRow, Institution, InstitutionUpdate,
    NewInstance, NewInstitution, PatientRow, Result, SeriesRow, StudyRow, patient_key,
};

use crate::ecg::{EcgCoverageRow, EcgInsert, EcgRow, EcgUpload, NewEcg};
use crate::identity::{
    AuditEntry, AuditFilter, AuditVerification, Device, LoginFailures, NewAuditEntry, NewDevice,
    NewSession, NewUser, Session, StudyFilter, StudyWorkflowRow, User,
};

mod ecg;
mod group;
mod identity;
mod qido;
mod report;
mod stats;
mod worklist;
mod writer;

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

type Tx = Transaction<'static, sqlx::Any>;

/// The SQL catalog (SQLite or PostgreSQL, chosen by URL).
#[derive(Clone, Debug)]
pub struct SqlCatalog {
    dialect: Dialect,
    /// SQLite: one connection. PostgreSQL: the same pool as `read`.
    write: AnyPool,
    read: AnyPool,
    /// SQLite: instance inserts, ECG records and audit appends go to one task that
    /// commits them in groups ([`group`]).
    writes: Option<tokio::sync::mpsc::Sender<group::WriteJob>>,
}

/// `(1, 2, 3)` for an SQL `IN`; `(NULL)` (matches nothing) when empty. Integers only, so
/// inlining them is safe.
fn in_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        return "(NULL)".to_owned();
    }
    let inner: Vec<String> = ids.iter().map(i64::to_string).collect();
    format!("({})", inner.join(", "))
}

/// An SQL condition: the study with id `study_id` and identity hash `identity` (column
/// expressions) is routed to reader `user_id` — a work item of it, or of another study of
/// the same patient, is in a pool the reader is a member of or is held by the reader
/// (`dxhub_core::policy::TargetScope::Study`). The id is an integer, inlined.
fn routed_sql(study_id: &str, identity: &str, user_id: i64) -> String {
    let mine = format!(
        "(w.claimed_by = {user_id} OR w.pool_id IN \
         (SELECT m.pool_id FROM pool_members m WHERE m.user_id = {user_id}))"
    );
    format!(
        "({study_id} IN (SELECT w.study_id FROM work_items w WHERE {mine}) \
         OR {identity} IN (SELECT w.identity_hash FROM work_items w \
         WHERE {mine} AND w.identity_hash IS NOT NULL))"
    )
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

/// The file path of a `sqlite:` URL, or `None` for an in-memory database.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory") {
        None
    } else {
        Some(path)
    }
}

// The page cache (16 MiB a connection, against SQLite's 2 MiB default) and memory-mapped
// reads (no copy through pread) keep the index's hot pages — the b-tree paths every insert
// walks — in memory.
const SQLITE_PRAGMAS_FULL: [&str; 6] = [
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = FULL",
    "PRAGMA cache_size = -16384",
    "PRAGMA mmap_size = 268435456",
];
const SQLITE_PRAGMAS_NORMAL: [&str; 6] = [
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA cache_size = -16384",
    "PRAGMA mmap_size = 268435456",
];

/// `turn`: the write pool's, marked at a new connection's first use as `before_acquire`
/// marks the reuse of an idle one (sqlx calls only `after_connect` for a new connection).
fn sqlite_pool_options(
    max: u32,
    pragmas: &'static [&'static str],
    turn: Option<std::sync::Arc<writer::SqlxTurn>>,
) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(Duration::from_secs(30))
        // a SQLite file connection does not go stale; the ping before each use was a
        // round trip to the connection's worker thread
        .test_before_acquire(false)
        .after_connect(move |conn: &mut AnyConnection, _meta| {
            let turn = turn.clone();
            Box::pin(async move {
                for pragma in pragmas {
                    sqlx::query(pragma).execute(&mut *conn).await?;
                }
                // from here the connection is in its first user's hands
                if let Some(turn) = turn {
                    turn.checked_out();
                }
                Ok(())
            })
        })
}

/// The SQLite write pool: one connection for the life of the hub (a file connection does
/// not go stale), which tells the writer thread through `turn` while it is out: marked
/// at an idle connection's reuse (`before_acquire`) and at a new one's first use
/// (`after_connect`, e.g. after a close on an error), cleared when it comes back.
async fn connect_write_pool(
    url: &str,
    pragmas: &'static [&'static str],
    turn: std::sync::Arc<writer::SqlxTurn>,
) -> std::result::Result<AnyPool, sqlx::Error> {
    let (out, back) = (turn.clone(), turn.clone());
    let pool = sqlite_pool_options(1, pragmas, Some(turn))
        .idle_timeout(None)
        .max_lifetime(None)
        .before_acquire(move |_conn, _meta| {
            out.checked_out();
            Box::pin(async { Ok(true) })
        })
        .after_release(move |_conn, _meta| {
            back.returned();
            Box::pin(async { Ok(true) })
        })
        // not `connect`: its test connection goes back without `after_release`
        .connect_lazy(url)?;
    drop(pool.acquire().await?);
    Ok(pool)
}

impl SqlCatalog {
    /// Connect to `sqlite:…` (the file and its directory are created if missing) or
    /// `postgres://…`. Does not migrate: call [`Catalog::migrate`].
    pub async fn connect(url: &str, opts: CatalogOptions) -> Result<Self> {
        install_drivers();
        let dialect = Dialect::from_url(url)?;
        match dialect {
            Dialect::Sqlite => {
                let pragmas = if opts.sqlite_synchronous_full {
                    &SQLITE_PRAGMAS_FULL
                } else {
                    &SQLITE_PRAGMAS_NORMAL
                };
                let Some(path) = sqlite_file(url) else {
                    // In memory: every connection would be its own database, so one pool
                    // of one connection that is never recycled.
                    let pool = sqlite_pool_options(1, pragmas, None)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None)
                        .connect(url)
                        .await
                        .map_err(Error::Unavailable)?;
                    // (no group commit: a second connection would be another database)
                    return Ok(Self {
                        dialect,
                        write: pool.clone(),
                        read: pool,
                        writes: None,
                    });
                };
                if let Some(dir) = std::path::Path::new(path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::Unavailable(sqlx::Error::Io(std::io::Error::new(
                            e.kind(),
                            format!("creating {}: {e}", dir.display()),
                        )))
                    })?;
                }
                let url = if url.contains("mode=") {
                    url.to_owned()
                } else if url.contains('?') {
                    format!("{url}&mode=rwc")
                } else {
                    format!("{url}?mode=rwc")
                };
                // The writer connects first, so WAL is on before readers open the file.
                // the write pool tells the writer thread when its connection is out
                let turn = std::sync::Arc::new(writer::SqlxTurn::default());
                let write = connect_write_pool(&url, pragmas, turn.clone())
                    .await
                    .map_err(Error::Unavailable)?;
                let read = sqlite_pool_options(opts.max_connections, pragmas, None)
                    .connect(&url)
                    .await
                    .map_err(Error::Unavailable)?;
                // The group commit's writer thread opens its own connection last.
                let writes = Some(writer::spawn(std::path::Path::new(path), pragmas, turn)?);
                Ok(Self {
                    dialect,
                    write,
                    read,
                    writes,
                })
            }
            Dialect::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(opts.max_connections.max(1))
                    .acquire_timeout(Duration::from_secs(30))
                    .connect(url)
                    .await
                    .map_err(Error::Unavailable)?;
                Ok(Self {
                    dialect,
                    write: pool.clone(),
                    read: pool,
                    writes: None,
                })
            }
        }
    }

    /// Send `job` (made with its reply channel) to the group commit's writer thread and
    /// wait for its outcome; `None` without that thread (PostgreSQL, in-memory SQLite).
    async fn group_write<T>(
        &self,
        job: impl FnOnce(tokio::sync::oneshot::Sender<Result<T>>) -> group::WriteJob,
    ) -> Option<Result<T>> {
        let writes = self.writes.as_ref()?;
        let (reply, outcome) = tokio::sync::oneshot::channel();
        if writes.send(job(reply)).await.is_err() {
            // the writer is gone and never saw the job: the sqlx path does it
            return None;
        }
        Some(outcome.await.unwrap_or_else(|_| {
            // the writer took the job and stopped (a panic) before answering: it may have
            // committed it, so it is not done again here (an audit entry would be
            // appended twice); the caller sees a failure and may retry, which the
            // duplicate rules of instances and ECGs make idempotent
            tracing::error!("the SQLite index writer stopped before answering a write");
            Err(Error::Unavailable(sqlx::Error::WorkerCrashed))
        }))
    }

    /// Close both pools.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// A write transaction. On SQLite `BEGIN IMMEDIATE` takes the write lock up front, so
    /// a transaction that reads before it writes cannot fail half-way with `SQLITE_BUSY`
    /// when another process writes the same file. On PostgreSQL the isolation level is
    /// pinned to READ COMMITTED whatever the server default: the counters rely on each
    /// statement after a row lock seeing what the previous lock holder committed.
    async fn begin_write(&self) -> Result<Tx> {
        let tx = match self.dialect {
            Dialect::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => {
                self.write
                    .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .await?
            }
        };
        Ok(tx)
    }
}

/// The checks of [`Catalog::insert_instance`] before any SQL.
fn check_new(new: &NewInstance) -> Result<()> {
    bad_uid("Study Instance UID", &new.study.study_instance_uid)?;
    bad_uid("Series Instance UID", &new.series.series_instance_uid)?;
    bad_uid("SOP Instance UID", &new.instance.sop_instance_uid)?;
    if new.instance.size_bytes < 0 {
        return Err(Error::Invalid("size_bytes is negative".to_owned()));
    }
    Ok(())
}

/// What [`SqlCatalog::instance_with_steps`] wrote, before the commit.
pub(super) struct WrittenWith {
    outcome: InsertOutcome,
    /// Whether the instance was inserted (not a duplicate, whose changes are dropped).
    inserted: bool,
    /// The record as written (its instance id set), its id, whether it is new, and when
    /// it was written.
    ecg: Option<(NewEcg, i64, bool, i64)>,
    audit: Option<AuditEntry>,
}

impl SqlCatalog {
    /// The statements of [`Catalog::insert_instance_with`] inside a write transaction.
    /// `head`: the audit chain's head, as the group commit keeps it.
    pub(super) async fn instance_with_steps(
        &self,
        tx: &mut Tx,
        head: &mut Option<(i64, String)>,
        new: &NewInstance,
        extras: &InstanceExtras,
    ) -> Result<WrittenWith> {
        let (outcome, inserted) =
            insert_steps(tx, new, extras.writable_institutions.as_deref()).await?;
        let mut written = WrittenWith {
            outcome,
            inserted,
            ecg: None,
            audit: None,
        };
        if !inserted {
            return Ok(written);
        }
        if let Some((e, key)) = &extras.ecg {
            let e = NewEcg {
                instance_id: written.outcome.instance_id(),
                ..e.clone()
            };
            let (id, fresh, at) = ecg::ecg_insert_steps(tx, &e, key.as_deref()).await?;
            written.ecg = Some((e, id, fresh, at));
            if !fresh {
                // the institution's record of this content was committed meanwhile (an
                // upload of it to another replica): this instance is a duplicate of that
                // record's, and nothing of this write stays
                let (instance_id, blob_key): (i64, String) = sqlx::query_as(ecg::ECG_INSTANCE)
                    .bind(id)
                    .fetch_one(&mut **tx)
                    .await?;
                written.outcome = InsertOutcome::Duplicate {
                    instance_id,
                    blob_key,
                };
                written.inserted = false;
                return Ok(written);
            }
        }
        if let Some(a) = &extras.audit {
            written.audit = Some(self.audit_step(tx, head, a).await?);
        }
        Ok(written)
    }
}

/// The statements of [`Catalog::insert_instance`] inside a write transaction; `false`
/// with the outcome when the transaction's changes are to be dropped (a duplicate).
async fn insert_steps(
    tx: &mut Tx,
    new: &NewInstance,
    writable: Option<&[i64]>,
) -> Result<(InsertOutcome, bool)> {
    let (p, st, se, inst) = (&new.patient, &new.study, &new.series, &new.instance);
    let now = now_us();

    // 1. patient
    let key = patient_key_of(new);
    let patient_ref: i64 = sqlx::query_scalar(UPSERT_PATIENT)
        .bind(&key)
        .bind(new.institution_id)
        .bind(&p.patient_id)
        .bind(&p.issuer_of_patient_id)
        .bind(&p.patient_name)
        .bind(&p.patient_birth_date)
        .bind(&p.patient_sex)
        .bind(now)
        .bind(p.patient_name.as_deref().map(dxhub_core::pn::groups_key))
        .bind(
            p.patient_name
                .as_deref()
                .map(dxhub_core::pn::fuzzy_key)
                .filter(|k| !k.is_empty()),
        )
        .fetch_one(&mut **tx)
        .await?;

    // 2. study: create, or fill what it lacked (which also locks it)
    let study = sqlx::query_as::<_, StudyUpsertRow>(UPSERT_STUDY)
        .bind(&st.study_instance_uid)
        .bind(patient_ref)
        .bind(new.institution_id)
        .bind(&st.study_date)
        .bind(&st.study_time)
        .bind(&st.accession_number)
        .bind(&st.study_description)
        .bind(&st.referring_physician_name)
        .bind(&st.study_id)
        .bind(&st.body_part_examined)
        .bind(now)
        .bind(&st.attrs)
        .bind(
            st.referring_physician_name
                .as_deref()
                .map(dxhub_core::pn::groups_key),
        )
        .bind(
            st.referring_physician_name
                .as_deref()
                .map(dxhub_core::pn::fuzzy_key)
                .filter(|k| !k.is_empty()),
        )
        .fetch_one(&mut **tx)
        .await?;
    let study_created = study.fills == 0;
    check_study_owner(writable, study.institution_id, &st.study_instance_uid)?;

    // 3. series
    let series = sqlx::query_as::<_, SeriesUpsertRow>(UPSERT_SERIES)
        .bind(study.id)
        .bind(&se.series_instance_uid)
        .bind(&se.modality)
        .bind(se.series_number)
        .bind(&se.series_description)
        .bind(&se.body_part_examined)
        .bind(&se.series_date)
        .bind(&se.series_time)
        .bind(now)
        .bind(&se.attrs)
        .fetch_one(&mut **tx)
        .await?;
    let series_created = series.fills == 0;
    if series.study_ref != study.id {
        return Err(Error::Conflict(format!(
            "series {} belongs to another study than {}",
            se.series_instance_uid, st.study_instance_uid
        )));
    }

    // 4. instance
    let inserted = sqlx::query_as::<_, InsertedInstanceRow>(INSERT_INSTANCE)
        .bind(series.id)
        .bind(&inst.sop_instance_uid)
        .bind(&inst.sop_class_uid)
        .bind(&inst.transfer_syntax_uid)
        .bind(inst.instance_number)
        .bind(inst.number_of_frames)
        .bind(inst.size_bytes)
        .bind(&inst.sha256)
        .bind(&inst.dataset_hash)
        .bind(&inst.blob_key)
        .bind(&inst.source_ae)
        .bind(new.institution_id)
        .bind(inst.received_at)
        .bind(&inst.metadata)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(InsertedInstanceRow {
        id: instance_id,
        other_versions,
    }) = inserted
    else {
        // Already indexed: change nothing (not even attributes filled above).
        let dup = sqlx::query_as::<_, DuplicateRow>(FIND_DUPLICATE)
            .bind(&inst.sop_instance_uid)
            .bind(&inst.dataset_hash)
            .fetch_one(&mut **tx)
            .await?;
        return Ok((
            InsertOutcome::Duplicate {
                instance_id: dup.id,
                blob_key: dup.blob_key,
            },
            false,
        ));
    };

    // 5. counters: a SOP instance counts once per series/study however many versions
    let others = if other_versions > 0 {
        sqlx::query_as::<_, OtherVersionsRow>(OTHER_VERSIONS)
            .bind(&inst.sop_instance_uid)
            .bind(instance_id)
            .bind(series.id)
            .bind(study.id)
            .fetch_one(&mut **tx)
            .await?
    } else {
        OtherVersionsRow {
            previous_id: None,
            in_series: 0,
            in_study: 0,
        }
    };
    sqlx::query(ADD_TO_SERIES)
        .bind(series.id)
        .bind(i64::from(others.in_series == 0))
        .bind(inst.size_bytes)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    if study_created && series_created {
        // 6a. a study created here has this one series: its modalities are the series'
        // (set with the counters, one statement instead of three)
        sqlx::query(ADD_TO_NEW_STUDY)
            .bind(study.id)
            .bind(i64::from(others.in_study == 0))
            .bind(inst.size_bytes)
            .bind(now)
            .bind(se.modality.as_deref().filter(|m| !m.is_empty()))
            .execute(&mut **tx)
            .await?;
    } else {
        sqlx::query(ADD_TO_STUDY)
            .bind(study.id)
            .bind(i64::from(series_created))
            .bind(i64::from(others.in_study == 0))
            .bind(inst.size_bytes)
            .bind(now)
            .execute(&mut **tx)
            .await?;

        // 6. modalities in study, when a series appeared or brought a modality not listed
        if series_created
            || modality_needs_refresh(study.modalities_in_study.as_deref(), se.modality.as_deref())
        {
            refresh_modalities(tx, study.id).await?;
        }
    }

    let outcome = match others.previous_id {
        Some(previous_instance_id) => InsertOutcome::NewVersion {
            instance_id,
            previous_instance_id,
        },
        None => InsertOutcome::Inserted { instance_id },
    };
    Ok((outcome, true))
}

// ---- tenancy SQL ----

const INSERT_ALLIANCE: &str =
    "INSERT INTO alliances (name, created_at) VALUES ($1, $2) RETURNING id, name, created_at";
const LIST_ALLIANCES: &str = "SELECT id, name, created_at FROM alliances ORDER BY name";
const FIND_ALLIANCE_ID: &str = "SELECT id FROM alliances WHERE name = $1";

/// Institution rows before `level` is parsed.
#[derive(sqlx::FromRow)]
struct InstitutionDbRow {
    id: i64,
    alliance_id: i64,
    alliance_name: String,
    name: String,
    level: String,
    parent_id: Option<i64>,
    parent_name: Option<String>,
    population: Option<i64>,
    created_at: i64,
}

impl TryFrom<InstitutionDbRow> for Institution {
    type Error = Error;
    fn try_from(r: InstitutionDbRow) -> Result<Self> {
        let level = r
            .level
            .parse::<InstitutionLevel>()
            .map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Institution {
            id: r.id,
            alliance_id: r.alliance_id,
            alliance_name: r.alliance_name,
            name: r.name,
            level,
            parent_id: r.parent_id,
            parent_name: r.parent_name,
            population: r.population,
            created_at: r.created_at,
        })
    }
}

macro_rules! institution_select {
    () => {
        "SELECT i.id, i.alliance_id, a.name AS alliance_name, i.name, i.level, i.parent_id, \
         p.name AS parent_name, i.population, i.created_at \
         FROM institutions i \
         JOIN alliances a ON a.id = i.alliance_id \
         LEFT JOIN institutions p ON p.id = i.parent_id "
    };
}
const LIST_INSTITUTIONS: &str = concat!(institution_select!(), "ORDER BY i.id");
const FIND_INSTITUTION: &str = concat!(institution_select!(), "WHERE i.name = $1");
const GET_INSTITUTION: &str = concat!(institution_select!(), "WHERE i.id = $1");
const INSERT_INSTITUTION: &str = "INSERT INTO institutions \
     (alliance_id, name, level, parent_id, population, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";

macro_rules! ae_title_select {
    () => {
        "SELECT t.id, t.institution_id, i.name AS institution_name, t.ae_title, t.host, \
         t.created_at \
         FROM ae_titles t JOIN institutions i ON i.id = t.institution_id "
    };
}
const LIST_AE_TITLES: &str = concat!(ae_title_select!(), "ORDER BY t.ae_title");
const FIND_AE_TITLE: &str = concat!(ae_title_select!(), "WHERE t.ae_title = $1");
const GET_AE_TITLE: &str = concat!(ae_title_select!(), "WHERE t.id = $1");
const FIND_INSTITUTION_ID: &str = "SELECT id FROM institutions WHERE name = $1";
const DELETE_AE_TITLE: &str = "DELETE FROM ae_titles WHERE id = $1";
const RENAME_INSTITUTION: &str = "UPDATE institutions SET name = $2 WHERE id = $1";
const SET_INSTITUTION_POPULATION: &str = "UPDATE institutions SET population = $2 WHERE id = $1";
const INSERT_AE_TITLE: &str = "INSERT INTO ae_titles (institution_id, ae_title, host, created_at) \
     VALUES ($1, $2, $3, $4) RETURNING id";

#[derive(sqlx::FromRow)]
struct ParentRow {
    id: i64,
    alliance_id: i64,
    level: String,
}
const FIND_PARENT: &str = "SELECT id, alliance_id, level FROM institutions WHERE name = $1";

/// A unique violation becomes `Conflict(msg)`; other errors map as usual.
fn conflict_as(e: sqlx::Error, msg: impl FnOnce() -> String) -> Error {
    match Error::from(e) {
        Error::Conflict(_) => Error::Conflict(msg()),
        other => other,
    }
}

fn required(what: &str, value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        Err(Error::Invalid(format!("{what} is empty")))
    } else {
        Ok(v.to_owned())
    }
}

// ---- instance SQL ----

macro_rules! instance_select {
    () => {
        "SELECT i.id, i.series_ref, i.sop_instance_uid, i.sop_class_uid, \
         i.transfer_syntax_uid, i.instance_number, i.number_of_frames, i.size_bytes, i.sha256, \
         i.dataset_hash, i.blob_key, i.source_ae, i.institution_id, i.received_at, \
         se.series_instance_uid, st.study_instance_uid \
         FROM instances i \
         JOIN series se ON se.id = i.series_ref \
         JOIN studies st ON st.id = se.study_ref "
    };
}
const FIND_INSTANCE_VERSION: &str = concat!(
    instance_select!(),
    "WHERE i.sop_instance_uid = $1 AND i.dataset_hash = $2"
);
/// `find_instance_version` and `owners` in one statement: one row always, the version's
/// columns NULL when there is none.
const INGEST_LOOKUP: &str = concat!(
    "SELECT (SELECT institution_id FROM studies WHERE study_instance_uid = $1) AS study_owner, \
     (SELECT institution_id FROM instances WHERE sop_instance_uid = $2 \
      ORDER BY id DESC LIMIT 1) AS instance_owner, \
     (SELECT COUNT(*) FROM instances WHERE sop_instance_uid = $2 \
      AND substr(dataset_hash, 1, 7) = 'sha256:') AS legacy_keyed, \
     v.id, v.series_ref, v.sop_instance_uid, v.sop_class_uid, v.transfer_syntax_uid, \
     v.instance_number, v.number_of_frames, v.size_bytes, v.sha256, v.dataset_hash, \
     v.blob_key, v.source_ae, v.institution_id, v.received_at, v.series_instance_uid, \
     v.study_instance_uid \
     FROM (SELECT 1 AS one) o LEFT JOIN (",
    instance_select!(),
    "WHERE i.sop_instance_uid = $2 AND i.dataset_hash = $3 LIMIT 1) v ON 1 = 1"
);

/// A row of [`INGEST_LOOKUP`].
#[derive(sqlx::FromRow)]
struct IngestLookupRow {
    study_owner: Option<i64>,
    instance_owner: Option<i64>,
    legacy_keyed: i64,
    id: Option<i64>,
    series_ref: Option<i64>,
    sop_instance_uid: Option<String>,
    sop_class_uid: Option<String>,
    transfer_syntax_uid: Option<String>,
    instance_number: Option<i64>,
    number_of_frames: Option<i64>,
    size_bytes: Option<i64>,
    sha256: Option<String>,
    dataset_hash: Option<String>,
    blob_key: Option<String>,
    source_ae: Option<String>,
    institution_id: Option<i64>,
    received_at: Option<i64>,
    series_instance_uid: Option<String>,
    study_instance_uid: Option<String>,
}

impl IngestLookupRow {
    fn into_lookup(self) -> IngestLookup {
        let owners = (self.study_owner, self.instance_owner);
        let legacy_keyed = self.legacy_keyed > 0;
        let version = (|| {
            Some(InstanceRow {
                id: self.id?,
                series_ref: self.series_ref?,
                sop_instance_uid: self.sop_instance_uid?,
                sop_class_uid: self.sop_class_uid?,
                transfer_syntax_uid: self.transfer_syntax_uid?,
                instance_number: self.instance_number,
                number_of_frames: self.number_of_frames,
                size_bytes: self.size_bytes?,
                sha256: self.sha256?,
                dataset_hash: self.dataset_hash?,
                blob_key: self.blob_key?,
                source_ae: self.source_ae,
                institution_id: self.institution_id,
                received_at: self.received_at?,
                series_instance_uid: self.series_instance_uid?,
                study_instance_uid: self.study_instance_uid?,
            })
        })();
        IngestLookup {
            version,
            owners,
            legacy_keyed,
        }
    }
}

const GET_INSTANCE: &str = concat!(
    instance_select!(),
    "WHERE i.sop_instance_uid = $1 ORDER BY i.id DESC LIMIT 1"
);
const INSTANCE_VERSIONS: &str = concat!(
    instance_select!(),
    "WHERE i.sop_instance_uid = $1 ORDER BY i.id"
);
const LIST_INSTANCES_OF_SERIES: &str = concat!(
    instance_select!(),
    "WHERE se.series_instance_uid = $1 \
     AND i.id = (SELECT MAX(v.id) FROM instances v WHERE v.sop_instance_uid = i.sop_instance_uid) \
     ORDER BY i.instance_number IS NULL, i.instance_number, i.id"
);
const LIST_INSTANCE_ROWS: &str =
    concat!(instance_select!(), "WHERE i.id > $1 ORDER BY i.id LIMIT $2");

const GET_PATIENT: &str = "SELECT id, patient_key, institution_id, patient_id, \
     issuer_of_patient_id, patient_name, patient_birth_date, patient_sex, created_at, updated_at \
     FROM patients WHERE id = $1";

const GET_STUDY: &str = "SELECT st.id, st.study_instance_uid, st.patient_ref, st.institution_id, \
     st.study_date, st.study_time, st.accession_number, st.study_description, \
     st.referring_physician_name, st.study_id, st.body_part_examined, st.modalities_in_study, \
     st.num_series, st.num_instances, st.size_bytes, st.received_at, st.updated_at, \
     p.patient_id, p.issuer_of_patient_id, p.patient_name, p.patient_birth_date, p.patient_sex \
     FROM studies st JOIN patients p ON p.id = st.patient_ref \
     WHERE st.study_instance_uid = $1";
/// `GET_STUDY` without its condition: [`Catalog::list_studies`] appends its own.
const LIST_STUDIES_SELECT: &str = "SELECT st.id, st.study_instance_uid, st.patient_ref, \
     st.institution_id, st.study_date, st.study_time, st.accession_number, st.study_description, \
     st.referring_physician_name, st.study_id, st.body_part_examined, st.modalities_in_study, \
     st.num_series, st.num_instances, st.size_bytes, st.received_at, st.updated_at, \
     p.patient_id, p.issuer_of_patient_id, p.patient_name, p.patient_birth_date, p.patient_sex \
     FROM studies st JOIN patients p ON p.id = st.patient_ref WHERE st.id ";
const STUDY_LIST_DEFAULT: i64 = 100;
const STUDY_LIST_MAX: i64 = 1000;

macro_rules! series_select {
    () => {
        "SELECT se.id, se.study_ref, se.series_instance_uid, se.modality, se.series_number, \
         se.series_description, se.body_part_examined, se.series_date, se.series_time, \
         se.num_instances, se.size_bytes, se.received_at, se.updated_at, st.study_instance_uid \
         FROM series se JOIN studies st ON st.id = se.study_ref "
    };
}
const GET_SERIES: &str = concat!(series_select!(), "WHERE se.series_instance_uid = $1");
const LIST_SERIES_OF_STUDY: &str = concat!(
    series_select!(),
    "WHERE st.study_instance_uid = $1 \
     ORDER BY se.series_number IS NULL, se.series_number, se.id"
);

const COUNTS: &str = "SELECT \
     (SELECT COUNT(*) FROM patients) AS patients, \
     (SELECT COUNT(*) FROM studies) AS studies, \
     (SELECT COUNT(*) FROM series) AS series, \
     (SELECT COUNT(DISTINCT sop_instance_uid) FROM instances) AS instances, \
     (SELECT COUNT(*) FROM instances) AS instance_versions";

// insert_instance, in order

/// Fills attributes the patient lacked; a patient row is shared by all its studies.
const UPSERT_PATIENT: &str = "INSERT INTO patients \
     (patient_key, institution_id, patient_id, issuer_of_patient_id, patient_name, \
      patient_birth_date, patient_sex, created_at, updated_at, patient_name_groups, \
      patient_name_fuzzy) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) \
     ON CONFLICT (patient_key) DO UPDATE SET \
      patient_name = COALESCE(patients.patient_name, excluded.patient_name), \
      patient_name_groups = COALESCE(patients.patient_name_groups, excluded.patient_name_groups), \
      patient_name_fuzzy = COALESCE(patients.patient_name_fuzzy, excluded.patient_name_fuzzy), \
      patient_birth_date = COALESCE(patients.patient_birth_date, excluded.patient_birth_date), \
      patient_sex = COALESCE(patients.patient_sex, excluded.patient_sex), \
      updated_at = excluded.updated_at \
     RETURNING id";

/// Create the study, or fill what it lacks (which also takes its row lock on PostgreSQL
/// for the rest of the transaction): one statement. `fills` is 0 when it created the row.
const UPSERT_STUDY: &str = "INSERT INTO studies \
     (study_instance_uid, patient_ref, institution_id, study_date, study_time, accession_number, \
      study_description, referring_physician_name, study_id, body_part_examined, received_at, \
      updated_at, attrs, referring_physician_groups, referring_physician_fuzzy) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14) \
     ON CONFLICT (study_instance_uid) DO UPDATE SET \
      institution_id = COALESCE(studies.institution_id, excluded.institution_id), \
      study_date = COALESCE(studies.study_date, excluded.study_date), \
      study_time = COALESCE(studies.study_time, excluded.study_time), \
      accession_number = COALESCE(studies.accession_number, excluded.accession_number), \
      study_description = COALESCE(studies.study_description, excluded.study_description), \
      referring_physician_name = \
        COALESCE(studies.referring_physician_name, excluded.referring_physician_name), \
      referring_physician_groups = \
        COALESCE(studies.referring_physician_groups, excluded.referring_physician_groups), \
      referring_physician_fuzzy = \
        COALESCE(studies.referring_physician_fuzzy, excluded.referring_physician_fuzzy), \
      study_id = COALESCE(studies.study_id, excluded.study_id), \
      body_part_examined = COALESCE(studies.body_part_examined, excluded.body_part_examined), \
      updated_at = excluded.updated_at, \
      attrs = COALESCE(studies.attrs, excluded.attrs), \
      fills = studies.fills + 1 \
     RETURNING id, modalities_in_study, fills, institution_id";

#[derive(sqlx::FromRow)]
struct StudyUpsertRow {
    id: i64,
    modalities_in_study: Option<String>,
    fills: i64,
    institution_id: Option<i64>,
}

/// Create the series, or fill what it lacks: one statement. `fills` is 0 when it created
/// the row.
const UPSERT_SERIES: &str = "INSERT INTO series \
     (study_ref, series_instance_uid, modality, series_number, series_description, \
      body_part_examined, series_date, series_time, received_at, updated_at, attrs) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10) \
     ON CONFLICT (series_instance_uid) DO UPDATE SET \
      modality = COALESCE(series.modality, excluded.modality), \
      series_number = COALESCE(series.series_number, excluded.series_number), \
      series_description = COALESCE(series.series_description, excluded.series_description), \
      body_part_examined = COALESCE(series.body_part_examined, excluded.body_part_examined), \
      series_date = COALESCE(series.series_date, excluded.series_date), \
      series_time = COALESCE(series.series_time, excluded.series_time), \
      updated_at = excluded.updated_at, \
      attrs = COALESCE(series.attrs, excluded.attrs), \
      fills = series.fills + 1 \
     RETURNING id, study_ref, fills";

#[derive(sqlx::FromRow)]
struct SeriesUpsertRow {
    id: i64,
    study_ref: i64,
    fills: i64,
}

const INSERT_INSTANCE: &str = "INSERT INTO instances \
     (series_ref, sop_instance_uid, sop_class_uid, transfer_syntax_uid, instance_number, \
      number_of_frames, size_bytes, sha256, dataset_hash, blob_key, source_ae, institution_id, \
      received_at, metadata) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT (sop_instance_uid, dataset_hash) DO NOTHING \
     RETURNING id, (SELECT COUNT(*) FROM instances o \
       WHERE o.sop_instance_uid = $2 AND o.id <> instances.id) AS other_versions";

/// A row of [`INSERT_INSTANCE`]: the new id, and whether the SOP instance has other
/// versions (when it has none, the usual case, their count need not be asked).
#[derive(sqlx::FromRow)]
struct InsertedInstanceRow {
    id: i64,
    other_versions: i64,
}

#[derive(sqlx::FromRow)]
struct DuplicateRow {
    id: i64,
    blob_key: String,
}
const FIND_DUPLICATE: &str =
    "SELECT id, blob_key FROM instances WHERE sop_instance_uid = $1 AND dataset_hash = $2";

/// Other versions of a SOP instance besides row `$2`: the newest overall, and how many
/// are in series `$3` and in study `$4` (which decides whether the counts grow).
const OTHER_VERSIONS: &str = "SELECT \
     (SELECT MAX(o.id) FROM instances o WHERE o.sop_instance_uid = $1 AND o.id <> $2) \
       AS previous_id, \
     (SELECT COUNT(*) FROM instances o WHERE o.sop_instance_uid = $1 AND o.id <> $2 \
       AND o.series_ref = $3) AS in_series, \
     (SELECT COUNT(*) FROM instances o JOIN series os ON os.id = o.series_ref \
       WHERE o.sop_instance_uid = $1 AND o.id <> $2 AND os.study_ref = $4) AS in_study";

#[derive(sqlx::FromRow)]
struct OtherVersionsRow {
    previous_id: Option<i64>,
    in_series: i64,
    in_study: i64,
}

const ADD_TO_SERIES: &str = "UPDATE series SET num_instances = num_instances + $2, \
     size_bytes = size_bytes + $3, updated_at = $4 WHERE id = $1";
const ADD_TO_STUDY: &str = "UPDATE studies SET num_series = num_series + $2, \
     num_instances = num_instances + $3, size_bytes = size_bytes + $4, updated_at = $5 \
     WHERE id = $1";

const ADD_TO_NEW_STUDY: &str = "UPDATE studies SET num_series = num_series + 1, \
     num_instances = num_instances + $2, size_bytes = size_bytes + $3, updated_at = $4, \
     modalities_in_study = $5 WHERE id = $1";

const STUDY_MODALITIES: &str =
    "SELECT DISTINCT modality FROM series WHERE study_ref = $1 AND modality IS NOT NULL";
const SET_STUDY_MODALITIES: &str = "UPDATE studies SET modalities_in_study = $2 WHERE id = $1";

// delete_instance_row

#[derive(sqlx::FromRow)]
struct DeleteTargetRow {
    series_ref: i64,
    study_ref: i64,
    sop_instance_uid: String,
    size_bytes: i64,
}
const DELETE_TARGET: &str = "SELECT i.series_ref, se.study_ref, i.sop_instance_uid, i.size_bytes \
     FROM instances i JOIN series se ON se.id = i.series_ref WHERE i.id = $1";
const LOCK_STUDY: &str = "UPDATE studies SET updated_at = $2 WHERE id = $1";
const DELETE_INSTANCE: &str = "DELETE FROM instances WHERE id = $1";
const COUNT_SERIES_ROWS: &str = "SELECT COUNT(*) FROM instances WHERE series_ref = $1";
const DELETE_SERIES: &str = "DELETE FROM series WHERE id = $1";
const COUNT_STUDY_SERIES: &str = "SELECT COUNT(*) FROM series WHERE study_ref = $1";
const DELETE_STUDY: &str = "DELETE FROM studies WHERE id = $1";

/// Recompute `modalities_in_study` from the study's series (the caller holds the study
/// row lock, so every committed series is visible).
async fn refresh_modalities(tx: &mut Tx, study_id: i64) -> Result<()> {
    let modalities: Vec<String> = sqlx::query_scalar::<_, String>(STUDY_MODALITIES)
        .bind(study_id)
        .fetch_all(&mut **tx)
        .await?;
    sqlx::query(SET_STUDY_MODALITIES)
        .bind(study_id)
        .bind(joined_modalities(modalities))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The patient key of an instance's patient. An empty Patient ID identifies nobody: such
/// a study gets a patient of its own rather than being merged with every other anonymous
/// study of the institution.
fn patient_key_of(new: &NewInstance) -> String {
    let p = &new.patient;
    if p.patient_id.trim().is_empty() {
        format!(
            "{}|anonymous-study|{}",
            new.institution_id.unwrap_or(0),
            new.study.study_instance_uid
        )
    } else {
        patient_key(
            new.institution_id,
            p.issuer_of_patient_id.as_deref(),
            &p.patient_id,
        )
    }
}

/// Refuse to add to a study held by an institution outside `writable` (`None`: any).
fn check_study_owner(writable: Option<&[i64]>, owner: Option<i64>, study_uid: &str) -> Result<()> {
    match (writable, owner) {
        (Some(w), Some(o)) if !w.contains(&o) => Err(Error::Forbidden(format!(
            "study {study_uid} belongs to an institution outside the sender's reach"
        ))),
        _ => Ok(()),
    }
}

/// Whether a series' modality is missing from the study's listed modalities.
fn modality_needs_refresh(listed: Option<&str>, modality: Option<&str>) -> bool {
    let listed = listed.unwrap_or("");
    modality.is_some_and(|m| !m.is_empty() && !listed.split('\\').any(|l| l == m))
}

/// `modalities_in_study` from the modalities of a study's series.
fn joined_modalities(mut modalities: Vec<String>) -> Option<String> {
    modalities.retain(|m| !m.is_empty());
    modalities.sort();
    modalities.dedup();
    (!modalities.is_empty()).then(|| modalities.join("\\"))
}

fn bad_uid(what: &str, uid: &str) -> Result<()> {
    if uid.trim().is_empty() {
        Err(Error::Invalid(format!("{what} is empty")))
    } else {
        Ok(())
    }
}

impl SqlCatalog {
    /// The studies whose name keys are still to be computed, a batch after an id. The
    /// partial index `studies_name_keys_unfilled` (migration 14) answers it, so the
    /// question asked at every start costs an index probe, not a pass over `studies`.
    #[doc(hidden)]
    pub const UNFILLED_NAME_KEYS: &'static str = "SELECT id, referring_physician_name FROM studies \
         WHERE id > $1 AND referring_physician_name IS NOT NULL \
         AND referring_physician_groups IS NULL ORDER BY id LIMIT 500";

    /// Compute the name-matching keys of studies indexed before the migration that added
    /// them (20261124000013): NFKC is not SQL, so the hub fills them at start-up, in
    /// batches, once.
    async fn fill_derived_name_keys(&self) -> Result<()> {
        // by id (a primary-key range per batch, not a scan per batch)
        let mut after = 0i64;
        loop {
            let rows: Vec<(i64, String)> = sqlx::query_as(Self::UNFILLED_NAME_KEYS)
                .bind(after)
                .fetch_all(&self.write)
                .await?;
            let Some(&(last, _)) = rows.last() else {
                return Ok(());
            };
            after = last;
            let mut tx = self.write.begin().await?;
            for (id, name) in rows {
                let fuzzy = Some(dxhub_core::pn::fuzzy_key(&name)).filter(|k| !k.is_empty());
                sqlx::query(
                    "UPDATE studies SET referring_physician_groups = $1, \
                     referring_physician_fuzzy = $2 WHERE id = $3",
                )
                .bind(dxhub_core::pn::groups_key(&name))
                .bind(fuzzy)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
    }
}

#[async_trait]
impl Catalog for SqlCatalog {
    async fn migrate(&self) -> Result<()> {
        let migrator = match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATOR,
            Dialect::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator.run(&self.write).await.map_err(Error::Migrate)?;
        self.fill_derived_name_keys().await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    fn dialect(&self) -> Dialect {
        self.dialect
    }

    async fn add_alliance(&self, name: &str) -> Result<Alliance> {
        let name = required("alliance name", name)?;
        // the alliance and its default reader pools and routing rules, together
        let now = now_us();
        let mut tx = self.begin_write().await?;
        let alliance = sqlx::query_as::<_, Alliance>(INSERT_ALLIANCE)
            .bind(&name)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict_as(e, || format!("alliance {name:?} already exists")))?;
        worklist::create_default_routes(&mut tx, alliance.id, now).await?;
        tx.commit().await?;
        Ok(alliance)
    }

    async fn list_alliances(&self) -> Result<Vec<Alliance>> {
        Ok(sqlx::query_as::<_, Alliance>(LIST_ALLIANCES)
            .fetch_all(&self.read)
            .await?)
    }

    async fn add_institution(&self, new: &NewInstitution) -> Result<Institution> {
        let name = required("institution name", &new.name)?;
        if new.population.is_some_and(|p| p < 0) {
            return Err(Error::Invalid("population is negative".to_owned()));
        }
        let mut tx = self.begin_write().await?;
        let alliance_id: i64 = sqlx::query_scalar(FIND_ALLIANCE_ID)
            .bind(new.alliance.trim())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::NotFound(format!("alliance {:?}", new.alliance)))?;
        let parent_id = match &new.parent {
            None => None,
            Some(parent) => {
                let p = sqlx::query_as::<_, ParentRow>(FIND_PARENT)
                    .bind(parent.trim())
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("parent institution {parent:?}")))?;
                if p.alliance_id != alliance_id {
                    return Err(Error::Invalid(format!(
                        "parent institution {parent:?} belongs to another alliance"
                    )));
                }
                let parent_level = p
                    .level
                    .parse::<InstitutionLevel>()
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                if !parent_level.may_parent(new.level) {
                    return Err(Error::Invalid(format!(
                        "a {parent_level} institution cannot head a {} institution",
                        new.level
                    )));
                }
                Some(p.id)
            }
        };
        let id: i64 = sqlx::query_scalar(INSERT_INSTITUTION)
            .bind(alliance_id)
            .bind(&name)
            .bind(new.level.as_str())
            .bind(parent_id)
            .bind(new.population)
            .bind(now_us())
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict_as(e, || format!("institution {name:?} already exists")))?;
        let row = sqlx::query_as::<_, InstitutionDbRow>(GET_INSTITUTION)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row.try_into()
    }

    async fn list_institutions(&self) -> Result<Vec<Institution>> {
        sqlx::query_as::<_, InstitutionDbRow>(LIST_INSTITUTIONS)
            .fetch_all(&self.read)
            .await?
            .into_iter()
            .map(Institution::try_from)
            .collect()
    }

    async fn institution_former_names(&self, id: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM institution_former_names WHERE institution_id = $1 \
             ORDER BY until_us, name",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?)
    }

    async fn find_institution(&self, name: &str) -> Result<Option<Institution>> {
        sqlx::query_as::<_, InstitutionDbRow>(FIND_INSTITUTION)
            .bind(name.trim())
            .fetch_optional(&self.read)
            .await?
            .map(Institution::try_from)
            .transpose()
    }

    async fn add_ae_title(
        &self,
        institution: &str,
        ae_title: &str,
        host: Option<&str>,
    ) -> Result<AeTitle> {
        let ae = validate_ae_title(ae_title)
            .map_err(|e| Error::Invalid(format!("AE title {ae_title:?}: {e}")))?;
        let host = host.map(str::trim).filter(|h| !h.is_empty());
        let mut tx = self.begin_write().await?;
        let institution_id: i64 = sqlx::query_scalar(FIND_INSTITUTION_ID)
            .bind(institution.trim())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::NotFound(format!("institution {institution:?}")))?;
        let id: i64 = sqlx::query_scalar(INSERT_AE_TITLE)
            .bind(institution_id)
            .bind(&ae)
            .bind(host)
            .bind(now_us())
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| conflict_as(e, || format!("AE title {ae:?} is already registered")))?;
        let row = sqlx::query_as::<_, AeTitle>(GET_AE_TITLE)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn list_ae_titles(&self) -> Result<Vec<AeTitle>> {
        Ok(sqlx::query_as::<_, AeTitle>(LIST_AE_TITLES)
            .fetch_all(&self.read)
            .await?)
    }

    async fn find_ae_title(&self, ae_title: &str) -> Result<Option<AeTitle>> {
        Ok(sqlx::query_as::<_, AeTitle>(FIND_AE_TITLE)
            .bind(normalize_ae_title(ae_title))
            .fetch_optional(&self.read)
            .await?)
    }

    async fn update_institution(&self, id: i64, update: &InstitutionUpdate) -> Result<Institution> {
        let name = update
            .name
            .as_deref()
            .map(|n| required("institution name", n))
            .transpose()?;
        if update.population.flatten().is_some_and(|p| p < 0) {
            return Err(Error::Invalid("population is negative".to_owned()));
        }
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query_as::<_, InstitutionDbRow>(GET_INSTITUTION)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(Error::NotFound(format!("institution {id}")));
        }
        if let Some(name) = &name {
            sqlx::query(RENAME_INSTITUTION)
                .bind(id)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(|e| conflict_as(e, || format!("institution {name:?} already exists")))?;
            if let Some(old) = exists.as_ref().map(|e| &e.name).filter(|o| *o != name) {
                sqlx::query(
                    "INSERT INTO institution_former_names (institution_id, name, until_us) \
                     VALUES ($1, $2, $3) ON CONFLICT (institution_id, name) \
                     DO UPDATE SET until_us = excluded.until_us",
                )
                .bind(id)
                .bind(old)
                .bind(now_us())
                .execute(&mut *tx)
                .await?;
            }
        }
        if let (Some(parent), Some(me)) = (&update.parent, &exists) {
            let p = sqlx::query_as::<_, ParentRow>(FIND_PARENT)
                .bind(parent.trim())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::NotFound(format!("parent institution {parent:?}")))?;
            if p.id == id {
                return Err(Error::Invalid(
                    "an institution cannot head itself".to_owned(),
                ));
            }
            if p.alliance_id != me.alliance_id {
                return Err(Error::Invalid(format!(
                    "parent institution {parent:?} belongs to another alliance"
                )));
            }
            let parent_level = p
                .level
                .parse::<InstitutionLevel>()
                .map_err(|e| Error::Invalid(e.to_string()))?;
            let level = me
                .level
                .parse::<InstitutionLevel>()
                .map_err(|e| Error::Invalid(e.to_string()))?;
            // levels strictly decrease downwards, so a move can never make a cycle
            if !parent_level.may_parent(level) {
                return Err(Error::Invalid(format!(
                    "a {parent_level} institution cannot head a {level} institution"
                )));
            }
            sqlx::query("UPDATE institutions SET parent_id = $2 WHERE id = $1")
                .bind(id)
                .bind(p.id)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(population) = update.population {
            sqlx::query(SET_INSTITUTION_POPULATION)
                .bind(id)
                .bind(population)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query_as::<_, InstitutionDbRow>(GET_INSTITUTION)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row.try_into()
    }

    async fn get_ae_title(&self, id: i64) -> Result<Option<AeTitle>> {
        Ok(sqlx::query_as::<_, AeTitle>(GET_AE_TITLE)
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn delete_ae_title(&self, id: i64) -> Result<()> {
        let done = sqlx::query(DELETE_AE_TITLE)
            .bind(id)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("AE title {id}")));
        }
        Ok(())
    }

    async fn find_instance_version(
        &self,
        sop_instance_uid: &str,
        dataset_hash: &str,
    ) -> Result<Option<InstanceRow>> {
        Ok(sqlx::query_as::<_, InstanceRow>(FIND_INSTANCE_VERSION)
            .bind(sop_instance_uid)
            .bind(dataset_hash)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn insert_instance(&self, new: &NewInstance) -> Result<InsertOutcome> {
        Ok(self
            .insert_instance_with(new, &InstanceExtras::default())
            .await?
            .outcome)
    }

    async fn insert_instance_with(
        &self,
        new: &NewInstance,
        extras: &InstanceExtras,
    ) -> Result<InsertedWith> {
        check_new(new)?;
        let written = match self
            .group_write(|reply| {
                group::WriteJob::InstanceWith(Box::new((new.clone(), extras.clone())), reply)
            })
            .await
        {
            Some(r) => r?,
            None => {
                let mut tx = self.begin_write().await?;
                let mut head = None;
                let w = self
                    .instance_with_steps(&mut tx, &mut head, new, extras)
                    .await?;
                if w.inserted {
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                w
            }
        };
        let ecg = match written.ecg {
            // a new record is what was just written: no read-back
            Some((e, id, true, at)) => Some(EcgInsert::Inserted(ecg::inserted_row(
                &e,
                id,
                at,
                &new.instance.blob_key,
            ))),
            Some((_, id, false, _)) => {
                Some(EcgInsert::Existing(self.ecg_find(id).await?.ok_or_else(
                    || Error::NotFound(format!("ECG {id} after its insert")),
                )?))
            }
            None => None,
        };
        Ok(InsertedWith {
            outcome: written.outcome,
            ecg,
            audit: written.audit,
        })
    }

    async fn get_instance(&self, sop_instance_uid: &str) -> Result<Option<InstanceRow>> {
        Ok(sqlx::query_as::<_, InstanceRow>(GET_INSTANCE)
            .bind(sop_instance_uid)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn instance_versions(&self, sop_instance_uid: &str) -> Result<Vec<InstanceRow>> {
        Ok(sqlx::query_as::<_, InstanceRow>(INSTANCE_VERSIONS)
            .bind(sop_instance_uid)
            .fetch_all(&self.read)
            .await?)
    }

    async fn get_patient(&self, id: i64) -> Result<Option<PatientRow>> {
        Ok(sqlx::query_as::<_, PatientRow>(GET_PATIENT)
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn list_studies(&self, filter: &StudyFilter) -> Result<Vec<StudyRow>> {
        let limit = filter
            .limit
            .unwrap_or(STUDY_LIST_DEFAULT)
            .clamp(0, STUDY_LIST_MAX);
        let ids = filter.institution_ids.as_deref();
        if limit == 0 || ids.is_some_and(<[i64]>::is_empty) {
            return Ok(Vec::new());
        }
        let mut sql = LIST_STUDIES_SELECT.to_owned();
        sql.push_str(if filter.newest_first { "< $1" } else { "> $1" });
        let mut next = 2;
        if let Some(ids) = ids {
            let marks: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 2)).collect();
            sql.push_str(&format!(" AND st.institution_id IN ({})", marks.join(", ")));
            next += ids.len();
        }
        if let Some(user) = filter.routed_to {
            sql.push_str(" AND ");
            sql.push_str(&routed_sql("st.id", "st.identity_hash", user));
        }
        let (order, start) = if filter.newest_first {
            ("DESC", i64::MAX)
        } else {
            ("ASC", 0)
        };
        sql.push_str(&format!(" ORDER BY st.id {order} LIMIT ${next}"));
        let mut q = sqlx::query_as::<_, StudyRow>(&sql).bind(filter.after_id.unwrap_or(start));
        for id in ids.unwrap_or(&[]) {
            q = q.bind(*id);
        }
        Ok(q.bind(limit).fetch_all(&self.read).await?)
    }

    async fn study_workflows(&self, study_ids: &[i64]) -> Result<Vec<StudyWorkflowRow>> {
        if study_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT st.id AS study_id, w.id AS work_item_id, w.state AS work_item_state, \
             w.priority, w.critical, w.due_at, w.done_at, r.id AS report_id, \
             r.state AS report_state, r.signed_at \
             FROM studies st LEFT JOIN work_items w ON w.study_id = st.id \
             LEFT JOIN reports r ON r.study_id = st.id WHERE st.id IN {}",
            in_list(study_ids)
        );
        Ok(sqlx::query_as::<_, StudyWorkflowRow>(&sql)
            .fetch_all(&self.read)
            .await?)
    }

    async fn get_study(&self, study_instance_uid: &str) -> Result<Option<StudyRow>> {
        Ok(sqlx::query_as::<_, StudyRow>(GET_STUDY)
            .bind(study_instance_uid)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn get_series(&self, series_instance_uid: &str) -> Result<Option<SeriesRow>> {
        Ok(sqlx::query_as::<_, SeriesRow>(GET_SERIES)
            .bind(series_instance_uid)
            .fetch_optional(&self.read)
            .await?)
    }

    async fn list_series_of_study(&self, study_instance_uid: &str) -> Result<Vec<SeriesRow>> {
        Ok(sqlx::query_as::<_, SeriesRow>(LIST_SERIES_OF_STUDY)
            .bind(study_instance_uid)
            .fetch_all(&self.read)
            .await?)
    }

    async fn list_instances_of_series(
        &self,
        series_instance_uid: &str,
    ) -> Result<Vec<InstanceRow>> {
        Ok(sqlx::query_as::<_, InstanceRow>(LIST_INSTANCES_OF_SERIES)
            .bind(series_instance_uid)
            .fetch_all(&self.read)
            .await?)
    }

    async fn owners(
        &self,
        study_instance_uid: &str,
        sop_instance_uid: &str,
    ) -> Result<(Option<i64>, Option<i64>)> {
        let row: (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT institution_id FROM studies WHERE study_instance_uid = $1), \
             (SELECT institution_id FROM instances WHERE sop_instance_uid = $2 \
              ORDER BY id DESC LIMIT 1)",
        )
        .bind(study_instance_uid)
        .bind(sop_instance_uid)
        .fetch_one(&self.read)
        .await?;
        Ok(row)
    }

    async fn ingest_lookup(
        &self,
        study_instance_uid: &str,
        sop_instance_uid: &str,
        dataset_hash: &str,
    ) -> Result<IngestLookup> {
        let args = Box::new((
            study_instance_uid.to_owned(),
            sop_instance_uid.to_owned(),
            dataset_hash.to_owned(),
        ));
        if let Some(r) = self
            .group_write(|reply| group::WriteJob::Lookup(args, reply))
            .await
        {
            return r;
        }
        let row = sqlx::query_as::<_, IngestLookupRow>(INGEST_LOOKUP)
            .bind(study_instance_uid)
            .bind(sop_instance_uid)
            .bind(dataset_hash)
            .fetch_one(&self.read)
            .await?;
        Ok(row.into_lookup())
    }

    async fn qido(&self, query: &crate::QidoQuery) -> Result<Vec<crate::QidoRow>> {
        self.qido_search(query).await
    }

    async fn wado_instances(
        &self,
        scope: &crate::InstanceScope,
        with_metadata: bool,
    ) -> Result<Vec<crate::WadoInstance>> {
        self.wado_list(scope, with_metadata).await
    }

    async fn set_instance_metadata(&self, instance_id: i64, metadata: &str) -> Result<()> {
        sqlx::query("UPDATE instances SET metadata = $2 WHERE id = $1")
            .bind(instance_id)
            .bind(metadata)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn counts(&self) -> Result<Counts> {
        Ok(sqlx::query_as::<_, Counts>(COUNTS)
            .fetch_one(&self.read)
            .await?)
    }

    async fn list_instance_rows(&self, after_id: i64, limit: i64) -> Result<Vec<InstanceRow>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as::<_, InstanceRow>(LIST_INSTANCE_ROWS)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    async fn delete_instance_row(&self, id: i64) -> Result<()> {
        let now = now_us();
        let mut tx = self.begin_write().await?;
        let target = sqlx::query_as::<_, DeleteTargetRow>(DELETE_TARGET)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::NotFound(format!("instance row {id}")))?;
        // Lock the study first, as insert_instance does, so the two never deadlock.
        sqlx::query(LOCK_STUDY)
            .bind(target.study_ref)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query(DELETE_INSTANCE)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            // deleted concurrently between our read and the lock
            return Err(Error::NotFound(format!("instance row {id}")));
        }
        let others = sqlx::query_as::<_, OtherVersionsRow>(OTHER_VERSIONS)
            .bind(&target.sop_instance_uid)
            .bind(id)
            .bind(target.series_ref)
            .bind(target.study_ref)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(ADD_TO_SERIES)
            .bind(target.series_ref)
            .bind(-i64::from(others.in_series == 0))
            .bind(-target.size_bytes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let left_in_series: i64 = sqlx::query_scalar(COUNT_SERIES_ROWS)
            .bind(target.series_ref)
            .fetch_one(&mut *tx)
            .await?;
        let series_removed = left_in_series == 0;
        if series_removed {
            sqlx::query(DELETE_SERIES)
                .bind(target.series_ref)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(ADD_TO_STUDY)
            .bind(target.study_ref)
            .bind(-i64::from(series_removed))
            .bind(-i64::from(others.in_study == 0))
            .bind(-target.size_bytes)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if series_removed {
            let left_series: i64 = sqlx::query_scalar(COUNT_STUDY_SERIES)
                .bind(target.study_ref)
                .fetch_one(&mut *tx)
                .await?;
            if left_series == 0 {
                sqlx::query(DELETE_STUDY)
                    .bind(target.study_ref)
                    .execute(&mut *tx)
                    .await?;
            } else {
                refresh_modalities(&mut tx, target.study_ref).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    // identity: bodies in `sql/identity.rs`

    async fn add_user(&self, new: &NewUser) -> Result<User> {
        self.id_add_user(new).await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.id_list_users().await
    }

    async fn find_user_by_login(&self, login: &str) -> Result<Option<User>> {
        self.id_find_user_by_login(login).await
    }

    async fn get_user(&self, id: i64) -> Result<Option<User>> {
        self.id_get_user(id).await
    }

    async fn record_login_failure(&self, user_id: i64) -> Result<LoginFailures> {
        self.id_record_login_failure(user_id).await
    }

    async fn reset_login_failures(&self, user_id: i64) -> Result<()> {
        self.id_reset_login_failures(user_id).await
    }

    async fn set_totp_secret(&self, user_id: i64, secret: &str) -> Result<()> {
        self.id_set_totp_secret(user_id, secret).await
    }

    async fn pending_totp_secret(&self, user_id: i64) -> Result<Option<String>> {
        self.id_pending_totp_secret(user_id).await
    }

    async fn confirm_totp(&self, user_id: i64) -> Result<()> {
        self.id_confirm_totp(user_id).await
    }

    async fn reset_totp(&self, user_id: i64) -> Result<()> {
        self.id_reset_totp(user_id).await
    }

    async fn disable_user(&self, user_id: i64) -> Result<()> {
        self.id_disable_user(user_id).await
    }

    async fn set_user_role(&self, user_id: i64, role: dxhub_core::Role) -> Result<User> {
        self.id_set_user_role(user_id, role).await
    }

    async fn set_user_password(&self, user_id: i64, password_hash: &str) -> Result<()> {
        self.id_set_user_password(user_id, password_hash).await
    }

    async fn create_session(&self, new: &NewSession) -> Result<Session> {
        self.id_create_session(new).await
    }

    async fn find_session(&self, token_hash: &str) -> Result<Option<Session>> {
        self.id_find_session(token_hash).await
    }

    async fn touch_session(&self, id: i64) -> Result<()> {
        self.id_touch_session(id).await
    }

    async fn revoke_session(&self, id: i64) -> Result<()> {
        self.id_revoke_session(id).await
    }

    async fn add_device(&self, new: &NewDevice) -> Result<Device> {
        self.id_add_device(new).await
    }

    async fn list_devices(&self) -> Result<Vec<Device>> {
        self.id_list_devices().await
    }

    async fn find_device_by_token_hash(&self, token_hash: &str) -> Result<Option<Device>> {
        self.id_find_device_by_token_hash(token_hash).await
    }

    async fn touch_device(&self, id: i64) -> Result<()> {
        self.id_touch_device(id).await
    }

    async fn revoke_device(&self, id: i64) -> Result<()> {
        self.id_revoke_device(id).await
    }

    async fn insert_ecg(&self, new: &NewEcg, idempotency_key: Option<&str>) -> Result<EcgInsert> {
        self.ecg_insert(new, idempotency_key).await
    }

    async fn list_ecg_originals(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<crate::ecg::EcgOriginal>> {
        self.ecg_list_originals(after_id, limit).await
    }

    async fn find_ecg(&self, id: i64) -> Result<Option<EcgRow>> {
        self.ecg_find(id).await
    }

    async fn find_ecg_by_sop_instance(&self, sop_instance_uid: &str) -> Result<Option<EcgRow>> {
        self.ecg_find_by_sop_instance(sop_instance_uid).await
    }

    async fn find_ecgs_by_study(&self, study_instance_uid: &str) -> Result<Vec<EcgRow>> {
        self.ecg_find_by_study(study_instance_uid).await
    }

    async fn find_ecg_by_content(
        &self,
        institution_id: Option<i64>,
        content_sha256: &str,
    ) -> Result<Option<EcgRow>> {
        self.ecg_find_by_content(institution_id, content_sha256)
            .await
    }

    async fn find_ecg_by_idempotency_key(
        &self,
        institution_id: i64,
        key: &str,
    ) -> Result<Option<(String, EcgRow)>> {
        self.ecg_find_by_idempotency_key(institution_id, key).await
    }

    async fn create_ecg_upload(&self, upload: &EcgUpload) -> Result<()> {
        self.ecg_create_upload(upload).await
    }

    async fn find_ecg_upload(&self, id: &str) -> Result<Option<EcgUpload>> {
        self.ecg_find_upload(id).await
    }

    async fn set_ecg_upload_offset(&self, id: &str, from: i64, to: i64) -> Result<bool> {
        self.ecg_set_upload_offset(id, from, to).await
    }

    async fn finish_ecg_upload(
        &self,
        id: &str,
        ecg_id: Option<i64>,
        error: Option<&str>,
    ) -> Result<()> {
        self.ecg_finish_upload(id, ecg_id, error).await
    }

    async fn delete_expired_ecg_uploads(&self, now_us: i64) -> Result<Vec<String>> {
        self.ecg_delete_expired_uploads(now_us).await
    }

    async fn ecg_coverage(&self) -> Result<Vec<EcgCoverageRow>> {
        self.ecg_coverage_rows().await
    }

    async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry> {
        if let Some(result) = self
            .group_write(|reply| group::WriteJob::Audit(Box::new(entry.clone()), reply))
            .await
        {
            return result;
        }
        self.id_append_audit(entry).await
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.id_list_audit(filter).await
    }

    async fn verify_audit_chain(&self) -> Result<AuditVerification> {
        self.id_verify_audit_chain().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        assert_eq!(
            sqlite_file("sqlite:///data/x.db?mode=rwc"),
            Some("/data/x.db")
        );
        assert_eq!(sqlite_file("sqlite://rel/x.db"), Some("rel/x.db"));
        assert_eq!(sqlite_file("sqlite:x.db"), Some("x.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
    }

    #[test]
    fn dialect_from_url() {
        assert_eq!(
            Dialect::from_url("sqlite://a.db").ok(),
            Some(Dialect::Sqlite)
        );
        assert_eq!(
            Dialect::from_url("postgresql://u@h/db").ok(),
            Some(Dialect::Postgres)
        );
        assert!(Dialect::from_url("mysql://u@h/db").is_err());
    }

    /// A writer that takes a job and stops without answering (a panic after COMMIT, say):
    /// the write fails as unavailable and is not done a second time through sqlx; a
    /// writer that is gone before taking the job leaves it to sqlx.
    #[tokio::test]
    async fn a_write_the_writer_dropped_is_not_redone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("index.db").display());
        let mut catalog = SqlCatalog::connect(&url, CatalogOptions::default())
            .await
            .unwrap();
        catalog.migrate().await.unwrap();
        let entry = NewAuditEntry {
            actor_kind: "cli".into(),
            actor: "test".into(),
            action: "study-read".into(),
            outcome: "success".into(),
            ..Default::default()
        };
        // takes every job and drops it unanswered
        let (tx, mut rx) = tokio::sync::mpsc::channel::<group::WriteJob>(4);
        let taker = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        catalog.writes = Some(tx);
        let r = catalog.append_audit(&entry).await;
        assert!(matches!(r, Err(Error::Unavailable(_))), "{r:?}");
        let listed = catalog.list_audit(&AuditFilter::default()).await.unwrap();
        assert!(
            listed.is_empty(),
            "not appended by the fallback: {listed:?}"
        );
        // the writer gone before the job: the sqlx path appends it, once
        let (tx, rx) = tokio::sync::mpsc::channel::<group::WriteJob>(4);
        drop(rx);
        catalog.writes = Some(tx);
        catalog.append_audit(&entry).await.unwrap();
        let listed = catalog.list_audit(&AuditFilter::default()).await.unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        taker.abort();
    }

    /// The write pool marks its connection out at every use: a new connection's first
    /// (after a close, e.g. on an error) as much as an idle one's reuse.
    #[tokio::test]
    async fn the_write_pools_turn_covers_a_new_connections_first_use() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        install_drivers();
        let turn = std::sync::Arc::new(writer::SqlxTurn::default());
        let pool = connect_write_pool(&url, &SQLITE_PRAGMAS_FULL, turn.clone())
            .await
            .unwrap();
        // sqlx returns a connection to its pool on a task of its own
        let returned = || async {
            for _ in 0..100 {
                if !turn.is_out() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            false
        };
        assert!(returned().await, "back in the pool after connecting");
        for round in 0..2 {
            let mut conn = pool.acquire().await.unwrap();
            assert!(turn.is_out(), "round {round}: out while in use");
            sqlx::query("SELECT 1").execute(&mut *conn).await.unwrap();
            if round == 0 {
                // closed instead of returned: the next use opens a new connection
                conn.close().await.unwrap();
                turn.returned();
            } else {
                drop(conn);
                assert!(returned().await, "returned");
            }
        }
    }

    #[test]
    fn patient_keys_do_not_collide() {
        assert_eq!(patient_key(None, None, "P1"), "0||P1");
        assert_eq!(patient_key(Some(7), Some("HIS"), "P1"), "7|HIS|P1");
        assert_ne!(
            patient_key(Some(1), Some("a|b"), "c"),
            patient_key(Some(1), Some("a"), "b|c")
        );
    }
}
