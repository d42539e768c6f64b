import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LtError } from '../errors.ts';

/**
 * The platform's certificate authority and the certificates it signs, made with the installed `openssl` under
 * `<LIENTHONG_HOME>/security/` at first use and never committed. Keys are files readable by their owner only;
 * no key or password ever appears in a process argument. The CA signs the brokers' server certificates (and
 * their controller-listener client certificates); clients trust it and nothing else.
 */
export interface PlatformCa {
  dir: string;
  certFile: string;
  keyFile: string;
  /** The CA certificate, PEM: what every client trusts. */
  certPem: string;
}

export interface ServerCertificate {
  certFile: string;
  keyFile: string;
  /** Private key then certificate then CA, PEM: a Kafka PEM keystore (`ssl.keystore.type=PEM`). */
  keystoreFile: string;
  /** The subject's common name, e.g. `lt-broker`; a controller listener maps it to `User:CN=lt-broker`. */
  commonName: string;
}

/** `openssl req` arguments for a new, unencrypted EC P-256 key (the file is made owner-only after). */
const NEW_EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** Days a server certificate is valid; the CA ten years. */
const SERVER_DAYS = 825;
const CA_DAYS = 3650;

export function securityDir(home: string): string {
  return join(home, 'security');
}

function openssl(args: string[], what: string): void {
  const result = spawnSync('openssl', args, { encoding: 'utf8', timeout: 60_000 });
  if (result.error || result.status !== 0)
    throw new LtError(
      'LT_CONFIG_INVALID',
      `${what} failed: ${(result.error?.message ?? result.stderr).trim().split('\n').slice(-3).join(' ')}`,
      { hint: 'lienthong makes its certificates with openssl: apt-get install -y openssl' },
    );
}

function privateFile(file: string): void {
  chmodSync(file, 0o600);
}

/** The platform CA under `<home>/security/ca/`, made on first use (EC P-256, 10 years). */
export function ensurePlatformCa(home: string): PlatformCa {
  const dir = join(securityDir(home), 'ca');
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    rmSync(certFile, { force: true });
    openssl(
      [
        'req',
        '-x509',
        ...NEW_EC_KEY,
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        String(CA_DAYS),
        '-subj',
        '/O=lienthong/CN=lienthong platform CA',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      'making the platform CA',
    );
    privateFile(keyFile);
  }
  return { dir, certFile, keyFile, certPem: readFileSync(certFile, 'utf8') };
}

/**
 * A certificate signed by the platform CA for `commonName`, valid for the given host names and IP addresses
 * (server and client use), under `<home>/security/certs/<commonName>/`; made once, kept while it is valid.
 */
export function ensureServerCertificate(
  ca: PlatformCa,
  home: string,
  commonName: string,
  hosts: string[],
): ServerCertificate {
  const dir = join(securityDir(home), 'certs', commonName);
  const files = (under: string) => ({
    certFile: join(under, 'cert.pem'),
    keyFile: join(under, 'key.pem'),
    keystoreFile: join(under, 'keystore.pem'),
  });
  const made = files(dir);
  if (!existsSync(made.keystoreFile)) {
    // Made aside and renamed into place, so processes starting at once (tests, a service and its CLI) never
    // read a half-written key or certificate: the first rename wins, the others use what it made.
    mkdirSync(join(securityDir(home), 'certs'), { recursive: true, mode: 0o700 });
    const aside = `${dir}.${process.pid}-${randomBytes(4).toString('hex')}`;
    mkdirSync(aside, { mode: 0o700 });
    try {
      signServerCertificate(ca, aside, files(aside), commonName, hosts);
      if (existsSync(dir) && !existsSync(made.keystoreFile)) rmSync(dir, { recursive: true, force: true });
      try {
        renameSync(aside, dir);
      } catch (error) {
        if (!existsSync(made.keystoreFile)) throw error; // not another process's certificate: a real failure
      }
    } finally {
      rmSync(aside, { recursive: true, force: true });
    }
  }
  return { ...made, commonName };
}

function signServerCertificate(
  ca: PlatformCa,
  dir: string,
  { certFile, keyFile, keystoreFile }: Omit<ServerCertificate, 'commonName'>,
  commonName: string,
  hosts: string[],
): void {
  const csr = join(dir, 'request.csr');
  const extensions = join(dir, 'extensions.cnf');
  const names = hosts.map((host) => (/^[\d.]+$|:/.test(host) ? `IP:${host}` : `DNS:${host}`));
  writeFileSync(
    extensions,
    [
      `subjectAltName=${names.join(',')}`,
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      '',
    ].join('\n'),
  );
  openssl(
    ['req', ...NEW_EC_KEY, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${commonName}`],
    `making the key of ${commonName}`,
  );
  privateFile(keyFile);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-set_serial', // random, so signers running at once share no serial file
      `0x${randomBytes(16).toString('hex')}`,
      '-out',
      certFile,
      '-days',
      String(SERVER_DAYS),
      '-extfile',
      extensions,
    ],
    `signing the certificate of ${commonName}`,
  );
  writeFileSync(
    keystoreFile,
    readFileSync(keyFile, 'utf8') + readFileSync(certFile, 'utf8') + readFileSync(ca.certFile, 'utf8'),
    { mode: 0o600 },
  );
  rmSync(csr, { force: true });
}

/**
 * The key and certificate (PEM) a platform HTTP service (`service`: lt-registry, lt-platform, …) serves TLS with,
 * signed by the platform CA for `host` as well as 127.0.0.1 and localhost; one certificate per service and host.
 */
export function platformServerTls(
  home: string,
  service: string,
  host: string,
): { key: string; cert: string } {
  const name =
    host === '127.0.0.1' || host === 'localhost'
      ? service
      : `${service}-${host.replace(/[^A-Za-z0-9.-]/g, '_')}`;
  const certificate = ensureServerCertificate(ensurePlatformCa(home), home, name, [
    ...new Set([host, '127.0.0.1', 'localhost']),
  ]);
  return { key: readFileSync(certificate.keyFile, 'utf8'), cert: readFileSync(certificate.certFile, 'utf8') };
}
