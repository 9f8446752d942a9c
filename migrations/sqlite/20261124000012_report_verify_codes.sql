-- The unguessable code of a signed report version's public verification page (the URL in
-- the PDF's QR code): anyone holding the printout can check it without an account. One
-- code per version, made when its PDF is first rendered.
CREATE TABLE report_verify_codes (
    code       TEXT   PRIMARY KEY,
    report_id  BIGINT NOT NULL REFERENCES reports (id),
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (report_id, version)
);
