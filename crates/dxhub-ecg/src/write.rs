//! TEMPORARY STUB (replaced by the ecg-write branch at merge).
use crate::model::Ecg;
pub struct WriteIds {
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub sop_instance_uid: String,
    pub series_number: i32,
    pub instance_number: i32,
    pub accession_number: Option<String>,
    pub institution_name: Option<String>,
    pub study_description: Option<String>,
    pub series_description: Option<String>,
}
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    X(String),
}
pub fn to_dicom(_ecg: &Ecg, _ids: &WriteIds) -> Result<Vec<u8>, WriteError> {
    Err(WriteError::X("stub".into()))
}
