//! The writer thread of a SQLite file index: the group commit's transactions run on a
//! thread of their own, over a connection of their own (rusqlite), so that a group costs
//! one hand-off from the async runtime and back, not one per statement.
//!
//! Through sqlx, every statement is a round trip to sqlx's worker thread for the
//! connection: a C-STORE's instance insert took some eight (BEGIN, five or six statements,
//! COMMIT), each waiting for a thread to be woken and scheduled. On the 2-CPU machine of
//! `bench/ingest` a group of 1.4 instances took 2.3 ms, of which the commit (with its
//! fsync) was 0.6 ms. Here the statements run back to back on one thread, prepared once
//! and cached.
//!
//! The SQL is the same as the sqlx path's (the constants of `sql.rs`, `sql/ecg.rs`,
//! `sql/identity.rs`): parameters are `$1…$n` there, which SQLite reads as named
//! parameters; [`bind`] binds them by name, so a statement may use them in any order and
//! more than once. PostgreSQL (and an in-memory SQLite database, which a second
//! connection could not see) keep the sqlx steps; the conformance suite runs the same
//! tests against both paths.
//!
//! The writer also answers the ingest's look-up before an instance is stored
//! (`WriteJob::Lookup`), outside any transaction and before the next group: its page cache
//! is always current, where a reader connection's is made stale by every commit.
//!
//! The sqlx write pool's own connection (worklist, reports, administration) is a second
//! writer of the same file. Left to SQLite's write lock, the two starved each other: a
//! writer that finds the lock taken sleeps in SQLite's busy handler (1, 2, 5, 10 … ms)
//! while this thread, with instances queued, takes the lock again at once. Under a
//! continuous ingest a reader's claim waited tens of milliseconds at the 99th percentile
//! and seconds when the thread was saturated. So the two take turns ([`SqlxTurn`]): the
//! write pool marks when its connection is checked out and when it comes back (pool
//! hooks), and this thread starts no new group while it is out; the sqlx writer, asleep in
//! the busy handler for at most a millisecond or two, then finds the lock free.

use rusqlite::{Connection, OpenFlags, Row, ToSql};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

use super::group::{Done, GROUP_COMMIT_MAX, WriteJob, group_failed};
use super::{
    ADD_TO_NEW_STUDY, ADD_TO_SERIES, ADD_TO_STUDY, FIND_DUPLICATE, INGEST_LOOKUP, INSERT_INSTANCE,
    IngestLookupRow, OTHER_VERSIONS, SET_STUDY_MODALITIES, STUDY_MODALITIES, UPSERT_PATIENT,
    UPSERT_SERIES, UPSERT_STUDY, WrittenWith, check_new, check_study_owner, joined_modalities,
    modality_needs_refresh, now_us, patient_key_of,
};
use crate::catalog::{Error, IngestLookup, InsertOutcome, InstanceExtras, NewInstance, Result};
use crate::ecg::NewEcg;
use crate::identity::{AUDIT_GENESIS_HASH, AuditEntry, NewAuditEntry, audit_hash};

/// Open the writer's connection to `path` with `pragmas` and start its thread; the
/// thread ends when every sender is dropped. `turn`: whether the sqlx write pool's
/// connection is out (see the module documentation).
pub(super) fn spawn(
    path: &Path,
    pragmas: &[&str],
    turn: Arc<SqlxTurn>,
) -> Result<mpsc::Sender<WriteJob>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    for pragma in pragmas {
        conn.execute_batch(pragma).map_err(db_err)?;
    }
    conn.set_prepared_statement_cache_capacity(32);
    let (tx, rx) = mpsc::channel(4 * GROUP_COMMIT_MAX);
    std::thread::Builder::new()
        .name("dxhub-sqlite-writer".into())
        .spawn(move || Writer { conn, turn }.run(rx))
        .map_err(|e| Error::Unavailable(sqlx::Error::Io(e)))?;
    Ok(tx)
}

