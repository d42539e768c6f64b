export { registerQueryRoutes, QUERY_HTTP_STATUS, type QueryApiDeps } from './routes.ts';
export {
  QUERY_API_DEFAULTS,
  QueryApiOptionsSchema,
  queryApiSettings,
  type QueryApiOptions,
  type QueryApiSettings,
} from './options.ts';
export { canonicalRequest, responseHash, RESPONSE_HASH_HEADER, type HashedRequest } from './response-hash.ts';
export { issueCursor, readCursor, type CursorScope } from './cursor.ts';
export {
  DatasetParam,
  ErrorResponse,
  GetQuery,
  GetResponse,
  KeyParam,
  QueryRecord,
  SearchBody,
  SearchQuery,
  SearchResponse,
} from './schemas.ts';
