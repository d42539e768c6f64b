import type { FilterAst } from './filter.ts';

/** The life of a sharing agreement (Decree 194/2025 art. 16: a refusal is written and cites its legal basis). */
export const AgreementStatuses = ['requested', 'approved', 'refused', 'suspended', 'revoked', 'expired'] as const;
export type AgreementStatus = (typeof AgreementStatuses)[number];

/** What the subscriber's Agent Node does with its copy when the agreement ends. */
export const EndPolicies = ['purge', 'retain'] as const;
export type EndPolicy = (typeof EndPolicies)[number];

/**
 * A sharing agreement (decree method (b)): which agency receives which fields and rows of which dataset,
 * why, and on what legal basis. Stored in the platform's PostgreSQL; the coordinator derives
 * `lt.share.<id>` from it.
 */
export interface Agreement {
  /** `[a-z0-9][a-z0-9-]*`, e.g. `ubnd-hn-citizen`; names the share topic. */
  id: string;
  subscriber: string;
  dataset: string;
  /** The shared fields; the dataset's key field is always among them. */
  fields: string[];
  /** The row filter, parsed and type-checked (`filter.ts`); `true` shares every row. */
  filter: FilterAst;
  /** The filter's canonical text, for people. */
  filterText: string;
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