/// A rusqlite error as the catalog's: a uniqueness violation is a conflict, a busy or
/// locked database or an I/O failure means unavailable.
fn db_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode;
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            ErrorCode::ConstraintViolation
                if matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                return Error::Conflict(e.to_string());
            }
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen => {
                return Error::Unavailable(sqlx::Error::Io(std::io::Error::other(e)));
            }
            _ => {}
        }
    }
    Error::Other(sqlx::Error::Protocol(format!("sqlite: {e}")))
}

/// The names of the parameters `$1…$16`.
const PARAMS: [&str; 16] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16",
];

/// Bind `args` to the parameters `$1…$n` of `stmt`, by name; the statement must use each
/// of them and no other.
fn bind(stmt: &mut rusqlite::Statement<'_>, args: &[&dyn ToSql]) -> Result<()> {
    if args.len() > PARAMS.len() || stmt.parameter_count() != args.len() {
        return Err(Error::Invalid(format!(
            "statement takes {} parameters, {} given",
            stmt.parameter_count(),
            args.len()
        )));
    }
    for (name, arg) in PARAMS.iter().zip(args) {
        let index = stmt
            .parameter_index(name)
            .map_err(db_err)?
            .ok_or_else(|| Error::Invalid(format!("statement has no parameter {name}")))?;
        stmt.raw_bind_parameter(index, arg).map_err(db_err)?;
    }
    Ok(())
}

struct Writer {
    conn: Connection,
    turn: Arc<SqlxTurn>,
}

/// Whether the sqlx write pool's connection is checked out, and since when: set by the
/// pool's `before_acquire` hook (and `after_connect` for a new connection), cleared by
/// its `after_release` hook.
#[derive(Debug, Default)]
pub(super) struct SqlxTurn {
    out_since: Mutex<Option<Instant>>,
    back: Condvar,
}

impl SqlxTurn {
    /// A longer checkout is not waited for (a long transaction, or a connection closed
    /// without coming back): SQLite's lock and busy timeout keep the two apart then.
    const PATIENCE: Duration = Duration::from_secs(1);

    pub(super) fn checked_out(&self) {
        *self.out_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    pub(super) fn returned(&self) {
        *self.out_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.back.notify_all();
    }

    #[cfg(test)]
    pub(super) fn is_out(&self) -> bool {
        self.out_since.lock().unwrap().is_some()
    }

    /// Wait (a little) until the sqlx writer's connection is back in its pool.
    fn wait_for_return(&self) {
        let out = self.out_since.lock().unwrap_or_else(|p| p.into_inner());
        let _ = self.back.wait_timeout_while(out, Self::PATIENCE, |since| {
            since.is_some_and(|t| t.elapsed() < Self::PATIENCE)
        });
    }
}

impl Writer {
    /// Until the queue closes: take the first job and those queued behind it, write them
    /// as one group, reply to each.
    fn run(self, mut rx: mpsc::Receiver<WriteJob>) {
        while let Some(first) = rx.blocking_recv() {
            let mut jobs = vec![first];
            while jobs.len() < GROUP_COMMIT_MAX {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            // reads first, each on its own (autocommit), then the writes as one group
            let (reads, jobs): (Vec<_>, Vec<_>) = jobs.into_iter().partition(WriteJob::is_read);
            for job in reads {
                let r = self.write_step(&mut None, &job);
                job.reply(r);
            }
            if jobs.is_empty() {
                continue;
            }
            // the sqlx writer's turn first, if it is writing or waiting for the lock
            self.turn.wait_for_return();
            let results = match self.group_at_once(&jobs) {
                Some(results) => results,
                None => self.group_with_savepoints(&jobs),
            };
            for (job, result) in jobs.into_iter().zip(results) {
                job.reply(result);
            }
        }
    }

    fn batch(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(db_err)
    }

    /// Roll back the open transaction, if any (after a failed statement or commit).
    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn commit(&self) -> Result<()> {
        let r = self.batch("COMMIT");
        if r.is_err() {
            self.rollback();
        }
        r
    }

    /// The group in one transaction without savepoints; `None` (rolled back, nothing
    /// written) when a write failed or an instance was not inserted.
    fn group_at_once(&self, jobs: &[WriteJob]) -> Option<Vec<Result<Done>>> {
        self.batch("BEGIN IMMEDIATE").ok()?;
        let mut head = None;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            match self.write_step(&mut head, job) {
                Ok(done) if done.keep() => results.push(Ok(done)),
                _ => {
                    self.rollback();
                    return None;
                }
            }
        }
        if let Err(e) = self.commit() {
            return Some(group_failed(jobs.len(), &e));
        }
        Some(results)
    }

