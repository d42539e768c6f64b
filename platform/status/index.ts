export { gatherStatus, type StatusSources } from './status.ts';
export { partitionLag, unfinishedActions, type PartitionPositions } from './derive.ts';
export type {
  AgencyStatus,
  AgreementState,
  DatasetStatus,
  DeadLetterStatus,
  GroupPartitionLag,
  GroupStatus,
  OperationsStatus,
  OperatorActionStatus,
  PlatformStatus,
  ServiceStatus,
} from './model.ts';
