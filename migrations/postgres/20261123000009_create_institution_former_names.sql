-- The names an institution has had before a rename. A signed report carries the source
-- institution's name as it was at signing; verification accepts a former name of the
-- report's institution, so renaming a township health centre does not make its signed
-- reports fail verification (and moving a report to another institution still does).
CREATE TABLE institution_former_names (
    institution_id BIGINT NOT NULL REFERENCES institutions (id),
    name TEXT NOT NULL,
    -- when the name stopped being used (µs since the Unix epoch)
    until_us BIGINT NOT NULL,
    PRIMARY KEY (institution_id, name)
);
