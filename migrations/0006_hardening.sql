-- Hardening: provider-billed tool calls in the ledger, one open approval request per project and key,
-- and which resources the operator created (their URLs are exempt from the tenant egress policy).

ALTER TABLE ledger ADD COLUMN tool_calls INTEGER NOT NULL DEFAULT 0;

-- Duplicate open requests (two over-budget requests racing) are closed, keeping the oldest.
UPDATE approvals SET status = 'denied', note = 'closed as a duplicate of an earlier open request'
WHERE status = 'open' AND rowid NOT IN (
    SELECT MIN(rowid) FROM approvals WHERE status = 'open' GROUP BY project_id, COALESCE(key_id, '')
);
CREATE UNIQUE INDEX approvals_one_open ON approvals(project_id, COALESCE(key_id, '')) WHERE status = 'open';

ALTER TABLE resources ADD COLUMN egress_exempt INTEGER NOT NULL DEFAULT 0;
