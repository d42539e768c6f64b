-- What became of a dead letter (`lienthong dlq redrive` / `dlq discard`): a resolved one is no longer listed as
-- open. Keyed by where it is kept, `lt.dlq.<stage>[.<agency>]` partition and offset; the operator_audit entry
-- of the command that resolved it says who and why. A dead letter is resolved once (redriving it again is
-- refused: a record refused again is a new dead letter, at a new offset).
CREATE TABLE dead_letter_resolution (
  topic       text NOT NULL CHECK (topic ~ '^lt\.dlq\.'),
  partition   integer NOT NULL CHECK (partition >= 0),
  "offset"    bigint NOT NULL CHECK ("offset" >= 0),
  resolution  text NOT NULL CHECK (resolution IN ('redriven', 'discarded')),
  reason      text NOT NULL CHECK (btrim(reason) <> ''),
  principal   text NOT NULL CHECK (btrim(principal) <> ''),
  audit_seq   bigint NOT NULL REFERENCES operator_audit (seq),
  resolved_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition, "offset")
);
