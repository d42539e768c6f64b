import type { Notification } from 'pg';
import { z } from 'zod';
import { LtError } from '../../infra/errors.ts';
import { inTransaction, type Pool, type PoolClient } from '../../infra/postgres/pool.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import {
  checkFilter,
  formatFilter,
  parseFilter,
  type FilterAst,
  type FilterProblem,
  unsharedFilterFields,
} from './filter.ts';
import {
  allowedActions,
  EndPolicies,
  isFinal,
  nextStatus,
  SharingMethods,
  type Agreement,
  type AgreementAction,
  type AgreementStatus,
  type Degradation,
  type EndPolicy,
  type SharingMethod,
} from './model.ts';

/** The PostgreSQL NOTIFY channel: every insert or update of an agreement sends its id, at commit. */
export const AGREEMENT_CHANNEL = 'lt_agreement';

/** Who wrote the audit rows of changes the platform makes by itself (expiry). */
export const SYSTEM_ACTOR = 'lienthong:platform';

const ID_PATTERN = /^[a-z0-9][a-z0-9-]{1,60}$/;
/** Vietnam keeps one time zone and no daylight saving: a calendar date starts at 00:00 UTC+7. */
const VIETNAM_OFFSET = '+07:00';

/**
 * A point in time: a Date, an ISO 8601 timestamp with a time zone (`2026-01-01T00:00:00+07:00`), or a
 * calendar date `YYYY-MM-DD`, read as 00:00 in Vietnam.
 */
