-- Every operator action (replay, rebuild, dead-letter redrive and discard, reshare), recorded with the
-- authenticated principal that took it. Append-only, like agreement_event.
CREATE TABLE operator_audit (
  seq       bigserial PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT now(),
  principal text NOT NULL CHECK (btrim(principal) <> ''),
  action    text NOT NULL CHECK (action ~ '^[a-z][a-z0-9.-]{1,60}$'),
  target    text NOT NULL CHECK (btrim(target) <> ''),
  outcome   text NOT NULL CHECK (outcome IN ('planned', 'done', 'refused', 'failed')),
  detail    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX operator_audit_action ON operator_audit (action, seq);

CREATE FUNCTION operator_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'operator_audit is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER operator_audit_append_only
  BEFORE UPDATE OR DELETE ON operator_audit
  FOR EACH ROW EXECUTE FUNCTION operator_audit_append_only();
CREATE TRIGGER operator_audit_no_truncate
  BEFORE TRUNCATE ON operator_audit
  FOR EACH STATEMENT EXECUTE FUNCTION operator_audit_append_only();
