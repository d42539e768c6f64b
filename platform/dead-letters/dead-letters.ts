import type { Kafka, Message } from 'kafkajs';
import { LtError, toLtError } from '../../infra/errors.ts';
import { redriveMessage } from '../../infra/kafka/dead-letter.ts';
import { IdempotentSender } from '../../infra/kafka/produce.ts';
import { subjects, topicKind, topics } from '../../infra/kafka/topics.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { inTransaction, type Pool } from '../../infra/postgres/pool.ts';
import { decodeSourceEvent } from '../../schemas/envelope/check.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import type { SchemaRegistry } from '../../schemas/registry/client.ts';
import { decodeWireValue } from '../../schemas/registry/decode.ts';
import { wireSchemaId } from '../../schemas/registry/wire.ts';
import type { Agreement } from '../agreements/model.ts';
import { recordOperatorAction } from '../audit/operator-audit.ts';
import { REDRIVE_TOPIC_STAGES } from '../topics/plan.ts';
import {
  bytesPreview,
  formatDeadLetterAddress,
  viewOf,
  type DeadLetterAddress,
  type DeadLetterRecord,
  type DeadLetterView,
} from './dead-letter.ts';
import { isEmptyFilter, matchesFilter, topicsOfFilter, type DeadLetterFilter } from './filter.ts';
import { deadLetterOffsets, existingTopics, readDeadLetterRecords } from './reader.ts';
import { resolutionsOf, resolveDeadLetters, resolvedCounts } from './resolution.ts';

/** What reading dead letters needs: the broker, the platform's PostgreSQL, the dictionary and agreements. */
export interface DeadLetterSources {
  kafka: Kafka;
  /** The platform schema (migration set `platform`, 0009 for resolutions). */
  pool: Pool;
  dictionary: Dictionary;
  /** The agreements, to tell the dataset of a share topic's dead letter and whom a coordinator redrive re-derives. */
  agreements: readonly Agreement[];
  /** How long reading the topics may take. Default 60 s. */
  timeoutMs?: number;
}

/** Which dead letters: a filter, and/or explicit addresses; `includeResolved` lists redriven and discarded too. */
export interface DeadLetterSelection {
  filter?: DeadLetterFilter;
  addresses?: readonly DeadLetterAddress[];
  includeResolved?: boolean;
}

interface Selected {
  view: DeadLetterView;
  record: DeadLetterRecord;
}

async function select(sources: DeadLetterSources, selection: DeadLetterSelection): Promise<Selected[]> {
  const filter = selection.filter ?? {};
  const addresses = selection.addresses ?? [];
  const existing = await existingTopics(sources.kafka);
  let topicNames = topicsOfFilter(filter, existing);
  if (addresses.length > 0) {
    const missing = addresses.filter((address) => !existing.includes(address.topic));
    if (missing.length > 0)
      throw new LtError('LT_DEAD_LETTER_UNKNOWN', `no dead-letter topic ${missing[0]!.topic}`, {
        details: { addresses: missing.map(formatDeadLetterAddress) },
        hint: 'copy an address from `lienthong dlq list`',
      });
    const wanted = new Set(addresses.map((address) => address.topic));
    topicNames = topicNames.filter((topic) => wanted.has(topic));
  }
  const records = await readDeadLetterRecords(sources.kafka, topicNames, {
    ...(sources.timeoutMs === undefined ? {} : { timeoutMs: sources.timeoutMs }),
  });
  const resolutions = await resolutionsOf(sources.pool, topicNames);
  const datasets = new Map(sources.agreements.map((agreement) => [agreement.id, agreement.dataset]));
  const selected = records
    .map((record) => {
      const address = formatDeadLetterAddress(record);
      return { record, view: viewOf(record, resolutions.get(address) ?? null, (id) => datasets.get(id)) };
    })
    .filter(({ view }) => matchesFilter(view, filter))
    .filter(({ view }) => selection.includeResolved === true || view.status === 'open');
  if (addresses.length === 0) return selected;
  const byAddress = new Map(selected.map((one) => [one.view.address, one]));
  const unknown = addresses.map(formatDeadLetterAddress).filter((address) => !byAddress.has(address));
  if (unknown.length > 0)
    throw new LtError('LT_DEAD_LETTER_UNKNOWN', `no open dead letter at ${unknown.join(', ')}`, {
      details: { addresses: unknown },
      hint: 'it is past retention, already redriven or discarded (`dlq list --all` shows those), or the address is mistyped',
    });
  return addresses.map((address) => byAddress.get(formatDeadLetterAddress(address))!);
}

