-- Policy as code: a keyed digest (HMAC-SHA256 under a key derived from the master key) of each
-- resource's stored credential, so a plan can tell whether a policy file changes it without
-- decrypting or showing it. NULL until the credential is next written or the start-up backfill runs.
ALTER TABLE resources ADD COLUMN credential_digest TEXT;
-- Policy applies are audited as one change set; the file's digest is in the entry's summary.
