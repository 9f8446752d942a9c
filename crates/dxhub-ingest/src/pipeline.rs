use crate::metrics::{FailureLabels, IngestMetrics, OutcomeLabels};
use crate::spool::{Spool, SpoolFile};
use dxhub_core::status;
use dxhub_dicom::{ExtractError, Extracted, extract_file, sop};
use dxhub_store::{
    Blobs, Catalog, InsertOutcome, InstanceAttrs, NewInstance, PatientAttrs, SeriesAttrs,
    StudyAttrs,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tracing::{debug, warn};

/// Where an instance came from.
#[derive(Debug, Clone)]
pub enum Source {
    Dimse { calling_ae: String },
    Stow,
    Import,
}

impl Source {
    fn label(&self) -> &'static str {
        match self {
            Source::Dimse { .. } => "dimse",
            Source::Stow => "stow",
            Source::Import => "import",
        }
    }
}

/// What the caller knows about an instance besides its bytes.
#[derive(Debug, Clone)]
pub struct IngestContext {
    pub source: Source,
    pub institution_id: Option<i64>,
    /// Affected SOP Class UID of the C-STORE request (or the STOW/ECG expectation).
    pub expected_sop_class_uid: Option<String>,
    /// Affected SOP Instance UID of the C-STORE request.
    pub expected_sop_instance_uid: Option<String>,
    /// Study Instance UID the data set must belong to (STOW-RS `POST /studies/{study}`).
    pub expected_study_instance_uid: Option<String>,
    /// The institutions whose studies and instances this sender may add to or replace;
    /// `None`: any (the admin's `dxhub import`). A study or SOP instance already held by an
    /// institution outside the list is refused (0124), so that one member cannot add to,
    /// or hide behind a new version, another member's data.
    pub writable_institutions: Option<Vec<i64>>,
}

