import avro from 'avsc';
import { changeEventSchema } from '../avro/generate.ts';
import { avroTypeOptions } from '../avro/logical-types.ts';
import type { Dataset, Dictionary, Field, TypeSpec } from './dataset.ts';

/** One broken rule, located in its file. */
export interface LintProblem {
  rule: string;
  file: string;
  line: number;
  message: string;
}

type Path = (string | number)[];

/** Every field of a dataset, nested ones included, with its YAML path and dotted name. */
function* walkFields(
  fields: Field[],
  path: Path = ['fields'],
  prefix = '',
): Generator<{ field: Field; path: Path; name: string }> {
  for (const [index, field] of fields.entries()) {
    const here = [...path, index];
    const name = `${prefix}${field.name}`;
    yield { field, path: here, name };
    yield* walkSpec(field, here, name);
  }
}

function* walkSpec(
  spec: TypeSpec,
  path: Path,
  name: string,
): Generator<{ field: Field; path: Path; name: string }> {
  if (spec.type === 'record') yield* walkFields(spec.fields, [...path, 'fields'], `${name}.`);
  if (spec.type === 'array') yield* walkSpec(spec.items, [...path, 'items'], `${name}[]`);
}

function* codeListUses(spec: TypeSpec, path: Path): Generator<{ codeList: string; path: Path }> {
  if (spec.type === 'code') yield { codeList: spec.codeList, path: [...path, 'codeList'] };
  if (spec.type === 'array') yield* codeListUses(spec.items, [...path, 'items']);
}

function lintDataset(
  dataset: Dataset,
  dictionary: Dictionary,
  report: (rule: string, path: Path, message: string) => void,
): void {
  if (dictionary.agencies.size > 0 && !dictionary.agencies.has(dataset.owner)) {
    report('unknown-owner', ['owner'], `owner "${dataset.owner}" is not an agency in agencies.yaml`);
  }
  const keyIndex = dataset.fields.findIndex((field) => field.name === dataset.key.field);
  const key = dataset.fields[keyIndex];
  if (!key)
    report('missing-key-field', ['key', 'field'], `key field "${dataset.key.field}" is not among the fields`);
  else if (!key.required || key.type !== 'string') {
    report(
      'optional-key',
      ['fields', keyIndex],
      `key field "${key.name}" must be a required string (an identification code)`,
    );
  }

  const seen = new Map<string, Set<string>>();
  for (const { field, path, name } of walkFields(dataset.fields)) {
    const scope = name.slice(0, name.length - field.name.length);
    const names = seen.get(scope) ?? new Set<string>();
    if (names.has(field.name)) report('duplicate-field', path, `field "${name}" is defined twice`);
    names.add(field.name);
    seen.set(scope, names);

    for (const use of codeListUses(field, path)) {
      if (!dictionary.codeLists.has(use.codeList)) {
        report('unknown-code-list', use.path, `field "${name}" uses unknown code list "${use.codeList}"`);
      }
    }
    if (field.classification === 'secret' && !field.encryption) {
      report(
        'secret-without-encryption',
        [...path, 'classification'],
        `field "${name}" is secret but names no encryption policy (add encryption: field-level-aes-gcm)`,
      );
    }
    if (field.references) {
      const target = dictionary.datasets.get(field.references.dataset);
      if (!target)
        report(
          'unknown-reference',
          [...path, 'references'],
          `field "${name}" references unknown dataset "${field.references.dataset}"`,
        );
      else if (field.type !== 'string')
        report(
          'reference-not-string',
          [...path, 'type'],
          `field "${name}" references ${target.id} keys, which are strings, but is a ${field.type}`,
        );
    }
    if (field.type === 'decimal' && field.scale > field.precision) {
      report(
        'decimal-scale',
        [...path, 'scale'],
        `field "${name}": scale ${field.scale} exceeds precision ${field.precision}`,
      );
    }
    if (field.type === 'string' && field.pattern !== undefined) {
      try {
        new RegExp(field.pattern);
      } catch (error) {
        report(
          'bad-pattern',
          [...path, 'pattern'],
          `field "${name}": pattern is not a regular expression: ${(error as Error).message}`,
        );
      }
    }
  }

  try {
    avro.Type.forSchema(changeEventSchema(dataset) as avro.Schema, avroTypeOptions());
  } catch (error) {
    report('invalid-avro', ['fields'], `the generated Avro schema is invalid: ${(error as Error).message}`);
  }
}

/** Cross-file rules of the dictionary; an empty list means it may be published. */
export function lintDictionary(dictionary: Dictionary): LintProblem[] {
  const problems: LintProblem[] = [];
  for (const dataset of dictionary.datasets.values()) {
    const source = dictionary.sources.get(`dataset:${dataset.id}`);
    lintDataset(dataset, dictionary, (rule, path, message) =>
      problems.push({
        rule,
        file: source?.file ?? dataset.id,
        line: source?.lineOf(path) ?? 0,
        message: `dataset ${dataset.id}: ${message}`,
      }),
    );
  }
  for (const list of dictionary.codeLists.values()) {
    const source = dictionary.sources.get(`code-list:${list.id}`);
    const at = (path: Path): { file: string; line: number } => ({
      file: source?.file ?? list.id,
      line: source?.lineOf(path) ?? 0,
    });
    const codes = new Set<string>();
    const successors = list.successorList ? dictionary.codeLists.get(list.successorList) : undefined;
    if (list.successorList && !successors) {
      problems.push({
        rule: 'unknown-code-list',
        ...at(['successorList']),
        message: `code list ${list.id}: successor list "${list.successorList}" does not exist`,
      });
    }
    list.codes.forEach((code, index) => {
      if (codes.has(code.code))
        problems.push({
          rule: 'duplicate-code',
          ...at(['codes', index]),
          message: `code list ${list.id}: code "${code.code}" appears twice`,
        });
      codes.add(code.code);
      if (
        code.successor &&
        successors &&
        !successors.codes.some((candidate) => candidate.code === code.successor)
      ) {
        problems.push({
          rule: 'unknown-successor',
          ...at(['codes', index, 'successor']),
          message: `code list ${list.id}: successor "${code.successor}" of "${code.code}" is not in ${successors.id}`,
        });
      }
    });
  }
  return problems;
}
