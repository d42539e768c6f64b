import type { EndPolicy } from '../../schemas/envelope/share-stream.ts';
import type { FilterAst } from './filter.ts';

/** The life of a sharing agreement (Decree 194/2025 art. 16: a refusal is written and cites its legal basis). */
export const AgreementStatuses = [
  'requested',
  'approved',
  'refused',
  'suspended',
  'revoked',
  'expired',
] as const;
export type AgreementStatus = (typeof AgreementStatuses)[number];

// What the subscriber's Agent Node does with its copy when the agreement ends: part of the share-stream contract.
export { EndPolicies, type EndPolicy } from '../../schemas/envelope/share-stream.ts';

/**
 * The decree's sharing methods an agreement may allow (Decree 278/2025): `sync` — method (b), the share
 * stream `lt.share.<id>` the coordinator derives; `query` — method (a), the query API over the NGDB
 * (`platform/query/`); `media` — method (d), data packages on storage media.
 */
export const SharingMethods = ['sync', 'query', 'media'] as const;
export type SharingMethod = (typeof SharingMethods)[number];

/** Whether the agreement allows `method`. */
export function allowsMethod(agreement: Pick<Agreement, 'methods'>, method: SharingMethod): boolean {
  return agreement.methods.includes(method);
}

/**
 * A sharing agreement: which agency receives which fields and rows of which dataset,
 * why, on what legal basis and by which decree methods. Stored in the platform's PostgreSQL; the coordinator
 * derives `lt.share.<id>` from an agreement with method `sync`, the query API answers for one with `query`.
 */
export interface Agreement {
  /** `[a-z0-9][a-z0-9-]{1,60}`, e.g. `ubnd-hn-citizen`; names the share topic. */
  id: string;
  subscriber: string;
  dataset: string;
  /** The shared fields; the dataset's key field is always among them. */
  fields: string[];
  /** The row filter, parsed and type-checked (`filter.ts`); `true` shares every row. */
  filter: FilterAst;
  /** The filter's canonical text, for people. */
  filterText: string;
  /** The decree methods it allows, in the order of SharingMethods; never empty. */
  methods: SharingMethod[];
  purpose: string;
  legalBasis: string;
  validFrom: Date;
  /** Exclusive end; null = until revoked. */
  validTo: Date | null;
  status: AgreementStatus;
  /** Written reason for a refusal, suspension or revocation. */
  statusReason: string | null;
  onEnd: EndPolicy;
  /** Raised whenever the fields or the filter change: the subscriber's copy is re-derived. */
  revision: number;
  createdAt: Date;
  updatedAt: Date;
}

/** Active: approved, and now within its validity window. */
export function isActive(agreement: Agreement, now: Date = new Date()): boolean {
  return (
    agreement.status === 'approved' &&
    agreement.validFrom.getTime() <= now.getTime() &&
    (agreement.validTo === null || now.getTime() < agreement.validTo.getTime())
  );
}

/** The steps that change an agreement's status; `expire` is taken by the platform, never by a person. */
export const AgreementActions = ['approve', 'refuse', 'suspend', 'resume', 'revoke', 'expire'] as const;
export type AgreementAction = (typeof AgreementActions)[number];

/**
 * Which step leads from which status to which. `refused`, `revoked` and `expired` are final: a new
 * agreement (new id) is requested instead. Everything else is an illegal transition.
 */
export const AgreementTransitions: Readonly<
  Record<AgreementStatus, Readonly<Partial<Record<AgreementAction, AgreementStatus>>>>
> = {
  requested: { approve: 'approved', refuse: 'refused' },
  approved: { suspend: 'suspended', revoke: 'revoked', expire: 'expired' },
  suspended: { resume: 'approved', revoke: 'revoked', expire: 'expired' },
  refused: {},
  revoked: {},
  expired: {},
};

/** The steps allowed from `status`, in the order of AgreementActions; empty for a final status. */
export function allowedActions(status: AgreementStatus): AgreementAction[] {
  return AgreementActions.filter((action) => AgreementTransitions[status][action] !== undefined);
}

/** The status `action` leads to from `status`, or undefined when the step is not allowed. */
export function nextStatus(status: AgreementStatus, action: AgreementAction): AgreementStatus | undefined {
  return AgreementTransitions[status][action];
}

/** Final: refused, revoked or expired. Nothing changes a final agreement any more, not even its fields. */
export function isFinal(status: AgreementStatus): boolean {
  return allowedActions(status).length === 0;
}

/**
 * Why the coordinator cannot derive an agreement's stream now (source topic missing, dataset gone from the
 * dictionary, a share subject the registry refuses, a filter on unshared fields, …); it retries with backoff
 * and the other agreements flow meanwhile.
 */
export interface Degradation {
  revision: number;
  code: string;
  /** The failure, as its message says it. */
  reason: string;
  since: Date;
  attempts: number;
  nextAttemptAt: Date;
}
