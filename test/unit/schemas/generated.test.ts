import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { sampleEnterprises } from '../../../producers/sample/enterprises.ts';
import { changeEventSchema, keySchema } from '../../../schemas/avro/generate.ts';
import { avroTypeOptions } from '../../../schemas/avro/logical-types.ts';
import type { DatasetRecord } from '../../../schemas/envelope/change-event.ts';
import { DICTIONARY_DIR, loadDictionary } from '../../../schemas/model/dictionary.ts';
import { generateTypeScript } from '../../../schemas/model/typescript.ts';
import { createRecordValidator } from '../../../schemas/model/validator.ts';

const dictionary = loadDictionary();

/** One valid record per dataset, covering decimals, nested records and arrays. */
const SAMPLES: Record<string, DatasetRecord> = {
  'population.citizen': sampleCitizens(1)[0]!,
  'business.enterprise': sampleEnterprises(1)[0]!,
  'land.parcel': {
    parcel_id: '26734-7-1203',
    commune_code: '26734',
    map_sheet_no: 7,
    parcel_no: 1203,
    area_m2: '85.4',
    land_use_purpose: 'ODT',
    use_term_until: null,
    holders: [
      { holder_id: '079204001234', holder_name: 'Trần Thị Lan', share_percent: '50.00' },
      { holder_id: '079203004321', holder_name: 'Lê Văn Nam', share_percent: '50.00' },
    ],
    certificate_no: 'DA 123456',
  },
  'insurance.participant': {
    personal_id: '001204012345',
    full_name: 'Nguyễn Văn An',
    schemes: ['BHXH-BB', 'BHYT'],
    employer_code: '0100233488',
    contribution_salary: '12500000',
    status: 'ACTIVE',
    joined_on: '2025-03-01',
    health_facility_code: '01-001',
  },
  'civil-status.birth': {
    registration_no: '00004-2026-000123',
    child_personal_id: '001326000123',
    child_full_name: 'Phạm Minh Anh',
    birth_date: '2026-02-14',
    gender: 'F',
    birth_place_commune_code: '00004',
    mother_personal_id: '001199004567',
    father_personal_id: null,
    registered_on: '2026-02-20',
    registering_commune_code: '00004',
  },
  'admin.unit': {
    unit_code: '79',
    level: 'PROVINCE',
    name: 'Thành phố Hồ Chí Minh',
    parent_code: null,
    effective_from: '2025-07-01',
    effective_until: null,
    predecessor_codes: ['74', '77', '79'],
  },
};

describe('generated artefacts of every dataset', () => {
  it('has a valid sample for each of the six datasets', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...dictionary.datasets.keys()].sort());
    for (const [id, record] of Object.entries(SAMPLES)) {
      const result = createRecordValidator(dictionary.datasets.get(id)!, dictionary)(record);
      expect(result.ok ? [] : result.problems, id).toEqual([]);
    }
  });

  it.each(Object.keys(SAMPLES))('round-trips a %s change event through its generated Avro schema', (id) => {
    const dataset = dictionary.datasets.get(id)!;
    const value = avro.Type.forSchema(changeEventSchema(dataset) as avro.Schema, avroTypeOptions());
    const key = avro.Type.forSchema(keySchema(dataset) as avro.Schema);
    const after = SAMPLES[id]!;
    const event = {
      eventId: 'e1',
      dataset: id,
      op: 'CREATE',
      key: String(after[dataset.key.field]),
      version: 1,
      occurredAt: new Date(0),
      sourceAgency: dataset.owner,
      traceId: 't',
      after,
    };
    expect(value.fromBuffer(value.toBuffer(event))).toEqual(event);
    expect(key.fromBuffer(key.toBuffer({ [dataset.key.field]: event.key }))).toEqual({
      [dataset.key.field]: event.key,
    });
  });

  it('keeps schemas/generated/datasets.ts in step with the dictionary (run `dictionary generate` after an edit)', () => {
    const committed = readFileSync(join(DICTIONARY_DIR, '..', 'generated', 'datasets.ts'), 'utf8');
    expect(committed).toBe(generateTypeScript(dictionary));
  });
});
