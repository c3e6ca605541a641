-- Agents' APIs: the API families each resource serves, the 1-hour prompt-cache write price,
-- 1-hour cache writes and reasoning tokens kept apart in the ledger, and the response id that a
-- Responses API request created (follow-ups go back to the resource that holds it).

ALTER TABLE resources ADD COLUMN families TEXT NOT NULL DEFAULT '';

ALTER TABLE price_entries ADD COLUMN cache_write_1h_per_mtok_micros INTEGER;

ALTER TABLE ledger ADD COLUMN tokens_cache_write_1h INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN tokens_reasoning INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ledger ADD COLUMN response_id TEXT;
CREATE INDEX ledger_response ON ledger(response_id) WHERE response_id IS NOT NULL;
