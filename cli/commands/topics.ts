import { readEnv } from '../../infra/config/options.ts';
import { LtError } from '../../infra/errors.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import { kafkaSecurityFor, principals } from '../../infra/security/principals.ts';
import { createLogger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool } from '../../infra/postgres/pool.ts';
import { AgreementStore } from '../../platform/agreements/index.ts';
import { syncTopics } from '../../platform/topics/plan.ts';
import { loadDictionary } from '../../schemas/model/dictionary.ts';
import { printTable } from '../table.ts';

/**
 * `lienthong topics sync [--dry-run] [--json]`: every topic the dictionary and the agreements imply, with explicit
 * partitions, retention, replication factor and `min.insync.replicas`; prints the differences and applies them.
 * A difference only an operator may resolve (`cannot-apply`) ends in LT_TOPIC_CONFLICT (exit 3, docs/cli.md).
 * `--json` prints `{ dryRun, topics, durability, deadLetterRetentionDays, changes }` instead of the table.
 */
export async function runTopicsSync(options: {
  schema: string;
  dryRun: boolean;
  sourcePartitions: number;
  json: boolean;
}): Promise<void> {
  const env = readEnv();
  if (!env.KAFKA_BROKERS)
    throw new LtError('LT_CONFIG_INVALID', 'topics sync needs KAFKA_BROKERS (the cluster to provision)', {
      hint: 'start a broker (`lienthong broker start`) and export KAFKA_BROKERS=127.0.0.1:9092',
    });
  const log = createLogger(env.LOG_LEVEL === 'info' ? 'warn' : env.LOG_LEVEL);
  const dictionary = loadDictionary();
  const pool = await createPool({ url: env.DATABASE_URL, schema: options.schema, max: 2 });
  try {
    await migrate(pool, 'platform');
    const agreements = await new AgreementStore(pool, dictionary).list();
    // topics sync creates and configures every topic: the super user's work
    const kafka = createKafka({
      brokers: env.KAFKA_BROKERS,
      clientId: 'lienthong-topics',
      log,
      security: kafkaSecurityFor(env, principals.admin, log),
    });
    const { changes, durability, topics } = await syncTopics(
      kafka,
      {
        dictionary,
        agreements,
        sourcePartitions: options.sourcePartitions,
        deadLetterRetentionDays: env.LIENTHONG_DLQ_RETENTION_DAYS,
      },
      { dryRun: options.dryRun },
    );
    const blocked = changes.filter((change) => change.action === 'cannot-apply').length;
    if (options.json)
      console.log(
        JSON.stringify(
          {
            dryRun: options.dryRun,
            topics,
            durability,
            deadLetterRetentionDays: env.LIENTHONG_DLQ_RETENTION_DAYS,
            changes,
          },
          null,
          2,
        ),
      );
    else {
      console.log(
        `${topics} topics wanted on ${durability.brokers} broker(s): replication factor ${durability.replicationFactor}, ` +
          `min.insync.replicas ${durability.minInsyncReplicas}; dead letters kept ${env.LIENTHONG_DLQ_RETENTION_DAYS} days`,
      );
      if (changes.length === 0) console.log('the broker already matches: nothing to do');
      else {
        printTable(
          ['topic', 'change', 'detail'],
          changes.map((change) => [change.topic, change.action, change.detail]),
        );
        console.log(
          options.dryRun
            ? `\n${changes.length - blocked} change(s) would be applied (dry run: nothing changed); run without --dry-run to apply`
            : `\n${changes.length - blocked} change(s) applied`,
        );
      }
    }
    if (blocked > 0)
      throw new LtError('LT_TOPIC_CONFLICT', `${blocked} difference(s) need an operator (cannot-apply)`, {
        details: { topics: changes.filter((change) => change.action === 'cannot-apply').map((c) => c.topic) },
        hint: 'sync never removes partitions or changes a replication factor: see docs/kafka.md, then decide',
      });
  } finally {
    await pool.end();
  }
}
