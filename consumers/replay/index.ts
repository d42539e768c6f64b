export { planMoves, type PartitionMove, type PartitionPosition, type ReplayTarget } from './plan.ts';
export { parseDateTime, parseDuration, parseOffsetTarget, replayTarget } from './target.ts';
export {
  executeReplay,
  planReplay,
  type GroupMember,
  type ReplayPlan,
  type ReplayRequest,
} from './replay.ts';
