-- Decree methods per agreement (platform/agreements/model.ts SharingMethods): 'sync' (b, the share stream),
-- 'query' (a, the query API), 'media' (d, data packages). Agreements made before this migration had only
-- the stream: they keep it, and nothing else.
ALTER TABLE agreement
  ADD COLUMN methods text[] NOT NULL DEFAULT '{sync}'
  CHECK (cardinality(methods) > 0 AND methods <@ ARRAY['sync', 'query', 'media']::text[]);

-- Every call of the query API (platform/query/), answered or refused, one row per call. Append-only.
CREATE TABLE query_audit (
  seq          bigserial PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT now(),
  -- the authenticated principal (agency.<code>), or what an unauthenticated caller claimed
  caller       text NOT NULL,
  -- the agency the principal stands for; NULL when the caller did not authenticate as an agency
  agency       text,
  -- the purpose the caller declared (required; NULL only on a call refused for lacking it)
  purpose      text,
  dataset      text NOT NULL,
  -- the agreement that authorized the call; NULL when none did
  agreement_id text,
  -- 'get' (one key) or 'search' (a filter)
  kind         text NOT NULL CHECK (kind IN ('get', 'search')),
  key          text,
  filter       text,
  fields       text[],
  as_of        timestamptz,
  result_count integer NOT NULL DEFAULT 0 CHECK (result_count >= 0),
  -- the HTTP status answered, and the LT_… code of a refusal
  status       integer NOT NULL,
  error_code   text,
  -- X-Lienthong-Response-Hash of an answered call
  response_hash text
);
CREATE INDEX query_audit_caller ON query_audit (caller, at);
CREATE INDEX query_audit_dataset ON query_audit (dataset, at);

CREATE FUNCTION query_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'query_audit is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER query_audit_append_only
  BEFORE UPDATE OR DELETE ON query_audit
  FOR EACH ROW EXECUTE FUNCTION query_audit_append_only();
CREATE TRIGGER query_audit_no_truncate
  BEFORE TRUNCATE ON query_audit
  FOR EACH STATEMENT EXECUTE FUNCTION query_audit_append_only();