    /// The group in one transaction, each write in a savepoint.
    fn group_with_savepoints(&self, jobs: &[WriteJob]) -> Vec<Result<Done>> {
        let failed_all = |e: &Error| {
            self.rollback();
            group_failed(jobs.len(), e)
        };
        if let Err(e) = self.batch("BEGIN IMMEDIATE") {
            return failed_all(&e);
        }
        let mut head = None;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Err(e) = self.batch("SAVEPOINT dxhub_write") {
                return failed_all(&e);
            }
            let r = self.write_step(&mut head, job);
            let keep = matches!(&r, Ok(d) if d.keep());
            if !keep && let Err(e) = self.batch("ROLLBACK TO SAVEPOINT dxhub_write") {
                return failed_all(&e);
            }
            if let Err(e) = self.batch("RELEASE SAVEPOINT dxhub_write") {
                return failed_all(&e);
            }
            results.push(r);
        }
        if let Err(e) = self.commit() {
            return group_failed(jobs.len(), &e);
        }
        results
    }

    fn write_step(&self, head: &mut Option<(i64, String)>, job: &WriteJob) -> Result<Done> {
        match job {
            WriteJob::Audit(e, _) => self.audit(head, e).map(|a| Done::Audit(Box::new(a))),
            WriteJob::Ecg(new, key, _) => {
                let (id, fresh, _) = self.ecg(new, key.as_deref())?;
                Ok(Done::Ecg(id, fresh))
            }
            WriteJob::Lookup(l, _) => self
                .lookup(&l.0, &l.1, &l.2)
                .map(|found| Done::Lookup(Box::new(found))),
            WriteJob::InstanceWith(w, _) => {
                check_new(&w.0)?;
                self.instance_with(head, &w.0, &w.1)
                    .map(|written| Done::InstanceWith(Box::new(written)))
            }
        }
    }

    // ---- statements

    /// The first row of `sql` with `args`, if any.
    fn opt<T>(
        &self,
        sql: &str,
        args: &[&dyn ToSql],
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(db_err)?;
        bind(&mut stmt, args)?;
        let mut rows = stmt.raw_query();
        match rows.next().map_err(db_err)? {
            Some(row) => f(row).map(Some).map_err(db_err),
            None => Ok(None),
        }
    }

    /// The first row of `sql` with `args`; none is an error.
    fn one<T>(
        &self,
        sql: &str,
        args: &[&dyn ToSql],
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        self.opt(sql, args, f)?
            .ok_or_else(|| Error::NotFound("row not found".to_owned()))
    }

