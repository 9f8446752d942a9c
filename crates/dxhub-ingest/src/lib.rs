//! The one ingest pipeline of dxhub, shared by DIMSE C-STORE, STOW-RS, the ECG API and
//! `dxhub import`: spool → parse → check → object store (original bytes) → index (one
//! transaction) → outcome. An outcome is returned only after the blob is durable and the
//! index transaction has committed, so a caller may acknowledge it.
//!
//! Depends on the DICOM and store crates; must not depend on any protocol crate
//! (dicom-ul, axum).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod ecg;
mod metrics;
mod pipeline;
pub mod spool;

/// Re-exported for callers of [`Ingest::ingest_extracted`].
pub use dxhub_dicom::{ExtractError, Extracted, extract_bytes, extract_file};
pub use ecg::{EcgOrigin, ProcessedEcg};
pub use metrics::IngestMetrics;
pub use pipeline::{Ingest, IngestContext, IngestError, Outcome, OutcomeKind, Source};
pub use spool::{MemoryObject, Spool, SpoolFile, SpoolWriter, Staged};
