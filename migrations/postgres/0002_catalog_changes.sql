-- Catalog change tracking, as SQLite's temporary triggers do it: every insert, update and delete of a
-- catalog row records (kind, id) in the session's temporary table `catalog_changes`, inside the same
-- transaction. Only the writer connection creates that table, so other sessions record nothing.

CREATE FUNCTION qf_track_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed TEXT;
BEGIN
    IF to_regclass('pg_temp.catalog_changes') IS NULL THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD) ->> TG_ARGV[1];
    ELSE
        changed := to_jsonb(NEW) ->> TG_ARGV[1];
    END IF;
    INSERT INTO pg_temp.catalog_changes (kind, id) VALUES (TG_ARGV[0], changed) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER qf_track AFTER INSERT OR UPDATE OR DELETE ON tenants FOR EACH ROW EXECUTE FUNCTION qf_track_catalog('tenant', 'id');
CREATE TRIGGER qf_track AFTER INSERT OR UPDATE OR DELETE ON projects FOR EACH ROW EXECUTE FUNCTION qf_track_catalog('project', 'id');
CREATE TRIGGER qf_track AFTER INSERT OR UPDATE OR DELETE ON project_keys FOR EACH ROW EXECUTE FUNCTION qf_track_catalog('key', 'id');
CREATE TRIGGER qf_track AFTER INSERT OR UPDATE OR DELETE ON seats FOR EACH ROW EXECUTE FUNCTION qf_track_catalog('seat', 'id');
CREATE TRIGGER qf_track AFTER INSERT OR UPDATE OR DELETE ON resources FOR EACH ROW EXECUTE FUNCTION qf_track_catalog('resource', 'id');
CREATE TRIGGER qf_track AFTER INSERT OR UPDATE OR DELETE ON resource_oauth FOR EACH ROW EXECUTE FUNCTION qf_track_catalog('resource', 'resource_id');
CREATE TRIGGER qf_track AFTER INSERT OR UPDATE OR DELETE ON overflow_offers FOR EACH ROW EXECUTE FUNCTION qf_track_catalog('offer', 'id');
CREATE TRIGGER qf_track AFTER INSERT OR UPDATE OR DELETE ON price_entries FOR EACH ROW EXECUTE FUNCTION qf_track_catalog('pricing', 'tenant_id');
CREATE TRIGGER qf_track AFTER INSERT OR UPDATE OR DELETE ON approvals FOR EACH ROW EXECUTE FUNCTION qf_track_catalog('approvals', 'project_id');
