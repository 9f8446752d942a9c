-- How many times an arriving instance found the study / series already indexed (and filled
-- what it lacked). The instance insert creates or fills the row in one statement
-- (INSERT … ON CONFLICT DO UPDATE … RETURNING) and tells the two apart by this count: 0
-- means the statement created the row.
ALTER TABLE studies ADD COLUMN fills BIGINT NOT NULL DEFAULT 0;
ALTER TABLE series ADD COLUMN fills BIGINT NOT NULL DEFAULT 0;
