import type { DatasetRecord } from '../../schemas/envelope/change-event.ts';
import { formatTaxCode } from '../../schemas/model/identifiers.ts';
import { SAMPLE_RESIDENCES, sampleCitizens, seededRandom } from './citizens.ts';

const TYPES = ['TNHH1TV', 'TNHH2TV', 'CP', 'DNTN'] as const;
const TRADES = ['Thương mại', 'Xây dựng', 'Công nghệ', 'Vận tải', 'Nông sản', 'Du lịch'] as const;
const INDUSTRIES = ['4610', '4101', '6201', '4933', '0111', '7911'] as const;

/** `count` valid business.enterprise records whose legal representatives are sample citizens. */
export function sampleEnterprises(count: number, seed = 59): DatasetRecord[] {
  const random = seededRandom(seed);
  const people = sampleCitizens(count, seed + 1);
  const enterprises: DatasetRecord[] = [];
  const codes = new Set<string>();
  let sequence = Math.floor(random() * 1_000_000);
  while (enterprises.length < count) {
    const residence = SAMPLE_RESIDENCES[Math.floor(random() * SAMPLE_RESIDENCES.length)]!;
    const code = formatTaxCode(residence.province, sequence++);
    if (!code || codes.has(code)) continue;
    codes.add(code);
    const person = people[enterprises.length]!;
    const trade = Math.floor(random() * TRADES.length);
    enterprises.push({
      enterprise_code: code,
      name: `Công ty ${TYPES[enterprises.length % TYPES.length] === 'CP' ? 'Cổ phần' : 'TNHH'} ${TRADES[trade]} ${String(person.full_name).split(' ').at(-1)} ${enterprises.length + 1}`,
      foreign_name: null,
      enterprise_type: TYPES[enterprises.length % TYPES.length]!,
      status: 'ACTIVE',
      established_on: `20${String(10 + Math.floor(random() * 15))}-0${1 + Math.floor(random() * 9)}-1${Math.floor(random() * 9)}`,
      charter_capital: String((1 + Math.floor(random() * 500)) * 100_000_000),
      legal_representative_id: String(person.personal_id),
      legal_representative_name: String(person.full_name),
      head_office_commune_code: residence.communes[0],
      head_office_address: `${1 + Math.floor(random() * 200)} ${residence.street}`,
      industry_codes: [INDUSTRIES[trade]!],
    });
  }
  return enterprises;
}
