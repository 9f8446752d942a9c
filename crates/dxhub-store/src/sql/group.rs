//! Group commit of the SQLite index's frequent writes: instance inserts, ECG records and
//! audit appends.
//!
//! Every commit of a durable (`synchronous=FULL`) SQLite database waits for an fsync, and
//! the single writer connection makes concurrent writers take turns: one commit per write
//! caps throughput at the disk's fsync rate. One writer thread takes every such write
//! (`sql/writer.rs`); those queued while a transaction commits are committed together by
//! the next one, in arrival order (audit entries are chained in that order). An ECG upload
//! makes all three kinds of write in one job, so twenty village devices uploading at once
//! share a few commits instead of twenty.
//!
//! A group runs first without savepoints, which is what nearly always happens. Should one
//! write fail, or an instance turn out a duplicate (a conflict to roll back), that
//! transaction is rolled back and the group redone with a savepoint per write, so the
//! failure is that write's alone. Every caller gets its outcome only after the commit that
//! made it durable; a failed commit is reported to all, never retried blindly.
//!
//! This module holds the jobs and their outcomes; `sql/writer.rs` runs them.

use tokio::sync::oneshot;

use super::{SqlCatalog, Tx, WrittenWith};
use crate::catalog::{Error, IngestLookup, InstanceExtras, NewInstance, Result};
use crate::ecg::NewEcg;
use crate::identity::{AuditEntry, NewAuditEntry};

/// Most writes committed by one transaction.
pub(super) const GROUP_COMMIT_MAX: usize = 64;

type Reply<T> = oneshot::Sender<Result<T>>;

/// A write for the group commit's writer thread and where its outcome goes.
pub(super) enum WriteJob {
    Audit(Box<NewAuditEntry>, Reply<AuditEntry>),
    /// The record, its idempotency key; the outcome is `(id, newly inserted)`.
    Ecg(Box<NewEcg>, Option<String>, Reply<(i64, bool)>),
    /// An instance and what is written with it (`Catalog::insert_instance_with`; plain
    /// `insert_instance` too, with nothing else).
    InstanceWith(Box<(NewInstance, InstanceExtras)>, Reply<WrittenWith>),
    /// Not a write: the ingest's look-up before it stores an instance (study UID, SOP
    /// instance UID, data set key), answered by the writer before the next group from its
    /// own connection. That connection's page cache is always current, where a reader's
    /// is dropped after every commit of the writer; on the C-STORE path this one read,
    /// through sqlx's read pool, cost as much CPU as the writes.
    Lookup(Box<(String, String, String)>, Reply<IngestLookup>),
}

/// What a write did.
pub(super) enum Done {
    Audit(Box<AuditEntry>),
    Ecg(i64, bool),
    InstanceWith(Box<WrittenWith>),
    Lookup(Box<IngestLookup>),
}

impl Done {
    /// Whether the write stays: an instance that was not inserted (a duplicate) is rolled
    /// back to its savepoint.
    pub(super) fn keep(&self) -> bool {
        match self {
            Done::InstanceWith(w) => w.inserted,
            Done::Audit(_) | Done::Ecg(..) | Done::Lookup(_) => true,
        }
    }
}

fn mismatch<T>() -> Result<T> {
    Err(Error::Unavailable(sqlx::Error::Protocol(
        "group commit: outcome of another kind of write".into(),
    )))
}

impl WriteJob {
    /// Whether the job only reads (answered outside the group's transaction).
    pub(super) fn is_read(&self) -> bool {
        matches!(self, WriteJob::Lookup(..))
    }

    pub(super) fn reply(self, r: Result<Done>) {
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
            WriteJob::Lookup(_, tx) => {
                let _ = tx.send(r.and_then(|d| match d {
                    Done::Lookup(l) => Ok(*l),
                    _ => mismatch(),
                }));
            }
        }
    }
}

/// The outcome of every job of a group whose transaction failed as a whole.
pub(super) fn group_failed<T>(jobs: usize, e: &dyn std::fmt::Display) -> Vec<Result<T>> {
    (0..jobs)
        .map(|_| {
            Err(Error::Unavailable(sqlx::Error::Protocol(format!(
                "group commit: {e}"
            ))))
        })
        .collect()
}

impl SqlCatalog {
    /// Append `e` to the audit chain inside a write transaction (the sqlx path: PostgreSQL,
    /// in-memory SQLite); `head` is read at the transaction's first entry, and stays where
    /// it was should the append fail.
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
}
