//! Records of the ECG centre: every ECG received with its machine analysis, the
//! Idempotency-Keys of the upload API, resumable uploads, and the per-institution figures
//! of the village ECG-device coverage indicator. The analysis is opaque JSON here (the
//! `dxhub-ecg` crate defines it); this crate does not parse waveforms.

use serde::Serialize;

/// An ECG to record, once its DICOM instance is durable and indexed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEcg {
    pub institution_id: Option<i64>,
    pub device_id: Option<i64>,
    pub instance_id: i64,
    pub study_instance_uid: String,
    pub sop_instance_uid: String,
    /// `dicom`, `hl7-aecg`, `scp-ecg`, `json`.
    pub format: String,
    /// sha256 (hex) of the original bytes after transport decoding.
    pub content_sha256: String,
    /// Blob key of the original bytes (the instance's own key for DICOM).
    pub original_key: String,
    pub original_size: i64,
    /// JSON array of lead names.
    pub leads: String,
    pub sample_rate_hz: f64,
    pub samples_per_lead: i64,
    pub acquired_at: Option<String>,
    /// JSON of the machine analysis.
    pub analysis: String,
    pub critical: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct EcgRow {
    pub id: i64,
    pub institution_id: Option<i64>,
    pub device_id: Option<i64>,
    pub instance_id: i64,
    pub study_instance_uid: String,
    pub sop_instance_uid: String,
    pub format: String,
    pub content_sha256: String,
    pub original_key: String,
    pub original_size: i64,
    pub leads: String,
    pub sample_rate_hz: f64,
    pub samples_per_lead: i64,
    pub acquired_at: Option<String>,
    pub analysis: String,
    /// 0 or 1 (an integer on both databases).
    pub critical: i32,
    pub created_at: i64,
    /// Blob key of the DICOM instance carrying the normalised waveform.
    pub instance_blob_key: String,
}

/// Where an ECG record keeps its original bytes (for `dxhub fsck`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EcgOriginal {
    pub id: i64,
    pub original_key: String,
    pub original_size: i64,
    /// SHA-256 (hex) of the original bytes.
    pub content_sha256: String,
}

/// What [`crate::Catalog::insert_ecg`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum EcgInsert {
    /// A new record.
    Inserted(EcgRow),
    /// The institution already had an ECG with this content (an identical re-send, or a
    /// concurrent one that won): that record.
    Existing(EcgRow),
}

impl EcgInsert {
    pub fn row(&self) -> &EcgRow {
        match self {
            EcgInsert::Inserted(r) | EcgInsert::Existing(r) => r,
        }
    }
}

/// A resumable upload (tus 1.0.0 core + creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EcgUpload {
    pub id: String,
    pub institution_id: i64,
    pub device_id: Option<i64>,
    pub upload_length: i64,
    pub upload_offset: i64,
    pub idem_key: Option<String>,
    /// `gzip` when the uploaded bytes are a gzip stream, as the creation request declared.
    pub content_encoding: Option<String>,
    pub ecg_id: Option<i64>,
    /// Why processing the complete upload failed (a 4xx), if it did.
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

/// One institution's figures for the village ECG-device coverage indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EcgCoverageRow {
    pub institution_id: i64,
    pub institution_name: String,
    pub alliance_id: i64,
    /// `county`, `township`, `village`.
    pub level: String,
    /// ECG devices (kind `ecg`) bound to it and not revoked.
    pub active_devices: i64,
    /// Newest last-seen time of those devices (µs since the epoch).
    pub last_seen_at: Option<i64>,
    /// ECGs received from the institution.
    pub ecgs: i64,
    /// ECGs received in the last 30 days.
    pub ecgs_30d: i64,
}
