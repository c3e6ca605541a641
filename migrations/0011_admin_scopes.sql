-- Admin keys get a scope: `admin` (every power the tenant's admin API has) or `viewer` (read-only,
-- for finance and auditors). Keys issued before this migration keep today's powers.
ALTER TABLE admin_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin' CHECK (scope IN ('admin', 'viewer'));
