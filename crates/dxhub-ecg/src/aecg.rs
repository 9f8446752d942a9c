//! TEMPORARY STUB (replaced by the ecg-aecg branch at merge).
use crate::model::Ecg;
#[derive(Debug, thiserror::Error)]
pub enum AecgError {
    #[error("{0}")]
    X(String),
}
pub fn looks_like_aecg(_bytes: &[u8]) -> bool {
    false
}
pub fn read_aecg(_bytes: &[u8]) -> Result<Ecg, AecgError> {
    Err(AecgError::X("stub".into()))
}
