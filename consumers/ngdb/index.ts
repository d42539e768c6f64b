export { NgdbSink, NGDB_SINK_DEFAULTS, type NgdbSinkOptions, type NgdbSinkStats } from './ngdb-sink.ts';
export { HistoryTable, type HistoryEntry } from './history.ts';
export {
  stateAsOf,
  datasetAsOf,
  latestChangesAsOf,
  historyOf,
  type DatasetAsOfOptions,
  type Queryable,
  type RecordAsOf,
} from './as-of.ts';
