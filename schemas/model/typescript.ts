import type { Field, TypeSpec } from './dataset.ts';
import type { Dictionary } from './dictionary.ts';

/** The TypeScript type of a value as lienthong holds it in memory (see envelope/change-event.ts). */
function tsType(spec: TypeSpec, indent: string): string {
  switch (spec.type) {
    case 'string':
    case 'code':
    case 'date':
    case 'decimal':
      return 'string';
    case 'int':
    case 'long':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'timestamp':
      return 'Date';
    case 'record':
      return `{\n${fieldLines(spec.fields, `${indent}  `)}${indent}}`;
    case 'array': {
      const item = tsType(spec.items, indent);
      return item.includes('\n') ? `Array<${item}>` : `${item}[]`;
    }
  }
}

function fieldLines(fields: Field[], indent: string): string {
  return fields
    .map((field) => {
      const type = tsType(field, indent);
      const comment = `${indent}/** ${field.description.en} (${field.classification}) */\n`;
      return field.required
        ? `${comment}${indent}${field.name}: ${type};\n`
        : `${comment}${indent}${field.name}?: ${type} | null;\n`;
    })
    .join('');
}

function interfaceName(datasetId: string): string {
  return datasetId
    .split(/[.-]/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

/** Source text of `schemas/generated/datasets.ts`: one interface per dataset and the id → record map. */
export function generateTypeScript(dictionary: Dictionary): string {
  const datasets = [...dictionary.datasets.values()].sort((a, b) => a.id.localeCompare(b.id));
  const interfaces = datasets.map(
    (dataset) =>
      `/** ${dataset.description.en} — owner ${dataset.owner}, key ${dataset.key.field}. */\nexport interface ${interfaceName(dataset.id)} {\n${fieldLines(dataset.fields, '  ')}}\n`,
  );
  const map = datasets.map((dataset) => `  '${dataset.id}': ${interfaceName(dataset.id)};\n`).join('');
  return [
    '// Generated from schemas/dictionary by `npm run lienthong -- dictionary generate`. Do not edit.\n',
    ...interfaces,
    `/** Every dataset id of the dictionary and the record type it carries. */\nexport interface DatasetRecords {\n${map}}\n`,
    'export type DatasetId = keyof DatasetRecords;\n',
  ].join('\n');
}