impl IngestContext {
    pub fn new(source: Source, institution_id: Option<i64>) -> Self {
        Self {
            source,
            institution_id,
            expected_sop_class_uid: None,
            expected_sop_instance_uid: None,
            expected_study_instance_uid: None,
            writable_institutions: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// A new instance.
    Stored,
    /// The same SOP Instance UID with an identical data set was already stored.
    Duplicate,
    /// The SOP Instance UID was known with different content; both versions are kept and
    /// the newest is served.
    NewVersion,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub instance_id: i64,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub series_instance_uid: String,
    pub study_instance_uid: String,
    pub transfer_syntax_uid: String,
    pub size: u64,
}

impl Outcome {
    /// The DIMSE status to report.
    pub fn status(&self) -> u16 {
        match self.kind {
            OutcomeKind::Stored | OutcomeKind::Duplicate => status::SUCCESS,
            OutcomeKind::NewVersion => status::WARNING_COERCION,
        }
    }

    pub fn comment(&self) -> Option<&'static str> {
        (self.kind == OutcomeKind::NewVersion).then_some(
            "SOP Instance UID already stored with different content; kept as a new version",
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("not a DICOM Part 10 object: {0}")]
    NotDicom(String),
    #[error("{0}")]
    CannotUnderstand(String),
    #[error("{0}")]
    DoesNotMatch(String),
    #[error("SOP class {0} is not a storage SOP class")]
    SopClassNotSupported(String),
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    #[error("storage unavailable: {0}")]
    Storage(String),
    #[error("index unavailable: {0}")]
    Index(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl IngestError {
    /// The DIMSE status this failure maps to (used by C-STORE and STOW-RS alike).
    pub fn status(&self) -> u16 {
        match self {
            IngestError::NotDicom(_) | IngestError::CannotUnderstand(_) => {
                status::CANNOT_UNDERSTAND
            }
            IngestError::DoesNotMatch(_) => status::DATASET_DOES_NOT_MATCH_SOP_CLASS,
            IngestError::SopClassNotSupported(_) => status::REFUSED_SOP_CLASS_NOT_SUPPORTED,
            IngestError::NotAuthorized(_) => status::REFUSED_NOT_AUTHORIZED,
            IngestError::Storage(_) | IngestError::Index(_) | IngestError::Io(_) => {
                status::OUT_OF_RESOURCES
            }
        }
    }
}

impl From<ExtractError> for IngestError {
    fn from(e: ExtractError) -> Self {
        match e {
            ExtractError::Meta(m) => IngestError::NotDicom(m.to_string()),
            other => IngestError::CannotUnderstand(other.to_string()),
        }
    }
}

/// The ingest pipeline. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    catalog: Arc<dyn Catalog>,
    blobs: Blobs,
    spool: Spool,
    metrics: IngestMetrics,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl Ingest {
    pub fn new(
        catalog: Arc<dyn Catalog>,
        blobs: Blobs,
        spool: Spool,
        metrics: IngestMetrics,
    ) -> Self {
        Self {
            catalog,
            blobs,
            spool,
            metrics,
        }
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    pub fn catalog(&self) -> &Arc<dyn Catalog> {
        &self.catalog
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    /// Import a Part 10 file from disk through the same pipeline (the file is copied).
    pub async fn import_file(
        &self,
        path: &Path,
        ctx: &IngestContext,
    ) -> Result<Outcome, IngestError> {
        let spool = self.spool.clone();
        let src = path.to_owned();
        let file = tokio::task::spawn_blocking(move || spool.copy_from_file(&src))
            .await
            .map_err(|e| IngestError::Io(std::io::Error::other(e)))?;
        match file {
            Ok(f) => self.ingest(f, ctx).await,
            Err(e) => {
                self.count_failure(ctx, &e);
                Err(e)
            }
        }
    }

    /// Ingest a complete spool file. Returns only after the blob is durable and the index
    /// row committed (or with the failure to report).
    pub async fn ingest(
        &self,
        file: SpoolFile,
        ctx: &IngestContext,
    ) -> Result<Outcome, IngestError> {
        let path = file.path().to_owned();
        let extracted = tokio::task::spawn_blocking(move || extract_file(&path))
            .await
            .map_err(|e| IngestError::Io(std::io::Error::other(e)))?;
        self.ingest_extracted(file, extracted, ctx).await
    }

    /// As [`Ingest::ingest`], for a caller that already ran [`extract_file`] on the spool
    /// file in its own blocking task (DIMSE does, together with finishing the file: one
    /// hand-off to the blocking pool instead of two).
    pub async fn ingest_extracted(
        &self,
        file: SpoolFile,
        extracted: Result<Extracted, ExtractError>,
        ctx: &IngestContext,
    ) -> Result<Outcome, IngestError> {
        let started = Instant::now();
        let result = self.ingest_inner(file, extracted, ctx).await;
        match &result {
            Ok(o) => {
                let outcome = match o.kind {
                    OutcomeKind::Stored => "stored",
                    OutcomeKind::Duplicate => "duplicate",
                    OutcomeKind::NewVersion => "new_version",
                };
                self.metrics
                    .instances
                    .get_or_create(&OutcomeLabels {
                        source: ctx.source.label(),
                        outcome,
                    })
                    .inc();
                if o.kind != OutcomeKind::Duplicate {
                    self.metrics.bytes.inc_by(o.size);
                }
                self.metrics
                    .duration
                    .observe(started.elapsed().as_secs_f64());
            }
            Err(e) => self.count_failure(ctx, e),
        }
        result
    }

    fn count_failure(&self, ctx: &IngestContext, e: &IngestError) {
        self.metrics
            .failures
            .get_or_create(&FailureLabels {
                source: ctx.source.label(),
                status: format!("{:04X}", e.status()),
            })
            .inc();
    }

    async fn ingest_inner(
        &self,
        file: SpoolFile,
        extracted: Result<Extracted, ExtractError>,
        ctx: &IngestContext,
    ) -> Result<Outcome, IngestError> {
        let x = extracted?;
        check(&x, file.dataset_offset, ctx)?;
        let size = file.size;

        let outcome = |kind, instance_id| Outcome {
            kind,
            instance_id,
            sop_class_uid: x.sop_class_uid.clone(),
            sop_instance_uid: x.sop_instance_uid.clone(),
            series_instance_uid: x.series_instance_uid.clone(),
            study_instance_uid: x.study_instance_uid.clone(),
            transfer_syntax_uid: x.transfer_syntax_uid.clone(),
            size,
        };

        // An identical re-send: nothing new to write.
        if let Some(existing) = self
            .catalog
            .find_instance_version(&x.sop_instance_uid, &file.dataset_sha256)
            .await
            .map_err(|e| IngestError::Index(e.to_string()))?
        {
            debug!(sop_instance_uid = %x.sop_instance_uid, "duplicate instance, identical data set");
            return Ok(outcome(OutcomeKind::Duplicate, existing.id));
        }

        if let Some(writable) = &ctx.writable_institutions {
            let (study_owner, instance_owner) = self
                .catalog
                .owners(&x.study_instance_uid, &x.sop_instance_uid)
                .await
                .map_err(|e| IngestError::Index(e.to_string()))?;
            let foreign = |owner: Option<i64>| owner.is_some_and(|o| !writable.contains(&o));
            if foreign(study_owner) {
                return Err(IngestError::NotAuthorized(
                    "the study belongs to an institution outside the sender's reach".into(),
                ));
            }
            if foreign(instance_owner) {
                return Err(IngestError::NotAuthorized(
                    "the SOP Instance UID is held by an institution outside the sender's reach"
                        .into(),
                ));
            }
        }

        let key = Blobs::instance_key(
            &x.study_instance_uid,
            &x.series_instance_uid,
            &x.sop_instance_uid,
            &file.sha256,
        );
        let new = new_instance(&x, &file, &key, ctx);
        let spool_path = file.path().to_owned();
        self.blobs.put_file(&key, &spool_path).await.map_err(|e| {
            warn!(sop_instance_uid = %x.sop_instance_uid, error = %e, "blob store write failed");
            IngestError::Storage(e.to_string())
        })?;
        // the spool file now lives in the blob store (moved or uploaded and removed)
        let _ = file.into_path();

        let inserted = self.catalog.insert_instance(&new).await.map_err(|e| {
            warn!(sop_instance_uid = %x.sop_instance_uid, error = %e, "index write failed");
            IngestError::Index(e.to_string())
        })?;
        let result = match inserted {
            InsertOutcome::Inserted { instance_id } => outcome(OutcomeKind::Stored, instance_id),
            InsertOutcome::NewVersion { instance_id, .. } => {
                outcome(OutcomeKind::NewVersion, instance_id)
            }
            InsertOutcome::Duplicate {
                instance_id,
                blob_key,
            } => {
                // a concurrent identical send won the race; drop our copy unless it is the
                // very same blob
                if blob_key != key {
                    let _ = self.blobs.delete(&key).await;
                }
                outcome(OutcomeKind::Duplicate, instance_id)
            }
        };
        debug!(
            sop_instance_uid = %result.sop_instance_uid,
            study_instance_uid = %result.study_instance_uid,
            size,
            kind = ?result.kind,
            "instance ingested"
        );
        Ok(result)
    }
}

fn check(x: &Extracted, dataset_offset: u64, ctx: &IngestContext) -> Result<(), IngestError> {
    if x.dataset_offset != dataset_offset {
        return Err(IngestError::CannotUnderstand(
            "file meta group length does not match its content".into(),
        ));
    }
    if let Some(expected) = &ctx.expected_sop_class_uid
        && expected != &x.sop_class_uid
    {
        return Err(IngestError::DoesNotMatch(format!(
            "SOP Class UID of the data set ({}) differs from the request's ({expected})",
            x.sop_class_uid
        )));
    }
    if let Some(expected) = &ctx.expected_sop_instance_uid
        && expected != &x.sop_instance_uid
    {
        return Err(IngestError::DoesNotMatch(format!(
            "SOP Instance UID of the data set ({}) differs from the request's ({expected})",
            x.sop_instance_uid
        )));
    }
    if let Some(expected) = &ctx.expected_study_instance_uid
        && expected != &x.study_instance_uid
    {
        return Err(IngestError::DoesNotMatch(
            "Study Instance UID differs from the target study".into(),
        ));
    }
    if x.meta_sop_instance_uid != x.sop_instance_uid {
        return Err(IngestError::CannotUnderstand(
            "MediaStorageSOPInstanceUID of the file meta differs from the data set's SOP Instance UID".into(),
        ));
    }
    if !sop::is_storage_sop_class(&x.sop_class_uid) {
        return Err(IngestError::SopClassNotSupported(x.sop_class_uid.clone()));
    }
    if !dxhub_dicom::ts::is_accepted(&x.transfer_syntax_uid) {
        return Err(IngestError::CannotUnderstand(format!(
            "transfer syntax {} is not supported",
            x.transfer_syntax_uid
        )));
    }
    Ok(())
}

fn new_instance(x: &Extracted, file: &SpoolFile, key: &str, ctx: &IngestContext) -> NewInstance {
    NewInstance {
        institution_id: ctx.institution_id,
        patient: PatientAttrs {
            patient_id: x.patient_id.clone(),
            issuer_of_patient_id: x.issuer_of_patient_id.clone(),
            patient_name: x.patient_name.clone(),
            patient_birth_date: x.patient_birth_date.clone(),
            patient_sex: x.patient_sex.clone(),
        },
        study: StudyAttrs {
            study_instance_uid: x.study_instance_uid.clone(),
            study_date: x.study_date.clone(),
            study_time: x.study_time.clone(),
            accession_number: x.accession_number.clone(),
            study_description: x.study_description.clone(),
            referring_physician_name: x.referring_physician_name.clone(),
            study_id: x.study_id.clone(),
            body_part_examined: x.body_part_examined.clone(),
            attrs: x.study_attrs.clone(),
        },
        series: SeriesAttrs {
            series_instance_uid: x.series_instance_uid.clone(),
            modality: x.modality.clone(),
            series_number: x.series_number,
            series_description: x.series_description.clone(),
            body_part_examined: x.body_part_examined.clone(),
            series_date: x.series_date.clone(),
            series_time: x.series_time.clone(),
            attrs: x.series_attrs.clone(),
        },
        instance: InstanceAttrs {
            sop_instance_uid: x.sop_instance_uid.clone(),
            sop_class_uid: x.sop_class_uid.clone(),
            transfer_syntax_uid: x.transfer_syntax_uid.clone(),
            instance_number: x.instance_number,
            number_of_frames: x.number_of_frames,
            size_bytes: file.size as i64,
            sha256: file.sha256.clone(),
            dataset_sha256: file.dataset_sha256.clone(),
            blob_key: key.to_owned(),
            source_ae: match &ctx.source {
                Source::Dimse { calling_ae } => Some(calling_ae.clone()),
                _ => None,
            },
            received_at: now_us(),
            metadata: x.metadata.clone(),
        },
    }
}
