import type { Kafka } from 'kafkajs';
import { consumerGroups, subjects, topics } from '../../infra/kafka/topics.ts';
import type { Pool } from '../../infra/postgres/pool.ts';
import { compatibilityOf, type Dataset, type Field, type TypeSpec } from '../../schemas/model/dataset.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import type { Degradation } from '../agreements/model.ts';
import type { AgreementStore } from '../agreements/store.ts';

/** One agreement on a dataset, as the catalog shows it: who receives it, and whether it flows. */
export interface CatalogAgreement {
  id: string;
  subscriber: string;
  status: string;
  /** Why the coordinator cannot derive its stream now; null when no failure is reported. */
  degraded: Degradation | null;
}

/** One connection result the decree asks the dictionary to record: who publishes or receives what. */
export interface Connection {
  agency: string;
  role: 'publishes' | 'receives';
  /** The consumer group or topic the figure comes from. */
  via: string;
  /** When the connection started, where known (first schema registration for a publisher). */
  since: string | null;
  /** Records published to, or committed from, the dataset's source topic. */
  records: number;
}

export interface CatalogField {
  name: string;
  type: string;
  required: boolean;
  classification: string;
  description: { vi: string; en: string };
  references?: string;
  fields?: CatalogField[];
}

export interface CatalogDataset {
  id: string;
  owner: string;
  kind: string;
  description: { vi: string; en: string };
  key: string;
  retention: string;
  compatibility: string;
  topic: string;
  subjects: { key: string; value: string };
  fields: CatalogField[];
  connections: Connection[];
  /** The agreements on the dataset, when the catalog reads the agreements (not requested or refused ones). */
  agreements?: CatalogAgreement[];
}

function typeName(spec: TypeSpec): string {
  switch (spec.type) {
    case 'code':
      return `code(${spec.codeList})`;
    case 'decimal':
      return `decimal(${spec.precision},${spec.scale})`;
    case 'array':
      return `array<${typeName(spec.items)}>`;
    case 'string':
      return spec.identifier ? `string(${spec.identifier})` : 'string';
    default:
      return spec.type;
  }
}

function catalogFields(fields: Field[]): CatalogField[] {
  return fields.map((field) => {
    const nested =
      field.type === 'record'
        ? field.fields
        : field.type === 'array' && field.items.type === 'record'
          ? field.items.fields
          : undefined;
    return {
      name: field.name,
      type: typeName(field),
      required: field.required,
      classification: field.classification,
      description: field.description,
      ...(field.references ? { references: field.references.dataset } : {}),
      ...(nested ? { fields: catalogFields(nested) } : {}),
    };
  });
}

/** Which agency a consumer group belongs to (`lt.sink.<agency>` → AGENCY; the NGDB sink → TTDLQG). */
function agencyOfGroup(groupId: string, dictionary: Dictionary): string | null {
  if (groupId === consumerGroups.ngdb) return 'TTDLQG';
  for (const code of dictionary.agencies.keys()) {
    const group = consumerGroups.sink(code);
    if (groupId === group || groupId.startsWith(`${group}.`)) return code;
  }
  return null;
}

export interface CatalogSources {
  dictionary: Dictionary;
  /** Live figures come from Kafka; without it the catalog lists definitions only. */
  kafka?: Kafka;
  /** The registry's PostgreSQL, for when each dataset was first registered. */
  registryPool?: Pool;
  /** The agreements, to list who receives each dataset and which agreements are degraded. */
  agreements?: AgreementStore;
}

/**
 * The catalog of the Shared Data Dictionary: datasets, fields with classifications, owners, and the
 * connection results (who publishes or receives which dataset, since when, how many records).
 */
export class Catalog {
  private readonly sources: CatalogSources;

  constructor(sources: CatalogSources) {
    this.sources = sources;
  }

  async datasets(): Promise<CatalogDataset[]> {
    const { dictionary } = this.sources;
    const connections = await this.connections();
    const agreements = await this.agreements();
    return [...dictionary.datasets.values()]
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((dataset) => ({
        ...this.describe(dataset, connections.get(dataset.id) ?? []),
        ...(agreements ? { agreements: agreements.get(dataset.id) ?? [] } : {}),
      }));
  }

  /** Agreements by dataset, with their degradation; undefined when the catalog has no agreement store. */
  private async agreements(): Promise<Map<string, CatalogAgreement[]> | undefined> {
    const store = this.sources.agreements;
    if (!store) return undefined;
    const [all, degraded] = await Promise.all([store.list(), store.degradations()]);
    const byDataset = new Map<string, CatalogAgreement[]>();
    for (const agreement of all) {
      if (agreement.status === 'requested' || agreement.status === 'refused') continue;
      const entry: CatalogAgreement = {
        id: agreement.id,
        subscriber: agreement.subscriber,
        status: agreement.status,
        degraded: degraded.get(agreement.id) ?? null,
      };
      byDataset.set(agreement.dataset, [...(byDataset.get(agreement.dataset) ?? []), entry]);
    }
    return byDataset;
  }

  async dataset(id: string): Promise<CatalogDataset | undefined> {
    return (await this.datasets()).find((dataset) => dataset.id === id);
  }

  private describe(dataset: Dataset, connections: Connection[]): CatalogDataset {
    const topic = topics.source(dataset.id);
    return {
      id: dataset.id,
      owner: dataset.owner,
      kind: dataset.kind,
      description: dataset.description,
      key: dataset.key.field,
      retention: dataset.retention,
      compatibility: compatibilityOf(dataset),
      topic,
      subjects: { key: subjects.key(topic), value: subjects.value(topic) },
      fields: catalogFields(dataset.fields),
      connections,
    };
  }

  private async firstRegistrations(): Promise<Map<string, string>> {
    if (!this.sources.registryPool) return new Map();
    const { rows } = await this.sources.registryPool.query<{ subject: string; since: Date }>(
      'SELECT subject, MIN(created_at) AS since FROM registry_subject_version GROUP BY subject',
    );
    return new Map(rows.map((row) => [row.subject, row.since.toISOString()]));
  }

  /** Connection results per dataset id, read live from Kafka offsets and consumer groups. */
  private async connections(): Promise<Map<string, Connection[]>> {
    const result = new Map<string, Connection[]>();
    const { kafka, dictionary } = this.sources;
    if (!kafka) return result;
    const registered = await this.firstRegistrations();
    const admin = kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const { groups } = await admin.listGroups();
      for (const dataset of dictionary.datasets.values()) {
        const topic = topics.source(dataset.id);
        if (!existing.has(topic)) continue;
        const offsets = await admin.fetchTopicOffsets(topic);
        const list: Connection[] = [
          {
            agency: dataset.owner,
            role: 'publishes',
            via: topic,
            since: registered.get(subjects.value(topic)) ?? null,
            records: offsets.reduce(
              (sum, partition) => sum + Number(partition.high) - Number(partition.low),
              0,
            ),
          },
        ];
        for (const { groupId } of groups) {
          const agency = agencyOfGroup(groupId, dictionary);
          if (!agency) continue;
          const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
          const records =
            committed?.partitions.reduce(
              (sum, partition) => sum + Math.max(0, Number(partition.offset)),
              0,
            ) ?? 0;
          if (records > 0) list.push({ agency, role: 'receives', via: groupId, since: null, records });
        }
        result.set(dataset.id, list);
      }
    } finally {
      await admin.disconnect();
    }
    return result;
  }
}
