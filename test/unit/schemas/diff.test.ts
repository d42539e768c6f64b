import { describe, expect, it } from 'vitest';
import type { Dataset, Field } from '../../../schemas/model/dataset.ts';
import { diffDictionaries } from '../../../schemas/model/diff.ts';
import { getDataset, loadDictionary, type Dictionary } from '../../../schemas/model/dictionary.ts';

const base = loadDictionary();
const citizen = getDataset(base, 'population.citizen');
const enterprise = getDataset(base, 'business.enterprise');

function withDataset(dataset: Dataset): Dictionary {
  return { ...base, datasets: new Map([...base.datasets, [dataset.id, dataset]]) };
}
const withField = (dataset: Dataset, field: Field): Dataset => ({
  ...dataset,
  fields: [...dataset.fields, field],
});
const text = { vi: 'x', en: 'x' };

describe('dictionary diff', () => {
  it('finds nothing between a dictionary and itself', () => {
    expect(diffDictionaries(base, base)).toEqual({ added: [], removed: [], changed: [] });
  });

  it('allows an optional field on national master data (FULL_TRANSITIVE): every reader keeps working', () => {
    const after = withDataset(
      withField(citizen, {
        name: 'alias',
        type: 'string',
        required: false,
        classification: 'personal',
        description: text,
      }),
    );
    const [change] = diffDictionaries(base, after).changed;
    expect(change).toMatchObject({
      dataset: 'population.citizen',
      level: 'FULL_TRANSITIVE',
      refused: false,
      newReadersBreak: [],
      oldReadersBreak: [],
    });
    expect(change?.changes).toEqual(['field "alias" added (optional)']);
  });

  it('explains that a required field without default breaks new readers of old events, and is refused', () => {
    const after = withDataset(
      withField(citizen, {
        name: 'blood_type',
        type: 'string',
        required: true,
        classification: 'sensitive-personal',
        description: text,
      }),
    );
    const [change] = diffDictionaries(base, after).changed;
    expect(change?.refused).toBe(true);
    expect(change?.newReadersBreak.join('\n')).toMatch(/blood_type.*without a default value/);
    expect(change?.oldReadersBreak).toEqual([]);
  });

  it('allows removing a field on specialized data (BACKWARD_TRANSITIVE) but says old readers break', () => {
    const after = withDataset({
      ...enterprise,
      fields: enterprise.fields.filter((f) => f.name !== 'head_office_address'),
    });
    const [change] = diffDictionaries(base, after).changed;
    expect(change).toMatchObject({ level: 'BACKWARD_TRANSITIVE', refused: false, newReadersBreak: [] });
    expect(change?.oldReadersBreak.join('\n')).toMatch(/head_office_address/);
    expect(change?.changes).toEqual(['field "head_office_address" removed (it was required)']);
  });

  it('names a reclassification and an owner change in plain words', () => {
    const after = withDataset({
      ...citizen,
      owner: 'BTP',
      fields: citizen.fields.map((f) =>
        f.name === 'ethnicity' ? { ...f, classification: 'public' as const } : f,
      ),
    });
    const [change] = diffDictionaries(base, after).changed;
    expect(change?.changes).toEqual([
      'field "ethnicity" is reclassified from sensitive-personal to public (review every agreement that shares it)',
      'owner changes from BCA to BTP: the single source of truth moves',
    ]);
  });

  it('lists added and removed datasets', () => {
    const renamed = { ...citizen, id: 'population.resident' };
    const after = {
      ...base,
      datasets: new Map([
        ...[...base.datasets].filter(([id]) => id !== 'population.citizen'),
        [renamed.id, renamed],
      ]),
    };
    expect(diffDictionaries(base, after)).toMatchObject({
      added: ['population.resident'],
      removed: ['population.citizen'],
    });
  });
});
