import type { Kafka } from 'kafkajs';
import {
  CLUSTER,
  reconcileAcls,
  type AclChange,
  type AclGrant,
  type AclOperation,
} from '../../infra/kafka/acl.ts';
import { consumerGroups, topics } from '../../infra/kafka/topics.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { principals } from '../../infra/security/principals.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import { allowsMethod, isActive, type Agreement } from '../agreements/model.ts';
import { AGENCY_DEAD_LETTER_STAGES, REDRIVE_TOPIC_STAGES } from '../topics/plan.ts';

export interface AccessPlanInput {
  dictionary: Dictionary;
  agreements: readonly Agreement[];
  /** When "active" is judged (an agreement past its validTo has expired). Default now. */
  now?: Date;
}

const user = (name: string): string => `User:${name}`;

function grants(
  principal: string,
  resource: AclGrant['resource'],
  name: string,
  pattern: AclGrant['pattern'],
  operations: AclOperation[],
): AclGrant[] {
  return operations.map((operation) => ({ principal: user(principal), resource, name, pattern, operation }));
}

/** What managing topics of a prefix takes: create them, read and change their settings, add partitions. */
const MANAGE: AclOperation[] = ['CREATE', 'DESCRIBE_CONFIGS', 'ALTER_CONFIGS', 'ALTER'];

/**
 * Every broker permission, derived from the dictionary and the agreements (docs/security.md has the table).
 * Nothing else is allowed: the broker runs with `allow.everyone.if.no.acl.found=false`. (READ and WRITE imply
 * DESCRIBE in Kafka, so DESCRIBE is granted only where nothing else is.)
 * - the owner agency of a dataset writes its `lt.src.<dataset>`; nobody else does;
 * - the coordinator and the NGDB sink read every `lt.src.*`; only the coordinator writes `lt.share.*`;
 * - the subscriber of an active agreement reads its `lt.share.<agreement>`, in its own consumer groups only
 *   (`lt.sink.<agency>`, `lt.sink.<agency>.*`); a suspended, revoked or expired agreement grants nothing;
 * - each agency writes and reads its own dead-letter topics, and no one else's;
 * - the registry principal (the dictionary publisher) creates and configures source topics; operators read every
 *   dead-letter topic (in one-off groups `lt.operator.*`) and describe every topic and group;
 * - an operator redrives a platform stage's dead letters by writing its `lt.redrive.<stage>`, which only that
 *   stage reads — never a source topic, which stays its owner's alone (docs/dead-letters.md says why).
 * - an operator also reads the source and share topics and every `lt.` group — what
 *   moving a stopped group's offsets takes (`lienthong replay`).
 */
