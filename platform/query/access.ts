import { LtError } from '../../infra/errors.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import { checkFilter, parseFilter, unsharedFilterFields, type FilterAst } from '../agreements/filter.ts';
import { allowsMethod, isActive, type Agreement } from '../agreements/model.ts';

/*
 * Who may ask what of the query API: pure decisions, no I/O. The routes load the agreements and act on the
 * answer; every refusal is an LtError whose code the routes map to an HTTP status.
 */

const AGENCY_PRINCIPAL = /^agency\.([A-Z][A-Z0-9-]*)$/;

/** The agency a principal stands for; LT_FORBIDDEN for a platform service or an operator. */
export function agencyOf(principal: string): string {
  const match = AGENCY_PRINCIPAL.exec(principal);
  if (!match?.[1]) {
    throw new LtError('LT_FORBIDDEN', `${principal} is not an agency: only an agency queries (method (a))`, {
      hint: 'query as your agency’s principal agency.<code>, the identity of its Agent Node',
    });
  }
  return match[1];
}

/** The dataset; LT_DATASET_UNKNOWN (404) when the dictionary has none of that id. */
export function datasetOf(dictionary: Dictionary, id: string): Dataset {
  const dataset = dictionary.datasets.get(id);
  if (!dataset) {
    throw new LtError('LT_DATASET_UNKNOWN', `no dataset "${id}" in the Shared Data Dictionary`, {
      details: { dataset: id },
      hint: 'list the datasets with GET /v1/catalog/datasets',
    });
  }
  return dataset;
}

function whyInactive(agreement: Agreement, now: Date): string {
  if (agreement.status === 'approved' && agreement.validFrom.getTime() > now.getTime())
    return `agreement ${agreement.id} is valid only from ${agreement.validFrom.toISOString()}`;
  if (agreement.status === 'approved' && agreement.validTo !== null)
    return `agreement ${agreement.id} ended at ${agreement.validTo.toISOString()}`;
  const reason = agreement.statusReason ? ` (${agreement.statusReason})` : '';
  return `agreement ${agreement.id} is ${agreement.status}${reason}`;
}

/**
 * The active agreement (approved, within validFrom/validTo) with method `query` under which `agency` may query
 * `dataset`: the one named, or the only one. LT_FORBIDDEN with the reason when there is none.
 */
export function queryAgreement(
  agreements: readonly Agreement[],
  agency: string,
  dataset: string,
  now: Date,
  named?: string,
): Agreement {
  const candidates = agreements.filter(
    (agreement) =>
      agreement.subscriber === agency &&
      agreement.dataset === dataset &&
      allowsMethod(agreement, 'query') &&
      (named === undefined || agreement.id === named),
  );
  if (candidates.length === 0) {
    throw new LtError(
      'LT_FORBIDDEN',
      named === undefined
        ? `${agency} has no agreement of method query (a) for ${dataset}`
        : `agreement ${named} is not an agreement of method query (a) of ${agency} for ${dataset}`,
      {
        details: { agency, dataset },
        hint: 'request one: lienthong agreement create … --methods query (the owner approves it)',
      },
    );
  }
  const active = candidates.filter((agreement) => isActive(agreement, now));
  if (active.length === 0) {
    throw new LtError(
      'LT_FORBIDDEN',
      `${agency} has no active agreement of method query for ${dataset}: ${candidates.map((agreement) => whyInactive(agreement, now)).join('; ')}`,
      {
        details: { agency, dataset, agreements: candidates.map((agreement) => agreement.id) },
        hint: 'an agreement answers while it is approved and within its validity; ask the owner or an operator',
      },
    );
  }
  if (active.length > 1) {
    throw new LtError(
      'LT_MALFORMED_INPUT',
      `${agency} has several active query agreements for ${dataset} (${active.map((agreement) => agreement.id).join(', ')}): name one`,
      { hint: 'add agreement=<id> to the query string' },
    );
  }
  return active[0]!;
}

/**
 * The fields to answer: those asked (default every field of the agreement), in the dataset's order, the key
 * always among them. LT_FORBIDDEN naming every field asked for outside the agreement.
 */
export function answeredFields(
  dataset: Dataset,
  agreement: Agreement,
  asked: readonly string[] | undefined,
): string[] {
  const outside = (asked ?? []).filter((name) => !agreement.fields.includes(name));
  if (outside.length > 0) {
    throw new LtError(
      'LT_FORBIDDEN',
      `field(s) ${outside.map((name) => `"${name}"`).join(', ')} are outside agreement ${agreement.id}, which shares ${agreement.fields.join(', ')}`,
      {
        details: { outside, agreed: agreement.fields },
        hint: 'ask only for agreed fields, or have the agreement changed (lienthong agreement update)',
      },
    );
  }
  const wanted = new Set([dataset.key.field, ...(asked ?? agreement.fields)]);
  return dataset.fields.map((field) => field.name).filter((name) => wanted.has(name));
}

function depth(ast: FilterAst): number {
  switch (ast.kind) {
    case 'and':
    case 'or':
      return 1 + Math.max(...ast.operands.map(depth));
    case 'not':
      return 1 + depth(ast.operand);
    default:
      return 1;
  }
}

function malformedFilter(message: string, position?: number): LtError {
  return new LtError('LT_MALFORMED_INPUT', `the filter is malformed: ${message}`, {
    details: position === undefined ? {} : { position },
    hint: 'the filter language is in docs/agreements.md, e.g. province_code == "01" and gender == "F"',
  });
}

/**
 * The caller's filter, parsed and checked: LT_MALFORMED_INPUT (400) when it does not parse, is too long or
 * too deep, or does not fit the dataset; LT_FORBIDDEN (403) when it tests a field outside the agreement
 * (every row answered would tell the value of a field the caller may not see).
 */
export function callerFilter(
  text: string | undefined,
  dataset: Dataset,
  dictionary: Dictionary,
  agreement: Agreement,
  bounds: { maxLength: number; maxDepth: number },
): FilterAst {
  if (text === undefined) return { kind: 'true' };
  if (text.length > bounds.maxLength) throw malformedFilter(`longer than ${bounds.maxLength} characters`);
  const parsed = parseFilter(text);
  if (!parsed.ok) {
    const [first] = parsed.problems;
    throw malformedFilter(`at ${first?.position ?? 0}: ${first?.message ?? 'invalid'}`, first?.position);
  }
  if (depth(parsed.ast) > bounds.maxDepth)
    throw malformedFilter(`nested deeper than ${bounds.maxDepth} levels`);
  const [problem] = checkFilter(parsed.ast, dataset, dictionary);
  if (problem) throw malformedFilter(`at ${problem.position}: ${problem.message}`, problem.position);
  const outside = unsharedFilterFields(parsed.ast, agreement.fields);
  if (outside.length > 0) {
    throw new LtError(
      'LT_FORBIDDEN',
      `the filter tests ${outside.map((name) => `"${name}"`).join(', ')}, outside agreement ${agreement.id}`,
      {
        details: { outside },
        hint: 'filter only on fields the agreement shares: a match would reveal the value of the others',
      },
    );
  }
  return parsed.ast;
}
