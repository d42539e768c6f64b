export {
  SinkTable,
  fieldColumn,
  recordValues,
  type Column,
  type SinkRow,
  type SinkTableColumn,
} from './table.ts';
export { HistoryTable, type HistoryEntry } from './history.ts';
export {
  stateAsOf,
  datasetAsOf,
  historyOf,
  type DatasetAsOfOptions,
  type Queryable,
  type RecordAsOf,
} from './as-of.ts';
