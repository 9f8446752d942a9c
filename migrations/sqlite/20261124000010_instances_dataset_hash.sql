-- The duplicate key of an instance is now a BLAKE3 hash of its data set, tagged with its
-- algorithm ("blake3:<hex>"): one SHA-256 pass over every received instance fewer (the
-- sha256 of the stored object stays). Keys written before are SHA-256 and get their tag
-- ("sha256:<hex>"); the ingest still recognises a re-send of such an instance (it computes
-- the SHA-256 of the data set when the SOP instance has a version keyed that way).
ALTER TABLE instances RENAME COLUMN dataset_sha256 TO dataset_hash;
UPDATE instances SET dataset_hash = 'sha256:' || dataset_hash WHERE dataset_hash NOT LIKE '%:%';
