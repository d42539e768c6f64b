-- A new agreement or revision is backfilled on a consumer of its own (docs/coordinator.md, *Backfill*): when its
-- stream first appears, the end offset of each source partition is captured as `until_offset`. The backfill
-- derives [log start, until_offset) for that stream alone (`next_offset`: how far it got); the coordinator's main
-- consumer derives it live from `until_offset` on, from the start, beside every other agreement.
CREATE TABLE agreement_backfill (
  agreement_id text NOT NULL,
  revision     integer NOT NULL,
  topic        text NOT NULL,
  partition    integer NOT NULL,
  until_offset bigint NOT NULL,
  next_offset  bigint NOT NULL DEFAULT 0,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (agreement_id, revision, topic, partition)
);

-- While a partition's backfill runs, the live side records the version of every key it processed that the stream
-- did not share, so that the backfill, reaching that key's older history later, skips it (it would otherwise share
-- an old version of a record that has since left the filter). Kept apart from agreement_membership, whose rows
-- mean "shared or once shared" (what retiring a revision deletes); dropped once the backfill is complete.
CREATE TABLE agreement_backfill_seen (
  agreement_id text NOT NULL,
  revision     integer NOT NULL,
  key          text NOT NULL,
  version      bigint NOT NULL,
  PRIMARY KEY (agreement_id, revision, key)
);
