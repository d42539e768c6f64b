import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DICTIONARY_DIR, readDictionary } from '../../../schemas/model/dictionary.ts';

/** The real agencies and code lists plus the given dataset files. */
function dictionaryWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'lt-lint-'));
  cpSync(join(DICTIONARY_DIR, 'code-lists'), join(dir, 'code-lists'), { recursive: true });
  cpSync(join(DICTIONARY_DIR, 'agencies.yaml'), join(dir, 'agencies.yaml'));
  mkdirSync(join(dir, 'datasets'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'datasets', name), text);
  return dir;
}

const dataset = (id: string, extra = '', owner = 'BCA', keyRequired = true): string => `id: ${id}
owner: ${owner}
kind: shared
description: { vi: Thử, en: Test }
key: { field: code }
retention: unlimited
fields:
  - name: code
    type: string
    required: ${keyRequired}
    classification: public
    description: { vi: Mã, en: Code }
${extra}`;

const field = (lines: string): string =>
  `  - name: extra\n${lines}    required: false\n    description: { vi: Thêm, en: Extra }\n`;

function rules(files: Record<string, string>): string[] {
  return readDictionary(dictionaryWith(files)).problems.map(
    (problem) => `${problem.rule} ${problem.file.split('/').at(-1)}:${problem.line}`,
  );
}

describe('dictionary lint', () => {
  it('passes the shipped dictionary', () => {
    expect(readDictionary().problems).toEqual([]);
  });

  it('finds a dataset id defined twice', () => {
    expect(rules({ 'a.yaml': dataset('x.one'), 'b.yaml': dataset('x.one') })).toEqual([
      'duplicate-dataset b.yaml:1',
    ]);
  });

  it('finds an owner that is not an agency', () => {
    expect(rules({ 'a.yaml': dataset('x.one', '', 'BOGUS') })).toEqual(['unknown-owner a.yaml:2']);
  });

  it('finds an optional key field', () => {
    expect(rules({ 'a.yaml': dataset('x.one', '', 'BCA', false) })).toEqual(['optional-key a.yaml:8']);
  });

  it('finds an unknown code list', () => {
    expect(
      rules({
        'a.yaml': dataset(
          'x.one',
          field('    type: code\n    codeList: zones\n    classification: public\n'),
        ),
      }),
    ).toEqual(['unknown-code-list a.yaml:15']);
  });

  it('finds a secret field without an encryption policy, and accepts one with it', () => {
    expect(
      rules({ 'a.yaml': dataset('x.one', field('    type: string\n    classification: secret\n')) }),
    ).toEqual(['secret-without-encryption a.yaml:15']);
    expect(
      rules({
        'a.yaml': dataset(
          'x.one',
          field('    type: string\n    classification: secret\n    encryption: field-level-aes-gcm\n'),
        ),
      }),
    ).toEqual([]);
  });

  it('finds a reference to a dataset that does not exist', () => {
    expect(
      rules({
        'a.yaml': dataset(
          'x.one',
          field('    type: string\n    references: { dataset: x.nowhere }\n    classification: public\n'),
        ),
      }),
    ).toEqual(['unknown-reference a.yaml:15']);
  });

  it('finds a default that does not fit the Avro type', () => {
    expect(
      rules({
        'a.yaml': dataset(
          'x.one',
          field('    type: int\n    default: "seven"\n    classification: public\n'),
        ),
      }),
    ).toEqual(['invalid-avro a.yaml:8']);
  });
});
