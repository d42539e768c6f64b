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

function row(entry: QueryAuditEntry): Record<string, unknown> {
  return {
    caller: entry.caller.slice(0, 200),
    agency: entry.agency,
    purpose: entry.purpose?.slice(0, 500) ?? null,
    dataset: entry.dataset.slice(0, 200),
    agreement_id: entry.agreementId,
    kind: entry.kind,
    key: entry.key?.slice(0, 200) ?? null,
    filter: entry.filter?.slice(0, 4000) ?? null,
    fields: entry.fields,
    as_of: entry.asOf?.toISOString() ?? null,
    result_count: entry.resultCount,
    status: entry.status,
    error_code: entry.errorCode,
    response_hash: entry.responseHash,
  };
}

const INSERT = `INSERT INTO query_audit (caller, agency, purpose, dataset, agreement_id, kind, key, filter, fields, as_of,
                          result_count, status, error_code, response_hash)
SELECT caller, agency, purpose, dataset, agreement_id, kind, key, filter, fields, as_of,
       result_count, status, error_code, response_hash
  FROM jsonb_to_recordset($1::jsonb) AS x(caller text, agency text, purpose text, dataset text, agreement_id text,
       kind text, key text, filter text, fields text[], as_of timestamptz, result_count integer, status integer,
       error_code text, response_hash text)`;

/**
 * Appends rows to `query_audit` in the platform's schema (append-only: a trigger refuses the rest). Up to
 * `concurrency` INSERTs are in flight at once, each its own statement and commit; calls that arrive while every
 * one is busy are written together in the next free one (at most 500 rows an INSERT). Each `record` resolves only
 * once its own row is committed, and rejects when its INSERT failed, so a call is still audited before it is
 * answered. (One INSERT at a time, waiting for its commit, was the query API's bottleneck: under a loaded
 * machine a commit takes 10–50 ms and every call queued behind it.)
 */
export class QueryAuditWriter {
  private queue: { entry: QueryAuditEntry; done: (error?: unknown) => void }[] = [];
  private inFlight = 0;
  private readonly platform: Pool;
  private readonly concurrency: number;

  /** `concurrency`: most INSERTs in flight at once; keep it below the pool's size. */
  constructor(platform: Pool, concurrency = 1) {
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new Error('the audit concurrency must be a positive integer');
    this.platform = platform;
    this.concurrency = concurrency;
  }

  record(entry: QueryAuditEntry): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, done: (error) => (error === undefined ? resolve() : reject(error)) });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight < this.concurrency) {
      const batch = this.queue.splice(0, 500);
      this.inFlight += 1;
      void this.write(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
  }

  private async write(batch: { entry: QueryAuditEntry; done: (error?: unknown) => void }[]): Promise<void> {
    try {
      await this.platform.query({
        name: 'lt-query-audit-insert',
        text: INSERT,
        values: [JSON.stringify(batch.map(({ entry }) => row(entry)))],
      });
      for (const { done } of batch) done();
    } catch (error) {
      for (const { done } of batch) done(error ?? new Error('audit write failed'));
    }
  }
}
