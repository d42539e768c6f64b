-- Sharing agreements (decree method (b)) and their audit trail. The rules live in
-- platform/agreements/store.ts; the CHECKs below are the last line of defence, not the validation.
CREATE TABLE agreement (
  id            text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,60}$'),
  subscriber    text NOT NULL,
  dataset       text NOT NULL,
  -- top-level field names in the dataset's order; the key field always among them
  fields        text[] NOT NULL CHECK (cardinality(fields) > 0),
  -- the row filter's AST (platform/agreements/filter.ts) and its canonical text
  filter        jsonb NOT NULL,
  filter_text   text NOT NULL,
  purpose       text NOT NULL CHECK (btrim(purpose) <> ''),
  legal_basis   text NOT NULL CHECK (btrim(legal_basis) <> ''),
  valid_from    timestamptz NOT NULL,
  -- exclusive end; NULL = until revoked
  valid_to      timestamptz,
  status        text NOT NULL
                CHECK (status IN ('requested', 'approved', 'refused', 'suspended', 'revoked', 'expired')),
  status_reason text,
  on_end        text NOT NULL DEFAULT 'purge' CHECK (on_end IN ('purge', 'retain')),
  -- raised whenever fields or filter change: the subscriber's copy is re-derived
  revision      integer NOT NULL DEFAULT 1 CHECK (revision > 0),
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (valid_to IS NULL OR valid_from < valid_to),
  -- a refusal, suspension or revocation is written down (Decree 194/2025 art. 16)
  CHECK (status NOT IN ('refused', 'suspended', 'revoked') OR btrim(coalesce(status_reason, '')) <> '')
);
CREATE INDEX agreement_dataset ON agreement (dataset, status);
CREATE INDEX agreement_subscriber ON agreement (subscriber, status);
-- expireDue looks for these
CREATE INDEX agreement_valid_to ON agreement (valid_to) WHERE status IN ('approved', 'suspended');

-- Every change of an agreement, written in the same transaction as the change. Append-only.
CREATE TABLE agreement_event (
  seq          bigserial PRIMARY KEY,
  agreement_id text NOT NULL REFERENCES agreement (id),
  at           timestamptz NOT NULL DEFAULT now(),
  actor        text NOT NULL CHECK (btrim(actor) <> ''),
  action       text NOT NULL
               CHECK (action IN ('create', 'approve', 'refuse', 'suspend', 'resume', 'revoke', 'expire', 'update')),
  detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX agreement_event_agreement ON agreement_event (agreement_id, seq);

CREATE FUNCTION agreement_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'agreement_event is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER agreement_event_append_only
  BEFORE UPDATE OR DELETE ON agreement_event
  FOR EACH ROW EXECUTE FUNCTION agreement_event_append_only();
CREATE TRIGGER agreement_event_no_truncate
  BEFORE TRUNCATE ON agreement_event
  FOR EACH STATEMENT EXECUTE FUNCTION agreement_event_append_only();

-- The coordinator LISTENs on channel lt_agreement and re-reads the agreement named by the payload.
-- NOTIFY is delivered at commit (never for a rolled-back change) and is lost while a listener is
-- disconnected, so a listener re-reads every agreement whenever it (re)connects.
CREATE FUNCTION agreement_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('lt_agreement', NEW.id);
  RETURN NULL;
END;
$$;
CREATE TRIGGER agreement_notify
  AFTER INSERT OR UPDATE ON agreement
  FOR EACH ROW EXECUTE FUNCTION agreement_notify();
