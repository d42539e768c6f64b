import { deterministicUuidV7 } from '../../infra/ids.ts';
import type { Change } from '../../producers/publisher/index.ts';
import { relocate, sampleCitizens, seededRandom } from '../../producers/sample/citizens.ts';
import type { DatasetRecord } from '../../schemas/envelope/change-event.ts';

/** The stream a fault is injected into, and what every copy must hold once it is delivered. */
export interface Workload {
  /** Changes in publish order, in batches; each carries a deterministic eventId, so a retry is recognised. */
  batches: Change[][];
  events: number;
  /** The final record of every key still alive. */
  expected: Map<string, DatasetRecord>;
  /** The last version of every key, deleted ones included. */
  versions: Map<string, number>;
}

/**
 * `creates` citizens, then `updates` relocations (a move across provinces takes the citizen out of one
 * subscriber's filter and into another's), then `deletes`, in batches of `batch`. Deterministic for a seed.
 */
export function buildWorkload(
  seed: number,
  { creates = 25_000, updates = 20_000, deletes = 5_000, batch = 1_000, skewHours = 0 } = {},
): Workload {
  const random = seededRandom(seed);
  const base = Date.UTC(2026, 10, 30);
  const changes: Change[] = [];
  const state = new Map<string, { record: DatasetRecord; version: number }>();
  // with skewHours, every 7th change comes from a clock that many hours ahead or behind
  const skew = (index: number): number =>
    skewHours === 0 || index % 7 !== 0 ? 0 : (index % 2 === 0 ? 1 : -1) * skewHours * 3_600_000;
  const id = (): { eventId: string; occurredAt: Date } => {
    const occurredAt = new Date(base + changes.length + skew(changes.length));
    return { eventId: deterministicUuidV7(occurredAt, `faults/${seed}/${changes.length}`), occurredAt };
  };
  for (const record of sampleCitizens(creates, seed)) {
    const key = String(record.personal_id);
    state.set(key, { record, version: 1 });
    changes.push({ op: 'CREATE', version: 1, after: record, ...id() });
  }
  const keys = [...state.keys()];
  for (let i = 0; i < updates; i++) {
    const key = keys[Math.floor(random() * keys.length)]!;
    const current = state.get(key)!;
    const record = relocate(current.record, random);
    state.set(key, { record, version: current.version + 1 });
    changes.push({ op: 'UPDATE', version: current.version + 1, after: record, ...id() });
  }
  const alive = [...state.keys()];
  const versions = new Map([...state].map(([key, { version }]) => [key, version]));
  for (let i = 0; i < deletes && alive.length > 0; i++) {
    const [key] = alive.splice(Math.floor(random() * alive.length), 1);
    const current = state.get(key!)!;
    state.delete(key!);
    versions.set(key!, current.version + 1);
    changes.push({ op: 'DELETE', key: key!, version: current.version + 1, ...id() });
  }
  const batches: Change[][] = [];
  for (let start = 0; start < changes.length; start += batch)
    batches.push(changes.slice(start, start + batch));
  return {
    batches,
    events: changes.length,
    expected: new Map([...state].map(([key, { record }]) => [key, record])),
    versions,
  };
}
