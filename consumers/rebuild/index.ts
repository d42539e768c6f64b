export { rebuildNgdb, type NgdbRebuildOptions, type NgdbRebuildResult } from './ngdb-rebuild.ts';
export { compareNgdbTable, type TableComparison } from './compare.ts';
export { rebuildSchemas, type RebuildSchemas } from './shadow.ts';
