import { existsSync, readFileSync } from 'node:fs';
import { LtError } from '../errors.ts';

/**
 * A connection URL given on a command line without putting its secret there (any user of the machine can read
 * another process's arguments): `env:NAME` reads it from an environment variable, `file:PATH` from the first line
 * of a file; a plain URL is taken only if it carries no password.
 */
export function readSecretSource(source: string, option: string): string {
  if (source.startsWith('env:')) {
    const name = source.slice('env:'.length);
    const value = process.env[name];
    if (!value)
      throw new LtError('LT_CONFIG_INVALID', `${option} env:${name}: the variable is not set`, {
        hint: `export ${name}=postgresql://… before running the command`,
      });
    return value.trim();
  }
  if (source.startsWith('file:')) {
    const path = source.slice('file:'.length);
    if (!existsSync(path))
      throw new LtError('LT_CONFIG_INVALID', `${option} file:${path}: no such file`, {
        hint: 'write the URL on the first line of a file only you can read (chmod 600)',
      });
    const value = readFileSync(path, 'utf8').split('\n')[0]?.trim() ?? '';
    if (!value) throw new LtError('LT_CONFIG_INVALID', `${option} file:${path}: the first line is empty`);
    return value;
  }
  let password = '';
  try {
    password = new URL(source).password;
  } catch {
    throw new LtError(
      'LT_CONFIG_INVALID',
      `${option}: "${source.slice(0, 40)}" is not a URL, env:NAME or file:PATH`,
    );
  }
  if (password)
    throw new LtError(
      'LT_CONFIG_INVALID',
      `${option}: the URL carries a password, which every user of this machine can read in the process list`,
      { hint: `pass ${option} env:NAME (the URL in that variable) or ${option} file:PATH instead` },
    );
  return source;
}
