export { LienthongSdk, type SdkOptions } from './client.ts';
export type { DatasetId, DatasetRecords } from '../../schemas/generated/datasets.ts';
