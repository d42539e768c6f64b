import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// DESIGN.md §5: imports point downward, cli → producers | consumers | platform → schemas → infra.
const ROOT = resolve(import.meta.dirname, '..', '..');
const LAYER: Record<string, number> = {
  infra: 0,
  schemas: 1,
  producers: 2,
  consumers: 2,
  platform: 2,
  cli: 3,
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

function folderOf(path: string): string {
  return relative(ROOT, path).split('/')[0] ?? '';
}

describe('architecture', () => {
  const violations: string[] = [];
  for (const folder of Object.keys(LAYER)) {
    let files: string[] = [];
    try {
      files = sources(join(ROOT, folder));
    } catch {
      continue;
    }
    for (const file of files) {
      for (const match of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
        const target = folderOf(resolve(file, '..', match[1]!));
        if (target === folder) continue;
        const allowed = (LAYER[target] ?? 99) < LAYER[folder]!;
        if (!allowed) violations.push(`${relative(ROOT, file)} imports ${target}/ (${match[1]})`);
      }
    }
  }

  it('imports point downward only, and peers at the same level do not import each other', () => {
    expect(violations).toEqual([]);
  });
});
