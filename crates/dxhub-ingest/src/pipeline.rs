use crate::ecg::{EcgOrigin, ProcessedEcg, is_ecg_sop_class};
use crate::metrics::{FailureLabels, IngestMetrics, OutcomeLabels};
use crate::spool::{Spool, SpoolFile, Staged};
use dxhub_core::status;
use dxhub_dicom::{ExtractError, Extracted, extract_file, sop};
use dxhub_store::{
    Blobs, Catalog, EcgRow, InsertOutcome, InstanceAttrs, InstanceExtras, NewAuditEntry, NewEcg,
    NewInstance, PatientAttrs, SeriesAttrs, StudyAttrs,
};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tracing::{debug, warn};

/// Where an instance came from.
#[derive(Debug, Clone)]
pub enum Source {
    Dimse {
        calling_ae: String,
    },
    Stow,
    Import,
    /// The ECG upload API (`POST /api/v1/ecg`, resumable uploads).
    EcgApi,
}

impl Source {
    fn label(&self) -> &'static str {
        match self {
            Source::Dimse { .. } => "dimse",
            Source::Stow => "stow",
            Source::Import => "import",
            Source::EcgApi => "ecg_api",
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
    /// Set by the ECG upload API for the instance it made or received (see [`crate::ecg`]).
    pub ecg: Option<EcgOrigin>,
    /// An audit entry to commit with the instance (and its ECG record) when the instance is
    /// stored; not appended for a duplicate or a failure ([`Outcome::audited`] tells).
    pub audit: Option<NewAuditEntry>,
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
            ecg: None,
            audit: None,
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
    /// Blob key and sha256 of the stored file.
    pub blob_key: String,
    pub sha256: String,
    /// The ECG record of an ECG waveform instance (`None` for other instances, and for an
    /// ECG whose waveform could not be read).
    pub ecg: Option<EcgRow>,
    /// Whether [`IngestContext::audit`] was committed with the instance.
    pub audited: bool,
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
    #[error("the ECG upload does not match the instance: {0}")]
    EcgMismatch(String),
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
            IngestError::EcgMismatch(_) => status::PROCESSING_FAILURE,
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
        file: impl Into<Staged>,
        extracted: Result<Extracted, ExtractError>,
        ctx: &IngestContext,
    ) -> Result<Outcome, IngestError> {
        let started = Instant::now();
        let result = self.ingest_inner(file.into(), extracted, ctx).await;
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
        file: Staged,
        extracted: Result<Extracted, ExtractError>,
        ctx: &IngestContext,
    ) -> Result<Outcome, IngestError> {
        let (mut outcome, checked_owner) = self.ingest_instance(file, extracted, ctx).await?;
        if outcome.ecg.is_none() && (is_ecg_sop_class(&outcome.sop_class_uid) || ctx.ecg.is_some())
        {
            outcome.ecg = self.record_ecg(&outcome, checked_owner, ctx).await?;
        }
        Ok(outcome)
    }

