-- What each agreement last shared of each member: a digest of the projected record. An update that changes
-- no shared field (and no membership) is not forwarded, so a subscriber cannot tell when hidden fields change.
-- NULL (members from before this migration): unknown, so the next update is forwarded and records it.
ALTER TABLE agreement_membership ADD COLUMN shared_digest bytea;
