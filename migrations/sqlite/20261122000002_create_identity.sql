-- Identity and audit: users, their sessions, device tokens and the hash-chained audit log.
-- Secrets are never stored: passwords as argon2id PHC strings, tokens as sha256 (hex).
-- Times are epoch microseconds; booleans are BIGINT 0/1.

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    institution_id BIGINT  NOT NULL REFERENCES institutions (id),
    login          TEXT    NOT NULL UNIQUE,
    role           TEXT    NOT NULL CHECK (role IN ('clinic_tech', 'clinic_doctor', 'reader',
                           'senior_reader', 'group_admin', 'auditor', 'superadmin')),
    password_hash  TEXT    NOT NULL,
    totp_secret    TEXT,
    failed_logins  BIGINT  NOT NULL DEFAULT 0,
    locked_until   BIGINT,
    disabled       BIGINT  NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE INDEX idx_users_institution_id ON users (institution_id);

CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,
    user_id         BIGINT  NOT NULL REFERENCES users (id),
    token_hash      TEXT    NOT NULL UNIQUE,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL,
    last_seen_at    BIGINT  NOT NULL,
    -- NULL: no idle timeout (tokens issued by the CLI for scripts)
    idle_timeout_us BIGINT,
    revoked_at      BIGINT,
    client          TEXT
);
CREATE INDEX idx_sessions_user_id ON sessions (user_id);

CREATE TABLE devices (
    id             INTEGER PRIMARY KEY,
    institution_id BIGINT  NOT NULL REFERENCES institutions (id),
    serial         TEXT    NOT NULL UNIQUE,
    model          TEXT,
    token_hash     TEXT    NOT NULL UNIQUE,
    created_at     BIGINT  NOT NULL,
    last_seen_at   BIGINT,
    revoked_at     BIGINT
);
CREATE INDEX idx_devices_institution_id ON devices (institution_id);

-- Append-only. Ids are assigned by the application (previous id + 1) so the chain has no
-- holes; hash = sha256(prev_hash || canonical entry), prev_hash of the first entry is 64 zeros.
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             BIGINT  NOT NULL,
    actor_kind     TEXT    NOT NULL,
    actor          TEXT    NOT NULL,
    institution_id BIGINT,
    action         TEXT    NOT NULL,
    object_kind    TEXT,
    object_id      TEXT,
    outcome        TEXT    NOT NULL,
    client         TEXT,
    request_id     TEXT,
    prev_hash      TEXT    NOT NULL,
    hash           TEXT    NOT NULL
);
CREATE INDEX idx_audit_log_at ON audit_log (at);
CREATE INDEX idx_audit_log_actor ON audit_log (actor);
CREATE INDEX idx_audit_log_institution_id ON audit_log (institution_id);
CREATE INDEX idx_audit_log_object_id ON audit_log (object_id);

-- Append-only in the database too: rows cannot be changed or removed through SQL without
-- first dropping these triggers (which `dxhub audit verify` would then still catch).
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
