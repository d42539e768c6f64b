export { Sink, type SinkStats } from './sink.ts';
export { SINK_DEFAULTS, sinkSettings, type SinkOptions, type SinkSettings } from './options.ts';
export { Deduplicator, DEDUP_DEFAULTS, type DeduplicatorOptions } from './dedup.ts';
export {
  prepareSinkTable,
  purgeSinkTable,
  planEvolution,
  canonicalType,
  type EvolutionPlan,
  type PreparedTable,
  type SchemaConflict,
  type StoredColumn,
} from './evolution.ts';
