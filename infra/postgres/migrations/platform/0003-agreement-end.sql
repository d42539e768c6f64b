-- When the coordinator told a subscriber that its agreement ended (revoked or expired), once per agreement.
CREATE TABLE agreement_end_notice (
  agreement_id text PRIMARY KEY,
  revision     integer NOT NULL,
  policy       text NOT NULL,
  sent_at      timestamptz NOT NULL DEFAULT now()
);
