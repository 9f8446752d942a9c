//! Storage SOP classes (PS3.4 Annex B) accepted by the C-STORE SCP and STOW-RS.

use dicom_core::dictionary::{UidDictionary, UidType};
use dicom_dictionary_std::sop_class::StandardSopClassDictionary;
use dicom_dictionary_std::uids;

/// Verification SOP Class (C-ECHO).
pub const VERIFICATION: &str = uids::VERIFICATION;

fn is_storage_entry(name: &str, uid: &str) -> bool {
    // Every storage SOP class of the standard, current and retired (old ultrasound and
    // nuclear medicine devices still send retired classes), taken from the standard's UID
    // registry as shipped by dicom-dictionary-std. Names of the storage classes contain
    // "Storage"; the service classes that merely mention storage are excluded.
    name.contains("Storage")
        && !name.contains("Commitment")
        && !name.contains("Media Storage Directory")
        && !name.contains("Storage Management")
        && !name.contains("Retrieve")
        && !name.contains("Query")
        && uid != uids::STORAGE
}

/// Whether `uid` is a storage SOP class of the DICOM standard.
pub fn is_storage_sop_class(uid: &str) -> bool {
    StandardSopClassDictionary
        .by_uid(uid)
        .is_some_and(|e| e.r#type == UidType::SopClass && is_storage_entry(e.name, e.uid))
}

/// Human name of a SOP class, for logs and error messages.
pub fn sop_class_name(uid: &str) -> Option<&'static str> {
    StandardSopClassDictionary.by_uid(uid).map(|e| e.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_classes_cover_the_issue_list() {
        for uid in [
            uids::CT_IMAGE_STORAGE,
            uids::ENHANCED_CT_IMAGE_STORAGE,
            uids::MR_IMAGE_STORAGE,
            uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
            uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            uids::DIGITAL_INTRA_ORAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            uids::ULTRASOUND_IMAGE_STORAGE,
            uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
            uids::X_RAY_ANGIOGRAPHIC_IMAGE_STORAGE,
            uids::X_RAY_RADIOFLUOROSCOPIC_IMAGE_STORAGE,
            uids::NUCLEAR_MEDICINE_IMAGE_STORAGE,
            uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
            uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
            uids::MULTI_FRAME_TRUE_COLOR_SECONDARY_CAPTURE_IMAGE_STORAGE,
            uids::VL_PHOTOGRAPHIC_IMAGE_STORAGE,
            uids::VL_ENDOSCOPIC_IMAGE_STORAGE,
            uids::ENCAPSULATED_PDF_STORAGE,
            uids::TWELVE_LEAD_ECG_WAVEFORM_STORAGE,
            uids::GENERAL_ECG_WAVEFORM_STORAGE,
            uids::AMBULATORY_ECG_WAVEFORM_STORAGE,
            uids::BASIC_TEXT_SR_STORAGE,
            uids::ENHANCED_SR_STORAGE,
            uids::COMPREHENSIVE_SR_STORAGE,
            uids::SEGMENTATION_STORAGE,
            uids::RT_STRUCTURE_SET_STORAGE,
            uids::RT_PLAN_STORAGE,
            uids::RT_DOSE_STORAGE,
            uids::VIDEO_ENDOSCOPIC_IMAGE_STORAGE,
            uids::VIDEO_PHOTOGRAPHIC_IMAGE_STORAGE,
            "1.2.840.10008.5.1.4.1.1.6", // retired Ultrasound Image Storage
        ] {
            assert!(is_storage_sop_class(uid), "{uid} should be a storage class");
        }
    }

    #[test]
    fn non_storage_classes_are_refused() {
        for uid in [
            uids::VERIFICATION,
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            uids::MODALITY_WORKLIST_INFORMATION_MODEL_FIND,
            uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE,
            uids::MEDIA_STORAGE_DIRECTORY_STORAGE,
            "1.2.3.4",
        ] {
            assert!(!is_storage_sop_class(uid), "{uid} is not a storage class");
        }
    }
}
