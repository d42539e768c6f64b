import type { Admin, Kafka } from 'kafkajs';
import { LtError } from '../../infra/errors.ts';
import { planMoves, type PartitionMove, type PartitionPosition, type ReplayTarget } from './plan.ts';

export interface ReplayRequest {
  /** The consumer group to move, e.g. `lt.ngdb` or `lt.sink.bhxh.bhxh-insurance`. */
  groupId: string;
  target: ReplayTarget;
  /** Only these topics of the group (a dataset's source and share topics); unset: every topic it reads. */
  topics?: readonly string[];
  /** What `topics` stands for in messages, e.g. `dataset population.citizen`. */
  topicsLabel?: string;
  /** When a duration ends and "the future" begins. Default now. */
  now?: Date;
}

/** What a replay will do (or did): every partition of the group's topics in scope, moved or not. */
export interface ReplayPlan {
  groupId: string;
  target:
    | Exclude<ReplayTarget, { mode: 'duration' }>
    | (Extract<ReplayTarget, { mode: 'duration' }> & { at: Date });
  partitions: PartitionMove[];
  /** How many partitions move back. */
  moving: number;
  /** How many records the group reads again, over every partition. */
  reread: number;
}

/** A live member of a group, as the broker describes it. */
export interface GroupMember {
  memberId: string;
  clientId: string;
  clientHost: string;
}

async function withAdmin<T>(kafka: Kafka, groupId: string, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await work(admin);
  } catch (error) {
    throw brokerRefusal(error, groupId);
  } finally {
    await admin.disconnect();
  }
}

const AUTHORIZATION_FAILURES = new Set(['GROUP_AUTHORIZATION_FAILED', 'TOPIC_AUTHORIZATION_FAILED']);

/** The broker error type of `error` or of one of its causes (kafkajs wraps a refusal in its retry errors). */
function brokerErrorType(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 5; depth++) {
    const type = (current as { type?: unknown }).type;
    if (typeof type === 'string') return type;
    current = current.cause;
  }
  return undefined;
}

/** kafkajs's authorization failures as LT_FORBIDDEN (the operator's grants are missing), anything else as is. */
function brokerRefusal(error: unknown, groupId: string): unknown {
  if (error instanceof LtError) return error;
  // kafkajs asks every broker for the group's coordinator, drops their answers and says only this: the broker
  // refuses FindCoordinator to a principal that may not use the group (its GROUP_AUTHORIZATION_FAILED is lost)
  if (error instanceof Error && error.name === 'KafkaJSGroupCoordinatorNotFound')
    return new LtError(
      'LT_FORBIDDEN',
      `no broker names the coordinator of group ${groupId}: the principal may not use the group (or its coordinator is down)`,
      {
        cause: error,
        hint: 'replay needs READ on the group (docs/security.md): run `lienthong acl sync` as lt-admin, or connect as lt-operator; if the grants are there, the broker is recovering: try again',
      },
    );
  const type = brokerErrorType(error);
  if (type !== undefined && AUTHORIZATION_FAILURES.has(type))
    return new LtError('LT_FORBIDDEN', `the broker refused the replay: ${String(type)}`, {
      cause: error,
      hint: 'the principal lacks the grants a replay needs (docs/security.md): run `lienthong acl sync` as lt-admin, or connect as lt-operator',
    });
  return error;
}

/** The group's live members; empty when it is stopped (or does not exist). */
export async function liveMembers(admin: Admin, groupId: string): Promise<GroupMember[]> {
  const { groups } = await admin.describeGroups([groupId]);
  return (groups[0]?.members ?? []).map(({ memberId, clientId, clientHost }) => ({
    memberId,
    clientId,
    clientHost,
  }));
}

function refuseLiveGroup(groupId: string, members: GroupMember[]): LtError {
  return new LtError(
    'LT_GROUP_ACTIVE',
    `group ${groupId} has ${members.length} live member(s): ` +
      members.map((member) => `${member.clientId} on ${member.clientHost}`).join(', '),
    {
      details: { groupId, members },
      hint:
        'stop every process of the group first (Ctrl-C or SIGTERM to `lienthong ngdb`, `lienthong coordinator` or the ' +
        'Agent Node; a killed one leaves the group after its session timeout), then run the replay again; ' +
        'the others keep running (one group per job)',
    },
  );
}

async function refuseUnknownGroup(admin: Admin, groupId: string): Promise<LtError> {
  const { groups } = await admin.listGroups();
  const known = groups
    .map((group) => group.groupId)
    .filter((id) => id.startsWith('lt.'))
    .sort();
  return new LtError(
    'LT_GROUP_UNKNOWN',
    `no consumer group ${groupId}: it has no members and no committed offsets`,
    {
      details: { groupId },
      hint:
        known.length === 0
          ? 'groups are lt.coordinator, lt.ngdb and lt.sink.<agency>.<agreement>; this broker has none yet'
          : `groups on this broker: ${known.slice(0, 12).join(', ')}${known.length > 12 ? `, … (${known.length})` : ''}`,
    },
  );
}

/** The group's committed offset per partition, for each topic it has committed on (in `scope` only, if given). */
async function committedOffsets(admin: Admin, groupId: string): Promise<Map<string, Map<number, number>>> {
  const committed = new Map<string, Map<number, number>>();
  for (const { topic, partitions } of await admin.fetchOffsets({ groupId })) {
    const offsets = new Map(partitions.map(({ partition, offset }) => [partition, Number(offset)]));
    if ([...offsets.values()].some((offset) => offset >= 0)) committed.set(topic, offsets);
  }
  return committed;
}

