import { describe, expect, it } from 'vitest';
import { ngdbDatasets, parseRebuildTarget } from '../../../cli/commands/rebuild.ts';
import { LtError } from '../../../infra/errors.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';

const refusal = (run: () => unknown): LtError => {
  try {
    run();
  } catch (error) {
    if (error instanceof LtError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
};

describe('lienthong rebuild flags', () => {
  it('names the NGDB, optionally one dataset of it', () => {
    expect(parseRebuildTarget({ sink: 'ngdb' })).toEqual({ sink: 'ngdb', dataset: null });
    expect(parseRebuildTarget({ sink: 'ngdb', dataset: 'population.citizen' })).toEqual({
      sink: 'ngdb',
      dataset: 'population.citizen',
    });
  });

  it('names an agency’s copy by its code and an agreement or a dataset', () => {
    expect(parseRebuildTarget({ sink: 'agency:UBND-HN', agreement: 'hn-citizen' })).toEqual({
      sink: 'agency',
      agency: 'UBND-HN',
      agreement: 'hn-citizen',
      dataset: null,
    });
  });

  it('refuses an unknown sink, both --dataset and --agreement, and --agreement with the NGDB', () => {
    expect(refusal(() => parseRebuildTarget({ sink: 'agency:ubnd' })).message).toContain(
      '--sink "agency:ubnd"',
    );
    expect(refusal(() => parseRebuildTarget({ sink: 'ngdb', dataset: 'a.b', agreement: 'x' })).code).toBe(
      'LT_CONFIG_INVALID',
    );
    expect(refusal(() => parseRebuildTarget({ sink: 'ngdb', agreement: 'x' })).message).toContain(
      '--agreement does not apply',
    );
  });

  it('rebuilds every dataset of the dictionary unless one is named, and refuses an unknown one', () => {
    const dictionary = loadDictionary();
    expect(ngdbDatasets(dictionary, null)).toHaveLength(dictionary.datasets.size);
    expect(ngdbDatasets(dictionary, 'population.citizen').map((d) => d.id)).toEqual(['population.citizen']);
    expect(refusal(() => ngdbDatasets(dictionary, 'no.such')).code).toBe('LT_DATASET_UNKNOWN');
  });
});
