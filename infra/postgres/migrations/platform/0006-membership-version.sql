-- The last source version each agreement processed for a key it shares or once shared, and whether the key is
-- a member now. A key that leaves keeps its row (member = false) so that a duplicate or late record of an
-- older version is recognised and skipped: forwarded, it would make the coordinator believe the subscriber
-- holds what its version guard refused (and then skip a later change it takes for "nothing new").
-- NULL version (rows from before this migration): unknown, so the next record is taken and records it.
ALTER TABLE agreement_membership ADD COLUMN version bigint;
ALTER TABLE agreement_membership ADD COLUMN member boolean NOT NULL DEFAULT true;