async function refuseUnknownTopic(
  admin: Admin,
  topic: string,
  groupId: string,
  reads: string[],
): Promise<LtError> {
  const exists = (await admin.listTopics()).includes(topic);
  return new LtError(
    'LT_TOPIC_UNKNOWN',
    exists ? `group ${groupId} does not read ${topic}` : `there is no topic ${topic}`,
    { details: { topic, groupId }, hint: `group ${groupId} reads: ${reads.join(', ')}` },
  );
}

/**
 * What a replay of `request.groupId` would do, read from the broker, changing nothing: refuses an unknown group or
 * topic, a group with live members, and every target {@link planMoves} refuses.
 */
export function planReplay(kafka: Kafka, request: ReplayRequest): Promise<ReplayPlan> {
  return withAdmin(kafka, request.groupId, async (admin) => {
    const { groupId } = request;
    const now = request.now ?? new Date();
    const target =
      request.target.mode === 'duration'
        ? { ...request.target, at: new Date(now.getTime() - request.target.ms) }
        : request.target;
    const committed = await committedOffsets(admin, groupId);
    const members = await liveMembers(admin, groupId);
    if (committed.size === 0 && members.length === 0) throw await refuseUnknownGroup(admin, groupId);
    if (members.length > 0) throw refuseLiveGroup(groupId, members);
    const reads = [...committed.keys()].sort();
    let inScope = request.topics ? reads.filter((topic) => request.topics!.includes(topic)) : reads;
    if (inScope.length === 0)
      throw new LtError(
        'LT_TOPIC_UNKNOWN',
        `group ${groupId} reads no topic of ${request.topicsLabel ?? request.topics!.join(', ')}`,
        { details: { groupId, topics: request.topics }, hint: `group ${groupId} reads: ${reads.join(', ')}` },
      );
    if (target.mode === 'offset') {
      if (!inScope.includes(target.topic))
        throw await refuseUnknownTopic(admin, target.topic, groupId, reads);
      inScope = [target.topic];
    }
    const positions: PartitionPosition[] = [];
    for (const topic of inScope) {
      const ends = await admin.fetchTopicOffsets(topic);
      const atTime =
        target.mode === 'datetime' || target.mode === 'duration'
          ? new Map(
              (await admin.fetchTopicOffsetsByTimestamp(topic, target.at.getTime())).map(
                ({ partition, offset }) => [partition, Number(offset)],
              ),
            )
          : undefined;
      for (const { partition, low, high } of ends.sort((a, b) => a.partition - b.partition))
        positions.push({
          topic,
          partition,
          logStart: Number(low),
          logEnd: Number(high),
          committed: committed.get(topic)?.get(partition) ?? -1,
          ...(atTime?.has(partition) ? { offsetAtTime: atTime.get(partition)! } : {}),
        });
    }
    const partitions = planMoves(
      target.mode === 'duration' ? { mode: 'datetime', at: target.at } : target,
      positions,
      now,
    );
    const moving = partitions.filter((move) => move.reread > 0);
    return {
      groupId,
      target,
      partitions,
      moving: moving.length,
      reread: moving.reduce((sum, move) => sum + move.reread, 0),
    };
  });
}

/**
 * Moves the group's committed offsets as `plan` says (kafkajs `setOffsets`, one topic at a time), refusing if the
 * group got a live member since the plan was made, then reads them back: a partition not where the plan put it
 * is an error. Partitions that stay are not touched.
 */
export function executeReplay(kafka: Kafka, plan: ReplayPlan): Promise<void> {
  return withAdmin(kafka, plan.groupId, async (admin) => {
    const members = await liveMembers(admin, plan.groupId);
    if (members.length > 0) throw refuseLiveGroup(plan.groupId, members);
    const byTopic = new Map<string, PartitionMove[]>();
    for (const move of plan.partitions)
      if (move.reread > 0) byTopic.set(move.topic, [...(byTopic.get(move.topic) ?? []), move]);
    for (const [topic, moves] of byTopic) {
      try {
        await admin.setOffsets({
          groupId: plan.groupId,
          topic,
          partitions: moves.map((move) => ({ partition: move.partition, offset: String(move.to) })),
        });
      } catch (error) {
        // kafkajs refuses a group that is not Empty: a member joined between the check and the move
        const joined = await liveMembers(admin, plan.groupId);
        if (joined.length > 0) throw refuseLiveGroup(plan.groupId, joined);
        throw error;
      }
    }
    const after = await committedOffsets(admin, plan.groupId);
    const wrong = plan.partitions.filter(
      (move) => move.reread > 0 && after.get(move.topic)?.get(move.partition) !== move.to,
    );
    if (wrong.length > 0)
      throw new LtError(
        'LT_INTERNAL',
        `after the replay ${wrong.length} partition(s) of ${plan.groupId} are not where the plan put them`,
        {
          details: {
            partitions: wrong.map((move) => ({
              topic: move.topic,
              partition: move.partition,
              planned: move.to,
              committed: after.get(move.topic)?.get(move.partition) ?? null,
            })),
          },
          hint: 'run the same replay again with --dry-run to see where the group is now',
        },
      );
  });
}
