import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { parseYamlFile, type SourceFile } from '../../infra/config/yaml-file.ts';
import { LtError } from '../../infra/errors.ts';
import {
  AgenciesFileSchema,
  CodeListSchema,
  DatasetSchema,
  type Agency,
  type CodeList,
  type Dataset,
  type Dictionary,
} from './dataset.ts';
import { lintDictionary, type LintProblem } from './lint.ts';

/** `schemas/dictionary/` in this repository: the Shared Data Dictionary as data. */
export const DICTIONARY_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'dictionary');

export type { Dictionary, SourceFile };

/** Parses one dictionary file; errors name the file, line and field path. */
function parseFile<T>(path: string, schema: z.ZodType<T>): { value: T; source: SourceFile } {
  return parseYamlFile(path, schema, 'LT_DICTIONARY_INVALID');
}

function yamlFiles(dir: string): string[] {
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((file) => file.endsWith('.yaml'))
        .sort()
        .map((file) => join(dir, file))
    : [];
}

/**
 * Reads every file of a dictionary folder (`agencies.yaml`, `datasets/*.yaml`, `code-lists/*.yaml`) and
 * lints the whole. Malformed files throw; rule violations across files are returned as problems.
 */
export function readDictionary(dir: string = DICTIONARY_DIR): {
  dictionary: Dictionary;
  problems: LintProblem[];
} {
  const sources = new Map<string, SourceFile>();
  const duplicates: LintProblem[] = [];
  const agencies = new Map<string, Agency>();
  const agencyFile = join(dir, 'agencies.yaml');
  if (existsSync(agencyFile)) {
    const { value, source } = parseFile(agencyFile, AgenciesFileSchema);
    sources.set('agencies', source);
    value.agencies.forEach((agency, index) => {
      if (agencies.has(agency.code)) {
        duplicates.push({
          rule: 'duplicate-agency',
          file: source.file,
          line: source.lineOf(['agencies', index]),
          message: `agency code "${agency.code}" is defined twice`,
        });
      }
      agencies.set(agency.code, agency);
    });
  }
  const codeLists = new Map<string, CodeList>();
  for (const path of yamlFiles(join(dir, 'code-lists'))) {
    const { value, source } = parseFile(path, CodeListSchema);
    if (codeLists.has(value.id)) {
      duplicates.push({
        rule: 'duplicate-code-list',
        file: source.file,
        line: 1,
        message: `code list id "${value.id}" is defined twice`,
      });
    }
    codeLists.set(value.id, value);
    sources.set(`code-list:${value.id}`, source);
  }
  const datasets = new Map<string, Dataset>();
  for (const path of yamlFiles(join(dir, 'datasets'))) {
    const { value, source } = parseFile(path, DatasetSchema);
    if (datasets.has(value.id)) {
      duplicates.push({
        rule: 'duplicate-dataset',
        file: source.file,
        line: source.lineOf(['id']),
        message: `dataset id "${value.id}" is defined twice`,
      });
    }
    datasets.set(value.id, value);
    sources.set(`dataset:${value.id}`, source);
  }
  const dictionary: Dictionary = { agencies, datasets, codeLists, sources };
  return { dictionary, problems: [...duplicates, ...lintDictionary(dictionary)] };
}

/** Loads the dictionary and refuses it if any lint rule fails; the error lists every problem. */
export function loadDictionary(dir: string = DICTIONARY_DIR): Dictionary {
  const { dictionary, problems } = readDictionary(dir);
  if (problems.length > 0) {
    throw new LtError(
      'LT_DICTIONARY_INVALID',
      problems
        .map((problem) => `${problem.file}:${problem.line}: ${problem.message} [${problem.rule}]`)
        .join('\n'),
      {
        details: { problems },
        hint: 'run `npm run lienthong -- dictionary lint` for the full list',
      },
    );
  }
  return dictionary;
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
