//! ECG readers into one normalised waveform model (`model::Ecg`: leads with standard codes,
//! samples in µV, sampling rate, filters, device measurements and statements, patient, device,
//! acquisition time). Today: the DICOM 12-lead, General and Ambulatory ECG waveform reader
//! (`dicom`). HL7 aECG, SCP-ECG and the JSON form, analysis and rendering come next.
//!
//! Sync and CPU-bound: callers on an async runtime run it in `spawn_blocking`. It must not
//! depend on tokio, sqlx, axum or any other dxhub crate but `dxhub-core`.

pub mod dicom;
pub mod model;

pub use dicom::{DicomEcgError, read_dicom, read_dicom_object};
pub use model::{Device, Ecg, Filters, Lead, LeadCode, Measurement, Patient, derive_limb_leads};
