//! Storage of dxhub: the blob store that keeps every received object exactly as it
//! arrived (over `object_store`: a local directory by default, any S3-compatible store at
//! scale) and the SQL index of tenancy and stored instances (over `sqlx`: SQLite by
//! default, PostgreSQL at scale), with one [`Catalog`] trait checked by one conformance
//! suite on both databases. It also keeps identities (users, sessions, device tokens; see
//! [`identity`] and [`secrets`]) and the hash-chained audit log.
//!
//! This crate knows nothing about DICOM encoding: callers hand it extracted attributes and
//! finished spool files. It must not depend on DICOM parsing crates, axum or the DIMSE
//! layer.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod blob;
pub mod catalog;
pub mod ecg;
pub mod identity;
pub mod qido;
pub mod report;
pub mod secrets;
mod sql;
pub mod stats;
pub mod worklist;

pub use blob::{BlobMeta, Blobs, S3Config};
pub use catalog::{
    AeTitle, Alliance, Catalog, CatalogOptions, Counts, Dialect, IngestLookup, InsertOutcome,
    InsertedWith, InstanceAttrs, InstanceExtras, InstanceRow, Institution, InstitutionUpdate,
    LEGACY_DATASET_KEY_PREFIX, NewInstance, NewInstitution, PatientAttrs, PatientRow, SeriesAttrs,
    SeriesRow, StudyAttrs, StudyRow,
};
pub use ecg::{EcgCoverageRow, EcgInsert, EcgOriginal, EcgRow, EcgUpload, NewEcg};
pub use identity::{
    AuditEntry, AuditFilter, AuditVerification, Device, LoginFailures, NewAuditEntry, NewDevice,
    NewSession, NewUser, SESSION_ISSUED_BY_CLI, SESSION_ISSUED_BY_LOGIN, Session, StudyFilter,
    StudyWorkflowRow, User,
};
pub use qido::{InstanceScope, QidoKey, QidoLevel, QidoMatch, QidoQuery, QidoRow, WadoInstance};
pub use report::ReportStore;
pub use sql::SqlCatalog;
pub use stats::StatsStore;
pub use worklist::WorklistStore;
