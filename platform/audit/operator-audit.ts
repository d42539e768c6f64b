import type { Pool, PoolClient } from '../../infra/postgres/pool.ts';

/** What an operator did: `replay`, `rebuild`, `dlq.redrive`, `dlq.discard`, `reshare`, … */
export interface OperatorAction {
  /** The authenticated principal that acted (its Kafka/HTTP identity, e.g. `lt-operator`). */
  principal: string;
  action: string;
  /** What it acted on: a consumer group, a sink, an agreement, a dead-letter topic. */
  target: string;
  outcome: 'planned' | 'done' | 'refused' | 'failed';
  detail?: Record<string, unknown>;
}

export interface OperatorAuditEntry extends Required<OperatorAction> {
  seq: number;
  at: Date;
}

/**
 * Appends one operator action to `operator_audit` (platform migration 0008), in the platform schema of `pool`.
 * The table refuses updates and deletes, so the trail only grows. Given a client inside a transaction, the entry
 * commits with what the action changed (a dead letter's resolution), or not at all.
 */
export async function recordOperatorAction(pool: Pool | PoolClient, action: OperatorAction): Promise<number> {
  const { rows } = await pool.query<{ seq: string }>(
    `INSERT INTO operator_audit (principal, action, target, outcome, detail)
     VALUES ($1, $2, $3, $4, $5) RETURNING seq`,
    [action.principal, action.action, action.target, action.outcome, JSON.stringify(action.detail ?? {})],
  );
  return Number(rows[0]!.seq);
}

/** The latest entries, newest first, optionally of one action. */
export async function operatorAuditTrail(
  pool: Pool,
  options: { action?: string; limit?: number } = {},
): Promise<OperatorAuditEntry[]> {
  const { rows } = await pool.query<{
    seq: string;
    at: Date;
    principal: string;
    action: string;
    target: string;
    outcome: OperatorAction['outcome'];
    detail: Record<string, unknown>;
  }>(
    `SELECT seq, at, principal, action, target, outcome, detail FROM operator_audit
     WHERE $1::text IS NULL OR action = $1 ORDER BY seq DESC LIMIT $2`,
    [options.action ?? null, options.limit ?? 100],
  );
  return rows.map((row) => ({ ...row, seq: Number(row.seq) }));
}
