import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LtError, type ErrorCode } from '../../infra/errors.ts';
import { authenticatedPrincipal, REALM, type PasswordCheck } from '../../infra/http/principal-auth.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import { checkAgreementStep, type AgreementStep } from '../access/agreement-roles.ts';
import { AgreementStatuses, EndPolicies } from './model.ts';
import {
  AgreementInputSchema,
  type AgreementChanges,
  type AgreementInput,
  type AgreementStore,
} from './store.ts';

/** HTTP status per error code; anything else is a 500 answered as LT_INTERNAL. */
const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  LT_MALFORMED_INPUT: 400,
  LT_UNAUTHORIZED: 401,
  LT_FORBIDDEN: 403,
  LT_AGREEMENT_UNKNOWN: 404,
  LT_AGREEMENT_EXISTS: 409,
  LT_AGREEMENT_TRANSITION: 409,
  LT_AGREEMENT_INVALID: 422,
  LT_DATASET_UNKNOWN: 422,
  LT_POSTGRES_UNREACHABLE: 503,
};

/** The query string of `GET /v1/agreements`. */
export const AgreementListQuery = z
  .object({
    status: z.enum(AgreementStatuses).optional(),
    dataset: z.string().min(1).optional(),
    subscriber: z.string().min(1).optional(),
  })
  .strict();

/** Body of refuse, suspend and revoke; the store says when a reason is missing. */
export const AgreementReasonBody = z
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

function reasonBody(request: FastifyRequest): { reason?: string | undefined; onEnd?: 'purge' | 'retain' } {
  const parsed = AgreementReasonBody.safeParse(request.body ?? undefined);
  if (!parsed.success) throw malformed('the request body is invalid', parsed.error);
  return parsed.data ?? {};
}

function sendError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  if (error instanceof LtError) {
    const status = HTTP_STATUS[error.code] ?? 500;
    if (status >= 500) request.log.error({ err: error }, 'agreement request failed');
    if (status === 401) void reply.header('www-authenticate', REALM);
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
 * Dates are ISO 8601 strings. Every request authenticates with HTTP Basic as a principal — the name and
 * password it has on the broker (docs/security.md) — and every decision is audited under that name. Who may
 * decide what: the subscribing agency requests; only the dataset's owner agency approves or refuses, never its
 * own request; `lt-operator` suspends and resumes; the owner or `lt-operator` revokes and changes
 * (platform/access/agreement-roles.ts).
 *
 * Errors are `{ error: <LT code>, message, details?, hint? }`: 400 LT_MALFORMED_INPUT (not JSON, wrong
 * shape of a query or body — a body that breaks AgreementInputSchema, `details.problems` naming each field —
 * checked before who may take the step), 401 LT_UNAUTHORIZED (no or wrong credentials, with WWW-Authenticate), 403
 * LT_FORBIDDEN (the principal may not take that step), 404 LT_AGREEMENT_UNKNOWN, 409
 * LT_AGREEMENT_EXISTS or LT_AGREEMENT_TRANSITION (the step is not allowed from the current status; the
 * message names the status and the allowed steps), 422 LT_AGREEMENT_INVALID (a rule failed;
 * `details.problems` lists `{ field, message, position? }`, position being the 0-based offset into the
 * filter text), 500 LT_INTERNAL.
 */
export function registerAgreementRoutes(
  app: FastifyInstance,
  store: AgreementStore,
  access: { check: PasswordCheck; dictionary: Dictionary },
): void {
  const errorHandler = sendError;
  const principalOf = (request: FastifyRequest): string => authenticatedPrincipal(request, access.check);
  /** The authenticated principal, once it is allowed to take `step` on agreement `id`. */
  const decider = async (request: FastifyRequest<IdRoute>, step: AgreementStep): Promise<string> => {
    const principal = principalOf(request);
    checkAgreementStep(principal, step, await store.get(request.params.id), access.dictionary);
    return principal;
  };

  // reads too need a principal: no anonymous access to who shares what with whom
  app.get('/v1/agreements', { errorHandler }, async (request) => {
    principalOf(request);
    const query = AgreementListQuery.safeParse(request.query ?? {});
    if (!query.success) throw malformed('the query is invalid', query.error);
    return { agreements: await store.list(query.data) };
  });

  app.get<IdRoute>('/v1/agreements/:id', { errorHandler }, async (request) => {
    principalOf(request);
    const agreement = await store.get(request.params.id);
    // why it receives nothing now, when the coordinator cannot derive its stream (null: nothing known)
    return { ...agreement, degraded: (await store.degradations()).get(agreement.id) ?? null };
  });

  app.get<IdRoute>('/v1/agreements/:id/events', { errorHandler }, async (request) => {
    principalOf(request);
    return { events: await store.events(request.params.id) };
  });

  app.post('/v1/agreements', { errorHandler }, async (request, reply) => {
    const actor = principalOf(request);
    if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
      throw new LtError('LT_MALFORMED_INPUT', 'the body is a JSON object describing the agreement');
    }
    // the body's shape first: the role check below reads its subscriber and dataset
    const parsed = AgreementInputSchema.safeParse(request.body);
    if (!parsed.success) throw malformed('the agreement is malformed', parsed.error);
    const { subscriber, dataset } = parsed.data;
    checkAgreementStep(actor, 'request', { subscriber, dataset }, access.dictionary);
    const agreement = await store.create(request.body as AgreementInput, actor);
    return reply.status(201).header('location', `/v1/agreements/${agreement.id}`).send(agreement);
  });

  app.post<IdRoute>('/v1/agreements/:id/approve', { errorHandler }, async (request) =>
    store.approve(request.params.id, await decider(request, 'approve')),
  );

  app.post<IdRoute>('/v1/agreements/:id/refuse', { errorHandler }, async (request) => {
    const actor = await decider(request, 'refuse');
    return store.refuse(request.params.id, reasonBody(request).reason ?? '', actor);
  });

  app.post<IdRoute>('/v1/agreements/:id/suspend', { errorHandler }, async (request) => {
    const actor = await decider(request, 'suspend');
    return store.suspend(request.params.id, reasonBody(request).reason ?? '', actor);
  });

  app.post<IdRoute>('/v1/agreements/:id/resume', { errorHandler }, async (request) =>
    store.resume(request.params.id, await decider(request, 'resume')),
  );

  app.post<IdRoute>('/v1/agreements/:id/revoke', { errorHandler }, async (request) => {
    const actor = await decider(request, 'revoke');
    const body = reasonBody(request);
    return store.revoke(request.params.id, body.reason ?? '', actor, body.onEnd);
  });

  app.patch<IdRoute>('/v1/agreements/:id', { errorHandler }, async (request) => {
    const actor = await decider(request, 'update');
    if (typeof request.body !== 'object' || request.body === null || Array.isArray(request.body)) {
      throw new LtError('LT_MALFORMED_INPUT', 'the body is a JSON object with fields, filter or validTo');
    }
    return store.update(request.params.id, request.body as AgreementChanges, actor);
  });
}