    /// Record the ECG carried by a stored instance (see [`crate::ecg`]).
    ///
    /// `checked_owner`: the study's owner as [`Ingest::ingest_instance`] found it before it
    /// stored the instance (`Some(None)`: a new study, now the sender's), so that it is not
    /// looked up twice.
    async fn record_ecg(
        &self,
        o: &Outcome,
        checked_owner: Option<Option<i64>>,
        ctx: &IngestContext,
    ) -> Result<Option<EcgRow>, IngestError> {
        let (processed, format, content_sha256, original_key, original_size, device_id, key) =
            match &ctx.ecg {
                Some(origin) => (
                    origin.processed.clone(),
                    origin.format.clone(),
                    origin.content_sha256.clone(),
                    origin
                        .original_key
                        .clone()
                        .unwrap_or_else(|| o.blob_key.clone()),
                    origin.original_size,
                    origin.device_id,
                    origin.idempotency_key.as_deref(),
                ),
                None => {
                    if let Some(row) = self
                        .catalog
                        .find_ecg_by_sop_instance(&o.sop_instance_uid)
                        .await
                        .map_err(index_err)?
                        && row.instance_id == o.instance_id
                    {
                        return Ok(Some(row));
                    }
                    if o.size > crate::ecg::MAX_ANALYSED_BYTES {
                        warn!(sop_instance_uid = %o.sop_instance_uid, size = o.size, "ECG too large to analyse; stored only");
                        return Ok(None);
                    }
                    let bytes = self
                        .blobs
                        .get_bytes(&o.blob_key)
                        .await
                        .map_err(|e| IngestError::Storage(e.to_string()))?;
                    let read = tokio::task::spawn_blocking(move || {
                        dxhub_ecg::read_dicom(&bytes).map(crate::ecg::process)
                    })
                    .await
                    .map_err(|e| IngestError::Io(std::io::Error::other(e)))?;
                    match read {
                        Ok(p) => (
                            Arc::new(p),
                            "dicom".to_owned(),
                            o.sha256.clone(),
                            o.blob_key.clone(),
                            o.size,
                            None,
                            None,
                        ),
                        Err(e) => {
                            warn!(sop_instance_uid = %o.sop_instance_uid, error = %e, "ECG waveform not readable; stored without analysis");
                            self.metrics.ecg_unreadable.inc();
                            return Ok(None);
                        }
                    }
                }
            };
        // the record belongs to the study's institution; a sender outside the study's
        // reach (an identical re-send is a duplicate before any ownership check) gets no
        // record of it
        let study_owner = match checked_owner {
            Some(owner) => owner.or(ctx.institution_id),
            None => {
                self.catalog
                    .owners(&o.study_instance_uid, &o.sop_instance_uid)
                    .await
                    .map_err(index_err)?
                    .0
            }
        };
        if let (Some(writable), Some(owner)) = (&ctx.writable_institutions, study_owner)
            && !writable.contains(&owner)
        {
            return Err(IngestError::NotAuthorized(
                "the study belongs to an institution outside the sender's reach".into(),
            ));
        }
        let new = new_ecg(
            &processed,
            EcgSourceInfo {
                format,
                content_sha256,
                original_key,
                original_size,
                device_id,
            },
            study_owner.or(ctx.institution_id),
            o,
        )?;
        let row = self
            .catalog
            .insert_ecg(&new, key)
            .await
            .map_err(index_err)?;
        if processed.analysis.is_critical() {
            self.metrics.ecg_critical.inc();
        }
        Ok(Some(row.row().clone()))
    }

    /// Store and index the instance. Also returns the study's owner when it was looked up
    /// (for a sender with a limited reach) and the instance was then stored by this call.
    async fn ingest_instance(
        &self,
        file: Staged,
        extracted: Result<Extracted, ExtractError>,
        ctx: &IngestContext,
    ) -> Result<(Outcome, Option<Option<i64>>), IngestError> {
        let x = extracted?;
        check(&x, file.dataset_offset(), ctx)?;
        let size = file.size();

        let outcome = |kind, instance_id, blob_key: &str, sha256: &str| Outcome {
            kind,
            instance_id,
            blob_key: blob_key.to_owned(),
            sha256: sha256.to_owned(),
            ecg: None,
            audited: false,
            sop_class_uid: x.sop_class_uid.clone(),
            sop_instance_uid: x.sop_instance_uid.clone(),
            series_instance_uid: x.series_instance_uid.clone(),
            study_instance_uid: x.study_instance_uid.clone(),
            transfer_syntax_uid: x.transfer_syntax_uid.clone(),
            size,
        };

        // Look up an identical version and, for a sender with a limited reach, who holds
        // the study and the SOP instance (one round trip to the index).
        let lookup = self
            .catalog
            .ingest_lookup(
                &x.study_instance_uid,
                &x.sop_instance_uid,
                file.dataset_hash(),
            )
            .await
            .map_err(index_err)?;
        let mut existing = lookup.version;
        if existing.is_none() && lookup.legacy_keyed {
            // a version indexed before BLAKE3 keys: is this a re-send of it?
            let legacy = tokio::task::spawn_blocking(file.legacy_dataset_key_job())
                .await
                .map_err(|e| IngestError::Io(std::io::Error::other(e)))??;
            existing = self
                .catalog
                .find_instance_version(&x.sop_instance_uid, &legacy)
                .await
                .map_err(index_err)?;
        }
        let owners = ctx.writable_institutions.as_ref().map(|_| lookup.owners);

        // An identical re-send: nothing new to write (before any ownership check).
        if let Some(existing) = existing {
            debug!(sop_instance_uid = %x.sop_instance_uid, "duplicate instance, identical data set");
            return Ok((
                outcome(
                    OutcomeKind::Duplicate,
                    existing.id,
                    &existing.blob_key,
                    &existing.sha256,
                ),
                None,
            ));
        }

        let mut checked_owner = None;
        if let (Some(writable), Some((study_owner, instance_owner))) =
            (&ctx.writable_institutions, owners)
        {
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
            checked_owner = Some(study_owner);
        }

        let key = Blobs::instance_key(&x.study_instance_uid, &x.sop_instance_uid, file.sha256());
        let new = new_instance(&x, &file, &key, ctx);
        let file_sha256 = file.sha256().to_owned();
        let stored = match file {
            Staged::Spool(f) => {
                let spool_path = f.path().to_owned();
                let r = self.blobs.put_file(&key, &spool_path).await;
                if r.is_ok() {
                    // the spool file now lives in the blob store (moved or uploaded and removed)
                    let _ = f.into_path();
                }
                r
            }
            Staged::Memory(m) => self.blobs.put_bytes(&key, m.bytes).await,
        };
        stored.map_err(|e| {
            warn!(sop_instance_uid = %x.sop_instance_uid, error = %e, "blob store write failed");
            IngestError::Storage(e.to_string())
        })?;

        // An upload's ECG record and audit entry go with the instance: one commit.
        let mut extras = InstanceExtras {
            ecg: None,
            audit: ctx.audit.clone(),
            writable_institutions: ctx.writable_institutions.clone(),
        };
        if let (Some(origin), Some(owner)) = (&ctx.ecg, checked_owner) {
            let o = outcome(OutcomeKind::Stored, 0, &key, &file_sha256);
            let record = new_ecg(
                &origin.processed,
                EcgSourceInfo {
                    format: origin.format.clone(),
                    content_sha256: origin.content_sha256.clone(),
                    original_key: origin.original_key.clone().unwrap_or_else(|| key.clone()),
                    original_size: origin.original_size,
                    device_id: origin.device_id,
                },
                owner.or(ctx.institution_id),
                &o,
            )?;
            extras.ecg = Some((record, origin.idempotency_key.clone()));
        }
        let written = self
            .catalog
            .insert_instance_with(&new, &extras)
            .await
            .map_err(|e| match e {
                // A study created by another institution since the look-up. The blob
                // stays: an identical instance of theirs may have the same key (`dxhub
                // fsck` reports an orphan).
                dxhub_store::catalog::Error::Forbidden(m) => IngestError::NotAuthorized(m),
                e => {
                    warn!(sop_instance_uid = %x.sop_instance_uid, error = %e, "index write failed");
                    IngestError::Index(e.to_string())
                }
            })?;
        let mut result = match written.outcome {
            InsertOutcome::Inserted { instance_id } => {
                outcome(OutcomeKind::Stored, instance_id, &key, &file_sha256)
            }
            InsertOutcome::NewVersion { instance_id, .. } => {
                outcome(OutcomeKind::NewVersion, instance_id, &key, &file_sha256)
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
                // the study may have been created meanwhile: look its owner up again
                checked_owner = None;
                outcome(OutcomeKind::Duplicate, instance_id, &blob_key, &file_sha256)
            }
        };
        result.audited = written.audit.is_some();
        if let Some(e) = written.ecg {
            if e.row().critical != 0 {
                self.metrics.ecg_critical.inc();
            }
            result.ecg = Some(e.row().clone());
        }
        debug!(
            sop_instance_uid = %result.sop_instance_uid,
            study_instance_uid = %result.study_instance_uid,
            size,
            kind = ?result.kind,
            "instance ingested"
        );
        Ok((result, checked_owner))
    }
}

