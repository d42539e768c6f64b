import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LtError, type ErrorCode } from '../../infra/errors.ts';
import { AgreementStatuses, EndPolicies } from './model.ts';
import type { AgreementChanges, AgreementInput, AgreementStore } from './store.ts';

/** The header naming who makes a change; written into every audit row. */
export const ACTOR_HEADER = 'x-lienthong-actor';

/** HTTP status per error code; anything else is a 500 answered as LT_INTERNAL. */
const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  LT_MALFORMED_INPUT: 400,
  LT_UNAUTHORIZED: 401,
  LT_AGREEMENT_UNKNOWN: 404,
  LT_AGREEMENT_EXISTS: 409,
  LT_AGREEMENT_TRANSITION: 409,
  LT_AGREEMENT_INVALID: 422,
  LT_DATASET_UNKNOWN: 422,
  LT_POSTGRES_UNREACHABLE: 503,
};

const ListQuery = z
  .object({
    status: z.enum(AgreementStatuses).optional(),
    dataset: z.string().min(1).optional(),
    subscriber: z.string().min(1).optional(),
  })
  .strict();

/** Body of refuse, suspend and revoke; the store says when a reason is missing. */
const ReasonBody = z
  .object({ reason: z.string().optional(), onEnd: z.enum(EndPolicies).optional() })
  .strict()
  .optional();

interface IdRoute {
  Params: { id: string };
}

function malformed(what: string, error: z.ZodError): LtError {
  const problems = error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.join('.') : 'body',
    message: issue.message,
  }));
  return new LtError(
    'LT_MALFORMED_INPUT',
    `${what}: ${problems.map((problem) => `${problem.field}: ${problem.message}`).join('; ')}`,
    { details: { problems } },
  );
}

/** The actor a write request names in X-Lienthong-Actor; 401 LT_UNAUTHORIZED without one. */
function actorOf(request: FastifyRequest): string {
  const value = request.headers[ACTOR_HEADER];
  const actor = typeof value === 'string' ? value.trim() : '';
  if (actor === '') {
    throw new LtError('LT_UNAUTHORIZED', 'a write names its actor in the X-Lienthong-Actor header', {
      hint: 'send e.g. "X-Lienthong-Actor: TTDLQG:nguyen.van.a"; it is written into the audit trail',
    });
  }
  return actor;
}

function reasonBody(request: FastifyRequest): { reason?: string | undefined; onEnd?: 'purge' | 'retain' } {
  const parsed = ReasonBody.safeParse(request.body ?? undefined);
  if (!parsed.success) throw malformed('the request body is invalid', parsed.error);
  return parsed.data ?? {};
}

function sendError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  if (error instanceof LtError) {
    const status = HTTP_STATUS[error.code] ?? 500;
    if (status >= 500) request.log.error({ err: error }, 'agreement request failed');
    void reply.status(status).send({
      error: error.code,
      message: error.message,
      ...(Object.keys(error.details).length > 0 ? { details: error.details } : {}),
      ...(error.hint ? { hint: error.hint } : {}),
    });
    return;
  }
  const statusCode = (error as FastifyError).statusCode;
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    // fastify's own refusals: a body that is not JSON, an unsupported media type, a body too large
    void reply.status(statusCode).send({ error: 'LT_MALFORMED_INPUT', message: error.message });
    return;
  }
  request.log.error({ err: error }, 'agreement request failed');
  void reply
    .status(500)
    .send({ error: 'LT_INTERNAL', message: 'an unexpected failure; see the platform log' });
}

