import type { Dataset } from '../../schemas/model/dataset.ts';
import { getDataset, type Dictionary } from '../../schemas/model/dictionary.ts';
import { uniqueName } from './services.ts';

/**
 * The real dictionary with one dataset copied under a unique id (`t<random>.citizen`), so that each test
 * gets its own source topic, subjects and sink table while using the real definition.
 */
export function isolatedDataset(
  dictionary: Dictionary,
  id: string,
): { dictionary: Dictionary; dataset: Dataset } {
  const original = getDataset(dictionary, id);
  const dataset: Dataset = { ...original, id: `${uniqueName('t')}.${id.split('.').slice(1).join('.')}` };
  const datasets = new Map(dictionary.datasets);
  datasets.set(dataset.id, dataset);
  return { dictionary: { ...dictionary, datasets }, dataset };
}
