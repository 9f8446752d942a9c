//! What QIDO-RS and WADO-RS ask of the index: attribute matching at study, series and
//! instance level, and the per-instance data WADO needs. The HTTP layer parses the DICOMweb
//! query into a [`QidoQuery`]; [`crate::Catalog::qido`] turns it into one SQL statement.

use serde::Serialize;

/// The level of a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum QidoLevel {
    Study,
    Series,
    Instance,
}

/// The attributes the index can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum QidoKey {
    PatientName,
    PatientId,
    IssuerOfPatientId,
    PatientBirthDate,
    PatientSex,
    StudyInstanceUid,
    StudyDate,
    StudyTime,
    AccessionNumber,
    StudyId,
    StudyDescription,
    ReferringPhysicianName,
    ModalitiesInStudy,
    SeriesInstanceUid,
    Modality,
    SeriesNumber,
    SeriesDescription,
    SeriesDate,
    SeriesTime,
    BodyPartExamined,
    SopInstanceUid,
    SopClassUid,
    InstanceNumber,
}

impl QidoKey {
    /// The level whose table holds the attribute.
    pub fn level(self) -> QidoLevel {
        use QidoKey::*;
        match self {
            SeriesInstanceUid | Modality | SeriesNumber | SeriesDescription | SeriesDate
            | SeriesTime | BodyPartExamined => QidoLevel::Series,
            SopInstanceUid | SopClassUid | InstanceNumber => QidoLevel::Instance,
            _ => QidoLevel::Study,
        }
    }
}

/// How a value is matched (PS3.4 C.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum QidoMatch {
    /// Single value matching.
    Single(String),
    /// Wild card matching with `*` and `?`.
    Wildcard(String),
    /// List of values (UID list matching, or several values of a CS).
    List(Vec<String>),
    /// Range matching of DA/TM/DT: inclusive bounds as received, either may be open.
    Range {
        from: Option<String>,
        to: Option<String>,
    },
    /// PN fuzzy matching: the query is NFKC-normalised, lower-cased and matched as a prefix
    /// of any group or component (wildcards allowed); see `dxhub_core::pn`.
    Fuzzy(String),
}

/// A QIDO-RS search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QidoQuery {
    pub level: QidoLevel,
    pub conditions: Vec<(QidoKey, QidoMatch)>,
    /// Only studies of these institutions; `None`: everything. `Some(vec![])` matches
    /// nothing.
    pub institution_ids: Option<Vec<i64>>,
    /// Only studies routed to this reader (user id) and those patients' priors.
    pub routed_to: Option<i64>,
    pub limit: i64,
    pub offset: i64,
    /// Load the level attributes' DICOM JSON (`study_attrs`, `series_attrs`; `includefield`).
    /// Instance-level searches always load the instance's metadata.
    pub with_attrs: bool,
}

/// One result of a search: the study with its patient, and at series / instance level the
/// series and instance (newest version of each SOP instance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct QidoRow {
    pub study_id: i64,
    pub study_instance_uid: String,
    pub institution_id: Option<i64>,
    pub study_date: Option<String>,
    pub study_time: Option<String>,
    pub accession_number: Option<String>,
    pub study_description: Option<String>,
    pub referring_physician_name: Option<String>,
    pub study_id_attr: Option<String>,
    pub modalities_in_study: Option<String>,
    pub num_series: i64,
    pub num_study_instances: i64,
    pub study_attrs: Option<String>,
    pub patient_id: String,
    pub issuer_of_patient_id: Option<String>,
    pub patient_name: Option<String>,
    pub patient_birth_date: Option<String>,
    pub patient_sex: Option<String>,
    // series level and below
    pub series_instance_uid: Option<String>,
    pub modality: Option<String>,
    pub series_number: Option<i64>,
    pub series_description: Option<String>,
    pub series_date: Option<String>,
    pub series_time: Option<String>,
    pub body_part_examined: Option<String>,
    pub num_series_instances: Option<i64>,
    pub series_attrs: Option<String>,
    // instance level
    pub sop_instance_uid: Option<String>,
    pub sop_class_uid: Option<String>,
    pub transfer_syntax_uid: Option<String>,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub instance_metadata: Option<String>,
}

/// Which instances a WADO-RS request names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceScope {
    pub study_instance_uid: String,
    pub series_instance_uid: Option<String>,
    pub sop_instance_uid: Option<String>,
}

/// An instance as WADO-RS serves it: newest version of a SOP instance, with its blob and
/// the metadata derived at ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct WadoInstance {
    pub id: i64,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax_uid: String,
    pub number_of_frames: Option<i64>,
    pub size_bytes: i64,
    pub blob_key: String,
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    pub institution_id: Option<i64>,
    pub metadata: Option<String>,
}
