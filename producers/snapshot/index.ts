export { runSnapshot } from './snapshot.ts';
export {
  SNAPSHOT_DEFAULTS,
  type SnapshotOptions,
  type SnapshotOutcome,
  type SnapshotProgress,
  type SnapshotRefusal,
  type SnapshotResult,
  type SnapshotSource,
} from './options.ts';