/**
 * The dead letters a selection names, as plain JSON, oldest first within each topic: open ones unless
 * `includeResolved`. What `dlq list`, `lienthong status` and the ops console show.
 */
export async function listDeadLetters(
  sources: DeadLetterSources,
  selection: DeadLetterSelection = {},
): Promise<DeadLetterView[]> {
  return (await select(sources, selection)).map(({ view }) => view);
}

/** Dead letters of one topic: kept now, of which resolved (redriven or discarded) and open. */
export interface DeadLetterCount {
  topic: string;
  stage: string;
  agency: string | null;
  kept: number;
  resolved: number;
  open: number;
}

/**
 * Per dead-letter topic, how many records it keeps and how many are still open, from the partitions' offsets
 * and the resolution table alone (no record is read, so it is cheap enough for a status screen or a console
 * refreshing every few seconds).
 */
export async function deadLetterCounts(
  sources: Pick<DeadLetterSources, 'kafka' | 'pool'>,
): Promise<DeadLetterCount[]> {
  const topicNames = (await existingTopics(sources.kafka))
    .filter((topic) => topicKind(topic).kind === 'dead-letter')
    .sort();
  const ranges = await deadLetterOffsets(sources.kafka, topicNames);
  const resolved = await resolvedCounts(sources.pool, ranges);
  return topicNames.map((topic) => {
    const kind = topicKind(topic);
    const mine = ranges.filter((range) => range.topic === topic);
    const kept = mine.reduce((sum, range) => sum + Number(BigInt(range.high) - BigInt(range.low)), 0);
    const done = mine.reduce((sum, range) => sum + (resolved.get(`${topic}:${range.partition}`) ?? 0), 0);
    return {
      topic,
      stage: kind.kind === 'dead-letter' ? kind.stage : 'unknown',
      agency: kind.kind === 'dead-letter' ? (kind.agency ?? null) : null,
      kept,
      resolved: done,
      open: kept - done,
    };
  });
}

/** One dead letter in full: its view, its headers, and its key and value decoded where they can be. */
export interface DeadLetterDetail {
  deadLetter: DeadLetterView;
  headers: Record<string, string>;
  key: { text: string } | { preview: ReturnType<typeof bytesPreview> } | null;
  /**
   * The value: the Avro record decoded through the registry when it is a Confluent-framed record of a schema
   * registered under its source topic's subject; else why it is not, with a bounded hex and text preview.
   */
  value:
    | { decoded: unknown; schemaId: number }
    | { notDecoded: string; schemaId: number | null; preview: ReturnType<typeof bytesPreview> }
    | null;
}

/** `dlq show`: one dead letter (open or resolved) with its record decoded where it can be. */
export async function showDeadLetter(
  sources: DeadLetterSources,
  registry: SchemaRegistry,
  address: DeadLetterAddress,
): Promise<DeadLetterDetail> {
  const [found] = await select(sources, { addresses: [address], includeResolved: true });
  const { record, view } = found!;
  const headers = Object.fromEntries(
    Object.entries(record.headers).map(([name, value]) => [
      name,
      String(Array.isArray(value) ? value[0] : value),
    ]),
  );
  const keyText = record.key?.toString('utf8');
  const key =
    record.key === null
      ? null
      : /^[\x20-\x7e]{0,200}$/.test(keyText!)
        ? { text: keyText! }
        : { preview: bytesPreview(record.key) };
  let value: DeadLetterDetail['value'] = null;
  if (record.value !== null) {
    const schemaId = wireSchemaId(record.value);
    const sourceTopic = view.source && 'topic' in view.source ? view.source.topic : record.topic;
    try {
      const decoded = await decodeWireValue(registry, record.value, { subject: subjects.value(sourceTopic) });
      value = { decoded, schemaId: schemaId! };
    } catch (error) {
      const failure = toLtError(error);
      if (failure.retriable) throw failure;
      value = {
        notDecoded: `${failure.code}: ${failure.message}`,
        schemaId,
        preview: bytesPreview(record.value),
      };
    }
  }
  return { deadLetter: view, headers, key, value };
}

/** Why one dead letter was not redriven. */
export interface RedriveRefusal {
  address: string;
  code: string;
  reason: string;
}

