import type { DatasetRecord } from '../../schemas/envelope/change-event.ts';
import { formatPersonalId, type Gender } from '../../schemas/model/identifiers.ts';

/** A small seeded PRNG (mulberry32): the same seed gives the same sample data on every machine. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const SURNAMES = [
  'Nguyễn',
  'Trần',
  'Lê',
  'Phạm',
  'Hoàng',
  'Huỳnh',
  'Phan',
  'Vũ',
  'Võ',
  'Đặng',
  'Bùi',
  'Đỗ',
  'Hồ',
  'Ngô',
  'Dương',
  'Lý',
];
const MIDDLE: Record<Gender, string[]> = {
  M: ['Văn', 'Hữu', 'Đức', 'Minh', 'Quang', 'Thành'],
  F: ['Thị', 'Ngọc', 'Thu', 'Thanh', 'Mai', 'Kim'],
};
const GIVEN: Record<Gender, string[]> = {
  M: [
    'An',
    'Bình',
    'Cường',
    'Dũng',
    'Hải',
    'Hùng',
    'Khoa',
    'Long',
    'Nam',
    'Phong',
    'Quân',
    'Sơn',
    'Tuấn',
    'Việt',
  ],
  F: [
    'Anh',
    'Chi',
    'Dung',
    'Hà',
    'Hạnh',
    'Hoa',
    'Hương',
    'Lan',
    'Linh',
    'Nga',
    'Phương',
    'Thảo',
    'Trang',
    'Yến',
  ],
};

/** Provinces and communes the sample draws from; each commune belongs to its province (commune.yaml). */
export const SAMPLE_RESIDENCES = [
  { province: '01', communes: ['00004', '00008', '00025', '00070', '09022'], street: 'Phố Hàng Bài, Hà Nội' },
  { province: '79', communes: ['26734', '26740', '26743', '27004'], street: 'Đường Lê Lợi, TP Hồ Chí Minh' },
  { province: '48', communes: ['20194'], street: 'Đường Bạch Đằng, Đà Nẵng' },
  { province: '31', communes: ['11311'], street: 'Đường Lạch Tray, Hải Phòng' },
  { province: '92', communes: ['31117'], street: 'Đường Hòa Bình, Cần Thơ' },
] as const;

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** Moves a citizen's permanent residence to another sample province (a realistic UPDATE). */
export function relocate(citizen: DatasetRecord, random: () => number): DatasetRecord {
  const others = SAMPLE_RESIDENCES.filter((residence) => residence.province !== citizen.province_code);
  const target = pick(random, others);
  return {
    ...citizen,
    province_code: target.province,
    commune_code: pick(random, target.communes),
    permanent_address: `${1 + Math.floor(random() * 300)} ${target.street}`,
  };
}

/** `count` distinct, valid population.citizen records. */
export function sampleCitizens(count: number, seed = 278): DatasetRecord[] {
  return [...citizenStream(count, seed)];
}

/**
 * The records of {@link sampleCitizens}, the same for the same seed, made one at a time: a load generator
 * holds a batch, not a million records (only their ids, to keep them distinct).
 */
export function* citizenStream(count: number, seed = 278): Generator<DatasetRecord> {
  const random = seededRandom(seed);
  const ids = new Set<string>();
  while (ids.size < count) {
    const gender: Gender = random() < 0.5 ? 'M' : 'F';
    const year = 1935 + Math.floor(random() * 88);
    const birthDate = `${year}-${String(1 + Math.floor(random() * 12)).padStart(2, '0')}-${String(1 + Math.floor(random() * 28)).padStart(2, '0')}`;
    const birthPlace = pick(random, SAMPLE_RESIDENCES);
    const id = formatPersonalId(birthPlace.province, birthDate, gender, Math.floor(random() * 1_000_000));
    if (ids.has(id)) continue;
    ids.add(id);
    const residence = random() < 0.8 ? birthPlace : pick(random, SAMPLE_RESIDENCES);
    yield {
      personal_id: id,
      full_name: `${pick(random, SURNAMES)} ${pick(random, MIDDLE[gender])} ${pick(random, GIVEN[gender])}`,
      birth_date: birthDate,
      gender,
      birth_registration_province: birthPlace.province,
      province_code: residence.province,
      commune_code: pick(random, residence.communes),
      permanent_address: `${1 + Math.floor(random() * 300)} ${residence.street}`,
      ethnicity: random() < 0.85 ? '01' : null,
      nationalities: random() < 0.98 ? ['VN'] : ['VN', pick(random, ['LA', 'KH', 'FR', 'US'] as const)],
      death_date: null,
    };
  }
}
