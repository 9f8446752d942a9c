-- The worklist (issue #6): reader pools and their members, routing rules, work items with
-- claim leases and turnaround clocks, worklist events (the SSE stream and webhooks read
-- them), per-user notifications, outbound webhooks with their deliveries (a dead-letter
-- list), and leases of periodic jobs (so N replicas run each job once).
-- Times are epoch microseconds UTC; booleans are 0/1.

-- Ready detection: a study is ready when no instance arrived for stable_after_s (per
-- institution, NULL: the configured default), when its sender marked it complete, or at
-- once for an ECG. identity_hash: sha256 of the identity the patient is recognised by across
-- the alliance (resident ID, issuer + ID, else institution-local), computed when ready.
ALTER TABLE institutions ADD COLUMN stable_after_s BIGINT;
-- The priority a DICOM sender's studies start with (AE-title mapping).
ALTER TABLE ae_titles ADD COLUMN priority TEXT;
ALTER TABLE studies ADD COLUMN ready_at BIGINT;
ALTER TABLE studies ADD COLUMN complete_at BIGINT;
ALTER TABLE studies ADD COLUMN sender_priority TEXT;
ALTER TABLE studies ADD COLUMN exam_code TEXT;
ALTER TABLE studies ADD COLUMN identity_hash TEXT;
-- Studies indexed before the worklist existed are not routed after an upgrade.
UPDATE studies SET ready_at = updated_at;
CREATE INDEX idx_studies_not_ready ON studies (updated_at) WHERE ready_at IS NULL;
CREATE INDEX idx_studies_identity_hash ON studies (identity_hash);
CREATE INDEX idx_studies_updated_at ON studies (updated_at);

CREATE TABLE reader_pools (
    id                 INTEGER PRIMARY KEY,
    alliance_id        BIGINT  NOT NULL REFERENCES alliances (id),
    name               TEXT    NOT NULL,
    label              TEXT    NOT NULL,
    -- breached items move here (NULL: they stay and are escalated by notification only)
    escalation_pool_id BIGINT  REFERENCES reader_pools (id),
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    UNIQUE (alliance_id, name)
);

CREATE TABLE pool_members (
    pool_id         BIGINT  NOT NULL REFERENCES reader_pools (id),
    user_id         BIGINT  NOT NULL REFERENCES users (id),
    subspecialty    TEXT,
    -- most items this reader may hold (claimed, drafted, returned) at once
    max_open_claims BIGINT  NOT NULL DEFAULT 5,
    -- "mon-fri 08:00-17:30; sat 08:00-12:00" (Asia/Shanghai); NULL: always on duty
    schedule        TEXT,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (pool_id, user_id)
);
CREATE INDEX idx_pool_members_user_id ON pool_members (user_id);

CREATE TABLE routing_rules (
    id          INTEGER PRIMARY KEY,
    alliance_id BIGINT  NOT NULL REFERENCES alliances (id),
    position    BIGINT  NOT NULL,
    name        TEXT    NOT NULL,
    enabled     BIGINT  NOT NULL DEFAULT 1,
    -- dxhub_core::worklist::RuleMatch as JSON
    conditions  TEXT    NOT NULL,
    pool_id     BIGINT  NOT NULL REFERENCES reader_pools (id),
    priority    TEXT    NOT NULL CHECK (priority IN ('stat', 'urgent', 'routine')),
    sla_minutes BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX idx_routing_rules_alliance ON routing_rules (alliance_id, position);

CREATE TABLE work_items (
    id                 INTEGER PRIMARY KEY,
    alliance_id        BIGINT  NOT NULL REFERENCES alliances (id),
    study_id           BIGINT  NOT NULL UNIQUE REFERENCES studies (id),
    study_instance_uid TEXT    NOT NULL,
    institution_id     BIGINT  REFERENCES institutions (id),
    identity_hash      TEXT,
    modality           TEXT,
    -- NULL: no rule matched (unrouted, visible to group admins)
    pool_id            BIGINT  REFERENCES reader_pools (id),
    rule_id            BIGINT,
    priority           TEXT    NOT NULL CHECK (priority IN ('stat', 'urgent', 'routine')),
    priority_rank      BIGINT  NOT NULL,
    state              TEXT    NOT NULL CHECK (state IN ('queued', 'claimed', 'drafted',
                               'submitted', 'signed', 'returned', 'cancelled')),
    claimed_by         BIGINT  REFERENCES users (id),
    claimed_at         BIGINT,
    lease_expires_at   BIGINT,
    critical           BIGINT  NOT NULL DEFAULT 0,
    sla_minutes        BIGINT  NOT NULL,
    ready_at           BIGINT  NOT NULL,
    warn_at            BIGINT  NOT NULL,
    due_at             BIGINT  NOT NULL,
    warned_at          BIGINT,
    breached_at        BIGINT,
    escalated_from     BIGINT,
    -- when the report was submitted (instances after it flag new_images)
    reported_at        BIGINT,
    new_images         BIGINT  NOT NULL DEFAULT 0,
    version            BIGINT  NOT NULL DEFAULT 1,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    done_at            BIGINT
);
CREATE INDEX idx_work_items_queue ON work_items (state, priority_rank, due_at, id);
CREATE INDEX idx_work_items_pool ON work_items (pool_id, state, priority_rank, due_at, id);
CREATE INDEX idx_work_items_claimed_by ON work_items (claimed_by, state);
CREATE INDEX idx_work_items_identity ON work_items (identity_hash, state);
CREATE INDEX idx_work_items_lease ON work_items (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX idx_work_items_warn ON work_items (warn_at) WHERE warned_at IS NULL AND done_at IS NULL;
CREATE INDEX idx_work_items_due ON work_items (due_at) WHERE breached_at IS NULL AND done_at IS NULL;

-- What happened to work items, in order: the SSE stream and the webhooks read it.
CREATE TABLE worklist_events (
    id           INTEGER PRIMARY KEY,
    alliance_id  BIGINT  NOT NULL,
    work_item_id BIGINT  NOT NULL,
    pool_id      BIGINT,
    kind         TEXT    NOT NULL,
    actor        TEXT,
    detail       TEXT,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX idx_worklist_events_item ON worklist_events (work_item_id);

CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY,
    user_id      BIGINT  NOT NULL REFERENCES users (id),
    work_item_id BIGINT  NOT NULL,
    event_id     BIGINT  NOT NULL,
    kind         TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    read_at      BIGINT,
    UNIQUE (user_id, event_id)
);
CREATE INDEX idx_notifications_user ON notifications (user_id, id);

CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY,
    alliance_id BIGINT  NOT NULL REFERENCES alliances (id),
    url         TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    -- comma-separated event kinds, or '*'
    events      TEXT    NOT NULL,
    enabled     BIGINT  NOT NULL DEFAULT 1,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX idx_webhooks_alliance ON webhooks (alliance_id);

-- state: pending (to send at next_attempt_at), delivered, dead (gave up: the dead letters).
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    webhook_id      BIGINT  NOT NULL REFERENCES webhooks (id),
    event_id        BIGINT  NOT NULL,
    kind            TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    locked_until    BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX idx_webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);

CREATE TABLE job_leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);

-- The default pools and rules of every existing alliance (new alliances get them when
-- created: dxhub_core::worklist::DEFAULT_ROUTES).
INSERT INTO reader_pools (alliance_id, name, label, created_at, updated_at)
SELECT a.id, v.name, v.label, a.created_at, a.created_at
FROM alliances a CROSS JOIN (
    SELECT 'ecg' AS name, '心电诊断组' AS label
    UNION ALL SELECT 'radiology', '影像诊断组'
    UNION ALL SELECT 'ultrasound', '超声诊断组'
) v;
INSERT INTO routing_rules (alliance_id, position, name, enabled, conditions, pool_id, priority,
                           sla_minutes, created_at, updated_at)
SELECT p.alliance_id, v.position, v.name, 1, v.conditions, p.id, v.priority, v.sla,
       p.created_at, p.created_at
FROM reader_pools p JOIN (
    SELECT 'ecg' AS pool, 10 AS position, '心电 → 心电诊断组' AS name,
           '{"modalities":["ECG"]}' AS conditions, 'urgent' AS priority, 30 AS sla
    UNION ALL SELECT 'radiology', 20, '放射 → 影像诊断组',
           '{"modalities":["CR","DX","CT","MR","MG"]}', 'routine', 240
    UNION ALL SELECT 'ultrasound', 30, '超声 → 超声诊断组', '{"modalities":["US"]}', 'routine', 240
) v ON v.pool = p.name;
