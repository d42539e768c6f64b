import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { authenticatedPrincipal, REALM, type PasswordCheck } from '../../infra/http/principal-auth.ts';

/** Where the console's data comes from: the same gathering as `lienthong status` and `lienthong dlq`. */
export interface ConsoleSources {
  /** The platform at a glance (agencies, datasets, agreements, lag per group, dead-letter counts, operations). */
  overview(): Promise<unknown>;
  /** Open dead letters of one topic, newest first, at most `limit`. */
  deadLetters(topic: string, limit: number): Promise<unknown[]>;
  /** One dead letter, decoded where it can be, with its reason; null when there is none at that position. */
  deadLetter(topic: string, partition: number, offset: string): Promise<unknown>;
}

export interface ConsoleAccess {
  check: PasswordCheck;
  /** The principals that may open the console: operators. */
  operators: ReadonlySet<string>;
}

const ASSETS = join(import.meta.dirname, 'assets');
/** The page, its script and its style: read once, served as they are; nothing else is served from disk. */
const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};

/** Only this origin's own script, style and API; no inline code, no framing, no forms. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const DeadLetterTopic = z
  .string()
  .regex(/^lt\.dlq\.[a-z0-9.-]{1,200}$/, 'a dead-letter topic is lt.dlq.<stage>[.<agency>]');
const ListQuery = z.object({
  topic: DeadLetterTopic,
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const RecordParams = z.object({
  topic: DeadLetterTopic,
  partition: z.coerce.number().int().min(0).max(100_000),
  offset: z.string().regex(/^\d{1,19}$/, 'an offset is a whole number'),
});

function refuse(reply: FastifyReply, status: number, error: string, message: string): FastifyReply {
  return reply.status(status).send({ error, message });
}

/**
 * The ops console: one page (`assets/`) and the JSON it polls — `/api/overview`, `/api/dead-letters?topic=`,
 * `/api/dead-letters/{topic}/{partition}/{offset}`. Every request, the page included, authenticates with HTTP Basic
 * as a principal (the browser asks for it) and only operators are let in; answers are never cached.
 */
export function registerConsoleRoutes(
  app: FastifyInstance,
  sources: ConsoleSources,
  access: ConsoleAccess,
): void {
  const pages = new Map(
    Object.entries(FILES).map(([path, { file, type }]) => [
      path,
      { body: readFileSync(join(ASSETS, file)), type },
    ]),
  );
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cache-control', 'no-store');
    let principal: string;
    try {
      principal = authenticatedPrincipal(request, access.check);
    } catch (error) {
      return refuse(
        reply.header('www-authenticate', REALM),
        401,
        'LT_UNAUTHORIZED',
        (error as Error).message,
      );
    }
    if (!access.operators.has(principal))
      return refuse(
        reply,
        403,
        'LT_FORBIDDEN',
        `${principal} may not open the ops console: it is for operators (${[...access.operators].join(', ')})`,
      );
    return undefined;
  });

  for (const [path, page] of pages)
    app.get(path, async (_request, reply) => reply.type(page.type).send(page.body));

  app.get('/api/overview', async () => sources.overview());
  app.get('/api/dead-letters', async (request, reply) => {
    const query = ListQuery.safeParse(request.query);
    if (!query.success) return refuse(reply, 400, 'LT_MALFORMED_INPUT', z.prettifyError(query.error));
    return {
      topic: query.data.topic,
      records: await sources.deadLetters(query.data.topic, query.data.limit),
    };
  });
  app.get('/api/dead-letters/:topic/:partition/:offset', async (request, reply) => {
    const params = RecordParams.safeParse(request.params);
    if (!params.success) return refuse(reply, 400, 'LT_MALFORMED_INPUT', z.prettifyError(params.error));
    const record = await sources.deadLetter(params.data.topic, params.data.partition, params.data.offset);
    if (record === null)
      return refuse(
        reply,
        404,
        'LT_DEAD_LETTER_UNKNOWN',
        `no dead letter at ${params.data.topic}:${params.data.partition}:${params.data.offset}`,
      );
    return record;
  });
}
