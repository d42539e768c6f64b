import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../logging/logger.ts';

/** Media types that carry JSON besides application/json (the Confluent registry's own, among others). */
const JSON_MEDIA_TYPES = [
  'application/vnd.schemaregistry.v1+json',
  'application/vnd.schemaregistry+json',
  'application/octet-stream',
];

/** A fastify instance logging through our pino logger and parsing every JSON media type we speak. */
export function createHttpServer(log: Logger): FastifyInstance {
  const app = Fastify({ loggerInstance: log as FastifyBaseLogger, bodyLimit: 8 * 1024 * 1024 });
  app.addContentTypeParser(
    JSON_MEDIA_TYPES,
    { parseAs: 'string' },
    app.getDefaultJsonParser('error', 'ignore'),
  );
  return app;
}

/** Listens on host:port (0 = any free port) and returns the base URL. */
export async function listen(app: FastifyInstance, port = 0, host = '127.0.0.1'): Promise<string> {
  await app.listen({ port, host });
  const address = app.server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return `http://${host}:${bound}`;
}