    /// Run `sql` (no rows) with `args`.
    fn exec(&self, sql: &str, args: &[&dyn ToSql]) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(db_err)?;
        bind(&mut stmt, args)?;
        stmt.raw_execute().map_err(db_err)?;
        Ok(())
    }

    /// [`crate::Catalog::ingest_lookup`] on the writer's connection.
    fn lookup(&self, study: &str, sop: &str, dataset_hash: &str) -> Result<IngestLookup> {
        self.one(INGEST_LOOKUP, &[&study, &sop, &dataset_hash], |r| {
            Ok(IngestLookupRow {
                study_owner: r.get(0)?,
                instance_owner: r.get(1)?,
                legacy_keyed: r.get(2)?,
                id: r.get(3)?,
                series_ref: r.get(4)?,
                sop_instance_uid: r.get(5)?,
                sop_class_uid: r.get(6)?,
                transfer_syntax_uid: r.get(7)?,
                instance_number: r.get(8)?,
                number_of_frames: r.get(9)?,
                size_bytes: r.get(10)?,
                sha256: r.get(11)?,
                dataset_hash: r.get(12)?,
                blob_key: r.get(13)?,
                source_ae: r.get(14)?,
                institution_id: r.get(15)?,
                received_at: r.get(16)?,
                series_instance_uid: r.get(17)?,
                study_instance_uid: r.get(18)?,
            })
        })
        .map(IngestLookupRow::into_lookup)
    }

    // ---- the writes (as the sqlx steps: `insert_steps`, `ecg_insert_steps`,
    // `append_audit_in`)

    fn instance_with(
        &self,
        head: &mut Option<(i64, String)>,
        new: &NewInstance,
        extras: &InstanceExtras,
    ) -> Result<WrittenWith> {
        let (outcome, inserted) = self.instance(new, extras.writable_institutions.as_deref())?;
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
            let (id, fresh, at) = self.ecg(&e, key.as_deref())?;
            written.ecg = Some((e, id, fresh, at));
            if !fresh {
                // as `instance_with_steps`: a duplicate of the existing record's instance
                let (instance_id, blob_key) = self.one(super::ecg::ECG_INSTANCE, &[&id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
                written.outcome = InsertOutcome::Duplicate {
                    instance_id,
                    blob_key,
                };
                written.inserted = false;
                return Ok(written);
            }
        }
        if let Some(a) = &extras.audit {
            written.audit = Some(self.audit(head, a)?);
        }
        Ok(written)
    }

    fn instance(
        &self,
        new: &NewInstance,
        writable: Option<&[i64]>,
    ) -> Result<(InsertOutcome, bool)> {
        let (p, st, se, inst) = (&new.patient, &new.study, &new.series, &new.instance);
        let now = now_us();

        // 1. patient
        let key = patient_key_of(new);
        let patient_ref: i64 = self.one(
            UPSERT_PATIENT,
            &[
                &key,
                &new.institution_id,
                &p.patient_id,
                &p.issuer_of_patient_id,
                &p.patient_name,
                &p.patient_birth_date,
                &p.patient_sex,
                &now,
                &p.patient_name.as_deref().map(dxhub_core::pn::groups_key),
                &p.patient_name
                    .as_deref()
                    .map(dxhub_core::pn::fuzzy_key)
                    .filter(|k| !k.is_empty()),
            ],
            |r| r.get(0),
        )?;

        // 2. study: create, or fill what it lacked
        let (study_id, listed_modalities, study_fills, study_owner): (
            i64,
            Option<String>,
            i64,
            Option<i64>,
        ) = self.one(
            UPSERT_STUDY,
            &[
                &st.study_instance_uid,
                &patient_ref,
                &new.institution_id,
                &st.study_date,
                &st.study_time,
                &st.accession_number,
                &st.study_description,
                &st.referring_physician_name,
                &st.study_id,
                &st.body_part_examined,
                &now,
                &st.attrs,
                &st.referring_physician_name
                    .as_deref()
                    .map(dxhub_core::pn::groups_key),
                &st.referring_physician_name
                    .as_deref()
                    .map(dxhub_core::pn::fuzzy_key)
                    .filter(|k| !k.is_empty()),
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let study_created = study_fills == 0;
        check_study_owner(writable, study_owner, &st.study_instance_uid)?;

        // 3. series
        let (series_id, series_study, series_fills): (i64, i64, i64) = self.one(
            UPSERT_SERIES,
            &[
                &study_id,
                &se.series_instance_uid,
                &se.modality,
                &se.series_number,
                &se.series_description,
                &se.body_part_examined,
                &se.series_date,
                &se.series_time,
                &now,
                &se.attrs,
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let series_created = series_fills == 0;
        if series_study != study_id {
            return Err(Error::Conflict(format!(
                "series {} belongs to another study than {}",
                se.series_instance_uid, st.study_instance_uid
            )));
        }

        // 4. instance
        let inserted: Option<(i64, i64)> = self.opt(
            INSERT_INSTANCE,
            &[
                &series_id,
                &inst.sop_instance_uid,
                &inst.sop_class_uid,
                &inst.transfer_syntax_uid,
                &inst.instance_number,
                &inst.number_of_frames,
                &inst.size_bytes,
                &inst.sha256,
                &inst.dataset_hash,
                &inst.blob_key,
                &inst.source_ae,
                &new.institution_id,
                &inst.received_at,
                &inst.metadata,
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let Some((instance_id, other_versions)) = inserted else {
            // already indexed: change nothing
            let (id, blob_key) = self.one(
                FIND_DUPLICATE,
                &[&inst.sop_instance_uid, &inst.dataset_hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            return Ok((
                InsertOutcome::Duplicate {
                    instance_id: id,
                    blob_key,
                },
                false,
            ));
        };

        // 5. counters: a SOP instance counts once per series/study
        let (previous_id, in_series, in_study): (Option<i64>, i64, i64) = if other_versions > 0 {
            self.one(
                OTHER_VERSIONS,
                &[&inst.sop_instance_uid, &instance_id, &series_id, &study_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?
        } else {
            (None, 0, 0)
        };
        self.exec(
            ADD_TO_SERIES,
            &[
                &series_id,
                &i64::from(in_series == 0),
                &inst.size_bytes,
                &now,
            ],
        )?;
        if study_created && series_created {
            // 6a. a new study's modalities are its one series'
            self.exec(
                ADD_TO_NEW_STUDY,
                &[
                    &study_id,
                    &i64::from(in_study == 0),
                    &inst.size_bytes,
                    &now,
                    &se.modality.as_deref().filter(|m| !m.is_empty()),
                ],
            )?;
        } else {
            self.exec(
                ADD_TO_STUDY,
                &[
                    &study_id,
                    &i64::from(series_created),
                    &i64::from(in_study == 0),
                    &inst.size_bytes,
                    &now,
                ],
            )?;
            // 6. modalities in study
            if series_created
                || modality_needs_refresh(listed_modalities.as_deref(), se.modality.as_deref())
            {
                self.refresh_modalities(study_id)?;
            }
        }

        let outcome = match previous_id {
            Some(previous_instance_id) => InsertOutcome::NewVersion {
                instance_id,
                previous_instance_id,
            },
            None => InsertOutcome::Inserted { instance_id },
        };
        Ok((outcome, true))
    }

    fn refresh_modalities(&self, study_id: i64) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(STUDY_MODALITIES).map_err(db_err)?;
        bind(&mut stmt, &[&study_id])?;
        let mut rows = stmt.raw_query();
        let mut modalities = Vec::new();
        while let Some(row) = rows.next().map_err(db_err)? {
            modalities.push(row.get::<_, String>(0).map_err(db_err)?);
        }
        drop(rows);
        self.exec(
            SET_STUDY_MODALITIES,
            &[&study_id, &joined_modalities(modalities)],
        )
    }

    fn ecg(&self, new: &NewEcg, idempotency_key: Option<&str>) -> Result<(i64, bool, i64)> {
        use super::ecg::{FIND_ECG_BY_CONTENT, INSERT_ECG, INSERT_IDEMPOTENCY_KEY};
        let now = now_us();
        let inserted: Option<i64> = self.opt(
            INSERT_ECG,
            &[
                &new.institution_id,
                &new.device_id,
                &new.instance_id,
                &new.study_instance_uid,
                &new.sop_instance_uid,
                &new.format,
                &new.content_sha256,
                &new.original_key,
                &new.original_size,
                &new.leads,
                &new.sample_rate_hz,
                &new.samples_per_lead,
                &new.acquired_at,
                &new.analysis,
                &i32::from(new.critical),
                &now,
            ],
            |r| r.get(0),
        )?;
        let (id, fresh) = match inserted {
            Some(id) => (id, true),
            None => (
                self.one(
                    FIND_ECG_BY_CONTENT,
                    &[&new.institution_id, &new.content_sha256],
                    |r| r.get(0),
                )?,
                false,
            ),
        };
        if let (Some(key), Some(institution_id)) = (idempotency_key, new.institution_id) {
            self.exec(
                INSERT_IDEMPOTENCY_KEY,
                &[&institution_id, &key, &new.content_sha256, &id, &now],
            )?;
        }
        Ok((id, fresh, now))
    }

    /// Append `e` to the audit chain; `head` is read at the group's first entry and
    /// stays where it was should the append fail.
    fn audit(&self, head: &mut Option<(i64, String)>, e: &NewAuditEntry) -> Result<AuditEntry> {
        use super::identity::{AUDIT_HEAD, INSERT_AUDIT};
        let entry = super::identity::checked_audit_entry(e)?;
        if head.is_none() {
            let h: Option<(i64, String)> =
                self.opt(AUDIT_HEAD, &[], |r| Ok((r.get(0)?, r.get(1)?)))?;
            *head = Some(match h {
                Some((id, hash)) => (id + 1, hash),
                None => (1, AUDIT_GENESIS_HASH.to_owned()),
            });
        }
        let (id, prev_hash) = head.clone().expect("audit head just read");
        let at = now_us();
        let hash = audit_hash(&prev_hash, id, at, &entry.fields());
        let row = self.one(
            INSERT_AUDIT,
            &[
                &id,
                &at,
                &entry.actor_kind,
                &entry.actor,
                &entry.institution_id,
                &entry.action,
                &entry.object_kind,
                &entry.object_id,
                &entry.outcome,
                &entry.client,
                &entry.request_id,
                &prev_hash,
                &hash,
            ],
            |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor_kind: r.get(2)?,
                    actor: r.get(3)?,
                    institution_id: r.get(4)?,
                    action: r.get(5)?,
                    object_kind: r.get(6)?,
                    object_id: r.get(7)?,
                    outcome: r.get(8)?,
                    client: r.get(9)?,
                    request_id: r.get(10)?,
                    prev_hash: r.get(11)?,
                    hash: r.get(12)?,
                })
            },
        )?;
        *head = Some((id + 1, hash));
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer thread waits while the sqlx writer's connection is out and goes on when
    /// it is back; a checkout older than the patience is not waited for.
    #[test]
    fn the_writer_waits_for_the_sqlx_writers_turn() {
        let turn = Arc::new(SqlxTurn::default());
        turn.wait_for_return(); // nothing out: at once
        turn.checked_out();
        let other = turn.clone();
        let returner = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            other.returned();
        });
        turn.wait_for_return();
        assert!(
            turn.out_since.lock().unwrap().is_none(),
            "went on only once the connection was back"
        );
        returner.join().unwrap();
        // a stale checkout (a connection closed without coming back) does not hold it up
        *turn.out_since.lock().unwrap() = Some(Instant::now() - 2 * SqlxTurn::PATIENCE);
        let t = Instant::now();
        turn.wait_for_return();
        assert!(t.elapsed() < SqlxTurn::PATIENCE);
    }

    #[test]
    fn binds_numbered_parameters_by_name() {
        let conn = Connection::open_in_memory().unwrap();
        // out of order and repeated, as in the shared SQL constants
        let mut stmt = conn.prepare("SELECT $2 || $1 || $2").unwrap();
        bind(&mut stmt, &[&"a", &"b"]).unwrap();
        let mut rows = stmt.raw_query();
        let got: String = rows.next().unwrap().unwrap().get(0).unwrap();
        assert_eq!(got, "bab");
        drop(rows);
        // every parameter must be given, and no more
        let mut stmt = conn.prepare("SELECT $1, $2").unwrap();
        assert!(bind(&mut stmt, &[&1]).is_err());
        assert!(bind(&mut stmt, &[&1, &2, &3]).is_err());
        // a parameter that is not `$N` is refused
        let mut stmt = conn.prepare("SELECT $1, :name").unwrap();
        assert!(bind(&mut stmt, &[&1, &2]).is_err());
    }

    #[test]
    fn unique_violations_are_conflicts() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k TEXT UNIQUE); INSERT INTO t VALUES ('x')")
            .unwrap();
        let e = conn.execute("INSERT INTO t VALUES ('x')", []).unwrap_err();
        assert!(matches!(db_err(e), Error::Conflict(_)));
    }
}
