//! ECG readers into one normalised waveform model (`model::Ecg`: leads with standard codes,
//! samples in µV, sampling rate, filters, device measurements and statements, patient, device,
//! acquisition time), the automatic analysis, standard-paper rendering and the DICOM ECG
//! writer.
//!
//! - `dicom`: DICOM 12-lead, General and Ambulatory ECG waveform reader;
//! - `scp`: SCP-ECG (EN 1064 / ISO 11073-91064) reader;
//! - `aecg`: HL7 aECG (FDA XML) reader;
//! - `json`: the documented JSON form for simple devices;
//! - `read`: format detection by content sniffing and dispatch to the readers;
//! - `analysis`: signal quality, QRS detection, intervals, axes, rhythm, ST, critical flags;
//! - `render`: SVG/PNG on standard ECG paper;
//! - `write`: a DICOM 12-lead or General ECG waveform instance from the model.
//!
//! Sync and CPU-bound: callers on an async runtime run it in `spawn_blocking`. It must not
//! depend on tokio, sqlx, axum or any other dxhub crate but `dxhub-core`.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod aecg;
pub mod analysis;
pub mod csv;
pub mod dicom;
pub mod json;
pub mod model;
pub mod read;
pub mod render;
pub mod scp;
pub mod synth;
pub mod write;

pub use dicom::{DicomEcgError, read_dicom, read_dicom_object};
pub use model::{Device, Ecg, Filters, Lead, LeadCode, Measurement, Patient, derive_limb_leads};
