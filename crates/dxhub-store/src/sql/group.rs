//! Group commit of the SQLite index's frequent writes: instance inserts, ECG records and
//! audit appends.
//!
//! Every commit of a durable (`synchronous=FULL`) SQLite database waits for an fsync, and
//! the single writer connection makes concurrent writers take turns: one commit per write
//! caps throughput at the disk's fsync rate. One task takes every such write; those queued
//! while a transaction commits are committed together by the next one, in arrival order
//! (audit entries are chained in that order). An ECG upload makes all three kinds of
//! write in turn, so twenty village devices uploading at once share a few commits instead
//! of sixty.
//!
//! A group runs first without savepoints, which is what nearly always happens. Should one
//! write fail, or an instance turn out a duplicate (a conflict to roll back), that
//! transaction is rolled back and the group redone with a savepoint per write, so the
//! failure is that write's alone. Every caller gets its outcome only after the commit that
//! made it durable; a failed commit is reported to all, never retried blindly.

use tokio::sync::{mpsc, oneshot};

use super::{SqlCatalog, Tx, WrittenWith, check_new};
use crate::catalog::{Error, InstanceExtras, NewInstance, Result};
use crate::ecg::NewEcg;
use crate::identity::{AuditEntry, NewAuditEntry};

/// Most writes committed by one transaction.
pub(super) const GROUP_COMMIT_MAX: usize = 64;

type Reply<T> = oneshot::Sender<Result<T>>;

/// A write for the group-commit task and where its outcome goes.
pub(super) enum WriteJob {
    Audit(Box<NewAuditEntry>, Reply<AuditEntry>),
    /// The record, its idempotency key; the outcome is `(id, newly inserted)`.
    Ecg(Box<NewEcg>, Option<String>, Reply<(i64, bool)>),
    /// An instance and what is written with it (`Catalog::insert_instance_with`; plain
    /// `insert_instance` too, with nothing else).
    InstanceWith(Box<(NewInstance, InstanceExtras)>, Reply<WrittenWith>),
}

/// What a write did.
enum Done {
    Audit(Box<AuditEntry>),
    Ecg(i64, bool),
    InstanceWith(Box<WrittenWith>),
}

impl Done {
    /// Whether the write stays: an instance that was not inserted (a duplicate) is rolled
    /// back to its savepoint.
    fn keep(&self) -> bool {
        match self {
            Done::InstanceWith(w) => w.inserted,
            Done::Audit(_) | Done::Ecg(..) => true,
        }
    }
}

fn mismatch<T>() -> Result<T> {
    Err(Error::Unavailable(sqlx::Error::Protocol(
        "group commit: outcome of another kind of write".into(),
    )))
}

impl WriteJob {
    fn reply(self, r: Result<Done>) {
        match self {
            WriteJob::Audit(_, tx) => {
                let _ = tx.send(r.and_then(|d| match d {
                    Done::Audit(a) => Ok(*a),
                    _ => mismatch(),
                }));
            }
            WriteJob::Ecg(_, _, tx) => {
                let _ = tx.send(r.and_then(|d| match d {
                    Done::Ecg(id, fresh) => Ok((id, fresh)),
                    _ => mismatch(),
                }));
            }
            WriteJob::InstanceWith(_, tx) => {
                let _ = tx.send(r.and_then(|d| match d {
                    Done::InstanceWith(w) => Ok(*w),
                    _ => mismatch(),
                }));
            }
        }
    }
}

/// The group-commit task: until the queue closes.
pub(super) async fn group_commit(catalog: SqlCatalog, mut rx: mpsc::Receiver<WriteJob>) {
    while let Some(jobs) = next_group(&mut rx).await {
        let results = match catalog.write_group_at_once(&jobs).await {
            Some(results) => results,
            None => catalog.write_group_savepoints(&jobs).await,
        };
        for (job, result) in jobs.into_iter().zip(results) {
            job.reply(result);
        }
    }
}

