import { describe, expect, it } from 'vitest';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { sampleEnterprises } from '../../../producers/sample/enterprises.ts';
import { getDataset, loadDictionary } from '../../../schemas/model/dictionary.ts';
import { createRecordValidator } from '../../../schemas/model/validator.ts';

const dictionary = loadDictionary();
const validatorFor = (id: string) => createRecordValidator(getDataset(dictionary, id), dictionary);
const citizens = validatorFor('population.citizen');
const enterprises = validatorFor('business.enterprise');
const citizen = sampleCitizens(1, 11)[0]!;

function problemsOf(result: ReturnType<typeof citizens>): string[] {
  return result.ok ? [] : result.problems.map((problem) => `${problem.path}: ${problem.message}`);
}

describe('the record validator generated from the dictionary', () => {
  it('accepts the sample citizens and enterprises', () => {
    for (const record of sampleCitizens(200, 3)) expect(problemsOf(citizens(record))).toEqual([]);
    for (const record of sampleEnterprises(100)) expect(problemsOf(enterprises(record))).toEqual([]);
  });

  it('says why a personal ID contradicts the birth year', () => {
    const record = {
      ...citizen,
      personal_id: '001099012345',
      birth_date: '2001-05-04',
      gender: 'M',
      birth_registration_province: '01',
    };
    expect(problemsOf(citizens(record)).join('\n')).toContain(
      'personal_id: 001099012345: century/gender digit 0 contradicts birth year 2001',
    );
  });

  it('refuses a personal ID whose province digits are not the province of birth registration', () => {
    const record = {
      ...citizen,
      birth_registration_province: citizen.birth_registration_province === '79' ? '01' : '79',
    };
    expect(problemsOf(citizens(record)).join('\n')).toMatch(
      /personal_id: \d{12}: province digits 0\d\d contradict the province of birth registration/,
    );
  });

  it('refuses an unknown field instead of dropping it', () => {
    expect(problemsOf(citizens({ ...citizen, blood_type: 'O' }))).toEqual([
      '(record): unknown field(s) "blood_type": not in the dictionary',
    ]);
  });

  it('refuses a missing required field and a wrong type, naming each field', () => {
    const { full_name: _dropped, ...withoutName } = citizen;
    const problems = problemsOf(citizens({ ...withoutName, gender: 1 }));
    expect(problems).toContain('full_name: expected a string');
    expect(problems.some((problem) => problem.startsWith('gender: '))).toBe(true);
  });

  it('refuses codes that are not in their code list, and impossible dates', () => {
    const problems = problemsOf(citizens({ ...citizen, province_code: '99', birth_date: '2001-02-30' }));
    expect(problems).toContain('province_code: "99" is not in the province code list');
    expect(problems).toContain('birth_date: not a real date written YYYY-MM-DD');
  });

  it('knows the calendar: leap days, month lengths, month numbers', () => {
    const notADate = 'birth_date: not a real date written YYYY-MM-DD';
    const dateProblem = (birth_date: string): boolean =>
      problemsOf(citizens({ ...citizen, birth_date })).includes(notADate);
    for (const real of ['2000-02-29', '2024-02-29', '1999-12-31', '2023-04-30', '2023-01-31'])
      expect(dateProblem(real), real).toBe(false);
    for (const unreal of ['1900-02-29', '2023-02-29', '2023-04-31', '2023-13-01', '2023-00-10', '2023-06-00'])
      expect(dateProblem(unreal), unreal).toBe(true);
  });

  it('checks array items against their code list', () => {
    expect(problemsOf(citizens({ ...citizen, nationalities: ['VN', 'XX'] }))).toEqual([
      'nationalities.1: "XX" is not in the nationality code list',
    ]);
  });

  it('fills absent optional fields with null', () => {
    const { death_date: _absent, ...rest } = citizen;
    const result = citizens(rest);
    expect(result.ok && result.record.death_date).toBe(null);
  });

  it('checks the tax code check digit and decimal precision', () => {
    const enterprise = sampleEnterprises(1)[0]!;
    const code = String(enterprise.enterprise_code);
    const wrong = `${code.slice(0, 9)}${(Number(code[9]) + 1) % 10}`;
    const problems = problemsOf(
      enterprises({ ...enterprise, enterprise_code: wrong, charter_capital: '1.5' }),
    );
    expect(problems.some((problem) => problem.startsWith(`enterprise_code: ${wrong}: check digit`))).toBe(
      true,
    );
    expect(problems).toContain('charter_capital: more than 0 digits after the point');
  });

  it('validates nested records inside arrays (land parcel holders)', () => {
    const parcels = validatorFor('land.parcel');
    const parcel = {
      parcel_id: '00004-12-345',
      commune_code: '00004',
      map_sheet_no: 12,
      parcel_no: 345,
      area_m2: '120.5',
      land_use_purpose: 'ODT',
      holders: [{ holder_id: citizen.personal_id, holder_name: citizen.full_name, share_percent: '100.00' }],
    };
    expect(problemsOf(parcels(parcel))).toEqual([]);
    expect(
      problemsOf(
        parcels({ ...parcel, holders: [{ holder_id: 'x', holder_name: 'y', share_percent: '100.001' }] }),
      ),
    ).toEqual(['holders.0.share_percent: more than 2 digits after the point']);
  });
});
