export { OutboxRelay, outboxEventId, outboxLockKey, type OutboxRelayStats, type RelayRole } from './relay.ts';
export { OUTBOX_RELAY_DEFAULTS, type OutboxRelayOptions } from './options.ts';
