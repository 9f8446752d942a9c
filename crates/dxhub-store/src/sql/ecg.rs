//! SQL of the ECG centre's records (see [`crate::ecg`]).

use super::{SqlCatalog, now_us};
use crate::catalog::Result;
use crate::ecg::{EcgCoverageRow, EcgInsert, EcgRow, EcgUpload, NewEcg};

const ECG_SELECT: &str = "SELECT e.id, e.institution_id, e.device_id, e.instance_id, \
     e.study_instance_uid, e.sop_instance_uid, e.format, e.content_sha256, e.original_key, \
     e.original_size, e.leads, e.sample_rate_hz, e.samples_per_lead, e.acquired_at, e.analysis, \
     e.critical, e.created_at, i.blob_key AS instance_blob_key \
     FROM ecgs e JOIN instances i ON i.id = e.instance_id";

pub(super) const INSERT_ECG: &str = "INSERT INTO ecgs (institution_id, device_id, instance_id, \
     study_instance_uid, sop_instance_uid, format, content_sha256, original_key, \
     original_size, leads, sample_rate_hz, samples_per_lead, acquired_at, analysis, critical, \
     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
     ON CONFLICT DO NOTHING RETURNING id";
pub(super) const INSERT_IDEMPOTENCY_KEY: &str = "INSERT INTO ecg_idempotency_keys \
     (institution_id, idem_key, content_sha256, ecg_id, created_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
/// The record an institution already has for this content (UNIQUE institution_id,
/// content_sha256).
pub(super) const FIND_ECG_BY_CONTENT: &str =
    "SELECT id FROM ecgs WHERE institution_id = $1 AND content_sha256 = $2";
/// The instance (id, blob key) an ECG record points at.
pub(super) const ECG_INSTANCE: &str = "SELECT i.id, i.blob_key FROM ecgs e \
     JOIN instances i ON i.id = e.instance_id WHERE e.id = $1";

const UPLOAD_COLUMNS: &str = "id, institution_id, device_id, upload_length, upload_offset, \
     idem_key, content_encoding, ecg_id, error, created_at, updated_at, expires_at";

#[derive(sqlx::FromRow)]
struct KeyedEcgId {
    content_sha256: String,
    ecg_id: i64,
}

const COVERAGE: &str = "SELECT i.id AS institution_id, i.name AS institution_name, \
     i.alliance_id, i.level, \
     (SELECT COUNT(*) FROM devices d WHERE d.institution_id = i.id AND d.kind = 'ecg' \
        AND d.revoked_at IS NULL) AS active_devices, \
     (SELECT MAX(d.last_seen_at) FROM devices d WHERE d.institution_id = i.id \
        AND d.kind = 'ecg' AND d.revoked_at IS NULL) AS last_seen_at, \
     (SELECT COUNT(*) FROM ecgs e WHERE e.institution_id = i.id) AS ecgs, \
     (SELECT COUNT(*) FROM ecgs e WHERE e.institution_id = i.id AND e.created_at >= $1) \
        AS ecgs_30d \
     FROM institutions i ORDER BY i.alliance_id, i.id";

