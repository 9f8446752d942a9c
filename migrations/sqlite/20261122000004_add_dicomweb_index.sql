-- What DICOMweb (QIDO-RS, WADO-RS /metadata) answers from the index without opening blobs.
-- All of it is derived from the stored instances and can be rebuilt from them.
--
-- patients.patient_name_groups: '|' + the whole Patient Name + '|' + each non-empty
--   component group (alphabetic, ideographic, phonetic) + '|', as received: exact and
--   wildcard matching of a value against the whole name or any one group.
-- patients.patient_name_fuzzy: '|'-separated tokens (each group and each of its
--   components), NFKC-normalised and lower-cased: fuzzymatching (case- and
--   width-insensitive, any group, any component, prefix).
-- studies.attrs / series.attrs: DICOM JSON of the study-level / series-level attributes of
--   the first instance received (includefield).
-- instances.metadata: DICOM JSON of the instance (WADO-RS /metadata); bulk data as
--   BulkDataURI placeholders 'dxhub-bulk:{tag path}' that the server resolves per request.
ALTER TABLE patients ADD COLUMN patient_name_groups TEXT;
ALTER TABLE patients ADD COLUMN patient_name_fuzzy TEXT;
ALTER TABLE studies ADD COLUMN attrs TEXT;
ALTER TABLE series ADD COLUMN attrs TEXT;
ALTER TABLE instances ADD COLUMN metadata TEXT;
CREATE INDEX idx_studies_study_time ON studies (study_time);
CREATE INDEX idx_series_modality ON series (modality);