/// Where an ECG record's waveform came from.
struct EcgSourceInfo {
    format: String,
    content_sha256: String,
    original_key: String,
    original_size: u64,
    device_id: Option<i64>,
}

/// The ECG record of `processed`, carried by the instance of `o`.
fn new_ecg(
    processed: &ProcessedEcg,
    src: EcgSourceInfo,
    institution_id: Option<i64>,
    o: &Outcome,
) -> Result<NewEcg, IngestError> {
    let leads: Vec<&str> = processed.ecg.leads.iter().map(|l| l.code.name()).collect();
    Ok(NewEcg {
        institution_id,
        device_id: src.device_id,
        instance_id: o.instance_id,
        study_instance_uid: o.study_instance_uid.clone(),
        sop_instance_uid: o.sop_instance_uid.clone(),
        format: src.format,
        content_sha256: src.content_sha256,
        original_key: src.original_key,
        original_size: src.original_size as i64,
        leads: serde_json::to_string(&leads).unwrap_or_else(|_| "[]".into()),
        sample_rate_hz: processed.ecg.sample_rate_hz,
        samples_per_lead: processed.ecg.samples_per_lead() as i64,
        acquired_at: processed.ecg.acquired_at.clone(),
        analysis: serde_json::to_string(&processed.analysis)
            .map_err(|e| IngestError::Index(e.to_string()))?,
        critical: processed.analysis.is_critical(),
    })
}

fn index_err(e: dxhub_store::catalog::Error) -> IngestError {
    IngestError::Index(e.to_string())
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

fn new_instance(x: &Extracted, file: &Staged, key: &str, ctx: &IngestContext) -> NewInstance {
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
            size_bytes: file.size() as i64,
            sha256: file.sha256().to_owned(),
            dataset_hash: file.dataset_hash().to_owned(),
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
