import { Server as HttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../logging/logger.ts';

/** Media types that carry JSON besides application/json (the Confluent registry's own, among others). */
const JSON_MEDIA_TYPES = [
  'application/vnd.schemaregistry.v1+json',
  'application/vnd.schemaregistry+json',
  'application/octet-stream',
];

/** How a server built by {@link createHttpServer} behaves. */
export interface HttpServerOptions {
  /**
   * Whether fastify logs every request and its completion at info level (two lines a request). A service that
   * records every call itself (the query API's audit) turns it off; failures are logged either way. @default true
   */
  requestLogging?: boolean;
}

/**
 * A fastify instance logging through our pino logger and parsing every JSON media type we speak; over TLS when
 * given a key and certificate (PEM), e.g. one the platform CA signed (infra/security/pki.ts).
 */
export function createHttpServer(
  log: Logger,
  tls?: { key: string; cert: string },
  { requestLogging = true }: HttpServerOptions = {},
): FastifyInstance {
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: !requestLogging }),
    bodyLimit: 8 * 1024 * 1024,
    ...(tls ? { https: tls } : {}),
  }) as unknown as FastifyInstance;
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
  const scheme = app.server instanceof HttpsServer ? 'https' : 'http';
  return `${scheme}://${host}:${bound}`;
}
