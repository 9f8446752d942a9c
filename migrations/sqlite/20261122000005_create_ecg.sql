-- The ECG centre: every ECG received (upload API, C-STORE, STOW-RS) with its format, the
-- key of its original bytes, the DICOM instance that carries the normalised waveform, and
-- the machine analysis (JSON, "machine measurements, unconfirmed"). `critical` = 1 when the
-- analysis raised a critical flag: the worklist reads it to raise priority.
--
-- content_sha256: of the original bytes as received after transport decoding (gzip), per
--   institution unique: an identical re-send is recognised and answered as the first was.
-- institution_id: NULL only for an ECG imported by the admin (`dxhub import`) without one.
-- devices.kind: 'ecg' (an acquiring ECG device: counts for the coverage indicator) or
--   'gateway' (a clinic gateway token).
CREATE TABLE ecgs (
    id                 INTEGER PRIMARY KEY,
    institution_id     BIGINT  REFERENCES institutions (id),
    device_id          BIGINT  REFERENCES devices (id),
    instance_id        BIGINT  NOT NULL REFERENCES instances (id),
    study_instance_uid TEXT    NOT NULL,
    sop_instance_uid   TEXT    NOT NULL,
    format             TEXT    NOT NULL,
    content_sha256     TEXT    NOT NULL,
    original_key       TEXT    NOT NULL,
    original_size      BIGINT  NOT NULL,
    leads              TEXT    NOT NULL,
    sample_rate_hz     DOUBLE PRECISION NOT NULL,
    samples_per_lead   BIGINT  NOT NULL,
    acquired_at        TEXT,
    analysis           TEXT    NOT NULL,
    critical           INTEGER NOT NULL,
    created_at         BIGINT  NOT NULL,
    UNIQUE (institution_id, content_sha256)
);
CREATE INDEX idx_ecgs_study_instance_uid ON ecgs (study_instance_uid);
CREATE INDEX idx_ecgs_sop_instance_uid ON ecgs (sop_instance_uid);
CREATE INDEX idx_ecgs_device_id ON ecgs (device_id);
CREATE INDEX idx_ecgs_critical ON ecgs (critical);

-- Idempotency-Key of POST /api/v1/ecg (and of resumable uploads), per institution.
CREATE TABLE ecg_idempotency_keys (
    institution_id BIGINT NOT NULL REFERENCES institutions (id),
    idem_key       TEXT   NOT NULL,
    content_sha256 TEXT   NOT NULL,
    ecg_id         BIGINT NOT NULL REFERENCES ecgs (id),
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (institution_id, idem_key)
);

-- Resumable uploads (tus 1.0.0 core + creation): the bytes received so far live in the
-- spool directory of the replica that created the upload, until complete.
CREATE TABLE ecg_uploads (
    id              TEXT   PRIMARY KEY,
    institution_id  BIGINT NOT NULL REFERENCES institutions (id),
    device_id       BIGINT REFERENCES devices (id),
    upload_length   BIGINT NOT NULL,
    upload_offset   BIGINT NOT NULL,
    idem_key        TEXT,
    content_encoding TEXT,
    ecg_id          BIGINT REFERENCES ecgs (id),
    error           TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

ALTER TABLE devices ADD COLUMN kind TEXT NOT NULL DEFAULT 'ecg';
