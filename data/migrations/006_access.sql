-- Access control: API tokens (only their SHA-256 is kept), the audit log of
-- every write, and who last changed each object.

CREATE TABLE api_tokens (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The actor of the token's requests is "token:<name>": a name is never
    -- reused, not even after revocation, so the logs stay unambiguous.
    name       text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    role       text NOT NULL CHECK (role IN ('viewer', 'reporter', 'dispatcher', 'editor', 'admin')),
    scopes     text[] NOT NULL CHECK (cardinality(scopes) > 0),
    hash       bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz,
    revoked_by text,
    CHECK (role <> 'admin' OR scopes = '{*}')
);

-- Every server keeps the live tokens in memory and reloads them on this
-- notice, so a revocation holds everywhere at once.
CREATE FUNCTION api_tokens_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridmap_tokens', '');
    RETURN NULL;
END $$;
CREATE TRIGGER api_tokens_changed AFTER INSERT OR UPDATE OR DELETE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_notify();

-- One row per write request, refused ones included: who, when, which
-- route, the units it touched (or would have), and how it ended.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    method     text NOT NULL,
    route      text NOT NULL,
    path       text NOT NULL,
    status     int NOT NULL,
    units      text[] NOT NULL DEFAULT '{}',
    request_id text NOT NULL DEFAULT '',
    detail     text NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_actor ON audit_log (actor, at, id);
CREATE INDEX audit_log_units ON audit_log USING gin (units);

ALTER TABLE objects ADD COLUMN updated_by text NOT NULL DEFAULT '';
