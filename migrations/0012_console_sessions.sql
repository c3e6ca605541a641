-- Console sign-ins. The cookie holds a random session id; only its digest is stored. A session names
-- the admin key it was opened with (or, for the operator, the digest of the operator token), so
-- revoking the key or rotating the token ends it. Sign-out deletes the row.
CREATE TABLE console_sessions (
    id_digest TEXT PRIMARY KEY,
    key_id TEXT REFERENCES admin_keys(id),
    operator_digest TEXT,
    tenant_id TEXT,
    csrf TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    CHECK ((key_id IS NULL) <> (operator_digest IS NULL))
);
CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);