const DateInput = z
  .union([z.date(), z.iso.datetime({ offset: true }), z.iso.date()])
  .transform((value) =>
    value instanceof Date
      ? value
      : new Date(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00${VIETNAM_OFFSET}` : value),
  )
  .refine((value) => !Number.isNaN(value.getTime()), 'not a real point in time');

/** The decree methods, without repeats, in the order of SharingMethods. */
const MethodList = z
  .array(z.enum(SharingMethods))
  .min(1, `allow at least one method (${SharingMethods.join(', ')})`)
  .transform((methods) => SharingMethods.filter((method) => methods.includes(method)));

const FieldList = z
  .array(z.string().trim().min(1, 'a field name is never empty'))
  .min(1, 'share at least one field (the key field is added by itself)');

/** A request for a new agreement, as the API and the CLI receive it. */
export const AgreementInputSchema = z
  .object({
    /** Names the share topic `lt.share.<id>`; e.g. `ubnd-hn-citizen`. */
    id: z
      .string()
      .regex(
        ID_PATTERN,
        'an agreement id is 2–61 characters of a–z, 0–9 and "-", starting with a letter or digit, e.g. "ubnd-hn-citizen"',
      ),
    /** The receiving agency's code, e.g. `UBND-HN`. */
    subscriber: z
      .string()
      .trim()
      .min(1, 'name the subscribing agency, e.g. "UBND-HN"')
      .regex(/^[A-Z][A-Z0-9-]*$/, 'an agency code such as "UBND-HN"'),
    /** A dataset of the Shared Data Dictionary, e.g. `population.citizen`. */
    dataset: z.string().trim().min(1, 'name a dataset, e.g. "population.citizen"'),
    /** Top-level field names; the dataset's key field is added when missing. */
    fields: FieldList,
    /** Row filter text (grammar in filter.ts); `true`, the default, shares every row. */
    filter: z.string().default('true'),
    purpose: z
      .string()
      .trim()
      .min(
        1,
        'every agreement states its purpose (Personal Data Protection Law 91/2025: consent is per purpose)',
      ),
    legalBasis: z
      .string()
      .trim()
      .min(1, 'every agreement cites its legal basis, e.g. "Decree 278/2025/ND-CP"'),
    /** Start of validity; default now. */
    validFrom: DateInput.optional(),
    /** Exclusive end of validity; null or absent = until revoked. */
    validTo: DateInput.nullable().optional(),
    /** What the subscriber does with its copy when the agreement ends; default `purge`. */
    onEnd: z.enum(EndPolicies).default('purge'),
    /** The decree methods allowed: `sync` (b), `query` (a), `media` (d); default `["sync"]`. */
    methods: MethodList.default(['sync']),
  })
  .strict();
export type AgreementInput = z.input<typeof AgreementInputSchema>;

/** What `update` may change. A change of fields or filter raises the revision. */
export const AgreementChangesSchema = z
  .object({
    fields: FieldList.optional(),
    filter: z.string().optional(),
    /** null = until revoked. */
    validTo: DateInput.nullable().optional(),
    /** A method added needs approval again, like a field added. */
    methods: MethodList.optional(),
  })
  .strict();
export type AgreementChanges = z.input<typeof AgreementChangesSchema>;

export interface AgreementQuery {
  status?: AgreementStatus;
  dataset?: string;
  subscriber?: string;
}

export type AgreementEventAction = 'create' | 'update' | 'resync' | AgreementAction;

/** One row of an agreement's audit trail. */
export interface AgreementEvent {
  /** Increases with every event of every agreement. */
  seq: number;
  agreementId: string;
  at: Date;
  actor: string;
  action: AgreementEventAction;
  detail: Record<string, unknown>;
}

/** One thing wrong with an agreement: the input field it concerns, what is wrong, and where in the filter. */
export interface AgreementProblem {
  field: string;
  message: string;
  /** 0-based offset into the filter text, for filter problems. */
  position?: number;
}

interface AgreementRow {
  id: string;
  subscriber: string;
  dataset: string;
  fields: string[];
  filter: FilterAst;
  filter_text: string;
  methods: SharingMethod[];
  purpose: string;
  legal_basis: string;
  valid_from: Date;
  valid_to: Date | null;
  status: AgreementStatus;
  status_reason: string | null;
  on_end: EndPolicy;
  revision: number;
  created_at: Date;
  updated_at: Date;
}

/** A LEFT JOIN row: all null when the agreement has no event (never, as create writes one). */
interface EventRow {
  seq: string | null;
  agreement_id: string;
  at: Date;
  actor: string;
  action: AgreementEventAction;
  detail: Record<string, unknown>;
}

function toAgreement(row: AgreementRow): Agreement {
  return {
    id: row.id,
    subscriber: row.subscriber,
    dataset: row.dataset,
    fields: row.fields,
    filter: row.filter,
    filterText: row.filter_text,
    methods: SharingMethods.filter((method) => row.methods.includes(method)),
    purpose: row.purpose,
    legalBasis: row.legal_basis,
    validFrom: row.valid_from,
    validTo: row.valid_to,
    status: row.status,
    statusReason: row.status_reason,
    onEnd: row.on_end,
    revision: row.revision,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function invalid(what: string, problems: AgreementProblem[]): LtError {
  return new LtError(
    'LT_AGREEMENT_INVALID',
    `${what}: ${problems.map((problem) => `${problem.field}: ${problem.message}`).join('; ')}`,
    { details: { summary: what, problems } },
  );
}

function zodProblems(error: z.ZodError): AgreementProblem[] {
  return error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.join('.') : 'body',
    message: issue.message,
  }));
}

function parseWith<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(what, zodProblems(parsed.error));
  return parsed.data;
}

const ActorSchema = z
  .string()
  .trim()
  .min(1, 'every change names who made it')
  .max(200, 'an actor is at most 200 characters');
const ReasonSchema = z.string().trim();

function filterProblems(problems: readonly FilterProblem[]): AgreementProblem[] {
  return problems.map(({ position, message }) => ({
    field: 'filter',
    position,
    message: `at ${position}: ${message}`,
  }));
}

function sameTime(a: Date | null, b: Date | null): boolean {
  return (a?.getTime() ?? null) === (b?.getTime() ?? null);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}

/** Checks subscriber and dataset: both known, and the subscriber is not the owner. */
function checkParties(
  dictionary: Dictionary,
  subscriber: string,
  datasetId: string,
  problems: AgreementProblem[],
): Dataset | undefined {
  if (!dictionary.agencies.has(subscriber)) {
    problems.push({
      field: 'subscriber',
      message: `unknown agency "${subscriber}" (known: ${[...dictionary.agencies.keys()].join(', ')})`,
    });
  }
  const dataset = dictionary.datasets.get(datasetId);
  if (!dataset) {
    problems.push({
      field: 'dataset',
      message: `unknown dataset "${datasetId}" (known: ${[...dictionary.datasets.keys()].join(', ')})`,
    });
    return undefined;
  }
  if (dataset.owner === subscriber) {
    problems.push({
      field: 'subscriber',
      message: `${subscriber} owns ${dataset.id}, its single source of truth: an owner needs no agreement for its own data`,
    });
  }
  return dataset;
}

/** The shared fields in the dataset's order, without repeats, the key field always among them. */
function resolveFields(dataset: Dataset, names: readonly string[], problems: AgreementProblem[]): string[] {
  const known = new Set(dataset.fields.map((field) => field.name));
  const unknown = [...new Set(names)].filter((name) => !known.has(name));
  for (const name of unknown) {
    problems.push({
      field: 'fields',
      message: `unknown field "${name}" in ${dataset.id} (its fields: ${[...known].join(', ')})`,
    });
  }
  const wanted = new Set([dataset.key.field, ...names]);
  return dataset.fields.map((field) => field.name).filter((name) => wanted.has(name));
}

/**
 * Parses (when given text) and type-checks a filter, and checks that it tests only fields the agreement
 * shares (`shared`; see {@link unsharedFilterFields}); problems name their position in that text.
 */
function resolveFilter(
  dictionary: Dictionary,
  dataset: Dataset,
  source: string | FilterAst,
  shared: readonly string[],
  problems: AgreementProblem[],
): { ast: FilterAst; text: string } | undefined {
  let ast: FilterAst;
  if (typeof source === 'string') {
    const parsed = parseFilter(source);
    if (!parsed.ok) {
      problems.push(...filterProblems(parsed.problems));
      return undefined;
    }
    ast = parsed.ast;
  } else ast = source;
  const typeProblems = checkFilter(ast, dataset, dictionary);
  if (typeProblems.length > 0) {
    problems.push(...filterProblems(typeProblems));
    return undefined;
  }
  const unshared = unsharedFilterFields(ast, shared);
  if (unshared.length > 0) {
    problems.push({
      field: 'filter',
      message:
        `the filter tests ${unshared.map((name) => `"${name}"`).join(', ')}, which the agreement does not share: ` +
        'a filter may test only shared fields (every row received would tell the subscriber the value of a field ' +
        'it may not see); share the field or filter on a shared one',
    });
    return undefined;
  }
  return { ast, text: formatFilter(ast) };
}

function checkValidTo(
  validFrom: Date,
  validTo: Date | null,
  now: Date,
  problems: AgreementProblem[],
  pastHint: string,
): void {
  if (validTo === null) return;
  if (validTo.getTime() <= validFrom.getTime()) {
    problems.push({
      field: 'validTo',
      message: `validTo ${validTo.toISOString()} must be after validFrom ${validFrom.toISOString()}`,
    });
  } else if (validTo.getTime() <= now.getTime()) {
    problems.push({
      field: 'validTo',
      message: `validTo ${validTo.toISOString()} has already passed: ${pastHint}`,
    });
  }
}

async function audit(
  client: PoolClient,
  agreementId: string,
  actor: string,
  action: AgreementEventAction,
  detail: Record<string, unknown>,
): Promise<void> {
  await client.query(
    'INSERT INTO agreement_event (agreement_id, actor, action, detail) VALUES ($1, $2, $3, $4)',
    [agreementId, actor, action, JSON.stringify(detail)],
  );
}

function unknownAgreement(id: string): LtError {
  return new LtError('LT_AGREEMENT_UNKNOWN', `no agreement "${id}"`, {
    details: { id },
    hint: 'list the agreements with `npm run lienthong -- agreement list` or GET /v1/agreements',
  });
}

function describeSteps(status: AgreementStatus): string {
  const steps = allowedActions(status).filter((action) => action !== 'expire');
  if (steps.length === 0) return `${status} is final: request a new agreement (a new id) instead`;
  const expires = allowedActions(status).includes('expire') ? ', and it expires when validTo passes' : '';
  return `from ${status} the next steps are ${steps.join(', ')}${expires}`;
}

export interface AgreementStoreOptions {
  /** The clock for validity checks (tests pass a fixed one); default the system clock. */
  now?: () => Date;
}

/**
 * Sharing agreements in the platform's PostgreSQL (migration set `platform`). Every write is one
 * transaction together with its audit row in `agreement_event`, and every committed insert or update
 * sends the agreement's id on the NOTIFY channel `lt_agreement` (AGREEMENT_CHANNEL).
 *
 * Inputs are checked against the Shared Data Dictionary: the subscriber and dataset exist, the subscriber
 * is not the dataset's owner, the fields exist (the key field is added), the filter parses and fits the
 * dataset (problems name their position), purpose and legal basis are written, validFrom < validTo.
 * Status changes follow `AgreementTransitions` (model.ts); any other step is an LT_AGREEMENT_TRANSITION
 * naming the current status and the steps allowed from it.
 */
export class AgreementStore {
  private readonly now: () => Date;

  private readonly pool: Pool;
  private readonly dictionary: Dictionary;

  constructor(pool: Pool, dictionary: Dictionary, options: AgreementStoreOptions = {}) {
    this.pool = pool;
    this.dictionary = dictionary;
    this.now = options.now ?? (() => new Date());
  }

  /** Records a request for a new agreement (status `requested`). LT_AGREEMENT_EXISTS when the id is taken. */
  async create(input: AgreementInput, actor: string): Promise<Agreement> {
    const who = parseWith(ActorSchema, actor, 'the change has no actor');
    const value = parseWith(AgreementInputSchema, input, 'the agreement is invalid');
    const problems: AgreementProblem[] = [];
    const dataset = checkParties(this.dictionary, value.subscriber, value.dataset, problems);
    const fields = dataset ? resolveFields(dataset, value.fields, problems) : value.fields;
    const filter = dataset
      ? resolveFilter(this.dictionary, dataset, value.filter, fields, problems)
      : undefined;
    const now = this.now();
    const validFrom = value.validFrom ?? now;
    const validTo = value.validTo ?? null;
    checkValidTo(validFrom, validTo, now, problems, 'the agreement could never be active');
    if (problems.length > 0 || !filter) throw invalid(`agreement "${value.id}" is invalid`, problems);

    return inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<AgreementRow>(
        `INSERT INTO agreement (id, subscriber, dataset, fields, filter, filter_text, purpose, legal_basis,
                                valid_from, valid_to, status, on_end, methods)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'requested', $11, $12)
         ON CONFLICT (id) DO NOTHING
         RETURNING *`,
        [
          value.id,
          value.subscriber,
          value.dataset,
          fields,
          JSON.stringify(filter.ast),
          filter.text,
          value.purpose,
          value.legalBasis,
          validFrom,
          validTo,
          value.onEnd,
          value.methods,
        ],
      );
      const row = rows[0];
      if (!row) {
        throw new LtError('LT_AGREEMENT_EXISTS', `an agreement "${value.id}" already exists`, {
          details: { id: value.id },
          hint: 'choose another id, or change the existing agreement (update, suspend, revoke)',
        });
      }
      await audit(client, row.id, who, 'create', {
        subscriber: row.subscriber,
        dataset: row.dataset,
        fields: row.fields,
        filter: row.filter_text,
        purpose: row.purpose,
        legalBasis: row.legal_basis,
        validFrom: row.valid_from.toISOString(),
        validTo: row.valid_to?.toISOString() ?? null,
        onEnd: row.on_end,
        methods: row.methods,
      });
      return toAgreement(row);
    });
  }

  /** The agreement, or undefined when there is none with this id. */
  async find(id: string): Promise<Agreement | undefined> {
    const { rows } = await this.pool.query<AgreementRow>('SELECT * FROM agreement WHERE id = $1', [id]);
    return rows[0] ? toAgreement(rows[0]) : undefined;
  }

  /** The agreement; LT_AGREEMENT_UNKNOWN when there is none with this id. */
  async get(id: string): Promise<Agreement> {
    const agreement = await this.find(id);
    if (!agreement) throw unknownAgreement(id);
    return agreement;
  }

  /** The agreements the coordinator reports degraded (table `agreement_degraded`), by id. */
  async degradations(): Promise<Map<string, Degradation>> {
    const { rows } = await this.pool.query<{
      agreement_id: string;
      revision: number;
      code: string;
      reason: string;
      since: Date;
      attempts: number;
      next_attempt_at: Date;
    }>('SELECT * FROM agreement_degraded ORDER BY agreement_id');
    return new Map(
      rows.map((row) => [
        row.agreement_id,
        {
          revision: row.revision,
          code: row.code,
          reason: row.reason,
          since: row.since,
          attempts: row.attempts,
          nextAttemptAt: row.next_attempt_at,
        },
      ]),
    );
  }

  /** Agreements matching every criterion given, by id. */
  async list(query: AgreementQuery = {}): Promise<Agreement[]> {
    const { rows } = await this.pool.query<AgreementRow>(
      `SELECT * FROM agreement
        WHERE ($1::text IS NULL OR status = $1)
          AND ($2::text IS NULL OR dataset = $2)
          AND ($3::text IS NULL OR subscriber = $3)
        ORDER BY id`,
      [query.status ?? null, query.dataset ?? null, query.subscriber ?? null],
    );
    return rows.map(toAgreement);
  }

  /**
   * requested → approved. The agreement is checked again against the dictionary as it is now (a field or
   * code may have gone since the request), and its validity must not have ended.
   */
  async approve(id: string, actor: string): Promise<Agreement> {
    return this.transition(id, 'approve', actor, null, undefined, (current) => {
      const problems: AgreementProblem[] = [];
      const dataset = checkParties(this.dictionary, current.subscriber, current.dataset, problems);
      if (dataset) {
        const fields = resolveFields(dataset, current.fields, problems);
        resolveFilter(this.dictionary, dataset, current.filter, fields, problems);
      }
      checkValidTo(
        current.validFrom,
        current.validTo,
        this.now(),
        problems,
        'change validTo before approving',
      );
      if (problems.length > 0) throw invalid(`agreement "${id}" cannot be approved`, problems);
    });
  }

  /** requested → refused. A refusal is written and cites its legal basis (Decree 194/2025 art. 16). */
  async refuse(id: string, reason: string, actor: string): Promise<Agreement> {
    return this.transition(
      id,
      'refuse',
      actor,
      requireReason(reason, 'a refusal must be written and cite its legal basis (Decree 194/2025 art. 16)'),
    );
  }

  /** approved → suspended: the share stops until resumed; the subscriber keeps its copy meanwhile. */
  async suspend(id: string, reason: string, actor: string): Promise<Agreement> {
    return this.transition(id, 'suspend', actor, requireReason(reason, 'a suspension states its reason'));
  }

  /** suspended → approved, while the validity has not ended. */
  async resume(id: string, actor: string): Promise<Agreement> {
    return this.transition(id, 'resume', actor, null, undefined, (current) => {
      const problems: AgreementProblem[] = [];
      checkValidTo(
        current.validFrom,
        current.validTo,
        this.now(),
        problems,
        'the agreement expires instead of resuming',
      );
      if (problems.length > 0) throw invalid(`agreement "${id}" cannot be resumed`, problems);
    });
  }

  /** approved or suspended → revoked (final). `onEnd` overrides what the subscriber does with its copy. */
  async revoke(id: string, reason: string, actor: string, onEnd?: EndPolicy): Promise<Agreement> {
    const policy =
      onEnd === undefined ? undefined : parseWith(z.enum(EndPolicies), onEnd, 'onEnd is invalid');
    return this.transition(
      id,
      'revoke',
      actor,
      requireReason(reason, 'a revocation states its reason'),
      policy,
    );
  }

  /**
   * Marks every approved or suspended agreement whose validTo is at or before `now` as expired (one
   * transaction, one audit row each, actor SYSTEM_ACTOR) and returns them. A suspended agreement expires
   * too: its end policy must apply when its time is up, whether or not it was paused.
   */
  async expireDue(now: Date = this.now()): Promise<Agreement[]> {
    return inTransaction(this.pool, async (client) => {
      const due = await client.query<{ id: string; status: AgreementStatus }>(
        `SELECT id, status FROM agreement
          WHERE status IN ('approved', 'suspended') AND valid_to IS NOT NULL AND valid_to <= $1
          ORDER BY id
          FOR UPDATE`,
        [now],
      );
      if (due.rows.length === 0) return [];
      const { rows } = await client.query<AgreementRow>(
        `UPDATE agreement SET status = 'expired', status_reason = NULL, updated_at = now()
          WHERE id = ANY($1::text[])
          RETURNING *`,
        [due.rows.map((row) => row.id)],
      );
      for (const row of due.rows) {
        await audit(client, row.id, SYSTEM_ACTOR, 'expire', {
          from: row.status,
          to: 'expired',
          at: now.toISOString(),
        });
      }
      return rows.map(toAgreement).sort((a, b) => a.id.localeCompare(b.id));
    });
  }

  /**
   * Changes fields, filter or validTo of an agreement that is not final. A change of fields or filter
   * (compared in canonical form) raises the revision, so the subscriber's copy is re-derived; a change of
   * validTo alone does not. Nothing to change writes nothing and returns the agreement as it is.
   *
   * Sharing more than was approved needs approval again: an approved or suspended agreement that gains a
   * field or changes its filter (whether a new filter selects only a subset of the old one is not decided)
   * goes back to `requested`, its stream paused until it is approved. Dropping fields or moving validTo
   * keeps the status.
   */
  /**
   * Re-derives an approved agreement from the start of its source topic: a new revision with the same fields and
   * filter, so the subscriber's copy is rebuilt and the rows no longer shared are deleted. The platform does this
   * when a subscriber's position fell below what its share topic still holds (records it never read are gone).
   */
  async resync(id: string, reason: string, actor: string): Promise<Agreement> {
    const who = parseWith(ActorSchema, actor, 'the change has no actor');
    const why = requireReason(reason, 'a resync states its reason');
    return inTransaction(this.pool, async (client) => {
      const current = await this.lock(client, id);
      if (current.status !== 'approved') {
        throw new LtError(
          'LT_AGREEMENT_TRANSITION',
          `cannot resync agreement "${id}": it is ${current.status}; only an approved agreement is derived`,
          { details: { id, status: current.status, action: 'resync', allowed: [] } },
        );
      }
      const { rows } = await client.query<AgreementRow>(
        'UPDATE agreement SET revision = revision + 1, updated_at = now() WHERE id = $1 RETURNING *',
        [id],
      );
      const row = rows[0]!;
      await audit(client, id, who, 'resync', {
        reason: why,
        revision: { from: current.revision, to: row.revision },
      });
      return toAgreement(row);
    });
  }

  async update(id: string, changes: AgreementChanges, actor: string): Promise<Agreement> {
    const who = parseWith(ActorSchema, actor, 'the change has no actor');
    const value = parseWith(AgreementChangesSchema, changes, `agreement "${id}" cannot be updated`);
    if (
      value.fields === undefined &&
      value.filter === undefined &&
      value.validTo === undefined &&
      value.methods === undefined
    ) {
      throw invalid(`agreement "${id}" cannot be updated`, [
        { field: 'body', message: 'nothing to change: give fields, filter, validTo or methods' },
      ]);
    }
    return inTransaction(this.pool, async (client) => {
      const current = await this.lock(client, id);
      if (isFinal(current.status)) {
        throw new LtError(
          'LT_AGREEMENT_TRANSITION',
          `cannot update agreement "${id}": it is ${current.status}; ${describeSteps(current.status)}`,
          { details: { id, status: current.status, action: 'update', allowed: [] } },
        );
      }
      const problems: AgreementProblem[] = [];
      const dataset = this.dictionary.datasets.get(current.dataset);
      if (!dataset) {
        problems.push({
          field: 'dataset',
          message: `dataset "${current.dataset}" is no longer in the dictionary`,
        });
        throw invalid(`agreement "${id}" cannot be updated`, problems);
      }
      const fields = value.fields ? resolveFields(dataset, value.fields, problems) : current.fields;
      // the filter is checked against the fields as they will be: dropping a field the filter tests is refused
      const filter = resolveFilter(
        this.dictionary,
        dataset,
        value.filter ?? current.filter,
        fields,
        problems,
      );
      const validTo = value.validTo === undefined ? current.validTo : value.validTo;
      if (value.validTo !== undefined) {
        checkValidTo(current.validFrom, validTo, this.now(), problems, 'to end an agreement now, revoke it');
      }
      if (problems.length > 0 || !filter) throw invalid(`agreement "${id}" cannot be updated`, problems);

      const changed: Record<string, { from: unknown; to: unknown }> = {};
      if (!sameList(fields, current.fields)) changed.fields = { from: current.fields, to: fields };
      if (filter.text !== current.filterText) changed.filter = { from: current.filterText, to: filter.text };
      if (!sameTime(validTo, current.validTo)) {
        changed.validTo = {
          from: current.validTo?.toISOString() ?? null,
          to: validTo?.toISOString() ?? null,
        };
      }
      const methods = value.methods ?? current.methods;
      if (current.methods.includes('sync') && !methods.includes('sync')) {
        problems.push({
          field: 'methods',
          message:
            'an agreement cannot drop sync: its subscriber would keep its copy without ever being told the stream ' +
            'ended; revoke the agreement (its end policy then applies) and request a new one',
        });
        throw invalid(`agreement "${id}" cannot be updated`, problems);
      }
      if (!sameList(methods, current.methods)) changed.methods = { from: current.methods, to: methods };
      if (Object.keys(changed).length === 0) return current;
      const revision = current.revision + (changed.fields || changed.filter ? 1 : 0);
      const added = fields.filter((field) => !current.fields.includes(field));
      const addedMethods = methods.filter((method) => !current.methods.includes(method));
      const widens = added.length > 0 || addedMethods.length > 0 || changed.filter !== undefined;
      const reapprove = widens && (current.status === 'approved' || current.status === 'suspended');
      const status = reapprove ? 'requested' : current.status;
      const reason = reapprove
        ? `changed while ${current.status} (${[
            ...(added.length > 0 ? [`fields added: ${added.join(', ')}`] : []),
            ...(addedMethods.length > 0 ? [`methods added: ${addedMethods.join(', ')}`] : []),
            ...(changed.filter ? ['filter changed'] : []),
          ].join('; ')}): sharing more than was approved needs approval again`
        : current.statusReason;
      const { rows } = await client.query<AgreementRow>(
        `UPDATE agreement
            SET fields = $2, filter = $3, filter_text = $4, valid_to = $5, revision = $6,
                status = $7, status_reason = $8, methods = $9, updated_at = now()
          WHERE id = $1
          RETURNING *`,
        [id, fields, JSON.stringify(filter.ast), filter.text, validTo, revision, status, reason, methods],
      );
      await audit(client, id, who, 'update', {
        changed,
        revision: { from: current.revision, to: revision },
        ...(reapprove ? { status: { from: current.status, to: status }, reason } : {}),
      });
      return toAgreement(rows[0]!);
    });
  }

  /** The agreement's audit trail, oldest first; LT_AGREEMENT_UNKNOWN when there is no such agreement. */
  async events(id: string): Promise<AgreementEvent[]> {
    const { rows } = await this.pool.query<EventRow>(
      `SELECT e.* FROM agreement a LEFT JOIN agreement_event e ON e.agreement_id = a.id
        WHERE a.id = $1
        ORDER BY e.seq`,
      [id],
    );
    if (rows.length === 0) throw unknownAgreement(id);
    return rows
      .filter((row): row is EventRow & { seq: string } => row.seq !== null)
      .map((row) => ({
        seq: Number(row.seq),
        agreementId: row.agreement_id,
        at: row.at,
        actor: row.actor,
        action: row.action,
        detail: row.detail,
      }));
  }

  /**
   * Calls `onChange(id)` for every committed insert or update of an agreement, on a connection of its own
   * held until the returned function is called. Notifications sent while the connection is down are
   * lost: a listener re-reads every agreement (list()) when it starts and whenever `onError` fires.
   */
  async watch(
    onChange: (id: string) => void,
    onError?: (error: Error) => void,
  ): Promise<() => Promise<void>> {
    const client = await this.pool.connect();
    let released = false;
    const release = (error?: Error): void => {
      if (released) return;
      released = true;
      client.off('notification', onNotification);
      client.release(error);
    };
    const onNotification = (message: Notification): void => {
      if (message.channel === AGREEMENT_CHANNEL && message.payload) onChange(message.payload);
    };
    client.on('notification', onNotification);
    client.on('error', (error) => {
      release(error);
      onError?.(error);
    });
    await client.query(`LISTEN ${AGREEMENT_CHANNEL}`);
    return async () => {
      if (released) return;
      await client.query(`UNLISTEN ${AGREEMENT_CHANNEL}`).catch(() => undefined);
      release();
    };
  }

  private async lock(client: PoolClient, id: string): Promise<Agreement> {
    const { rows } = await client.query<AgreementRow>('SELECT * FROM agreement WHERE id = $1 FOR UPDATE', [
      id,
    ]);
    if (!rows[0]) throw unknownAgreement(id);
    return toAgreement(rows[0]);
  }

  private async transition(
    id: string,
    action: Exclude<AgreementAction, 'expire'>,
    actor: string,
    reason: string | null,
    onEnd?: EndPolicy,
    precondition?: (current: Agreement) => void,
  ): Promise<Agreement> {
    const who = parseWith(ActorSchema, actor, 'the change has no actor');
    return inTransaction(this.pool, async (client) => {
      const current = await this.lock(client, id);
      const to = nextStatus(current.status, action);
      if (!to) {
        throw new LtError(
          'LT_AGREEMENT_TRANSITION',
          `cannot ${action} agreement "${id}": it is ${current.status}; ${describeSteps(current.status)}`,
          { details: { id, status: current.status, action, allowed: allowedActions(current.status) } },
        );
      }
      precondition?.(current);
      const { rows } = await client.query<AgreementRow>(
        `UPDATE agreement
            SET status = $2, status_reason = $3, on_end = coalesce($4, on_end), updated_at = now()
          WHERE id = $1
          RETURNING *`,
        [id, to, reason, onEnd ?? null],
      );
      const row = rows[0]!;
      await audit(client, id, who, action, {
        from: current.status,
        to,
        ...(reason === null ? {} : { reason }),
        ...(onEnd === undefined ? {} : { onEnd: { from: current.onEnd, to: row.on_end } }),
      });
      return toAgreement(row);
    });
  }
}

function requireReason(reason: string, rule: string): string {
  const parsed = ReasonSchema.safeParse(reason);
  const text = parsed.success ? parsed.data : '';
  if (text === '') throw invalid('a reason is required', [{ field: 'reason', message: rule }]);
  return text;
}
