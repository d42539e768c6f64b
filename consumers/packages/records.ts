import avro from 'avsc';
import { changeEventSchema } from '../../schemas/avro/generate.ts';
import { avroTypeOptions } from '../../schemas/avro/logical-types.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { projectDataset } from '../../schemas/model/projection.ts';

/**
 * The records of a package are the dataset's change-event envelope (DESIGN.md §3, `changeEventSchema`), one
 * per key: its latest change, with version, source agency, occurredAt, event id and trace id, so an import
 * applies it with the sinks' versioned upsert. The deleted flag is `op = DELETE` (then `after` is null). The
 * dataset is projected to the package's fields (an agreement's, or all of them).
 */
export interface PackageRecordType {
  /** The dataset as the records carry it (projected to the package's fields). */
  dataset: Dataset;
  type: avro.Type;
  /** The schema as the container file's header and the manifest hold it. */
  schema: Record<string, unknown>;
}

export function packageRecordType(dataset: Dataset, fields: readonly string[]): PackageRecordType {
  const projected = projectDataset(dataset, fields);
  const type = avro.Type.forSchema(changeEventSchema(projected) as avro.Schema, avroTypeOptions());
  return {
    dataset: projected,
    type,
    schema: type.schema({ exportAttrs: true }) as unknown as Record<string, unknown>,
  };
}

/** The paths of the fields of `value` that do not fit `type` (for a refusal that names fields, not values). */
export function invalidPaths(type: avro.Type, value: unknown): string[] {
  const paths: string[] = [];
  type.isValid(value, { errorHook: (path) => paths.push(path.join('.')) });
  return paths;
}
