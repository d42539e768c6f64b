import { parseFilter } from '../../platform/agreements/filter.ts';
import type { Agreement } from '../../platform/agreements/model.ts';

/**
 * An approved agreement as the store would list it, for tests that hand the coordinator its agreements
 * directly. `filter` is filter-language text (default: every row).
 */
export function approvedAgreement(
  agreement: Pick<Agreement, 'id' | 'subscriber' | 'dataset' | 'fields'> &
    Partial<Pick<Agreement, 'methods'>> & { filter?: string },
): Agreement {
  const text = agreement.filter ?? 'true';
  const parsed = parseFilter(text);
  if (!parsed.ok) throw new Error(`test filter does not parse: ${text}`);
  return {
    ...agreement,
    filter: parsed.ast,
    filterText: text,
    methods: agreement.methods ?? ['sync'],
    purpose: 'a test of the coordinator',
    legalBasis: 'Decree 278/2025/ND-CP, method (b)',
    validFrom: new Date(0),
    validTo: null,
    status: 'approved',
    statusReason: null,
    onEnd: 'retain',
    revision: 1,
    createdAt: new Date(),
    updatedAt: new Date(),
  };
}
