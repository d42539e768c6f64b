import { executeReplay, planReplay, replayTarget, type ReplayPlan } from '../../consumers/replay/index.ts';
import { readEnv } from '../../infra/config/options.ts';
import { LtError, toLtError } from '../../infra/errors.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import { topics } from '../../infra/kafka/topics.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, type Pool } from '../../infra/postgres/pool.ts';
import { kafkaSecurityFor, principals } from '../../infra/security/principals.ts';
import { AgreementStore } from '../../platform/agreements/index.ts';
import { recordOperatorAction } from '../../platform/audit/operator-audit.ts';
import { loadDictionary } from '../../schemas/model/dictionary.ts';
import { printTable } from '../table.ts';

/** The flags of `lienthong replay` (see its `--help`). */
export interface ReplayCommandOptions {
  group: string;
  toEarliest?: boolean;
  toDatetime?: string;
  byDuration?: string;
  toOffset?: string;
  dataset?: string;
  dryRun: boolean;
  json: boolean;
  /** PostgreSQL schema of the agreements and the operator audit trail. */
  schema: string;
}

/** The source topic of `datasetId` and the share topic of every agreement on it, or a refusal. */
async function datasetTopics(pool: Pool, datasetId: string): Promise<string[]> {
  const dictionary = loadDictionary();
  if (!dictionary.datasets.has(datasetId))
    throw new LtError('LT_DATASET_UNKNOWN', `no dataset ${datasetId} in the Shared Data Dictionary`, {
      details: { dataset: datasetId },
      hint: `datasets: ${[...dictionary.datasets.keys()].sort().join(', ')} (lienthong dictionary show)`,
    });
  const agreements = await new AgreementStore(pool, dictionary).list({ dataset: datasetId });
  return [topics.source(datasetId), ...agreements.map((agreement) => topics.share(agreement.id))];
}

function describeTarget(plan: ReplayPlan): string {
  const { target } = plan;
  if (target.mode === 'earliest') return 'the earliest retained offsets';
  if (target.mode === 'offset')
    return `offset ${target.offset} of ${target.topic} partition ${target.partition}`;
  return `the first records at or after ${target.at.toISOString()}`;
}

function printPlan(plan: ReplayPlan, dryRun: boolean): void {
  console.log(`replay of group ${plan.groupId} to ${describeTarget(plan)}${dryRun ? ' (dry run)' : ''}`);
  printTable(
    ['topic', 'partition', 'log', 'committed', 'new', 're-read'],
    plan.partitions.map((move) => [
      move.topic,
      String(move.partition),
      `${move.logStart}–${move.logEnd}`,
      move.committed === null ? 'none' : String(move.committed),
      move.reread > 0 ? `→ ${move.to}` : `stays (${move.stays ?? ''})`,
      String(move.reread),
    ]),
  );
  console.log(
    `\n${plan.moving} partition(s) move back; ${plan.reread} record(s) will be read again` +
      (dryRun ? '. Dry run: nothing changed; run without --dry-run to apply.' : ''),
  );
}

function planAsJson(plan: ReplayPlan, state: 'planned' | 'done'): string {
  return JSON.stringify({ ...plan, state }, null, 2);
}

/**
 * `lienthong replay --group <id> <target> [--dataset <id>] [--dry-run] [--json]`: moves a stopped consumer group's
 * committed offsets back, so its consumers re-read from there when they start again (every sink is idempotent,
 * so the copies end the same). Connects as lt-operator (or KAFKA_PRINCIPAL); every attempt — planned, done,
 * refused or failed — is appended to `operator_audit` with that principal.
 */
export async function runReplay(options: ReplayCommandOptions): Promise<void> {
  const env = readEnv();
  if (!env.KAFKA_BROKERS)
    throw new LtError('LT_CONFIG_INVALID', 'replay needs KAFKA_BROKERS (the cluster of the group)', {
      hint: 'export KAFKA_BROKERS=host:port,… of the platform’s cluster',
    });
  const log = createLogger(env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL);
  const security = kafkaSecurityFor(env, principals.operator, log);
  const principal = security?.username ?? `${principals.operator} (insecure: unauthenticated)`;
  const pool = await createPool({ url: env.DATABASE_URL, schema: options.schema, max: 2 });
  const audit = (outcome: 'planned' | 'done' | 'refused' | 'failed', detail: Record<string, unknown>) =>
    recordOperatorAction(pool, { principal, action: 'replay', target: options.group, outcome, detail });
  const request = {
    group: options.group,
    dataset: options.dataset ?? null,
    dryRun: options.dryRun,
    target: {
      toEarliest: options.toEarliest ?? false,
      toDatetime: options.toDatetime ?? null,
      byDuration: options.byDuration ?? null,
      toOffset: options.toOffset ?? null,
    },
  };
  try {
    await migrate(pool, 'platform');
    let plan: ReplayPlan | undefined;
    try {
      const target = replayTarget(options);
      const scope = options.dataset === undefined ? undefined : await datasetTopics(pool, options.dataset);
      const kafka = createKafka({ brokers: env.KAFKA_BROKERS, clientId: 'lienthong-replay', log, security });
      plan = await planReplay(kafka, {
        groupId: options.group,
        target,
        ...(scope ? { topics: scope, topicsLabel: `dataset ${options.dataset}` } : {}),
      });
      if (options.dryRun || plan.moving === 0) {
        await audit('planned', { request, plan });
        if (options.json) console.log(planAsJson(plan, 'planned'));
        else {
          printPlan(plan, options.dryRun);
          if (plan.moving === 0)
            console.log('nothing to move: every partition is already at or before the target');
        }
        return;
      }
      await executeReplay(kafka, plan);
    } catch (error) {
      const failure = toLtError(error);
      // a refusal is an answer to the operator; anything else failed on the way
      const refused = failure.code !== 'LT_INTERNAL' && !failure.retriable;
      await audit(refused ? 'refused' : 'failed', {
        request,
        ...(plan ? { plan } : {}),
        code: failure.code,
        message: failure.message,
      });
      throw error;
    }
    await audit('done', { request, plan });
    if (options.json) console.log(planAsJson(plan, 'done'));
    else {
      printPlan(plan, false);
      console.log(
        `moved. Start the group’s consumers again; they re-read ${plan.reread} record(s) and catch up ` +
          '(the sinks are idempotent: a copy ends as it was)',
      );
    }
  } finally {
    await pool.end();
  }
}
