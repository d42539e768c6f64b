import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { humanDuration, Progress } from '../../../cli/progress.ts';

/** A non-TTY stream that keeps what is written to it. */
function capture(): { stream: NodeJS.WriteStream; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  return { stream, lines: () => text.split('\n').filter(Boolean) };
}

describe('progress of long operator commands', () => {
  it('humanDuration writes seconds as people read them', () => {
    expect(humanDuration(0)).toBe('0s');
    expect(humanDuration(45.4)).toBe('45s');
    expect(humanDuration(200)).toBe('3m 20s');
    expect(humanDuration(2 * 3600 + 5 * 60 + 9)).toBe('2h 05m');
    expect(humanDuration(Infinity)).toBe('?');
  });

  it('off a terminal it writes a log line every interval with rate and ETA, and one at the end', () => {
    let now = 0;
    const { stream, lines } = capture();
    const progress = new Progress({
      title: 'rebuild ngdb',
      unit: 'records',
      stream,
      logEverySeconds: 10,
      now: () => now,
    });
    progress.update({ done: 0, total: 1000 });
    now = 5_000;
    progress.update({ done: 250, total: 1000 });
    expect(lines()).toEqual([]); // not yet 10 s
    now = 10_000;
    progress.update({ done: 500, total: 1000, step: 'reading lt.src.x.y' });
    expect(lines()).toEqual([
      'rebuild ngdb: 500/1000 records (50%), 50 records/s, ETA 10s · reading lt.src.x.y',
    ]);
    now = 20_000;
    progress.update({ done: 1000, total: 1000 });
    progress.finish();
    expect(lines().at(-1)).toBe('rebuild ngdb: 1000/1000 records (100%), 50 records/s, ETA 0s');
  });

  it('says the ETA is unknown while nothing has been done', () => {
    let now = 0;
    const { stream } = capture();
    const progress = new Progress({ title: 't', unit: 'rows', stream, now: () => now });
    progress.update({ done: 0, total: 10 });
    now = 3_000;
    progress.update({ done: 0, total: 10 });
    expect(progress.line()).toBe('t: 0/10 rows (0%), 0 rows/s, ETA ?');
  });
});
