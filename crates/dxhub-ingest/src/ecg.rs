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

/// Analyse the ECG as sent, then derive III, aVR, aVL and aVF when only I and II were
/// sent (the stored waveform carries them). CPU-bound.
///
/// The analysis sees the source leads only: it derives the limb leads itself for its
/// measurements when I and II are usable, judges signal quality per lead that was
/// recorded, and detects QRS complexes on recorded leads (derived ones add no
/// information, and a derived lead's quality is that of I and II).
pub fn process(mut ecg: Ecg) -> ProcessedEcg {
    let analysis = analyse(&ecg);
    derive_limb_leads(&mut ecg);
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

#[cfg(test)]
mod tests {
    use super::*;
    use dxhub_ecg::LeadCode;
    use dxhub_ecg::synth::{SynthSpec, generate};

    /// An 8-lead ECG (I, II, V1–V6), as most devices send: the stored waveform gains the
    /// four derived limb leads, the analysis judges the 8 recorded leads and still
    /// measures the derived ones (ST in III and aVF, the frontal axis).
    #[test]
    fn eight_leads_analysed_as_recorded_and_stored_with_twelve() {
        let mut spec = SynthSpec::sinus(72.0);
        spec.st_uv = [
            0.0, 200.0, 200.0, 0.0, 0.0, 200.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        let (mut ecg, _) = generate(&spec);
        let derived = [LeadCode::III, LeadCode::AVR, LeadCode::AVL, LeadCode::AVF];
        ecg.leads.retain(|l| !derived.contains(&l.code));
        assert_eq!(ecg.leads.len(), 8);

        let p = process(ecg);
        assert_eq!(
            p.ecg.leads.len(),
            12,
            "the stored waveform has the derived leads"
        );
        let judged: Vec<&str> = p
            .analysis
            .quality
            .leads
            .iter()
            .map(|l| l.lead.as_str())
            .collect();
        assert_eq!(judged, ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]);
        assert_eq!(p.analysis.quality.usable_leads, 8);
        let st = |lead: &str| {
            p.analysis
                .st
                .iter()
                .find(|s| s.lead == lead)
                .map(|s| s.st_uv)
        };
        assert!(st("III").is_some_and(|v| v > 100.0), "{:?}", p.analysis.st);
        assert!(st("aVF").is_some_and(|v| v > 100.0), "{:?}", p.analysis.st);
        assert!(p.analysis.qrs_axis_deg.is_some());
        assert!(
            p.analysis.is_critical(),
            "inferior STEMI pattern: {:?}",
            p.analysis.critical
        );
    }
}
