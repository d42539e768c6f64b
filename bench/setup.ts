import type { Dictionary } from '../schemas/model/dictionary.ts';
import { getDataset, loadDictionary } from '../schemas/model/dictionary.ts';

/** The real dictionary with population.citizen copied under the given id, so each path has its own topic. */
export function benchDictionary(datasetId: string): { dictionary: Dictionary; datasetId: string } {
  const dictionary = loadDictionary();
  const dataset = { ...getDataset(dictionary, 'population.citizen'), id: datasetId };
  return {
    dictionary: { ...dictionary, datasets: new Map([...dictionary.datasets, [datasetId, dataset]]) },
    datasetId,
  };
}
