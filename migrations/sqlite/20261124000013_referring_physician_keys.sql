-- QIDO matching of Referring Physician Name as of Patient Name (migration 4):
-- studies.referring_physician_groups: '|' + the whole name + '|' + each non-empty component
--   group + '|', as received (single-value and wildcard matching of the whole name or any
--   one group: 周^健 finds Zhou^Jian=周^健);
-- studies.referring_physician_fuzzy: NFKC-normalised, lower-cased tokens of each group and
--   component (fuzzymatching).
-- Rows indexed before this migration are filled by the hub at start-up (the keys are
-- computed in Rust: NFKC is not SQL).
ALTER TABLE studies ADD COLUMN referring_physician_groups TEXT;
ALTER TABLE studies ADD COLUMN referring_physician_fuzzy TEXT;