/** What a redrive did (or, dry, would do). */
export interface RedriveReport {
  dryRun: boolean;
  /** Sent back: to `lt.redrive.<stage>`, or re-derived with agreements (a coordinator dead letter). */
  redriven: { address: string; to: string }[];
  /** Checked again and still refused (the cause is not fixed): left open, with today's reason. */
  stillFailing: RedriveRefusal[];
  /** Not redriven by the platform: an agency's stage, an agreement no longer derived, a record without bytes. */
  notRedrivable: RedriveRefusal[];
  /** Agreements re-derived from the start of their source topic (AgreementStore.resync). */
  reshared: string[];
  /** The operator_audit entry; null for a dry run. */
  auditSeq: number | null;
}

export interface RedriveOptions extends DeadLetterSelection {
  registry: SchemaRegistry;
  /** The principal the command acts as (its Kafka identity): audited. */
  principal: string;
  /** Re-derives an agreement as a new revision (AgreementStore.resync with this principal). */
  resync: (agreementId: string, reason: string) => Promise<void>;
  log: Logger;
  dryRun?: boolean;
}

/** The plan for one dead letter: where it goes, or why it cannot go. */
type Plan =
  | { to: 'topic'; topic: string; message: Message }
  | { to: 'resync'; agreements: string[] }
  | { to: 'nowhere'; refusal: RedriveRefusal; stillFailing: boolean };

async function planOne(
  selected: Selected,
  options: RedriveOptions,
  sources: DeadLetterSources,
): Promise<Plan> {
  const { view, record } = selected;
  const refuse = (code: string, reason: string, stillFailing = false): Plan => ({
    to: 'nowhere',
    refusal: { address: view.address, code, reason },
    stillFailing,
  });
  const redrivable = (REDRIVE_TOPIC_STAGES as readonly string[]).includes(view.stage);
  if (!redrivable && view.stage !== 'coordinator')
    return refuse(
      'LT_FORBIDDEN',
      `a dead letter of stage ${view.stage} belongs to ${view.agency ?? 'an agency'}'s Agent Node, which redrives its own; fix it at the source and republish, or discard it`,
    );
  const source = view.source && 'topic' in view.source ? view.source : null;
  const kind = source ? topicKind(source.topic) : null;
  if (!source || kind?.kind !== 'source')
    return refuse('LT_RECORD_INVALID', 'its headers name no source topic to read it as');
  if (record.value === null) return refuse('LT_RECORD_INVALID', 'it has no value to redrive');
  // the same checks the stage makes: registered schema under the topic's subject, bounded decode, envelope
  try {
    await decodeSourceEvent(
      options.registry,
      sources.dictionary.datasets.get(kind.dataset),
      source.topic,
      record.value,
    );
  } catch (error) {
    const failure = toLtError(error);
    if (failure.retriable) throw failure;
    return refuse(failure.code, failure.message, true);
  }
  if (redrivable)
    return {
      to: 'topic',
      topic: topics.redrive(view.stage),
      message: redriveMessage(record, view.address),
    };
  const agreements = (
    view.agreement !== null
      ? sources.agreements.filter((agreement) => agreement.id === view.agreement)
      : sources.agreements.filter((agreement) => agreement.dataset === kind.dataset)
  ).filter((agreement) => agreement.status === 'approved');
  if (agreements.length === 0)
    return refuse(
      'LT_AGREEMENT_TRANSITION',
      `no approved agreement ${view.agreement === null ? `on ${kind.dataset}` : view.agreement} is derived any more; discard it`,
    );
  return { to: 'resync', agreements: agreements.map((agreement) => agreement.id) };
}

/**
 * `dlq redrive`: checks each open dead letter of the selection again as its stage would (schema registered
 * under its source topic's subject, bounded decode, envelope), then reprocesses those that pass through their
 * stage: an NGDB dead letter is sent, original bytes, to `lt.redrive.ngdb`, which the NGDB sink reads as the
 * source record; a coordinator dead letter re-derives its agreement (or every approved agreement on the
 * dataset) from the start of the source topic, as a new revision. Those that still fail stay open and are
 * reported with today's reason; a record the stage refuses again comes back as a new dead letter. The redriven
 * ones are resolved and the command is audited in one transaction. A selection without a filter or an address
 * is refused (a redrive of everything must be a filter an operator typed).
 */