impl SqlCatalog {
    async fn ecg_where(
        &self,
        clause: &str,
        bind: impl FnOnce(EcgQuery<'_>) -> EcgQuery<'_>,
    ) -> Result<Option<EcgRow>> {
        let sql = format!("{ECG_SELECT} WHERE {clause} ORDER BY e.id DESC LIMIT 1");
        let q = sqlx::query_as::<_, EcgRow>(&sql);
        Ok(bind(q).fetch_optional(&self.read).await?)
    }

    pub(super) async fn ecg_list_originals(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<crate::ecg::EcgOriginal>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as::<_, crate::ecg::EcgOriginal>(
            "SELECT id, original_key, original_size, content_sha256 FROM ecgs WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    pub(super) async fn ecg_find(&self, id: i64) -> Result<Option<EcgRow>> {
        self.ecg_where("e.id = $1", |q| q.bind(id)).await
    }

    pub(super) async fn ecg_find_by_sop_instance(&self, sop: &str) -> Result<Option<EcgRow>> {
        let sop = sop.to_owned();
        self.ecg_where("e.sop_instance_uid = $1", move |q| q.bind(sop))
            .await
    }

    pub(super) async fn ecg_find_by_study(&self, study: &str) -> Result<Vec<EcgRow>> {
        let sql = format!("{ECG_SELECT} WHERE e.study_instance_uid = $1 ORDER BY e.id");
        Ok(sqlx::query_as::<_, EcgRow>(&sql)
            .bind(study)
            .fetch_all(&self.read)
            .await?)
    }

    pub(super) async fn ecg_find_by_content(
        &self,
        institution_id: Option<i64>,
        sha: &str,
    ) -> Result<Option<EcgRow>> {
        let sha = sha.to_owned();
        match institution_id {
            Some(i) => {
                self.ecg_where(
                    "e.institution_id = $1 AND e.content_sha256 = $2",
                    move |q| q.bind(i).bind(sha),
                )
                .await
            }
            None => {
                self.ecg_where(
                    "e.institution_id IS NULL AND e.content_sha256 = $1",
                    move |q| q.bind(sha),
                )
                .await
            }
        }
    }

    pub(super) async fn ecg_find_by_idempotency_key(
        &self,
        institution_id: i64,
        key: &str,
    ) -> Result<Option<(String, EcgRow)>> {
        let keyed = sqlx::query_as::<_, KeyedEcgId>(
            "SELECT content_sha256, ecg_id FROM ecg_idempotency_keys \
             WHERE institution_id = $1 AND idem_key = $2",
        )
        .bind(institution_id)
        .bind(key)
        .fetch_optional(&self.read)
        .await?;
        let Some(k) = keyed else { return Ok(None) };
        Ok(self
            .ecg_find(k.ecg_id)
            .await?
            .map(|row| (k.content_sha256, row)))
    }

    pub(super) async fn ecg_insert(
        &self,
        new: &NewEcg,
        idempotency_key: Option<&str>,
    ) -> Result<EcgInsert> {
        let key = idempotency_key.map(str::to_owned);
        let (id, fresh) = match self
            .group_write(|reply| super::group::WriteJob::Ecg(Box::new(new.clone()), key, reply))
            .await
        {
            Some(r) => r?,
            None => {
                let mut tx = self.begin_write().await?;
                let (id, fresh, _) = ecg_insert_steps(&mut tx, new, idempotency_key).await?;
                tx.commit().await?;
                (id, fresh)
            }
        };
        // read back once committed, off the single writer
        let row = self
            .ecg_find(id)
            .await?
            .ok_or_else(|| crate::catalog::Error::NotFound(format!("ECG {id} after its insert")))?;
        Ok(if fresh {
            EcgInsert::Inserted(row)
        } else {
            EcgInsert::Existing(row)
        })
    }

    pub(super) async fn ecg_create_upload(&self, u: &EcgUpload) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO ecg_uploads (id, institution_id, device_id, upload_length, \
             upload_offset, idem_key, content_encoding, ecg_id, error, created_at, updated_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&u.id)
        .bind(u.institution_id)
        .bind(u.device_id)
        .bind(u.upload_length)
        .bind(u.upload_offset)
        .bind(u.idem_key.as_deref())
        .bind(u.content_encoding.as_deref())
        .bind(u.ecg_id)
        .bind(u.error.as_deref())
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(u.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn ecg_find_upload(&self, id: &str) -> Result<Option<EcgUpload>> {
        let sql = format!("SELECT {UPLOAD_COLUMNS} FROM ecg_uploads WHERE id = $1");
        // from the write pool: a PATCH right after a PATCH must see its offset
        Ok(sqlx::query_as::<_, EcgUpload>(&sql)
            .bind(id)
            .fetch_optional(&self.write)
            .await?)
    }

    pub(super) async fn ecg_set_upload_offset(&self, id: &str, from: i64, to: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE ecg_uploads SET upload_offset = $3, updated_at = $4 \
             WHERE id = $1 AND upload_offset = $2",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(now_us())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub(super) async fn ecg_finish_upload(
        &self,
        id: &str,
        ecg_id: Option<i64>,
        error: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE ecg_uploads SET ecg_id = $2, error = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(ecg_id)
        .bind(error)
        .bind(now_us())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn ecg_delete_expired_uploads(&self, now: i64) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<String> =
            sqlx::query_scalar("DELETE FROM ecg_uploads WHERE expires_at < $1 RETURNING id")
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(ids)
    }

    pub(super) async fn ecg_coverage_rows(&self) -> Result<Vec<EcgCoverageRow>> {
        let since = now_us() - 30 * 24 * 3600 * 1_000_000;
        Ok(sqlx::query_as::<_, EcgCoverageRow>(COVERAGE)
            .bind(since)
            .fetch_all(&self.read)
            .await?)
    }
}

type EcgQuery<'q> = sqlx::query::QueryAs<'q, sqlx::Any, EcgRow, sqlx::any::AnyArguments<'q>>;

/// Insert an ECG record (and bind its idempotency key) inside `tx`: `(id, newly
/// inserted, created_at)`; the institution's record of the same content when it already
/// has one (its `created_at` is then not this one).
pub(super) async fn ecg_insert_steps(
    tx: &mut super::Tx,
    new: &NewEcg,
    idempotency_key: Option<&str>,
) -> Result<(i64, bool, i64)> {
    let now = now_us();
    let inserted: Option<i64> = sqlx::query_scalar(INSERT_ECG)
        .bind(new.institution_id)
        .bind(new.device_id)
        .bind(new.instance_id)
        .bind(&new.study_instance_uid)
        .bind(&new.sop_instance_uid)
        .bind(&new.format)
        .bind(&new.content_sha256)
        .bind(&new.original_key)
        .bind(new.original_size)
        .bind(&new.leads)
        .bind(new.sample_rate_hz)
        .bind(new.samples_per_lead)
        .bind(new.acquired_at.as_deref())
        .bind(&new.analysis)
        .bind(i32::from(new.critical))
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
    let (id, fresh) = match inserted {
        Some(id) => (id, true),
        None => {
            // the institution already has this content (UNIQUE institution_id,
            // content_sha256); NULL institutions never conflict
            let id: i64 = sqlx::query_scalar(FIND_ECG_BY_CONTENT)
                .bind(new.institution_id)
                .bind(&new.content_sha256)
                .fetch_one(&mut **tx)
                .await?;
            (id, false)
        }
    };
    if let (Some(key), Some(institution_id)) = (idempotency_key, new.institution_id) {
        sqlx::query(INSERT_IDEMPOTENCY_KEY)
            .bind(institution_id)
            .bind(key)
            .bind(&new.content_sha256)
            .bind(id)
            .bind(now)
            .execute(&mut **tx)
            .await?;
    }
    Ok((id, fresh, now))
}

/// The row a fresh insert of `new` wrote (as [`SqlCatalog::ecg_find`] would read it back).
pub(super) fn inserted_row(new: &NewEcg, id: i64, created_at: i64, blob_key: &str) -> EcgRow {
    EcgRow {
        id,
        institution_id: new.institution_id,
        device_id: new.device_id,
        instance_id: new.instance_id,
        study_instance_uid: new.study_instance_uid.clone(),
        sop_instance_uid: new.sop_instance_uid.clone(),
        format: new.format.clone(),
        content_sha256: new.content_sha256.clone(),
        original_key: new.original_key.clone(),
        original_size: new.original_size,
        leads: new.leads.clone(),
        sample_rate_hz: new.sample_rate_hz,
        samples_per_lead: new.samples_per_lead,
        acquired_at: new.acquired_at.clone(),
        analysis: new.analysis.clone(),
        critical: i32::from(new.critical),
        created_at,
        instance_blob_key: blob_key.to_owned(),
    }
}
