// Generated from schemas/dictionary by `npm run lienthong -- dictionary generate`. Do not edit.

/** Administrative units (after the 2025 reorganisation) — owner BTC, key unit_code. */
export interface AdminUnit {
  /** Unit code (2 digits province, 5 digits commune) (public) */
  unit_code: string;
  /** Administrative level (public) */
  level: string;
  /** Official name (public) */
  name: string;
  /** Province of a commune (public) */
  parent_code?: string | null;
  /** In force from (public) */
  effective_from: string;
  /** In force until (codes are never reused) (public) */
  effective_until?: string | null;
  /** Codes of the units it replaced (public) */
  predecessor_codes: string[];
}

/** National Business Registration Database — enterprise record — owner BTC, key enterprise_code. */
export interface BusinessEnterprise {
  /** Enterprise code, which is also its tax code (10 digits with check digit) (public) */
  enterprise_code: string;
  /** Registered name in Vietnamese (public) */
  name: string;
  /** Registered name in a foreign language (public) */
  foreign_name?: string | null;
  /** Type of enterprise (public) */
  enterprise_type: string;
  /** Operating status (a dissolution is an update, not a delete) (public) */
  status: string;
  /** Date of first registration (public) */
  established_on: string;
  /** Charter capital (VND) (public) */
  charter_capital: string;
  /** Legal representative's personal ID (personal) */
  legal_representative_id: string;
  /** Legal representative's full name (personal) */
  legal_representative_name: string;
  /** Commune of the head office (public) */
  head_office_commune_code: string;
  /** Head office address (public) */
  head_office_address: string;
  /** Registered business lines (VSIC codes) (public) */
  industry_codes: string[];
}

/** Electronic civil-status database — birth registration — owner BTP, key registration_no. */
export interface CivilStatusBirth {
  /** Birth registration number: commune code - year - sequence (internal) */
  registration_no: string;
  /** The child's personal ID (personal) */
  child_personal_id: string;
  /** The child's full name (personal) */
  child_full_name: string;
  /** Date of birth (personal) */
  birth_date: string;
  /** Gender (personal) */
  gender: string;
  /** Commune of birth (personal) */
  birth_place_commune_code: string;
  /** The mother's personal ID (personal) */
  mother_personal_id?: string | null;
  /** The father's personal ID (personal) */
  father_personal_id?: string | null;
  /** Date of registration (internal) */
  registered_on: string;
  /** Commune that registered the birth (internal) */
  registering_commune_code: string;
}

/** National Insurance Database — participant — owner BHXH, key personal_id. */
export interface InsuranceParticipant {
  /** Personal ID (used as the social insurance number) (personal) */
  personal_id: string;
  /** Full name (personal) */
  full_name: string;
  /** Insurance schemes joined (personal) */
  schemes: string[];
  /** Employer's enterprise code (personal) */
  employer_code?: string | null;
  /** Salary on which contributions are paid (VND) (sensitive-personal) */
  contribution_salary?: string | null;
  /** Participation status (personal) */
  status: string;
  /** Date of first participation (personal) */
  joined_on: string;
  /** Registered primary health-care facility (sensitive-personal) */
  health_facility_code?: string | null;
}

/** National Land Database — land parcel — owner BNNMT, key parcel_id. */
export interface LandParcel {
  /** Parcel id: commune code - map sheet number - parcel number (public) */
  parcel_id: string;
  /** Commune where the parcel lies (public) */
  commune_code: string;
  /** Cadastral map sheet number (public) */
  map_sheet_no: number;
  /** Parcel number on the sheet (public) */
  parcel_no: number;
  /** Area (m²) (public) */
  area_m2: string;
  /** Land-use purpose (public) */
  land_use_purpose: string;
  /** Use term ends (empty when permanent) (public) */
  use_term_until?: string | null;
  /** Land users (holders of land-use rights) (personal) */
  holders: Array<{
    /** Personal ID or enterprise code (personal) */
    holder_id: string;
    /** Name of the land user (personal) */
    holder_name: string;
    /** Share of joint use (%) (personal) */
    share_percent: string;
  }>;
  /** Land-use right certificate serial (internal) */
  certificate_no?: string | null;
}

/** National Population Database — citizen record — owner BCA, key personal_id. */
export interface PopulationCitizen {
  /** Personal identification number (12 digits) (personal) */
  personal_id: string;
  /** Full name at birth registration (personal) */
  full_name: string;
  /** Date of birth (personal) */
  birth_date: string;
  /** Gender (personal) */
  gender: string;
  /** Province of birth registration, as coded when registered (digits 2–3 of the personal ID) (personal) */
  birth_registration_province: string;
  /** Province of permanent residence (2-digit code) (internal) */
  province_code: string;
  /** Commune of permanent residence (5-digit code) (internal) */
  commune_code: string;
  /** Permanent residence address (personal) */
  permanent_address?: string | null;
  /** Ethnic group (sensitive-personal) */
  ethnicity?: string | null;
  /** Nationalities (ISO 3166 codes) (personal) */
  nationalities: string[];
  /** Date of death, once registered (personal) */
  death_date?: string | null;
}

/** Every dataset id of the dictionary and the record type it carries. */
export interface DatasetRecords {
  'admin.unit': AdminUnit;
  'business.enterprise': BusinessEnterprise;
  'civil-status.birth': CivilStatusBirth;
  'insurance.participant': InsuranceParticipant;
  'land.parcel': LandParcel;
  'population.citizen': PopulationCitizen;
}

export type DatasetId = keyof DatasetRecords;