/// The jobs of the next group commit: the first to arrive and those queued behind it, at
/// most [`GROUP_COMMIT_MAX`]; `None` once the queue is closed.
async fn next_group<J>(rx: &mut mpsc::Receiver<J>) -> Option<Vec<J>> {
    let mut jobs = vec![rx.recv().await?];
    while jobs.len() < GROUP_COMMIT_MAX {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

/// The outcome of every job of a group whose transaction failed as a whole.
fn group_failed<T>(jobs: usize, e: &dyn std::fmt::Display) -> Vec<Result<T>> {
    (0..jobs)
        .map(|_| {
            Err(Error::Unavailable(sqlx::Error::Protocol(format!(
                "group commit: {e}"
            ))))
        })
        .collect()
}

impl SqlCatalog {
    /// One write inside the group's transaction. `head` is the audit chain's head, read
    /// at the first audit entry of the group.
    async fn write_step(
        &self,
        tx: &mut Tx,
        head: &mut Option<(i64, String)>,
        job: &WriteJob,
    ) -> Result<Done> {
        match job {
            WriteJob::Audit(e, _) => self
                .audit_step(tx, head, e)
                .await
                .map(|a| Done::Audit(Box::new(a))),
            WriteJob::Ecg(new, key, _) => {
                let (id, fresh, _) = super::ecg::ecg_insert_steps(tx, new, key.as_deref()).await?;
                Ok(Done::Ecg(id, fresh))
            }
            WriteJob::InstanceWith(w, _) => {
                check_new(&w.0)?;
                let written = self.instance_with_steps(tx, head, &w.0, &w.1).await?;
                Ok(Done::InstanceWith(Box::new(written)))
            }
        }
    }

    /// Append `e` to the audit chain inside the group's transaction; `head` is read at the
    /// group's first entry, and stays where it was should the append fail.
    pub(super) async fn audit_step(
        &self,
        tx: &mut Tx,
        head: &mut Option<(i64, String)>,
        e: &NewAuditEntry,
    ) -> Result<AuditEntry> {
        let entry = super::identity::checked_audit_entry(e)?;
        if head.is_none() {
            *head = Some(self.audit_head(tx).await?);
        }
        let h = head.as_mut().expect("audit head just read");
        let before = h.clone();
        let r = super::identity::append_audit_in(tx, h, &entry).await;
        if r.is_err() {
            *h = before;
        }
        r
    }

    /// The group in one transaction without savepoints; `None` (rolled back, nothing
    /// written) when a write failed (invalid input too) or an instance was not inserted.
    async fn write_group_at_once(&self, jobs: &[WriteJob]) -> Option<Vec<Result<Done>>> {
        let mut tx = self.begin_write().await.ok()?;
        let mut head = None;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            match self.write_step(&mut tx, &mut head, job).await {
                Ok(done) if done.keep() => results.push(Ok(done)),
                _ => return None, // the transaction is dropped: rolled back
            }
        }
        if let Err(e) = tx.commit().await {
            return Some(group_failed(jobs.len(), &e));
        }
        Some(results)
    }

    /// The group in one transaction, each write in a savepoint.
    async fn write_group_savepoints(&self, jobs: &[WriteJob]) -> Vec<Result<Done>> {
        let failed_all = |e: &dyn std::fmt::Display| group_failed(jobs.len(), e);
        let mut tx = match self.begin_write().await {
            Ok(tx) => tx,
            Err(e) => return failed_all(&e),
        };
        let mut head = None;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            if let Err(e) = sqlx::query("SAVEPOINT dxhub_write").execute(&mut *tx).await {
                return failed_all(&e);
            }
            let r = self.write_step(&mut tx, &mut head, job).await;
            let keep = matches!(&r, Ok(d) if d.keep());
            if !keep
                && let Err(e) = sqlx::query("ROLLBACK TO SAVEPOINT dxhub_write")
                    .execute(&mut *tx)
                    .await
            {
                return failed_all(&e);
            }
            if let Err(e) = sqlx::query("RELEASE SAVEPOINT dxhub_write")
                .execute(&mut *tx)
                .await
            {
                return failed_all(&e);
            }
            results.push(r);
        }
        if let Err(e) = tx.commit().await {
            return failed_all(&e);
        }
        results
    }
}
