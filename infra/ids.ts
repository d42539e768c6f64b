import { createHash } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

/**
 * A UUIDv7 that is a pure function of a time and a seed: its timestamp is `at`, its random bits the first
 * 16 bytes of SHA-256(seed). Whoever derives an event again after a crash or replay (the outbox relay
 * from its row, the coordinator from the source event and the agreement) gets the same eventId, so
 * downstream dedup recognises the repeat.
 */
export function deterministicUuidV7(at: Date, seed: string): string {
  return uuidv7({ msecs: at.getTime(), random: createHash('sha256').update(seed).digest().subarray(0, 16) });
}
