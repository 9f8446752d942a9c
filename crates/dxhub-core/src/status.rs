//! DIMSE status codes (PS3.4 Annex B, PS3.7 Annex C) shared by C-STORE and STOW-RS.

/// Success.
pub const SUCCESS: u16 = 0x0000;
/// Warning: coercion of data elements. dxhub uses it when a SOP Instance UID arrives again
/// with different content: both versions are kept and the newest is served.
pub const WARNING_COERCION: u16 = 0xB000;
/// Refused: SOP class not supported.
pub const REFUSED_SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
/// Refused: not authorized (PS3.7 C.5.22; PS3.18 STOW-RS failure reason): the instance
/// would join a study, or replace an instance, of an institution the sender may not write to.
pub const REFUSED_NOT_AUTHORIZED: u16 = 0x0124;
/// Refused: out of resources.
pub const OUT_OF_RESOURCES: u16 = 0xA700;
/// Error: data set does not match SOP class.
pub const DATASET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
/// Error: cannot understand.
pub const CANNOT_UNDERSTAND: u16 = 0xC000;
/// Failure: processing failure (generic, PS3.7).
pub const PROCESSING_FAILURE: u16 = 0x0110;
/// Failure: unrecognized operation (PS3.7 C.5.4): a DIMSE request the SCP does not provide.
pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;

/// Whether a status is a warning (Bxxx, 0001, 0107, 0116).
pub const fn is_warning(status: u16) -> bool {
    matches!(status, 0x0001 | 0x0107 | 0x0116) || (status & 0xF000) == 0xB000
}
