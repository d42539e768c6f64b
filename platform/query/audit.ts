import type { Pool } from '../../infra/postgres/pool.ts';

/** One call of the query API as table `query_audit` (migration platform/0011) keeps it. */
export interface QueryAuditEntry {
  /** The authenticated principal, or `anonymous` / the name an unauthenticated caller claimed. */
  caller: string;
  agency: string | null;
  purpose: string | null;
  dataset: string;
  agreementId: string | null;
  kind: 'get' | 'search';
  key: string | null;
  filter: string | null;
  fields: string[] | null;
  asOf: Date | null;
  resultCount: number;
  status: number;
  errorCode: string | null;
  responseHash: string | null;
}

/** Appends one row to `query_audit` in the platform's schema (append-only: a trigger refuses the rest). */
export async function recordQueryCall(platform: Pool, entry: QueryAuditEntry): Promise<void> {
  await platform.query(
    `INSERT INTO query_audit (caller, agency, purpose, dataset, agreement_id, kind, key, filter, fields, as_of,
                              result_count, status, error_code, response_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
    [
      entry.caller.slice(0, 200),
      entry.agency,
      entry.purpose?.slice(0, 500) ?? null,
      entry.dataset.slice(0, 200),
      entry.agreementId,
      entry.kind,
      entry.key?.slice(0, 200) ?? null,
      entry.filter?.slice(0, 4000) ?? null,
      entry.fields,
      entry.asOf,
      entry.resultCount,
      entry.status,
      entry.errorCode,
      entry.responseHash,
    ],
  );
}