export async function redriveDeadLetters(
  sources: DeadLetterSources,
  options: RedriveOptions,
): Promise<RedriveReport> {
  if (isEmptyFilter(options.filter ?? {}) && (options.addresses ?? []).length === 0)
    throw new LtError('LT_ARGUMENT_INVALID', 'a redrive needs a filter or addresses', {
      hint: 'narrow it: --stage ngdb, --code LT_SCHEMA_UNKNOWN, --dataset …, or give addresses from `dlq list`',
    });
  const selected = await select(sources, options);
  const report: RedriveReport = {
    dryRun: options.dryRun === true,
    redriven: [],
    stillFailing: [],
    notRedrivable: [],
    reshared: [],
    auditSeq: null,
  };
  const sends = new Map<string, Message[]>();
  const resyncs = new Set<string>();
  const redriven: DeadLetterAddress[] = [];
  for (const one of selected) {
    const plan = await planOne(one, options, sources);
    if (plan.to === 'nowhere') {
      (plan.stillFailing ? report.stillFailing : report.notRedrivable).push(plan.refusal);
      continue;
    }
    redriven.push(one.record);
    if (plan.to === 'topic') {
      sends.set(plan.topic, [...(sends.get(plan.topic) ?? []), plan.message]);
      report.redriven.push({ address: one.view.address, to: plan.topic });
    } else {
      plan.agreements.forEach((id) => resyncs.add(id));
      report.redriven.push({ address: one.view.address, to: `reshare ${plan.agreements.join(', ')}` });
    }
  }
  report.reshared = [...resyncs].sort();
  if (report.dryRun) return report;

  if (sends.size > 0) {
    const sender = new IdempotentSender(sources.kafka, options.log);
    await sender.connect();
    try {
      await sender.send({ topicMessages: [...sends].map(([topic, messages]) => ({ topic, messages })) });
    } finally {
      await sender.disconnect();
    }
  }
  const reason = `dead letters redriven by ${options.principal} (lienthong dlq redrive)`;
  for (const id of report.reshared) await options.resync(id, reason);
  report.auditSeq = await inTransaction(sources.pool, async (client) => {
    const seq = await recordOperatorAction(client, {
      principal: options.principal,
      action: 'dlq.redrive',
      target: [...new Set(selected.map(({ view }) => view.topic))].join(',') || 'lt.dlq.*',
      outcome: redriven.length > 0 ? 'done' : 'refused',
      detail: {
        filter: options.filter ?? {},
        redriven: report.redriven,
        reshared: report.reshared,
        stillFailing: report.stillFailing,
        notRedrivable: report.notRedrivable,
      },
    });
    await resolveDeadLetters(client, redriven, {
      resolution: 'redriven',
      reason,
      principal: options.principal,
      auditSeq: seq,
    });
    return seq;
  });
  options.log.info(
    { redriven: report.redriven.length, stillFailing: report.stillFailing.length, auditSeq: report.auditSeq },
    'dead letters redriven',
  );
  return report;
}

/** What a discard did. */
export interface DiscardReport {
  discarded: string[];
  auditSeq: number;
}

/**
 * `dlq discard`: marks the open dead letters of the selection discarded, with the operator's reason (required:
 * blank is refused before anything is read), audited in the same transaction. The records stay on their topic
 * until its retention removes them; they are no longer listed as open.
 */
export async function discardDeadLetters(
  sources: DeadLetterSources,
  options: DeadLetterSelection & { reason: string; principal: string },
): Promise<DiscardReport> {
  const reason = options.reason.trim();
  if (reason.length < 3)
    throw new LtError('LT_ARGUMENT_INVALID', 'a discard states its reason', {
      hint: 'add --reason "<why these records may be dropped>" (it is kept in the audit trail)',
    });
  if (isEmptyFilter(options.filter ?? {}) && (options.addresses ?? []).length === 0)
    throw new LtError('LT_ARGUMENT_INVALID', 'a discard needs a filter or addresses', {
      hint: 'narrow it: --stage, --agency, --code, --dataset, --since/--until, or give addresses from `dlq list`',
    });
  const selected = await select(sources, { ...options, includeResolved: false });
  if (selected.length === 0)
    throw new LtError('LT_DEAD_LETTER_UNKNOWN', 'no open dead letter matches', {
      hint: '`lienthong dlq list` shows the open ones; nothing was changed',
    });
  return inTransaction(sources.pool, async (client) => {
    const auditSeq = await recordOperatorAction(client, {
      principal: options.principal,
      action: 'dlq.discard',
      target: [...new Set(selected.map(({ view }) => view.topic))].join(','),
      outcome: 'done',
      detail: { reason, filter: options.filter ?? {}, addresses: selected.map(({ view }) => view.address) },
    });
    const discarded = await resolveDeadLetters(
      client,
      selected.map(({ record }) => record),
      { resolution: 'discarded', reason, principal: options.principal, auditSeq },
    );
    return { discarded, auditSeq };
  });
}
