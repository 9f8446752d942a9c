-- The index of tenancy (alliances, institutions, AE titles) and of stored DICOM instances.
-- Ids are 64-bit integers, times are epoch microseconds, everything else is TEXT.
-- DICOM DA/TM values are kept as received (YYYYMMDD / HHMMSS.FFFFFF): string-comparable.

CREATE TABLE alliances (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE institutions (
    id          INTEGER PRIMARY KEY,
    alliance_id BIGINT  NOT NULL REFERENCES alliances (id),
    name        TEXT    NOT NULL UNIQUE,
    level       TEXT    NOT NULL CHECK (level IN ('county', 'township', 'village')),
    parent_id   BIGINT  REFERENCES institutions (id),
    population  BIGINT,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX idx_institutions_alliance_id ON institutions (alliance_id);
CREATE INDEX idx_institutions_parent_id ON institutions (parent_id);

CREATE TABLE ae_titles (
    id             INTEGER PRIMARY KEY,
    institution_id BIGINT  NOT NULL REFERENCES institutions (id),
    ae_title       TEXT    NOT NULL UNIQUE,
    host           TEXT,
    created_at     BIGINT  NOT NULL
);
CREATE INDEX idx_ae_titles_institution_id ON ae_titles (institution_id);

CREATE TABLE patients (
    id                   INTEGER PRIMARY KEY,
    -- "{institution_id or 0}|{issuer}|{patient_id}", computed by the application
    patient_key          TEXT    NOT NULL UNIQUE,
    institution_id       BIGINT  REFERENCES institutions (id),
    patient_id           TEXT    NOT NULL,
    issuer_of_patient_id TEXT,
    patient_name         TEXT,
    patient_birth_date   TEXT,
    patient_sex          TEXT,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);
CREATE INDEX idx_patients_patient_id ON patients (patient_id);

CREATE TABLE studies (
    id                       INTEGER PRIMARY KEY,
    study_instance_uid       TEXT    NOT NULL UNIQUE,
    patient_ref              BIGINT  NOT NULL REFERENCES patients (id),
    institution_id           BIGINT  REFERENCES institutions (id),
    study_date               TEXT,
    study_time               TEXT,
    accession_number         TEXT,
    study_description        TEXT,
    referring_physician_name TEXT,
    study_id                 TEXT,
    body_part_examined       TEXT,
    -- backslash-joined, sorted, distinct modalities of the study's series
    modalities_in_study      TEXT,
    num_series               BIGINT  NOT NULL DEFAULT 0,
    -- distinct SOP Instance UIDs (a new version of an instance is not counted again)
    num_instances            BIGINT  NOT NULL DEFAULT 0,
    size_bytes               BIGINT  NOT NULL DEFAULT 0,
    received_at              BIGINT  NOT NULL,
    updated_at               BIGINT  NOT NULL
);
CREATE INDEX idx_studies_study_date ON studies (study_date);
CREATE INDEX idx_studies_accession_number ON studies (accession_number);
CREATE INDEX idx_studies_patient_ref ON studies (patient_ref);
CREATE INDEX idx_studies_institution_id ON studies (institution_id);

CREATE TABLE series (
    id                  INTEGER PRIMARY KEY,
    study_ref           BIGINT  NOT NULL REFERENCES studies (id),
    series_instance_uid TEXT    NOT NULL UNIQUE,
    modality            TEXT,
    series_number       BIGINT,
    series_description  TEXT,
    body_part_examined  TEXT,
    series_date         TEXT,
    series_time         TEXT,
    num_instances       BIGINT  NOT NULL DEFAULT 0,
    size_bytes          BIGINT  NOT NULL DEFAULT 0,
    received_at         BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL
);
CREATE INDEX idx_series_study_ref ON series (study_ref);

CREATE TABLE instances (
    id                  INTEGER PRIMARY KEY,
    series_ref          BIGINT  NOT NULL REFERENCES series (id),
    sop_instance_uid    TEXT    NOT NULL,
    sop_class_uid       TEXT    NOT NULL,
    transfer_syntax_uid TEXT    NOT NULL,
    instance_number     BIGINT,
    number_of_frames    BIGINT,
    size_bytes          BIGINT  NOT NULL,
    sha256              TEXT    NOT NULL,
    dataset_sha256      TEXT    NOT NULL,
    blob_key            TEXT    NOT NULL,
    source_ae           TEXT,
    institution_id      BIGINT  REFERENCES institutions (id),
    received_at         BIGINT  NOT NULL,
    -- also serves look-ups by sop_instance_uid alone (leading column)
    UNIQUE (sop_instance_uid, dataset_sha256)
);
CREATE INDEX idx_instances_series_ref ON instances (series_ref);
CREATE INDEX idx_instances_blob_key ON instances (blob_key);
