import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import {
  authenticatedPrincipal,
  cachedCheck,
  credentialsUnder,
  REALM,
} from '../../infra/http/principal-auth.ts';
import { createHttpServer } from '../../infra/http/server.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { platformServerTls } from '../../infra/security/pki.ts';
import { registryAccess, type RegistryAccess } from './access.ts';
import { RegistryError } from './errors.ts';
import { parseCompatibilityLevel, parseVersion, type RegistryStore } from './store.ts';

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

const SchemaBody = z.object({
  schema: z.string({ error: 'field "schema" (a string holding the schema JSON) is required' }),
  schemaType: z.enum(['AVRO']).optional(),
  references: z.array(z.unknown()).max(0, 'schema references are not supported yet').optional(),
});
const ConfigBody = z.object({ compatibility: z.string({ error: 'field "compatibility" is required' }) });

type Params = { subject: string; version: string; id: string };
type Query = { permanent?: string; deleted?: string; defaultToGlobal?: string; verbose?: string };

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    const message = parsed.error.issues
      .map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`)
      .join('; ');
    throw new RegistryError('INVALID_SCHEMA', `Invalid request: ${message}`);
  }
  return parsed.data;
}

function schemaId(value: string): number {
  const id = Number(value);
  if (!Number.isInteger(id) || id < 1)
    throw new RegistryError('SCHEMA_NOT_FOUND', `Schema ${value} not found`);
  return id;
}

const flag = (value: string | undefined): boolean => value === 'true';

/**
 * Authenticates every registry request (HTTP Basic as a principal, as Confluent clients and curl send it) and
 * authorizes writes ({@link RegistryAccess}); answers 401 (error_code 40101, with WWW-Authenticate) and 403 (40301)
 * the Confluent way. The catalog on the same server (`/v1/…`) is read by any authenticated principal.
 */
function guard(app: FastifyInstance, access: RegistryAccess): void {
  app.addHook('preHandler', async (request, reply) => {
    const catalog = request.url.startsWith('/v1/');
    let principal: string;
    try {
      principal = authenticatedPrincipal(request, access.check);
    } catch (error) {
      const message = (error as Error).message;
      return reply
        .status(401)
        .header('www-authenticate', REALM)
        .send(catalog ? { error: 'LT_UNAUTHORIZED', message } : { error_code: 40101, message });
    }
    if (catalog) return undefined; // the catalog is readable by every authenticated principal
    const route = request.routeOptions.url ?? '';
    const subject = (request.params as { subject?: string }).subject ?? '';
    const writes =
      (request.method === 'POST' && route === '/subjects/:subject/versions') ||
      ((request.method === 'PUT' || request.method === 'DELETE') && route === '/config/:subject');
    const administers =
      request.method === 'DELETE'
        ? route !== '/config/:subject'
        : request.method === 'PUT' && route === '/config';
    const refused = writes
      ? !access.mayWrite(principal, subject)
      : administers && !access.mayAdminister(principal);
    if (refused)
      return reply.status(403).send({
        error_code: 40301,
        message:
          `${principal} may not ${request.method} ${route}${subject ? ` for subject ${subject}` : ''}: ` +
          'only the dictionary publisher (lt-registry), the owner agency of a source topic and the coordinator for ' +
          'share topics register, and only the dictionary publisher deletes',
      });
    return undefined;
  });
}

export interface RegistryServerOptions {
  /** Who may do what; unset: anyone may do anything (LIENTHONG_INSECURE=1 only). */
  access?: RegistryAccess | undefined;
  /** Key and certificate (PEM) to serve TLS with; unset: plaintext. */
  tls?: { key: string; cert: string } | undefined;
}

/**
 * The registry served the secure way: TLS with a certificate the platform CA signs for `host`, every request
 * authenticated as a principal against the credentials under `home`, writes by {@link registryAccess}'s rules.
 */
export function secureRegistryOptions(home: string, host: string): RegistryServerOptions {
  return {
    access: registryAccess(cachedCheck(credentialsUnder(home))),
    tls: platformServerTls(home, 'lt-registry', host),
  };
}

/**
 * The Confluent Schema Registry REST API over a {@link RegistryStore}. Responses use the registry's media
 * type; errors are `{ error_code, message }` with Confluent's codes, so any Confluent client works as is.
 */
export function createRegistryServer(
  store: RegistryStore,
  log: Logger,
  options: RegistryServerOptions = {},
): FastifyInstance {
  const app = createHttpServer(log.child({ component: 'registry' }), options.tls);
  if (options.access) guard(app, options.access);

  // Registry routes answer in the registry's media type; other APIs mounted on this server (/v1/…) keep JSON.
  app.addHook('onSend', async (request, reply: FastifyReply, payload) => {
    if (
      !request.url.startsWith('/v1/') &&
      String(reply.getHeader('content-type') ?? '').startsWith('application/json')
    )
      reply.header('content-type', CONTENT_TYPE);
    return payload;
  });
  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof RegistryError) {
      return reply.status(error.status).send({ error_code: error.errorCode, message: error.message });
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status < 500) {
      return reply.status(status).send({ error_code: status, message: (error as Error).message });
    }
    log.error({ err: error }, 'registry store error');
    return reply
      .status(500)
      .send({ error_code: 50001, message: `Error in the backend data store: ${(error as Error).message}` });
  });

  app.get('/', async () => ({}));
  app.get('/schemas/types', async () => ['AVRO']);

  app.get<{ Params: Params }>('/schemas/ids/:id', async (request) => {
    const { schema, schemaType } = await store.schemaById(schemaId(request.params.id));
    return schemaType === 'AVRO' ? { schema } : { schema, schemaType };
  });
  app.get<{ Params: Params; Querystring: Query }>('/schemas/ids/:id/versions', async (request) =>
    store.versionsOfSchema(schemaId(request.params.id), flag(request.query.deleted)),
  );

  app.get<{ Querystring: Query }>('/subjects', async (request) =>
    store.subjects(flag(request.query.deleted)),
  );
  app.get<{ Params: Params; Querystring: Query }>('/subjects/:subject/versions', async (request) =>
    store.versions(request.params.subject, flag(request.query.deleted)),
  );
  app.get<{ Params: Params; Querystring: Query }>('/subjects/:subject/versions/:version', async (request) =>
    store.version(request.params.subject, parseVersion(request.params.version), flag(request.query.deleted)),
  );
  app.get<{ Params: Params }>('/subjects/:subject/versions/:version/schema', async (request, reply) => {
    const { schema } = await store.version(request.params.subject, parseVersion(request.params.version));
    return reply.type(CONTENT_TYPE).send(schema);
  });
  app.post<{ Params: Params }>('/subjects/:subject/versions', async (request) => {
    const body = parseBody(SchemaBody, request.body);
    return { id: (await store.register(request.params.subject, body.schema)).id };
  });
  app.post<{ Params: Params; Querystring: Query }>('/subjects/:subject', async (request) => {
    const body = parseBody(SchemaBody, request.body);
    return store.lookup(request.params.subject, body.schema, flag(request.query.deleted));
  });
  app.delete<{ Params: Params; Querystring: Query }>('/subjects/:subject', async (request) =>
    store.deleteSubject(request.params.subject, flag(request.query.permanent)),
  );
  app.delete<{ Params: Params; Querystring: Query }>(
    '/subjects/:subject/versions/:version',
    async (request) =>
      store.deleteVersion(
        request.params.subject,
        parseVersion(request.params.version),
        flag(request.query.permanent),
      ),
  );

  app.post<{ Params: Params; Querystring: Query }>(
    '/compatibility/subjects/:subject/versions/:version',
    async (request) => {
      const version = parseVersion(request.params.version);
      const body = parseBody(SchemaBody, request.body);
      const verbose = flag(request.query.verbose);
      let messages: string[];
      try {
        messages = await store.testCompatibility(request.params.subject, version, body.schema);
      } catch (error) {
        // Confluent answers an invalid schema with is_compatible false when verbose, a 42201 otherwise
        if (!(verbose && error instanceof RegistryError && error.kind === 'INVALID_SCHEMA')) throw error;
        messages = [error.message];
      }
      const result: { is_compatible: boolean; messages?: string[] } = {
        is_compatible: messages.length === 0,
      };
      if (verbose) result.messages = messages;
      return result;
    },
  );

  app.get('/config', async () => ({ compatibilityLevel: await store.getConfig(null) }));
  app.put('/config', async (request) => {
    const level = parseCompatibilityLevel(parseBody(ConfigBody, request.body).compatibility);
    await store.setConfig(null, level);
    return { compatibility: level };
  });
  app.get<{ Params: Params; Querystring: Query }>('/config/:subject', async (request) => ({
    compatibilityLevel: await store.getConfig(request.params.subject, flag(request.query.defaultToGlobal)),
  }));
  app.put<{ Params: Params }>('/config/:subject', async (request) => {
    const level = parseCompatibilityLevel(parseBody(ConfigBody, request.body).compatibility);
    await store.setConfig(request.params.subject, level);
    return { compatibility: level };
  });
  app.delete<{ Params: Params }>('/config/:subject', async (request) => ({
    compatibilityLevel: await store.deleteConfig(request.params.subject),
  }));

  return app;
}
