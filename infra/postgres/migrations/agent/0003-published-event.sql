-- The events this node published under an eventId its caller gave (the SDK's or HTTP body's eventId, the
-- outbox relay's deterministic one), with a digest of their content. Sinks deduplicate by eventId, so the
-- same eventId with other content would make them drop a real change: the publisher refuses it, and
-- recognises a retry with the same content as already published.
CREATE TABLE lt_published_event (
  event_id     text PRIMARY KEY,
  dataset      text NOT NULL,
  key          text NOT NULL,
  version      bigint NOT NULL,
  digest       bytea NOT NULL,
  published_at timestamptz NOT NULL DEFAULT now()
);
