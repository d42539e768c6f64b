import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { LtError, type ErrorCode } from '../errors.ts';

/** Where a parsed YAML file came from, so that every later problem can name its file and line. */
export interface SourceFile {
  file: string;
  /** The 1-based line of a path inside the file, or of its nearest ancestor that exists. */
  lineOf(path: readonly (string | number)[]): number;
}

function sourceOf(file: string, doc: Document, lineCounter: LineCounter): SourceFile {
  return {
    file,
    lineOf(path) {
      for (let depth = path.length; depth >= 0; depth--) {
        const node = doc.getIn(path.slice(0, depth), true) as
          { range?: [number, number, number] } | undefined;
        if (node?.range) return lineCounter.linePos(node.range[0]).line;
      }
      return 1;
    },
  };
}

/**
 * Parses one YAML file against a zod schema, once, at the edge. Every failure names the file, the line,
 * the field path and the rule: `agent.yaml:12: inputs.http.port: expected a number`.
 */
export function parseYamlFile<T>(
  path: string,
  schema: z.ZodType<T>,
  code: ErrorCode,
): { value: T; source: SourceFile } {
  const file = relative(process.cwd(), path) || path;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new LtError(code, `${file}: cannot read: ${(cause as Error).message}`, {
      cause,
      details: { file },
    });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0].line ?? 0;
    throw new LtError(code, `${file}:${line}: YAML syntax: ${first.message.split('\n')[0]}`, {
      details: { file, line },
    });
  }
  const source = sourceOf(file, doc, lineCounter);
  const parsed = schema.safeParse(doc.toJS());
  if (parsed.success) return { value: parsed.data, source };
  const problems = parsed.error.issues.map(
    (issue) =>
      `${file}:${source.lineOf(issue.path as (string | number)[])}: ${issue.path.join('.') || '(root)'}: ${issue.message}`,
  );
  throw new LtError(code, problems.join('\n'), { details: { file, problems } });
}
