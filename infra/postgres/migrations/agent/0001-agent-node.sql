-- State an Agent Node keeps in its agency's own PostgreSQL.

-- The last version this node published per key: a new change must carry a higher one.
CREATE TABLE lt_published_version (
  dataset text NOT NULL,
  key     text NOT NULL,
  version bigint NOT NULL,
  PRIMARY KEY (dataset, key)
);

-- Transactional outbox: the agency writes its business change and one row here in the same transaction;
-- the relay publishes rows in commit order and marks them only after the broker's acknowledgement.
CREATE TABLE lt_outbox (
  id           bigserial PRIMARY KEY,
  dataset      text NOT NULL,
  op           text NOT NULL CHECK (op IN ('CREATE', 'UPDATE', 'DELETE', 'SNAPSHOT')),
  key          text NOT NULL,
  version      bigint NOT NULL,
  payload      jsonb,
  trace_id     text,
  created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  published_at timestamptz,
  rejected_at  timestamptz,
  reject_code  text,
  reject_reason text
);
CREATE INDEX lt_outbox_pending ON lt_outbox (id) WHERE published_at IS NULL AND rejected_at IS NULL;

CREATE FUNCTION lt_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('lt_outbox', TG_TABLE_SCHEMA);
  RETURN NULL;
END $$;
CREATE TRIGGER lt_outbox_notify AFTER INSERT ON lt_outbox FOR EACH STATEMENT EXECUTE FUNCTION lt_outbox_notify();

-- Where an interrupted snapshot resumes: the last key published per dataset and source table.
CREATE TABLE lt_snapshot_checkpoint (
  dataset    text NOT NULL,
  source     text NOT NULL,
  last_key   text,
  published  bigint NOT NULL DEFAULT 0,
  started_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  PRIMARY KEY (dataset, source)
);
