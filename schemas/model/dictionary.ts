import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { LtError } from '../../infra/errors.ts';
import { CodeListSchema, DatasetSchema, keyField, type CodeList, type Dataset } from './dataset.ts';

/** `schemas/dictionary/` in this repository: the Shared Data Dictionary as data. */
export const DICTIONARY_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'dictionary');

export interface Dictionary {
  datasets: ReadonlyMap<string, Dataset>;
  codeLists: ReadonlyMap<string, CodeList>;
}

/** Parses one YAML file against a zod schema; errors name the file, line and field path. */
function parseFile<T>(file: string, schema: z.ZodType<T>): T {
  const lineCounter = new LineCounter();
  const text = readFileSync(file, 'utf8');
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  const where = relative(process.cwd(), file);
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0].line ?? 0;
    throw new LtError(
      'LT_DICTIONARY_INVALID',
      `${where}:${line}: YAML syntax: ${first.message.split('\n')[0]}`,
      {
        details: { file: where, line },
      },
    );
  }
  const parsed = schema.safeParse(doc.toJS());
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const path = issue.path.map(String);
    let line = 0;
    for (let depth = path.length; depth >= 0 && line === 0; depth--) {
      const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
      if (node?.range) line = lineCounter.linePos(node.range[0]).line;
    }
    return `${where}:${line}: ${path.join('.') || '(root)'}: ${issue.message}`;
  });
  throw new LtError('LT_DICTIONARY_INVALID', problems.join('\n'), { details: { file: where, problems } });
}

function readAll<T>(dir: string, schema: z.ZodType<T>): T[] {
  return readdirSync(dir)
    .filter((file) => file.endsWith('.yaml'))
    .sort()
    .map((file) => parseFile(join(dir, file), schema));
}

/** Loads and cross-checks every dataset and code list under `dir`. */
export function loadDictionary(dir: string = DICTIONARY_DIR): Dictionary {
  const codeLists = new Map(readAll(join(dir, 'code-lists'), CodeListSchema).map((list) => [list.id, list]));
  const datasets = new Map<string, Dataset>();
  for (const dataset of readAll(join(dir, 'datasets'), DatasetSchema)) {
    const problems: string[] = [];
    if (datasets.has(dataset.id)) problems.push(`dataset id "${dataset.id}" is defined twice`);
    const key = dataset.fields.find((field) => field.name === dataset.key.field);
    if (!key) problems.push(`key field "${dataset.key.field}" is not among the fields`);
    else if (!key.required || key.type !== 'string')
      problems.push(`key field "${key.name}" must be a required string`);
    for (const field of dataset.fields) {
      if (field.type === 'code' && !codeLists.has(field.codeList)) {
        problems.push(`field "${field.name}" uses unknown code list "${field.codeList}"`);
      }
    }
    if (problems.length > 0) {
      throw new LtError('LT_DICTIONARY_INVALID', `dataset ${dataset.id}: ${problems.join('; ')}`, {
        details: { problems },
      });
    }
    keyField(dataset);
    datasets.set(dataset.id, dataset);
  }
  return { datasets, codeLists };
}

export function getDataset(dictionary: Dictionary, id: string): Dataset {
  const dataset = dictionary.datasets.get(id);
  if (!dataset) {
    throw new LtError('LT_DATASET_UNKNOWN', `unknown dataset "${id}"`, {
      details: { dataset: id },
      hint: `known datasets: ${[...dictionary.datasets.keys()].join(', ')}`,
    });
  }
  return dataset;
}
