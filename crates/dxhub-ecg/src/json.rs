//! TEMPORARY STUB (replaced by the ecg-aecg branch at merge).
use crate::model::Ecg;
#[derive(Debug, thiserror::Error)]
pub enum JsonEcgError {
    #[error("{0}")]
    X(String),
}
pub fn looks_like_json_ecg(_bytes: &[u8]) -> bool {
    false
}
pub fn read_json(_bytes: &[u8]) -> Result<Ecg, JsonEcgError> {
    Err(JsonEcgError::X("stub".into()))
}
#[derive(Debug, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct JsonEcg {
    pub sample_rate_hz: f64,
}
