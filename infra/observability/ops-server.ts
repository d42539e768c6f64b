import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHttpServer, listen } from '../http/server.ts';
import type { Logger } from '../logging/logger.ts';
import { ensurePlatformCa, ensureServerCertificate } from '../security/pki.ts';
import type { PipelineMetrics } from './metrics.ts';
import type { OpsSettings } from './options.ts';
import { checkReadiness, type ReadinessCheck } from './readiness.ts';

/*
 * The HTTP contract of every long-running process's ops port (docs/observability.md has it with examples).
 *
 *   GET /health   → 200 { "status": "ok", "service": … }         liveness: the process serves HTTP; checks nothing else
 *   GET /ready    → 200 { "ready": true,  "service": …, "checks": [{ "name", "ok", "ms" }] }
 *                 → 503 { "ready": false, "service": …, "checks": [{ "name", "ok", "ms", "error" }] }
 *                   every dependency the process uses (kafka, redis, postgres, registry), each within a timeout
 *   GET /metrics  → 200 Prometheus text format (the process's own registry)
 *                   Authorization: Bearer <LIENTHONG_METRICS_TOKEN> when a token is set (required when secure)
 *                 → 401 { "error": "LT_UNAUTHORIZED", "message", "hint" } without it (WWW-Authenticate: Bearer)
 */

export interface OpsServerOptions {
  /** Which process this is (`agent`, `coordinator`, `ngdb`, `registry`): in every answer and log line. */
  service: string;
  metrics: PipelineMetrics;
  /** What `/ready` checks. */
  checks: readonly ReadinessCheck[];
  settings: OpsSettings;
  log: Logger;
  /** LIENTHONG_HOME: where the platform CA signs the ops certificate when no own one is configured. */
  home: string;
}

export interface RunningOpsServer {
  /** Base URL, `https://host:port` (or `http://` when insecure). */
  url: string;
  close(): Promise<void>;
}

const expandHome = (path: string): string => path.replace(/^~(?=\/)/, homedir());

/**
 * The key and certificate the ops port serves TLS with: the configured files, or one the platform CA signs
 * for its host, made once under `<home>/security/certs/` (infra/security/pki.ts).
 */
export function opsTls(settings: OpsSettings, home: string): { key: string; cert: string } {
  if (settings.tls)
    return {
      key: readFileSync(expandHome(settings.tls.keyFile), 'utf8'),
      cert: readFileSync(expandHome(settings.tls.certFile), 'utf8'),
    };
  const name = `lt-ops-${settings.host.replace(/[^A-Za-z0-9.-]/g, '_')}`; // one certificate per host served
  const certificate = ensureServerCertificate(ensurePlatformCa(home), home, name, [
    ...new Set([settings.host, '127.0.0.1', 'localhost']),
  ]);
  return { key: readFileSync(certificate.keyFile, 'utf8'), cert: readFileSync(certificate.certFile, 'utf8') };
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Whether the request carries the metrics token (compared in constant time over digests). */
function hasToken(request: FastifyRequest, token: string): boolean {
  const header = request.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match !== null && timingSafeEqual(sha256(match[1]!), sha256(token));
}

/** Builds the ops server (not listening); {@link startOpsServer} also listens. */
export function createOpsServer(options: OpsServerOptions): FastifyInstance {
  const { service, metrics, checks, settings } = options;
  const log = options.log.child({ component: 'ops', service });
  const app = createHttpServer(log, settings.insecure ? undefined : opsTls(settings, options.home));
  app.get('/health', { logLevel: 'silent' }, async () => ({ status: 'ok' as const, service }));
  app.get('/ready', { logLevel: 'warn' }, async (_request, reply) => {
    const readiness = await checkReadiness(checks, settings.checkTimeoutMs);
    if (!readiness.ready) log.warn({ failed: readiness.checks.filter((check) => !check.ok) }, 'not ready');
    return reply.status(readiness.ready ? 200 : 503).send({ ...readiness, service });
  });
  // a token set: required; none on a secure port: nobody (the log said how to set one); none insecure: anyone
  const token = settings.metricsToken;
  const open = token === undefined && settings.insecure;
  app.get('/metrics', { logLevel: 'warn' }, async (request, reply) => {
    if (!open && (token === undefined || !hasToken(request, token)))
      return reply
        .status(401)
        .header('www-authenticate', 'Bearer realm="lienthong-metrics"')
        .send({
          error: 'LT_UNAUTHORIZED',
          message:
            token === undefined
              ? '/metrics is closed: no metrics token is set on this process'
              : '/metrics needs the metrics bearer token',
          hint:
            token === undefined
              ? 'start the process with LIENTHONG_METRICS_TOKEN set (32+ characters) and give Prometheus the same'
              : 'send Authorization: Bearer <LIENTHONG_METRICS_TOKEN> (Prometheus: authorization.credentials_file)',
        });
    const { contentType, body } = await metrics.scrape();
    return reply.header('content-type', contentType).send(body);
  });
  app.addHook('onClose', async () => {
    for (const check of checks) await check.close?.();
  });
  return app;
}

/**
 * Serves `/health`, `/ready` and `/metrics` of one process on its ops port: TLS unless `settings.insecure`
 * (said in the log as insecure); `/metrics` behind the bearer token when one is set, and refused outright
 * when the port is secure and no token is set (said in the log with what to do).
 */
export async function startOpsServer(options: OpsServerOptions): Promise<RunningOpsServer> {
  const { settings, service } = options;
  const log = options.log.child({ component: 'ops', service });
  if (settings.insecure) log.warn('INSECURE: the ops port serves plaintext HTTP (ops insecure)');
  if (settings.metricsToken === undefined && !settings.insecure)
    log.warn('/metrics answers 401 to everyone: set LIENTHONG_METRICS_TOKEN for Prometheus to scrape it');
  const app = createOpsServer(options);
  const url = await listen(app, settings.port, settings.host);
  log.info({ url }, 'ops port listening (/health /ready /metrics)');
  return { url, close: () => app.close() };
}
