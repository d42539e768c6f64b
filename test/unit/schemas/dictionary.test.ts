import { mkdirSync, mkdtempSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLtError } from '../../../infra/errors.ts';
import { DICTIONARY_DIR, getDataset, loadDictionary } from '../../../schemas/model/dictionary.ts';

function dictionaryWith(datasetYaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lt-dict-'));
  cpSync(join(DICTIONARY_DIR, 'code-lists'), join(dir, 'code-lists'), { recursive: true });
  mkdirSync(join(dir, 'datasets'));
  writeFileSync(join(dir, 'datasets', 'x.test.yaml'), datasetYaml);
  return dir;
}

const VALID = `id: x.test
owner: BCA
kind: shared
description: { vi: Thử, en: Test }
key: { field: code }
retention: unlimited
fields:
  - name: code
    type: string
    required: true
    classification: public
    description: { vi: Mã, en: Code }
`;

describe('the Shared Data Dictionary loader', () => {
  it('loads the shipped dictionary with population.citizen owned by BCA', () => {
    const dictionary = loadDictionary();
    const citizen = getDataset(dictionary, 'population.citizen');
    expect(citizen.owner).toBe('BCA');
    expect(citizen.key.field).toBe('personal_id');
    expect(dictionary.codeLists.get('province')?.codes).toHaveLength(34);
    expect(dictionary.codeLists.get('ethnic-group')?.codes).toHaveLength(54);
  });

  it('names the file, line and field path of a rule that failed', () => {
    const dir = dictionaryWith(VALID.replace('    classification: public', '    classification: top-secret'));
    try {
      loadDictionary(dir);
      expect.unreachable();
    } catch (error) {
      expect(isLtError(error, 'LT_DICTIONARY_INVALID')).toBe(true);
      expect((error as Error).message).toMatch(/x\.test\.yaml:1[0-2]: fields\.0\.classification: /);
    }
  });

  it('refuses a key field that is optional', () => {
    const dir = dictionaryWith(VALID.replace('required: true', 'required: false'));
    expect(() => loadDictionary(dir)).toThrow(/key field "code" must be a required string/);
  });

  it('refuses a field bound to an unknown code list', () => {
    const dir = dictionaryWith(
      `${VALID}  - name: zone\n    type: code\n    codeList: zones\n    required: false\n    classification: public\n    description: { vi: Vùng, en: Zone }\n`,
    );
    expect(() => loadDictionary(dir)).toThrow(/unknown code list "zones"/);
  });

  it('reports YAML syntax errors with their line', () => {
    const dir = dictionaryWith('id: x.test\nowner: [BCA\n');
    expect(() => loadDictionary(dir)).toThrow(/x\.test\.yaml:\d+: YAML syntax/);
  });

  it('says which datasets exist when asked for an unknown one', () => {
    expect(() => getDataset(loadDictionary(), 'population.citizens')).toThrow(
      /unknown dataset "population.citizens"/,
    );
  });
});
