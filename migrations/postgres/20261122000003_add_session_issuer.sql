-- Who issued a session: 'login' (HTTP login) or 'cli' (`dxhub admin token issue`, service
-- accounts exempt from TOTP enrolment). A TOTP secret waits in totp_pending_secret until
-- the user confirms a code; only then does it become totp_secret (enrolled).
ALTER TABLE sessions ADD COLUMN issued_by TEXT NOT NULL DEFAULT 'login';
ALTER TABLE users ADD COLUMN totp_pending_secret TEXT;
