import type { FastifyInstance } from 'fastify';
import type { PipelineMetrics } from './metrics.ts';

/**
 * Counts every answer of `app` in `lienthong_http_requests_total{server, route, status}`; the route is the
 * pattern (`/subjects/:subject/versions`), never the path, so that subjects and ids do not become series.
 */
export function countHttpRequests(app: FastifyInstance, metrics: PipelineMetrics, server: string): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequests.inc({
      server,
      route: request.routeOptions.url ?? '(unknown route)',
      status: String(reply.statusCode),
    });
  });
}
