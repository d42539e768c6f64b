import { LtError } from '../errors.ts';

/**
 * A PostgreSQL error caused by the values of the rows (SQLSTATE class 22 data exception, e.g. a NUL character
 * in text; class 23 integrity constraint violation), not by the server: retrying cannot help.
 */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

/** What {@link writeIsolatingRefusals} wrote, and the items PostgreSQL refused with the reason. */
export interface IsolatedWrite<T, R> {
  /** One result per successful `write` call: one for the whole batch, or one per item written alone. */
  results: R[];
  refused: { item: T; error: LtError }[];
}

/**
 * Writes `items` in one call of `write`. Should PostgreSQL refuse the values of a row (a data error no retry
 * can fix), they are written one per call instead, in their order, and the refused ones are returned
 * (LT_RECORD_INVALID, with the SQLSTATE) for the dead-letter topic: a poison record cannot block its partition.
 * `write` must make one-by-one equivalent to all-at-once (the version guards do); any other error is thrown.
 */
export async function writeIsolatingRefusals<T, R>(
  items: T[],
  write: (items: T[]) => Promise<R>,
): Promise<IsolatedWrite<T, R>> {
  const refused: { item: T; error: LtError }[] = [];
  if (items.length === 0) return { results: [], refused };
  try {
    return { results: [await write(items)], refused };
  } catch (error) {
    if (!isDataError(error)) throw error;
  }
  const results: R[] = [];
  for (const item of items) {
    try {
      results.push(await write([item]));
    } catch (error) {
      if (!isDataError(error)) throw error;
      const { code, message } = error as { code: string; message: string };
      refused.push({
        item,
        error: new LtError('LT_RECORD_INVALID', `PostgreSQL cannot store it: ${message} (SQLSTATE ${code})`, {
          cause: error,
        }),
      });
    }
  }
  return { results, refused };
}
