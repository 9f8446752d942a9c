//! The ECG step of the pipeline: every DICOM ECG waveform instance that is stored (by
//! C-STORE, STOW-RS, `dxhub import` or the ECG upload API) is read into the normalised
//! model, analysed, and recorded in the index (`ecgs`) before the sender hears success.
//!
//! - The upload API reads and analyses non-DICOM formats itself (it must answer 415/422
//!   before storing anything) and hands the result over in [`EcgOrigin`]; the pipeline then
//!   records it with the instance it created.
//! - A DICOM ECG arriving by another route is read from the stored blob here (CPU work in
//!   `spawn_blocking`). A waveform that the reader rejects is still a valid instance: it
//!   stays stored, the failure is counted and logged (without patient data), and no ECG
//!   record is made.

use dxhub_ecg::analysis::{Analysis, analyse};
use dxhub_ecg::dicom::{AMBULATORY_ECG, GENERAL_ECG, TWELVE_LEAD_ECG};
use dxhub_ecg::{Ecg, derive_limb_leads};
use std::sync::Arc;

/// Largest DICOM ECG the pipeline reads back for analysis (a 24 h, 12-lead, 1 kHz Holter
/// is ~2 GB; such recordings are stored but not analysed here).
pub const MAX_ANALYSED_BYTES: u64 = 256 * 1024 * 1024;

/// Whether instances of this SOP class are ECG waveforms the pipeline analyses.
pub fn is_ecg_sop_class(sop_class_uid: &str) -> bool {
    [TWELVE_LEAD_ECG, GENERAL_ECG, AMBULATORY_ECG].contains(&sop_class_uid)
}

/// A normalised ECG and its machine analysis.
#[derive(Debug, Clone)]
pub struct ProcessedEcg {
    pub ecg: Ecg,
    pub analysis: Analysis,
}

/// Derive III, aVR, aVL and aVF when only I and II were sent, then analyse. CPU-bound.
pub fn process(mut ecg: Ecg) -> ProcessedEcg {
    derive_limb_leads(&mut ecg);
    let analysis = analyse(&ecg);
    ProcessedEcg { ecg, analysis }
}

/// What the ECG upload API knows about the ECG behind a DICOM instance it ingests.
#[derive(Debug, Clone)]
pub struct EcgOrigin {
    /// `dicom`, `scp-ecg`, `hl7-aecg`, `json`.
    pub format: String,
    /// sha256 (hex) of the original bytes after transport decoding.
    pub content_sha256: String,
    /// Blob key of the original bytes; `None` when the original is the DICOM instance.
    pub original_key: Option<String>,
    pub original_size: u64,
    pub device_id: Option<i64>,
    pub idempotency_key: Option<String>,
    pub processed: Arc<ProcessedEcg>,
}
