-- Agreements whose stream the coordinator cannot prepare now, with the reason; it retries each with backoff
-- and removes the row when the agreement recovers or is no longer active. Read by `agreement show`, the
-- agreements API and the catalog.
CREATE TABLE agreement_degraded (
  agreement_id    text PRIMARY KEY,
  revision        integer NOT NULL,
  code            text NOT NULL,
  reason          text NOT NULL,
  since           timestamptz NOT NULL,
  attempts        integer NOT NULL,
  next_attempt_at timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
