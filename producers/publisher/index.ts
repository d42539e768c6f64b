export { Publisher, type BatchOptions, type BatchResult, type RecordOutcome } from './publisher.ts';
export { parseChange, ChangeSchema, type Change } from './change.ts';
export { VersionLedger } from './version-ledger.ts';
export { PUBLISHER_DEFAULTS, type PublisherOptions } from './options.ts';
