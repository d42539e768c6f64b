import type { Dataset } from './dataset.ts';

/**
 * The dataset as a sharing agreement delivers it: only the agreed fields (the key always among them), in
 * the dataset's own order. Its Avro schema, table and validator derive from it like any dataset's, so a
 * field outside the agreement has no place in the share topic's bytes.
 */
export function projectDataset(dataset: Dataset, fields: readonly string[]): Dataset {
  const wanted = new Set([dataset.key.field, ...fields]);
  const unknown = [...wanted].filter((name) => !dataset.fields.some((field) => field.name === name));
  if (unknown.length > 0)
    throw new Error(`${dataset.id} has no field(s) ${unknown.map((name) => `"${name}"`).join(', ')}`);
  return { ...dataset, fields: dataset.fields.filter((field) => wanted.has(field.name)) };
}
