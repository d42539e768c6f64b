import { recordSchema } from '../avro/generate.ts';
import { checkReaderWriter, type CompatibilityLevel } from '../registry/compatibility.ts';
import { compatibilityOf, type Dataset, type Field } from './dataset.ts';
import type { Dictionary } from './dictionary.ts';

/** Which readers a schema change breaks. */
export interface DatasetChange {
  dataset: string;
  level: CompatibilityLevel;
  /** Plain-word field changes: added, removed, retyped, reclassified. */
  changes: string[];
  /** Readers on the new schema that cannot read old events (BACKWARD broken), with Avro's reason. */
  newReadersBreak: string[];
  /** Readers still on the old schema that cannot read new events (FORWARD broken). */
  oldReadersBreak: string[];
  /** True when the registry would refuse the new schema under the dataset's level. */
  refused: boolean;
}

export interface DictionaryDiff {
  added: string[];
  removed: string[];
  changed: DatasetChange[];
}

function describeType(field: Field): string {
  if (field.type === 'code') return `code (${field.codeList})`;
  if (field.type === 'decimal') return `decimal(${field.precision},${field.scale})`;
  return field.type;
}

function fieldChanges(before: Dataset, after: Dataset): string[] {
  const lines: string[] = [];
  const old = new Map(before.fields.map((field) => [field.name, field]));
  const now = new Map(after.fields.map((field) => [field.name, field]));
  for (const [name, field] of now) {
    const was = old.get(name);
    if (!was) {
      lines.push(
        `field "${name}" added (${field.required ? (field.default === undefined ? 'required, no default' : 'required, with a default') : 'optional'})`,
      );
      continue;
    }
    if (describeType(was) !== describeType(field))
      lines.push(`field "${name}" changes type from ${describeType(was)} to ${describeType(field)}`);
    if (was.required !== field.required)
      lines.push(`field "${name}" becomes ${field.required ? 'required' : 'optional'}`);
    if (was.classification !== field.classification) {
      lines.push(
        `field "${name}" is reclassified from ${was.classification} to ${field.classification} (review every agreement that shares it)`,
      );
    }
  }
  for (const [name, field] of old) {
    if (!now.has(name))
      lines.push(`field "${name}" removed (${field.required ? 'it was required' : 'it was optional'})`);
  }
  if (before.owner !== after.owner)
    lines.push(`owner changes from ${before.owner} to ${after.owner}: the single source of truth moves`);
  return lines;
}

/**
 * Compares two dictionaries and explains, per dataset, which change breaks which readers and why,
 * and whether the registry would refuse it under the dataset's compatibility level.
 */
export function diffDictionaries(before: Dictionary, after: Dictionary): DictionaryDiff {
  const added = [...after.datasets.keys()].filter((id) => !before.datasets.has(id)).sort();
  const removed = [...before.datasets.keys()].filter((id) => !after.datasets.has(id)).sort();
  const changed: DatasetChange[] = [];
  for (const [id, now] of after.datasets) {
    const was = before.datasets.get(id);
    if (!was) continue;
    // the envelope around `after` never changes, so the record schemas say exactly what broke
    const oldSchema = recordSchema(was);
    const newSchema = recordSchema(now);
    if (JSON.stringify(oldSchema) === JSON.stringify(newSchema) && was.owner === now.owner) continue;
    const level = compatibilityOf(now);
    const newReadersBreak = checkReaderWriter(newSchema, oldSchema).map(
      (problem) => `${problem.message} [${problem.type} at ${problem.location}]`,
    );
    const oldReadersBreak = checkReaderWriter(oldSchema, newSchema).map(
      (problem) => `${problem.message} [${problem.type} at ${problem.location}]`,
    );
    const needsBackward = level.startsWith('BACKWARD') || level.startsWith('FULL');
    const needsForward = level.startsWith('FORWARD') || level.startsWith('FULL');
    changed.push({
      dataset: id,
      level,
      changes: fieldChanges(was, now),
      newReadersBreak,
      oldReadersBreak,
      refused: (needsBackward && newReadersBreak.length > 0) || (needsForward && oldReadersBreak.length > 0),
    });
  }
  return { added, removed, changed: changed.sort((a, b) => a.dataset.localeCompare(b.dataset)) };
}
