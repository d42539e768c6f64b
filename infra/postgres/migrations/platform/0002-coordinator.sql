-- The coordinator's state, rebuildable from the source topics (DESIGN.md §4.4).

-- Which keys each agreement has shared: a record that leaves the filter becomes a DELETE for exactly the
-- subscribers that had it.
CREATE TABLE agreement_membership (
  agreement_id text NOT NULL,
  revision     integer NOT NULL,
  key          text NOT NULL,
  PRIMARY KEY (agreement_id, revision, key)
);

-- How far each agreement (at its revision) has processed each source partition: a new agreement or revision
-- starts at offset 0 (backfill from the source topic's history) and joins the live stream without a gap.
CREATE TABLE agreement_progress (
  agreement_id text NOT NULL,
  revision     integer NOT NULL,
  topic        text NOT NULL,
  partition    integer NOT NULL,
  next_offset  bigint NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (agreement_id, revision, topic, partition)
);
