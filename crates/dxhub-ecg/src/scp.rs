//! TEMPORARY STUB (replaced by the ecg-scp branch at merge).
use crate::model::Ecg;
#[derive(Debug, thiserror::Error)]
pub enum ScpError {
    #[error("{0}")]
    X(String),
}
pub fn looks_like_scp(_bytes: &[u8]) -> bool {
    false
}
pub fn read_scp(_bytes: &[u8]) -> Result<Ecg, ScpError> {
    Err(ScpError::X("stub".into()))
}