/**
 * The sharing-agreement admin API (JSON over HTTP):
 *
 *   GET   /v1/agreements[?status=&dataset=&subscriber=]   `{ agreements: Agreement[] }`, by id
 *   GET   /v1/agreements/{id}                              the agreement
 *   GET   /v1/agreements/{id}/events                       `{ events: AgreementEvent[] }`, oldest first
 *   POST  /v1/agreements                                   body AgreementInput → 201, Location, the agreement (status requested)
 *   POST  /v1/agreements/{id}/approve                      no body → the agreement
 *   POST  /v1/agreements/{id}/refuse                       `{ reason }` (required; cite the legal basis)
 *   POST  /v1/agreements/{id}/suspend                      `{ reason }` (required)
 *   POST  /v1/agreements/{id}/resume                       no body
 *   POST  /v1/agreements/{id}/revoke                       `{ reason, onEnd? }` (reason required; onEnd purge|retain)
 *   PATCH /v1/agreements/{id}                              `{ fields?, filter?, validTo? }` → the agreement
 *
 * Dates are ISO 8601 strings. Every write needs the header `X-Lienthong-Actor` (who, for the audit
 * trail); without it the answer is 401. **The header is not authentication**: anyone who reaches this
 * API can claim any actor until real authentication and authorization arrive with the security issue, so
 * serve it only on an operator network.
 *
 * Errors are `{ error: <LT code>, message, details?, hint? }`: 400 LT_MALFORMED_INPUT (not JSON, wrong
 * shape of a query or body), 401 LT_UNAUTHORIZED (no actor), 404 LT_AGREEMENT_UNKNOWN, 409
 * LT_AGREEMENT_EXISTS or LT_AGREEMENT_TRANSITION (the step is not allowed from the current status; the
 * message names the status and the allowed steps), 422 LT_AGREEMENT_INVALID (a rule failed;
 * `details.problems` lists `{ field, message, position? }`, position being the 0-based offset into the
 * filter text), 500 LT_INTERNAL.
 */
export function registerAgreementRoutes(app: FastifyInstance, store: AgreementStore): void {
  const errorHandler = sendError;

  app.get('/v1/agreements', { errorHandler }, async (request) => {
    const query = ListQuery.safeParse(request.query ?? {});
    if (!query.success) throw malformed('the query is invalid', query.error);
    return { agreements: await store.list(query.data) };
  });

  app.get<IdRoute>('/v1/agreements/:id', { errorHandler }, async (request) => {
    const agreement = await store.get(request.params.id);
    // why it receives nothing now, when the coordinator cannot derive its stream (null: nothing known)
    return { ...agreement, degraded: (await store.degradations()).get(agreement.id) ?? null };
  });

  app.get<IdRoute>('/v1/agreements/:id/events', { errorHandler }, async (request) => ({
    events: await store.events(request.params.id),
  }));

  app.post('/v1/agreements', { errorHandler }, async (request, reply) => {
    const actor = actorOf(request);
    if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
      throw new LtError('LT_MALFORMED_INPUT', 'the body is a JSON object describing the agreement');
    }
    const agreement = await store.create(request.body as AgreementInput, actor);
    return reply.status(201).header('location', `/v1/agreements/${agreement.id}`).send(agreement);
  });

  app.post<IdRoute>('/v1/agreements/:id/approve', { errorHandler }, async (request) =>
    store.approve(request.params.id, actorOf(request)),
  );

  app.post<IdRoute>('/v1/agreements/:id/refuse', { errorHandler }, async (request) => {
    const actor = actorOf(request);
    return store.refuse(request.params.id, reasonBody(request).reason ?? '', actor);
  });

  app.post<IdRoute>('/v1/agreements/:id/suspend', { errorHandler }, async (request) => {
    const actor = actorOf(request);
    return store.suspend(request.params.id, reasonBody(request).reason ?? '', actor);
  });

  app.post<IdRoute>('/v1/agreements/:id/resume', { errorHandler }, async (request) =>
    store.resume(request.params.id, actorOf(request)),
  );

  app.post<IdRoute>('/v1/agreements/:id/revoke', { errorHandler }, async (request) => {
    const actor = actorOf(request);
    const body = reasonBody(request);
    return store.revoke(request.params.id, body.reason ?? '', actor, body.onEnd);
  });

  app.patch<IdRoute>('/v1/agreements/:id', { errorHandler }, async (request) => {
    const actor = actorOf(request);
    if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
      throw new LtError('LT_MALFORMED_INPUT', 'the body is a JSON object with fields, filter or validTo');
    }
    return store.update(request.params.id, request.body as AgreementChanges, actor);
  });
}