export function desiredAcls(input: AccessPlanInput): AclGrant[] {
  const now = input.now ?? new Date();
  const acls: AclGrant[] = [];
  for (const dataset of input.dictionary.datasets.values())
    acls.push(
      ...grants(principals.agency(dataset.owner), 'TOPIC', topics.source(dataset.id), 'LITERAL', ['WRITE']),
    );
  for (const agency of input.dictionary.agencies.keys()) {
    const principal = principals.agency(agency);
    // every write of the platform is idempotent (infra/kafka/produce.ts), dead letters included
    acls.push(...grants(principal, 'CLUSTER', CLUSTER, 'LITERAL', ['IDEMPOTENT_WRITE']));
    for (const stage of AGENCY_DEAD_LETTER_STAGES)
      acls.push(
        ...grants(principal, 'TOPIC', topics.deadLetter(stage, agency), 'LITERAL', ['WRITE', 'READ']),
      );
    acls.push(
      ...grants(principal, 'GROUP', consumerGroups.sink(agency), 'LITERAL', ['READ']),
      ...grants(principal, 'GROUP', `${consumerGroups.sink(agency)}.`, 'PREFIXED', ['READ']),
    );
  }
  for (const agreement of input.agreements) {
    if (!isActive(agreement, now) || !allowsMethod(agreement, 'sync')) continue;
    if (!input.dictionary.datasets.has(agreement.dataset)) continue;
    acls.push(
      ...grants(principals.agency(agreement.subscriber), 'TOPIC', topics.share(agreement.id), 'LITERAL', [
        'READ',
      ]),
    );
  }
  const source = 'lt.src.';
  acls.push(
    ...grants(principals.coordinator, 'TOPIC', source, 'PREFIXED', ['READ']),
    ...grants(principals.coordinator, 'TOPIC', 'lt.share.', 'PREFIXED', ['WRITE', ...MANAGE]),
    ...grants(principals.coordinator, 'TOPIC', 'lt.dlq.', 'PREFIXED', ['WRITE', ...MANAGE]),
    ...grants(principals.coordinator, 'GROUP', consumerGroups.coordinator, 'PREFIXED', ['READ']),
    // the lost-position check compares each subscriber group's committed offsets with the share topic
    ...grants(principals.coordinator, 'GROUP', 'lt.sink.', 'PREFIXED', ['DESCRIBE']),
    ...grants(principals.coordinator, 'CLUSTER', CLUSTER, 'LITERAL', ['IDEMPOTENT_WRITE']),
    ...grants(principals.ngdb, 'TOPIC', source, 'PREFIXED', ['READ']),
    ...grants(principals.ngdb, 'TOPIC', topics.deadLetter('ngdb'), 'LITERAL', ['WRITE', ...MANAGE]),
    ...grants(principals.ngdb, 'TOPIC', topics.redrive('ngdb'), 'LITERAL', ['READ', ...MANAGE]),
    ...grants(principals.ngdb, 'GROUP', consumerGroups.ngdb, 'PREFIXED', ['READ']),
    ...grants(principals.ngdb, 'CLUSTER', CLUSTER, 'LITERAL', ['IDEMPOTENT_WRITE']),
    ...grants(principals.registry, 'TOPIC', source, 'PREFIXED', MANAGE),
    ...grants(principals.operator, 'TOPIC', 'lt.dlq.', 'PREFIXED', ['READ']),
    ...grants(principals.operator, 'TOPIC', 'lt.', 'PREFIXED', ['DESCRIBE', 'DESCRIBE_CONFIGS']),
    // `lienthong replay` commits a stopped group's offsets: Kafka's OffsetCommit needs READ on the group and on
    // every topic it commits for (the source and share topics); READ on a group implies DESCRIBE (lag, status),
    // and covers the one-off groups `lt.operator.*` the dead-letter commands read in
    ...grants(principals.operator, 'TOPIC', source, 'PREFIXED', ['READ']),
    ...grants(principals.operator, 'TOPIC', 'lt.share.', 'PREFIXED', ['READ']),
    ...grants(principals.operator, 'GROUP', 'lt.', 'PREFIXED', ['READ']),
    ...REDRIVE_TOPIC_STAGES.flatMap((stage) =>
      grants(principals.operator, 'TOPIC', topics.redrive(stage), 'LITERAL', ['WRITE']),
    ),
    ...grants(principals.operator, 'CLUSTER', CLUSTER, 'LITERAL', ['IDEMPOTENT_WRITE']),
  );
  return acls;
}

/** `lienthong acl sync`: the broker's ACLs made exactly {@link desiredAcls}; the changes, applied unless dry. */
export function syncAcls(
  kafka: Kafka,
  input: AccessPlanInput,
  options: { dryRun?: boolean } = {},
): Promise<{ changes: AclChange[]; foreign: string[] }> {
  return reconcileAcls(kafka, desiredAcls(input), options);
}

export interface AclKeeper {
  /** Resolves after the sync in progress, if any; no sync starts after it. */
  stop(): Promise<void>;
}

/**
 * Runs {@link syncAcls} every `intervalMs` (and once at once) with the dictionary and agreements `load` returns
 * at that moment, so an agreement suspended, revoked or past its validTo loses its read within one interval —
 * the platform's own reconciliation (`lienthong acl sync --watch`). A failed sync is logged and tried again at
 * the next tick; `onChanges` hears of every sync that changed something.
 */
export function keepAclsInSync(
  kafka: Kafka,
  load: () => Promise<AccessPlanInput>,
  options: { intervalMs: number; log: Logger; onChanges?: (changes: AclChange[]) => void },
): AclKeeper {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const tick = (): void => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        const { changes } = await syncAcls(kafka, await load());
        if (changes.length > 0) options.onChanges?.(changes);
      } catch (error) {
        options.log.warn({ err: error }, 'ACL sync failed; tried again at the next interval');
      }
    });
  };
  tick();
  const timer = setInterval(tick, options.intervalMs);
  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
