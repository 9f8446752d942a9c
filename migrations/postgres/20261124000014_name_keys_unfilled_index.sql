-- The start-up fill of the name-matching keys (migration 13) asks, on every start, for the
-- studies whose keys are not yet computed. This partial index holds exactly those rows
-- (none once the fill has run), so the question is one index probe instead of a pass over
-- every study.
CREATE INDEX studies_name_keys_unfilled ON studies (id)
    WHERE referring_physician_groups IS NULL AND referring_physician_name IS NOT NULL;
