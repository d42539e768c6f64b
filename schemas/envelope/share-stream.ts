import type { IHeaders } from 'kafkajs';
import { LtError } from '../../infra/errors.ts';
import { subjects } from '../../infra/kafka/topics.ts';
import type { SchemaRegistry } from '../registry/client.ts';
import { decodeWireValue } from '../registry/decode.ts';
import type { ChangeEvent } from './change-event.ts';

/**
 * The share-stream contract (DESIGN.md §3), written once for the coordinator that writes `lt.share.<agreement>`
 * and the subscriber sinks that read it: the headers of a derived change event and the control record that ends
 * an agreement with its end policy. A derived change event is a change event (change-event.ts: envelope, and
 * `changeEventMessages` for its Kafka messages).
 */

/** Headers of the share stream. */
export const ShareHeaders = {
  trace: 'lt-trace-id',
  agreement: 'lt-agreement',
  /** The agreement revision a record was derived under: a higher revision replaces a row whatever its version. */
  revision: 'lt-agreement-revision',
  /** Marks a control record (an instruction; its value is never decoded). */
  control: 'lt-control',
  endPolicy: 'lt-end-policy',
} as const;

/** What the subscriber's Agent Node does with its copy when the agreement ends. */
export const EndPolicies = ['purge', 'retain'] as const;
export type EndPolicy = (typeof EndPolicies)[number];

/** A record that is an instruction to the sink rather than a change event. */
export type ShareControl = { kind: 'agreement-ended'; policy: EndPolicy; agreement: string | null };

/** The first value of a header, as text. */
export function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/** Headers of one derived change event. */
export function shareEventHeaders(traceId: string, agreementId: string, revision: number): IHeaders {
  return {
    [ShareHeaders.trace]: traceId,
    [ShareHeaders.agreement]: agreementId,
    [ShareHeaders.revision]: String(revision),
  };
}

/** Headers of the control record that tells a subscriber, on every partition, that its agreement ended. */
export function agreementEndedHeaders(agreementId: string, policy: EndPolicy): IHeaders {
  return {
    [ShareHeaders.control]: 'agreement-ended',
    [ShareHeaders.endPolicy]: policy,
    [ShareHeaders.agreement]: agreementId,
  };
}

/** The record's agreement revision (0 when the header is absent); a malformed header makes it a poison record. */
export function revisionOf(headers: IHeaders | undefined): number {
  const text = headerText(headers, ShareHeaders.revision);
  if (text === undefined) return 0;
  const revision = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (!(revision <= 2_147_483_647))
    throw new LtError('LT_RECORD_INVALID', `header ${ShareHeaders.revision} is not a revision: "${text}"`);
  return revision;
}

/** The control instruction a record carries, null for a change event, or why it cannot be obeyed. */
export function controlOf(headers: IHeaders | undefined): ShareControl | LtError | null {
  const control = headerText(headers, ShareHeaders.control);
  if (control === undefined) return null;
  if (control !== 'agreement-ended')
    return new LtError('LT_RECORD_INVALID', `unknown control record "${control}"`);
  const policy = headerText(headers, ShareHeaders.endPolicy);
  if (!EndPolicies.includes(policy as EndPolicy))
    return new LtError(
      'LT_RECORD_INVALID',
      `agreement-ended control record with ${ShareHeaders.endPolicy} "${policy ?? ''}" (expected ${EndPolicies.join(' or ')}); the table is kept`,
    );
  return {
    kind: 'agreement-ended',
    policy: policy as EndPolicy,
    agreement: headerText(headers, ShareHeaders.agreement) ?? null,
  };
}

/**
 * One change event of a share topic, from untrusted bytes: decoded within bounds with a schema registered under
 * the topic's subject (schemas/registry/decode.ts; only a registry outage is retriable), and of `dataset` — the
 * one the subscriber's table was made for (LT_RECORD_INVALID otherwise).
 */
export async function decodeShareEvent(
  registry: SchemaRegistry,
  dataset: string,
  topic: string,
  value: Buffer,
): Promise<ChangeEvent> {
  const event = (await decodeWireValue(registry, value, { subject: subjects.value(topic) })) as ChangeEvent;
  if (event.dataset !== dataset)
    throw new LtError('LT_RECORD_INVALID', `event for dataset "${event.dataset}" on the topic of ${dataset}`);
  return event;
}
