import { describe, expect, it } from 'vitest';
import { LtError } from '../../../infra/errors.ts';
import { ensureTopics, groupLag } from '../../../infra/kafka/admin.ts';
import { consumeBatch, type BatchStage } from '../../../infra/kafka/batch-loop.ts';
import { IdempotentSender } from '../../../infra/kafka/produce.ts';
import { PipelineMetrics } from '../../../infra/observability/metrics.ts';
import { failureSignal, watchConsumer } from '../../../infra/kafka/consumer-failure.ts';
import { log, testKafka, uniqueName } from '../../helpers/services.ts';

describe('a consumer kafkajs will not restart is reported, not left silent', () => {
  it('turns a non-retriable failure of the handler into LT_CONSUMER_STOPPED with its cause', async () => {
    const kafka = testKafka();
    const topic = uniqueName('lt.test.crash-');
    await ensureTopics(kafka, [{ topic, partitions: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'poison' }] });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: uniqueName('crash-') });
    const { failed, fail } = failureSignal();
    watchConsumer(consumer, 'the test consumer', log, fail);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async () => {
        throw new LtError('LT_RECORD_INVALID', 'the handler cannot take this record');
      },
    });
    const error = await Promise.race([
      failed,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 30_000)),
    ]);
    await consumer.disconnect();
    expect(error).toBeInstanceOf(LtError);
    expect(error!.code).toBe('LT_CONSUMER_STOPPED');
    expect(error!.message).toContain(
      'the test consumer stopped reading: the handler cannot take this record',
    );
  });
});

describe('a stage whose membership lapses mid-batch rejoins instead of stopping', () => {
  it('reads the uncommitted batch again after the broker evicted it during a slow apply, and commits it', async () => {
    const kafka = testKafka();
    const topic = uniqueName('lt.test.evicted-');
    await ensureTopics(kafka, [{ topic, partitions: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 20 }, (_, i) => ({ value: `r${i}` })) });
    await producer.disconnect();

    const groupId = uniqueName('evicted-');
    // the broker's smallest session (group.min.session.timeout.ms is 6 s): an apply of 9 s without a heartbeat
    // outlives it, so the commit after it is answered UNKNOWN_MEMBER_ID
    const consumer = kafka.consumer({ groupId, sessionTimeout: 6_000, heartbeatInterval: 1_000 });
    const { failed, fail } = failureSignal();
    watchConsumer(consumer, 'the evicted consumer', log, fail);
    const sender = new IdempotentSender(kafka, log);
    await sender.connect();
    const applied: string[][] = [];
    const stage: BatchStage<string> = {
      stage: 'test',
      read: async (message) => message.value!.toString(),
      apply: async (records) => {
        if (applied.length === 0) await new Promise((resolve) => setTimeout(resolve, 9_000));
        applied.push(records.map((record) => record.item));
      },
    };
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async (payload) => {
        await consumeBatch(payload, stage, {
          consumer,
          sender,
          log,
          group: groupId,
          metrics: new PipelineMetrics(),
        });
      },
    });
    try {
      await expect
        .poll(async () => groupLag(kafka, groupId, topic), { timeout: 60_000, interval: 500 })
        .toBe(0);
      expect(applied.length).toBeGreaterThanOrEqual(2); // the first apply's commit was refused: read again
      expect(new Set(applied.flat())).toEqual(new Set(Array.from({ length: 20 }, (_, i) => `r${i}`)));
      const stopped = await Promise.race([
        failed,
        new Promise<null>((resolve) => setTimeout(resolve, 100, null)),
      ]);
      expect(stopped).toBeNull();
    } finally {
      await consumer.disconnect();
      await sender.disconnect();
    }
  });
});
