-- Reports (issue #7): templates and the exam catalogue per alliance, critical-value
-- categories, readers' SM2 signing keys (sealed under the server key-encryption key),
-- reports with every version kept, signed addenda, critical values with their
-- communication log, and DICOM push-back deliveries to clinics' own PACS.
-- Times are epoch microseconds UTC; booleans are 0/1; JSON columns are TEXT.

-- A reader granted the right to sign their own reports (senior readers always may).
ALTER TABLE users ADD COLUMN signing_authority BIGINT NOT NULL DEFAULT 0;
-- Critical values nobody acknowledged escalate to the institution head (and group admins).
ALTER TABLE institutions ADD COLUMN head_user_id BIGINT REFERENCES users (id);
-- Optional DICOM push-back of signed reports (Encapsulated PDF + Basic Text SR).
ALTER TABLE institutions ADD COLUMN pacs_ae_title TEXT;
ALTER TABLE institutions ADD COLUMN pacs_host TEXT;
ALTER TABLE institutions ADD COLUMN pacs_port BIGINT;

CREATE TABLE report_templates (
    id          INTEGER PRIMARY KEY,
    alliance_id BIGINT  NOT NULL REFERENCES alliances (id),
    code        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    -- dxhub_core::report_template::Template as JSON
    definition  TEXT    NOT NULL,
    enabled     BIGINT  NOT NULL DEFAULT 1,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (alliance_id, code)
);

CREATE TABLE exam_types (
    id                   INTEGER PRIMARY KEY,
    alliance_id          BIGINT  NOT NULL REFERENCES alliances (id),
    code                 TEXT    NOT NULL,
    -- dxhub_core::recognition::ExamType as JSON
    definition           TEXT    NOT NULL,
    recognition_eligible BIGINT  NOT NULL DEFAULT 0,
    -- NULL: no limit (no national fixed period exists)
    validity_days        BIGINT,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL,
    UNIQUE (alliance_id, code)
);

CREATE TABLE critical_categories (
    id          INTEGER PRIMARY KEY,
    alliance_id BIGINT  NOT NULL REFERENCES alliances (id),
    code        TEXT    NOT NULL,
    -- dxhub_core::report_template::CriticalCategory as JSON
    definition  TEXT    NOT NULL,
    position    BIGINT  NOT NULL,
    UNIQUE (alliance_id, code)
);

CREATE TABLE signing_keys (
    id            INTEGER PRIMARY KEY,
    user_id       BIGINT  NOT NULL REFERENCES users (id),
    -- SEC1 uncompressed SM2 public key, hex; fingerprint: SM3 of it, hex
    public_key    TEXT    NOT NULL UNIQUE,
    fingerprint   TEXT    NOT NULL,
    -- base64(nonce || AES-256-GCM ciphertext of the secret scalar) under the KEK `kek_id`
    sealed_secret TEXT    NOT NULL,
    kek_id        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    revoked_at    BIGINT
);
CREATE UNIQUE INDEX idx_signing_keys_active ON signing_keys (user_id) WHERE revoked_at IS NULL;

CREATE TABLE reports (
    id                 INTEGER PRIMARY KEY,
    alliance_id        BIGINT  NOT NULL REFERENCES alliances (id),
    study_id           BIGINT  NOT NULL UNIQUE REFERENCES studies (id),
    study_instance_uid TEXT    NOT NULL,
    work_item_id       BIGINT  NOT NULL REFERENCES work_items (id),
    institution_id     BIGINT  REFERENCES institutions (id),
    identity_hash      TEXT,
    kind               TEXT    NOT NULL CHECK (kind IN ('imaging', 'ecg')),
    template_code      TEXT    NOT NULL,
    exam_code          TEXT,
    -- the state of the current version
    state              TEXT    NOT NULL CHECK (state IN ('draft', 'submitted', 'signed', 'returned')),
    current_version    BIGINT  NOT NULL,
    -- the version in force (signed, not superseded)
    signed_version     BIGINT,
    author_id          BIGINT  NOT NULL REFERENCES users (id),
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    signed_at          BIGINT
);
CREATE INDEX idx_reports_institution ON reports (institution_id, updated_at);
CREATE INDEX idx_reports_identity_hash ON reports (identity_hash);
CREATE INDEX idx_reports_state ON reports (state, updated_at);

-- Every saved version; a version is immutable once submitted (only its state moves on:
-- submitted → signed/returned, signed → superseded).
CREATE TABLE report_versions (
    report_id         BIGINT  NOT NULL REFERENCES reports (id),
    version           BIGINT  NOT NULL,
    kind              TEXT    NOT NULL CHECK (kind IN ('report', 'correction')),
    state             TEXT    NOT NULL CHECK (state IN ('draft', 'submitted', 'signed',
                              'returned', 'superseded')),
    -- {"sections":{…},"fields":{…}}
    body              TEXT    NOT NULL,
    -- ECG: machine values offered and the reader's confirmations
    machine           TEXT,
    confirmations     TEXT,
    -- [{"sop_instance_uid","frame"}]
    key_images        TEXT,
    qc_grade          TEXT,
    critical          BIGINT  NOT NULL DEFAULT 0,
    critical_category TEXT,
    author_id         BIGINT  NOT NULL REFERENCES users (id),
    written_at        BIGINT  NOT NULL,
    submitted_at      BIGINT,
    -- return or correction reason
    reason            TEXT,
    returned_by       BIGINT  REFERENCES users (id),
    returned_at       BIGINT,
    verifier_id       BIGINT  REFERENCES users (id),
    signed_at         BIGINT,
    -- dxhub_core::report::SignedContent as JSON, the SM2 signature (hex) and its key
    signed_content    TEXT,
    signature         TEXT,
    key_id            BIGINT  REFERENCES signing_keys (id),
    superseded_at     BIGINT,
    PRIMARY KEY (report_id, version)
);

CREATE TABLE report_addenda (
    id             INTEGER PRIMARY KEY,
    report_id      BIGINT  NOT NULL REFERENCES reports (id),
    -- the signed version it adds to
    version        BIGINT  NOT NULL,
    text           TEXT    NOT NULL,
    author_id      BIGINT  NOT NULL REFERENCES users (id),
    signed_at      BIGINT  NOT NULL,
    signed_content TEXT    NOT NULL,
    signature      TEXT    NOT NULL,
    key_id         BIGINT  NOT NULL REFERENCES signing_keys (id)
);
CREATE INDEX idx_report_addenda_report ON report_addenda (report_id);

CREATE TABLE critical_values (
    id             INTEGER PRIMARY KEY,
    alliance_id    BIGINT  NOT NULL REFERENCES alliances (id),
    report_id      BIGINT  NOT NULL REFERENCES reports (id),
    work_item_id   BIGINT  NOT NULL REFERENCES work_items (id),
    institution_id BIGINT  REFERENCES institutions (id),
    category       TEXT    NOT NULL,
    note           TEXT,
    state          TEXT    NOT NULL CHECK (state IN ('open', 'acknowledged')),
    raised_by      BIGINT  NOT NULL REFERENCES users (id),
    raised_at      BIGINT  NOT NULL,
    -- escalation when still open at this time
    due_at         BIGINT  NOT NULL,
    escalated_at   BIGINT,
    ack_by         BIGINT  REFERENCES users (id),
    ack_name       TEXT,
    ack_action     TEXT,
    ack_at         BIGINT
);
CREATE INDEX idx_critical_values_open ON critical_values (state, due_at);
CREATE INDEX idx_critical_values_report ON critical_values (report_id);
CREATE INDEX idx_critical_values_institution ON critical_values (institution_id, raised_at);

-- The communication record of a critical value (appended to the report).
CREATE TABLE critical_log (
    id          INTEGER PRIMARY KEY,
    critical_id BIGINT  NOT NULL REFERENCES critical_values (id),
    at          BIGINT  NOT NULL,
    -- raised, notified, escalated, acknowledged
    kind        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    detail      TEXT    NOT NULL
);
CREATE INDEX idx_critical_log_critical ON critical_log (critical_id, id);

CREATE TABLE report_pushes (
    id               INTEGER PRIMARY KEY,
    report_id        BIGINT  NOT NULL REFERENCES reports (id),
    version          BIGINT  NOT NULL,
    institution_id   BIGINT  NOT NULL REFERENCES institutions (id),
    -- "AE@host:port" at the time it was queued
    target           TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    locked_until     BIGINT,
    -- DIMSE statuses of the PDF and the SR, e.g. "0000,0000"
    last_status      TEXT,
    last_error       TEXT,
    created_at       BIGINT  NOT NULL,
    delivered_at     BIGINT,
    UNIQUE (report_id, version)
);
CREATE INDEX idx_report_pushes_due ON report_pushes (state, next_attempt_at);
