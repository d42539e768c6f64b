import type { FastifyInstance } from 'fastify';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import type { Catalog } from './catalog.ts';

/**
 * The catalog API (JSON over HTTP), next to the registry routes:
 *   GET /v1/catalog/datasets            every dataset with fields, owner and connection results
 *   GET /v1/catalog/datasets/{id}       one dataset (404 with the known ids when unknown)
 *   GET /v1/catalog/agencies            the agencies
 *   GET /v1/catalog/code-lists/{id}     one code list with its codes
 */
export function registerCatalogRoutes(app: FastifyInstance, catalog: Catalog, dictionary: Dictionary): void {
  app.get('/v1/catalog/datasets', async () => ({ datasets: await catalog.datasets() }));
  app.get<{ Params: { id: string } }>('/v1/catalog/datasets/:id', async (request, reply) => {
    const dataset = await catalog.dataset(request.params.id);
    if (!dataset) {
      return reply.status(404).send({
        error: 'LT_DATASET_UNKNOWN',
        message: `unknown dataset "${request.params.id}"`,
        known: [...dictionary.datasets.keys()],
      });
    }
    return dataset;
  });
  app.get('/v1/catalog/agencies', async () => ({ agencies: [...dictionary.agencies.values()] }));
  app.get<{ Params: { id: string } }>('/v1/catalog/code-lists/:id', async (request, reply) => {
    const list = dictionary.codeLists.get(request.params.id);
    if (!list) {
      return reply.status(404).send({
        error: 'LT_CODE_LIST_UNKNOWN',
        message: `unknown code list "${request.params.id}"`,
        known: [...dictionary.codeLists.keys()],
      });
    }
    return list;
  });
}
