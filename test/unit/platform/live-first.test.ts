import { describe, expect, it } from 'vitest';
import { LiveFirst } from '../../../platform/coordinator/live-first.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('live delivery before backfill (LiveFirst)', () => {
  it('lets a backfill batch start only once no live batch runs, heartbeating while it waits', async () => {
    const gate = new LiveFirst(100);
    let finishLive: () => void = () => undefined;
    const live = gate.live(Date.now(), () => new Promise<void>((resolve) => (finishLive = resolve)));
    let beats = 0;
    let started = false;
    const backfill = gate
      .quiet(
        async () => void beats++,
        () => true,
        20,
      )
      .then(() => (started = true));
    await sleep(70);
    expect(started).toBe(false);
    expect(beats).toBeGreaterThan(0);
    finishLive();
    await live;
    await backfill;
    expect(started).toBe(true);
  });

  it('holds the backfill while live batches are behind, and not once they are recent or a second old', async () => {
    const gate = new LiveFirst(100);
    await gate.live(Date.now() - 5_000, async () => undefined); // its newest record was 5 s old
    let started = false;
    const backfill = gate
      .quiet(
        async () => undefined,
        () => true,
      )
      .then(() => (started = true));
    await sleep(300);
    expect(started).toBe(false);
    await gate.live(Date.now() - 10, async () => undefined); // caught up
    await backfill;
    expect(started).toBe(true);
    // behind, but no live batch for over a second: nothing live to protect
    await gate.live(Date.now() - 5_000, async () => undefined);
    await sleep(1_050);
    await gate.quiet(
      async () => undefined,
      () => true,
    );
  });

  it('stops waiting when the backfill consumer stops', async () => {
    const gate = new LiveFirst(100);
    let finishLive: () => void = () => undefined;
    const live = gate.live(Date.now(), () => new Promise<void>((resolve) => (finishLive = resolve)));
    let running = true;
    const backfill = gate.quiet(
      async () => undefined,
      () => running,
      20,
    );
    running = false;
    await backfill; // returns although the live batch still runs
    finishLive();
    await live;
  });

  it('passes through what the live work returns or throws', async () => {
    const gate = new LiveFirst();
    expect(await gate.live(Date.now(), async () => 7)).toBe(7);
    await expect(gate.live(Date.now(), () => Promise.reject(new Error('broker gone')))).rejects.toThrow(
      'broker gone',
    );
    await gate.quiet(
      async () => undefined,
      () => true,
    ); // the failed batch no longer counts as running
  });
});
