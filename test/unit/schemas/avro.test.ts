import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { avroNames, changeEventSchema, keySchema } from '../../../schemas/avro/generate.ts';
import { avroTypeOptions } from '../../../schemas/avro/logical-types.ts';
import { getDataset, loadDictionary } from '../../../schemas/model/dictionary.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';

const citizen = getDataset(loadDictionary(), 'population.citizen');

describe('Avro schemas generated from the dictionary', () => {
  it('names records after the dataset id, with Avro-safe namespaces', () => {
    expect(avroNames('population.citizen')).toEqual({
      namespace: 'vn.lienthong.population',
      record: 'Citizen',
    });
    expect(avroNames('civil-status.birth')).toEqual({
      namespace: 'vn.lienthong.civil_status',
      record: 'Birth',
    });
  });

  it('round-trips a change event with dates as YYYY-MM-DD and timestamps as Date', () => {
    const type = avro.Type.forSchema(changeEventSchema(citizen) as avro.Schema, avroTypeOptions());
    const after = sampleCitizens(1)[0]!;
    const event = {
      eventId: '01890a5d-ac96-774b-bcce-b302099a8057',
      dataset: 'population.citizen',
      op: 'CREATE',
      key: after.personal_id,
      version: 1,
      occurredAt: new Date('2026-11-27T06:00:00.123Z'),
      sourceAgency: 'BCA',
      traceId: 't-1',
      after,
    };
    expect(type.fromBuffer(type.toBuffer(event))).toEqual(event);
  });

  it('refuses an impossible date and a missing required field', () => {
    const type = avro.Type.forSchema(changeEventSchema(citizen) as avro.Schema, avroTypeOptions());
    const after = sampleCitizens(1)[0]!;
    const base = {
      eventId: 'e',
      dataset: 'd',
      op: 'UPDATE',
      key: 'k',
      version: 2,
      occurredAt: new Date(),
      sourceAgency: 'BCA',
      traceId: 't',
    };
    expect(type.isValid({ ...base, after })).toBe(true);
    expect(type.isValid({ ...base, after: { ...after, birth_date: '2001-02-30' } })).toBe(false);
    expect(type.isValid({ ...base, after: { ...after, full_name: undefined } })).toBe(false);
  });

  it('keys records by their identification code alone', () => {
    const type = avro.Type.forSchema(keySchema(citizen) as avro.Schema);
    const string = avro.Type.forSchema('string');
    expect(type.toBuffer({ personal_id: '001204012345' })).toEqual(string.toBuffer('001204012345'));
  });
});
