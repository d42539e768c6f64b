import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  ExitCodes,
  exitCodeOf,
  ExitKinds,
  LtError,
  type ErrorCode,
  type ExitKind,
} from '../../../infra/errors.ts';

const codes = Object.keys(ErrorCodes) as ErrorCode[];

/** The error codes docs/cli.md lists under each exit code, from its exit-code table. */
function documentedCodes(): Map<number, string[]> {
  const doc = readFileSync(new URL('../../../docs/cli.md', import.meta.url), 'utf8');
  const table = new Map<number, string[]>();
  for (const line of doc.split('\n')) {
    const row = /^\| (\d) \| ([a-z]+) \|.*\| ([^|]*) \|$/.exec(line);
    if (!row) continue;
    table.set(Number(row[1]), row[3]!.match(/LT_[A-Z_]+/g) ?? []);
  }
  return table;
}

describe('exit codes', () => {
  it('every error code has a kind, and every kind an exit code', () => {
    for (const code of codes) {
      expect(Object.keys(ExitCodes), code).toContain(ExitKinds[code]);
    }
    expect(Object.keys(ExitKinds).sort()).toEqual([...codes].sort());
  });

  it('exitCodeOf gives each kind its documented number', () => {
    const sample: Record<Exclude<ExitKind, 'ok'>, [ErrorCode, number]> = {
      internal: ['LT_INTERNAL', 1],
      usage: ['LT_USAGE', 2],
      configuration: ['LT_CONFIG_INVALID', 3],
      unreachable: ['LT_KAFKA_UNREACHABLE', 4],
      refused: ['LT_AGREEMENT_INVALID', 5],
    };
    for (const [kind, [code, exit]] of Object.entries(sample)) {
      expect(ExitCodes[kind as ExitKind]).toBe(exit);
      expect(exitCodeOf(new LtError(code, 'x'))).toBe(exit);
    }
    expect(exitCodeOf(new LtError('LT_POSTGRES_UNREACHABLE', 'down'))).toBe(4);
    expect(exitCodeOf(new LtError('LT_TOPIC_CONFLICT', 'partitions'))).toBe(3);
  });

  it('anything that is not an LtError exits 1', () => {
    expect(exitCodeOf(new Error('boom'))).toBe(1);
    expect(exitCodeOf('a string')).toBe(1);
    expect(exitCodeOf(undefined)).toBe(1);
  });

  it('docs/cli.md lists every error code under the exit code it gets, and no other', () => {
    const documented = documentedCodes();
    expect([...documented.keys()].sort()).toEqual(Object.values(ExitCodes).sort());
    for (const [exit, listed] of documented) {
      const expected = codes.filter((code) => exitCodeOf(new LtError(code, 'x')) === exit);
      expect(listed.sort(), `exit ${exit}`).toEqual(expected.sort());
    }
  });
});
