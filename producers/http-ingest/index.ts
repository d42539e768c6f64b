export {
  IngestQuerySchema,
  createIngestServer,
  INGEST_MEDIA_TYPES,
  type IngestErrorBody,
  type IngestMediaType,
  type IngestResponse,
  type IngestResult,
} from './server.ts';
export { INGEST_DEFAULTS, type IngestServerOptions, type IngestToken } from './options.ts';
