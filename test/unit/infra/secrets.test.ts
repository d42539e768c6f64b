import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSecretSource } from '../../../infra/config/secret-source.ts';
import { LtError } from '../../../infra/errors.ts';
import { createLogger, redactLogObject, redactUrlPasswords } from '../../../infra/logging/logger.ts';

describe('logs carry no personal data and no secret', () => {
  it('removes the password from any URL in a string', () => {
    expect(redactUrlPasswords('connect postgresql://bca:s3cr%21t@db.bca.gov.vn:5432/reg failed')).toBe(
      'connect postgresql://bca:[redacted]@db.bca.gov.vn:5432/reg failed',
    );
    expect(redactUrlPasswords('redis://:pw@127.0.0.1:6379')).toBe('redis://:[redacted]@127.0.0.1:6379');
    expect(redactUrlPasswords('http://127.0.0.1:8081/subjects')).toBe('http://127.0.0.1:8081/subjects');
  });

  it('censors records, keys and secrets at any depth, and inside errors', () => {
    const logged = redactLogObject({
      first: { rejection: { key: '001203004567', detail: 'bad' } },
      batch: [{ event: { after: { full_name: 'Nguyễn Văn A' } } }],
      config: { kafka: { sasl: { password: 'p' } } },
      err: new LtError('LT_RECORD_INVALID', 'at postgresql://u:p@h/db', { details: { key: '001203004567' } }),
    });
    const text = JSON.stringify(logged);
    expect(text).not.toContain('001203004567');
    expect(text).not.toContain('Nguyễn');
    expect(text).not.toContain('"p"');
    expect(text).toContain('postgresql://u:[redacted]@h/db');
    expect(text).toContain('LT_RECORD_INVALID');
  });

  it('does so in what the logger writes, message included', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'lt-log-')), 'out.log');
    const logger = createLogger('info', file);
    logger.warn(
      { key: '001203004567', rows: 3, err: new LtError('LT_POSTGRES_UNREACHABLE', 'down') },
      'cannot reach postgresql://bca:hunter2@db/reg',
    );
    // the file is opened and written asynchronously
    let line = '';
    for (let waited = 0; !line.includes('rows') && waited < 5_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      line = existsSync(file) ? readFileSync(file, 'utf8') : '';
    }
    expect(line).not.toContain('001203004567');
    expect(line).not.toContain('hunter2');
    expect(line).toContain('"rows":3');
    expect(line).toContain('postgresql://bca:[redacted]@db/reg');
    expect(line).toContain('"type":"LtError"'); // the error keeps its class
  });
});

describe('a connection URL on the command line', () => {
  it('comes from the environment or a file, and never carries a password itself', () => {
    process.env.LT_TEST_REGISTER_URL = 'postgresql://bca:pw@db/reg';
    expect(readSecretSource('env:LT_TEST_REGISTER_URL', '--from')).toBe('postgresql://bca:pw@db/reg');
    delete process.env.LT_TEST_REGISTER_URL;
    expect(() => readSecretSource('env:LT_TEST_REGISTER_URL', '--from')).toThrow(/not set/);
    const file = join(mkdtempSync(join(tmpdir(), 'lt-url-')), 'url');
    writeFileSync(file, 'postgresql://bca:pw@db/reg\n', { mode: 0o600 });
    expect(readSecretSource(`file:${file}`, '--from')).toBe('postgresql://bca:pw@db/reg');
    expect(readSecretSource('postgresql://127.0.0.1/reg', '--from')).toBe('postgresql://127.0.0.1/reg');
    expect(() => readSecretSource('postgresql://bca:pw@db/reg', '--from')).toThrow(
      /carries a password.*process list/,
    );
  });
});
