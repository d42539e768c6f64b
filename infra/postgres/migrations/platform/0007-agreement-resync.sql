-- `resync`: the platform re-derived an agreement's stream from the start of its source topic (a new revision,
-- same fields and filter) because its subscriber's position fell below what the share topic still holds.
ALTER TABLE agreement_event DROP CONSTRAINT agreement_event_action_check;
ALTER TABLE agreement_event ADD CONSTRAINT agreement_event_action_check
  CHECK (action IN ('create', 'approve', 'refuse', 'suspend', 'resume', 'revoke', 'expire', 'update', 'resync'));
