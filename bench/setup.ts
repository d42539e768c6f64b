import type { KafkaSecurity } from '../infra/kafka/client.ts';
import type { Dictionary } from '../schemas/model/dictionary.ts';
import { createRegistryClient, registerDatasetSchemas } from '../schemas/registry/client.ts';
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

/**
 * The dictionary publisher's step for a benchmark's own dataset: registers its source-topic schemas as the bench's
 * super user (`admin`, over the platform CA), since publishers only look them up.
 */
export async function publishBenchDataset(
  registryUrl: string,
  admin: KafkaSecurity | undefined,
  datasetId: string,
): Promise<void> {
  const registry = createRegistryClient({
    url: registryUrl,
    ...(admin ? { auth: { username: admin.username, password: admin.password }, ca: admin.ca } : {}),
  });
  await registerDatasetSchemas(registry, getDataset(benchDictionary(datasetId).dictionary, datasetId));
}
