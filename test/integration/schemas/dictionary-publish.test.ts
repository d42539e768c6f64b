import { describe, expect, it } from 'vitest';
import { subjects, topics } from '../../../infra/kafka/topics.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { registerDatasetSchemas } from '../../../schemas/registry/client.ts';
import { testRegistry } from '../../helpers/services.ts';

describe('publishing the dictionary to the registry', () => {
  const dictionary = loadDictionary();

  it('registers every dataset’s key and value subject with its compatibility level, idempotently', async () => {
    const registry = await testRegistry();
    const first = [];
    for (const dataset of dictionary.datasets.values())
      first.push(await registerDatasetSchemas(registry.client, dataset));
    const again = [];
    for (const dataset of dictionary.datasets.values())
      again.push(await registerDatasetSchemas(registry.client, dataset));
    expect(again).toEqual(first);

    const listed = await registry.store.subjects();
    expect(listed).toHaveLength(dictionary.datasets.size * 2);
    expect(listed).toContain('lt.src.population.citizen-value');
    expect(await registry.store.getConfig(subjects.value(topics.source('population.citizen')))).toBe(
      'FULL_TRANSITIVE',
    );
    expect(await registry.store.getConfig(subjects.value(topics.source('business.enterprise')))).toBe(
      'BACKWARD_TRANSITIVE',
    );
    expect(await registry.store.versions(subjects.value(topics.source('land.parcel')))).toEqual([1]);
  });

  it('refuses a breaking change to national master data and registers nothing for it', async () => {
    const registry = await testRegistry();
    const citizen = dictionary.datasets.get('population.citizen')!;
    await registerDatasetSchemas(registry.client, citizen);
    const breaking = {
      ...citizen,
      fields: [
        ...citizen.fields,
        {
          name: 'blood_type',
          type: 'string' as const,
          required: true,
          classification: 'sensitive-personal' as const,
          description: { vi: 'Nhóm máu', en: 'Blood type' },
        },
      ],
    };
    await expect(registerDatasetSchemas(registry.client, breaking)).rejects.toMatchObject({
      status: 409,
      message: expect.stringContaining('blood_type'),
    });
    expect(await registry.store.versions('lt.src.population.citizen-value')).toEqual([1]);
  });
});
