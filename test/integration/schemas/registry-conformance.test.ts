import { COMPATIBILITY, SchemaType } from '@kafkajs/confluent-schema-registry';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SchemaRegistry } from '../../../schemas/registry/client.ts';
import { testFetch, testRegistry, uniqueName } from '../../helpers/services.ts';

/**
 * Conformance with the Confluent Schema Registry REST API, as its clients see it. The expected behaviour
 * comes from Confluent's own code and docs (confluentinc/schema-registry: SubjectVersionsResource,
 * SubjectsResource, SchemasResource, CompatibilityResource, ConfigResource, KafkaSchemaRegistry, Errors;
 * docs.confluent.io "Schema Registry API reference" and "Delete Schemas"): status codes, `error_code`
 * values, body shapes and the soft/permanent delete rules.
 */

const MEDIA_TYPE = 'application/vnd.schemaregistry.v1+json';

interface Reply {
  status: number;
  contentType: string | null;
  body: unknown;
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<Reply> {
  const response = await testFetch(`${base}${path}`, {
    method,
    headers: body === undefined ? { accept: MEDIA_TYPE } : { accept: MEDIA_TYPE, 'content-type': MEDIA_TYPE },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: text === '' ? undefined : (JSON.parse(text) as unknown),
  };
}

/** Asserts a 200 in the registry's media type and returns its body. */
function ok(reply: Reply): unknown {
  expect({ status: reply.status, body: reply.body }).toMatchObject({ status: 200 });
  expect(reply.contentType).toBe(MEDIA_TYPE);
  return reply.body;
}

/** Asserts a Confluent error (`{ error_code, message }` in the registry's media type) and returns its message. */
function failure(reply: Reply, status: number, errorCode: number): string {
  expect(reply.contentType).toBe(MEDIA_TYPE);
  expect(reply.status).toBe(status);
  expect(reply.body).toEqual({ error_code: errorCode, message: expect.any(String) });
  return (reply.body as { message: string }).message;
}

type AvroJson = Record<string, unknown>;

function record(name: string, fields: AvroJson[]): AvroJson {
  return { type: 'record', name, namespace: 'lt.conformance', fields };
}

const idField = { name: 'id', type: 'string' };
const ageField = { name: 'age', type: 'int' };
const ageWithDefault = { name: 'age', type: 'int', default: 0 };
const emailField = { name: 'email', type: ['null', 'string'], default: null };
const nationalIdField = { name: 'nationalId', type: 'string' };

/** `{ schema }` as a registration or lookup body. */
const schemaBody = (schema: AvroJson): { schema: string } => ({ schema: JSON.stringify(schema) });

describe('a Confluent client (@kafkajs/confluent-schema-registry) works against the registry unchanged', () => {
  let client: SchemaRegistry;
  let url: string;
  const subject = uniqueName('lt-conf-client-');
  const v1 = record('Person', [idField, ageField]);
  const v2 = record('Person', [idField, ageField, emailField]);
  let v1Id: number;
  let v2Id: number;
  let writtenWithV1: Buffer;

  beforeAll(async () => {
    ({ client, url } = await testRegistry());
  });

  it('registers a schema under an explicit subject and sets the compatibility level it was given', async () => {
    const { id } = await client.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(v1) },
      { subject, compatibility: COMPATIBILITY.FULL_TRANSITIVE },
    );
    v1Id = id;
    expect(v1Id).toBeGreaterThan(0);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([1]);
    expect(ok(await call(url, 'GET', `/config/${subject}`))).toEqual({
      compatibilityLevel: 'FULL_TRANSITIVE',
    });
  });

  it('encodes a record in the Confluent wire format and decodes it back', async () => {
    writtenWithV1 = await client.encode(v1Id, { id: 'c-1', age: 41 });
    expect(writtenWithV1[0]).toBe(0);
    expect(writtenWithV1.readInt32BE(1)).toBe(v1Id);
    expect(await client.decode(writtenWithV1)).toEqual({ id: 'c-1', age: 41 });
  });

  it('registers a compatible second version; data written with either version decodes with its writer schema', async () => {
    ({ id: v2Id } = await client.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(v2) },
      { subject, compatibility: COMPATIBILITY.FULL_TRANSITIVE },
    ));
    expect(v2Id).not.toBe(v1Id);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([1, 2]);

    const writtenWithV2 = await client.encode(v2Id, { id: 'c-2', age: 7, email: 'c2@example.vn' });
    expect(writtenWithV2.readInt32BE(1)).toBe(v2Id);
    // the client reads with the writer schema named in each message: v1 data has no email field at all
    expect(await client.decode(writtenWithV1)).toEqual({ id: 'c-1', age: 41 });
    expect(await client.decode(writtenWithV2)).toEqual({ id: 'c-2', age: 7, email: 'c2@example.vn' });
  });

  it('answers getLatestSchemaId with the newest version and getRegistryIdBySchema with the matching one', async () => {
    expect(await client.getLatestSchemaId(subject)).toBe(v2Id);
    expect(
      await client.getRegistryIdBySchema(subject, { type: SchemaType.AVRO, schema: JSON.stringify(v1) }),
    ).toBe(v1Id);
    await expect(
      client.getRegistryIdBySchema(subject, {
        type: SchemaType.AVRO,
        schema: JSON.stringify(record('Person', [idField])),
      }),
    ).rejects.toThrow(/Schema not found/);
  });

  it('gets a 409 listing the incompatibility when registering an incompatible schema, and no new version', async () => {
    const incompatible = record('Person', [idField, ageField, emailField, nationalIdField]);
    const error = await client
      .register(
        { type: SchemaType.AVRO, schema: JSON.stringify(incompatible) },
        { subject, compatibility: COMPATIBILITY.FULL_TRANSITIVE },
      )
      .then(
        () => undefined,
        (caught: unknown) => caught as Error & { status?: number },
      );
    expect(error?.status).toBe(409);
    expect(error?.message).toContain('READER_FIELD_MISSING_DEFAULT_VALUE');
    expect(error?.message).toContain("'nationalId'");
    expect(error?.message).toContain(`subject "${subject}"`);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([1, 2]);
  });
});

describe('registering and reading schemas over HTTP', () => {
  let url: string;
  const first = uniqueName('lt-conf-a-');
  const second = uniqueName('lt-conf-b-');
  const order = record('Order', [idField, { name: 'total', type: 'long' }]);
  let orderId: number;

  beforeAll(async () => {
    ({ url } = await testRegistry());
  });

  it('POST /subjects/{s}/versions answers {id}, and GET /schemas/ids/{id} returns the schema', async () => {
    const body = ok(await call(url, 'POST', `/subjects/${first}/versions`, schemaBody(order)));
    expect(body).toEqual({ id: expect.any(Number) });
    orderId = (body as { id: number }).id;
    const fetched = ok(await call(url, 'GET', `/schemas/ids/${orderId}`)) as { schema: string };
    expect(Object.keys(fetched)).toEqual(['schema']); // no schemaType for AVRO, as Confluent omits it
    expect(JSON.parse(fetched.schema)).toEqual(order);
  });

  it('registering the same schema again under the same subject returns the same id and adds no version', async () => {
    expect(ok(await call(url, 'POST', `/subjects/${first}/versions`, schemaBody(order)))).toEqual({
      id: orderId,
    });
    expect(ok(await call(url, 'GET', `/subjects/${first}/versions`))).toEqual([1]);
  });

  it('the same schema, re-formatted with other whitespace and key order, gets the same id under another subject', async () => {
    const reformatted =
      '{ "fields" : [ {"type":"string",  "name":"id"},\n {"type": "long", "name": "total"} ],\n' +
      '  "namespace": "lt.conformance", "name": "Order", "type": "record" }';
    expect(ok(await call(url, 'POST', `/subjects/${second}/versions`, { schema: reformatted }))).toEqual({
      id: orderId,
    });
    expect(ok(await call(url, 'GET', `/subjects/${second}/versions`))).toEqual([1]);
    const usedBy = ok(await call(url, 'GET', `/schemas/ids/${orderId}/versions`)) as {
      subject: string;
      version: number;
    }[];
    expect([...usedBy].sort((a, b) => a.subject.localeCompare(b.subject))).toEqual(
      [
        { subject: first, version: 1 },
        { subject: second, version: 1 },
      ].sort((a, b) => a.subject.localeCompare(b.subject)),
    );
  });

  it('POST /subjects/{s} finds a registered schema and returns its subject, id, version and schema', async () => {
    const body = ok(await call(url, 'POST', `/subjects/${second}`, schemaBody(order))) as Record<
      string,
      unknown
    >;
    expect(body).toEqual({ subject: second, id: orderId, version: 1, schema: expect.any(String) });
    expect(JSON.parse(body.schema as string)).toEqual(order);
  });

  it('POST /subjects/{s} is 40401 for an unknown subject and 40403 for a schema not registered under it', async () => {
    failure(await call(url, 'POST', `/subjects/${uniqueName('lt-none-')}`, schemaBody(order)), 404, 40401);
    const other = record('Order', [idField]);
    failure(await call(url, 'POST', `/subjects/${first}`, schemaBody(other)), 404, 40403);
  });

  it('GET /subjects lists the subjects and GET /subjects/{s}/versions the versions of one', async () => {
    const v2 = record('Order', [idField, { name: 'total', type: 'long' }, emailField]);
    const { id: v2Id } = ok(await call(url, 'POST', `/subjects/${first}/versions`, schemaBody(v2))) as {
      id: number;
    };
    expect(v2Id).toBe(orderId + 1);
    expect(ok(await call(url, 'GET', '/subjects'))).toEqual([first, second].sort());
    expect(ok(await call(url, 'GET', `/subjects/${first}/versions`))).toEqual([1, 2]);
    failure(await call(url, 'GET', `/subjects/${uniqueName('lt-none-')}/versions`), 404, 40401);
  });

  it('GET /subjects/{s}/versions/{v} and /latest return {subject, id, version, schema}', async () => {
    const one = ok(await call(url, 'GET', `/subjects/${first}/versions/1`)) as Record<string, unknown>;
    expect(one).toEqual({ subject: first, id: orderId, version: 1, schema: expect.any(String) });
    expect(JSON.parse(one.schema as string)).toEqual(order);
    expect(ok(await call(url, 'GET', `/subjects/${first}/versions/latest`))).toMatchObject({
      subject: first,
      id: orderId + 1,
      version: 2,
    });
    // -1 is Confluent's other spelling of latest, and latest is read in any case
    expect(ok(await call(url, 'GET', `/subjects/${first}/versions/-1`))).toMatchObject({ version: 2 });
    expect(ok(await call(url, 'GET', `/subjects/${first}/versions/LATEST`))).toMatchObject({ version: 2 });
  });

  it('an unknown version is 40402 and a version of an unknown subject is 40401', async () => {
    expect(failure(await call(url, 'GET', `/subjects/${first}/versions/3`), 404, 40402)).toBe(
      'Version 3 not found.',
    );
    const unknown = uniqueName('lt-none-');
    expect(failure(await call(url, 'GET', `/subjects/${unknown}/versions/1`), 404, 40401)).toBe(
      `Subject '${unknown}' not found.`,
    );
  });

  it('a malformed version such as abc, 0, -2, 1.5 or 1e0 is a 42202 on every route that takes one', async () => {
    for (const version of ['abc', '0', '-2', '1.5', '1e0']) {
      failure(await call(url, 'GET', `/subjects/${first}/versions/${version}`), 422, 42202);
      failure(await call(url, 'DELETE', `/subjects/${first}/versions/${version}`), 422, 42202);
      failure(
        await call(url, 'POST', `/compatibility/subjects/${first}/versions/${version}`, schemaBody(order)),
        422,
        42202,
      );
    }
    // nothing was deleted on the way
    expect(ok(await call(url, 'GET', `/subjects/${first}/versions`))).toEqual([1, 2]);
  });

  it('GET /schemas/ids/{id} and /schemas/ids/{id}/versions are 40403 for an unknown id', async () => {
    failure(await call(url, 'GET', '/schemas/ids/9999'), 404, 40403);
    failure(await call(url, 'GET', '/schemas/ids/9999/versions'), 404, 40403);
  });
});

describe('invalid and incompatible registrations leave nothing behind', () => {
  let url: string;
  const subject = uniqueName('lt-conf-reject-');
  const v1 = record('Citizen', [idField, ageField]);
  let v1Id: number;

  beforeAll(async () => {
    ({ url } = await testRegistry());
    ({ id: v1Id } = ok(await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(v1))) as {
      id: number;
    });
  });

  it('an invalid Avro schema is a 42201 whose message carries the parser reason', async () => {
    const typo = record('Citizen', [idField, { name: 'age', type: 'innt' }]);
    const message = failure(
      await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(typo)),
      422,
      42201,
    );
    expect(message).toContain('undefined type name: lt.conformance.innt');
    const notJson = failure(
      await call(url, 'POST', `/subjects/${subject}/versions`, { schema: '{"type": "record", ' }),
      422,
      42201,
    );
    expect(notJson).toMatch(/not JSON/);
  });

  it('an incompatible schema is a 409 that names the subject and lists the incompatibility', async () => {
    const incompatible = record('Citizen', [idField, ageField, nationalIdField]);
    const message = failure(
      await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(incompatible)),
      409,
      409,
    );
    expect(message).toContain(`incompatible with an earlier schema for subject "${subject}"`);
    expect(message).toContain("errorType:'READER_FIELD_MISSING_DEFAULT_VALUE'");
    expect(message).toContain("location:'/fields/2'");
    expect(message).toContain("{compatibility: 'BACKWARD'}");
  });

  it('after both refusals the subject still has one version and no schema id was taken', async () => {
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([1]);
    failure(await call(url, 'GET', `/schemas/ids/${v1Id + 1}`), 404, 40403);
    const compatible = record('Citizen', [idField, ageField, emailField]);
    expect(ok(await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(compatible)))).toEqual({
      id: v1Id + 1,
    });
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([1, 2]);
  });

  it('an invalid first registration does not create the subject', async () => {
    const fresh = uniqueName('lt-conf-never-');
    failure(await call(url, 'POST', `/subjects/${fresh}/versions`, { schema: '"no-such-type"' }), 422, 42201);
    failure(await call(url, 'GET', `/subjects/${fresh}/versions`), 404, 40401);
    expect(ok(await call(url, 'GET', '/subjects?deleted=true'))).toEqual([subject]);
  });
});

describe('soft and permanent deletion follow Confluent’s two steps', () => {
  let url: string;
  const subject = uniqueName('lt-conf-del-');
  const v1 = record('Parcel', [idField]);
  const v2 = record('Parcel', [idField, emailField]);
  const v3 = record('Parcel', [idField, emailField, { name: 'area', type: 'double', default: 0 }]);
  let ids: number[];

  beforeAll(async () => {
    ({ url } = await testRegistry());
    ids = [];
    for (const schema of [v1, v2, v3]) {
      const { id } = ok(await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(schema))) as {
        id: number;
      };
      ids.push(id);
    }
  });

  it('DELETE /subjects/{s}/versions/{v} soft-deletes: the version is hidden but stays readable by id and with ?deleted=true', async () => {
    expect(ok(await call(url, 'DELETE', `/subjects/${subject}/versions/1`))).toBe(1);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([2, 3]);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions?deleted=true`))).toEqual([1, 2, 3]);
    failure(await call(url, 'GET', `/subjects/${subject}/versions/1`), 404, 40402);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions/1?deleted=true`))).toMatchObject({
      version: 1,
      id: ids[0],
    });
    expect(
      JSON.parse((ok(await call(url, 'GET', `/schemas/ids/${ids[0]}`)) as { schema: string }).schema),
    ).toEqual(v1);
    expect(ok(await call(url, 'GET', `/schemas/ids/${ids[0]}/versions`))).toEqual([]);
    expect(ok(await call(url, 'GET', `/schemas/ids/${ids[0]}/versions?deleted=true`))).toEqual([
      { subject, version: 1 },
    ]);
    failure(await call(url, 'POST', `/subjects/${subject}`, schemaBody(v1)), 404, 40403);
    expect(ok(await call(url, 'POST', `/subjects/${subject}?deleted=true`, schemaBody(v1)))).toMatchObject({
      version: 1,
      id: ids[0],
    });
  });

  it('soft-deleting a version twice is 40406, and a permanent delete without a soft delete first is 40407', async () => {
    failure(await call(url, 'DELETE', `/subjects/${subject}/versions/1`), 404, 40406);
    failure(await call(url, 'DELETE', `/subjects/${subject}/versions/2?permanent=true`), 404, 40407);
    failure(await call(url, 'DELETE', `/subjects/${subject}/versions/9`), 404, 40402);
    failure(await call(url, 'DELETE', `/subjects/${uniqueName('lt-none-')}/versions/1`), 404, 40401);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([2, 3]);
  });

  it('a permanent delete after the soft one removes the version for good, and its id with it', async () => {
    expect(ok(await call(url, 'DELETE', `/subjects/${subject}/versions/1?permanent=true`))).toBe(1);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions?deleted=true`))).toEqual([2, 3]);
    failure(await call(url, 'GET', `/subjects/${subject}/versions/1?deleted=true`), 404, 40402);
    failure(await call(url, 'GET', `/schemas/ids/${ids[0]}`), 404, 40403);
    failure(await call(url, 'GET', `/schemas/ids/${ids[0]}/versions?deleted=true`), 404, 40403);
  });

  it('latest always means the latest live version, so a permanent delete of latest is refused', async () => {
    expect(ok(await call(url, 'DELETE', `/subjects/${subject}/versions/latest`))).toBe(3);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions/latest`))).toMatchObject({ version: 2 });
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions/latest?deleted=true`))).toMatchObject({
      version: 2,
    });
    // latest is version 2, still live: Confluent refuses rather than reaching for soft-deleted version 3
    failure(await call(url, 'DELETE', `/subjects/${subject}/versions/latest?permanent=true`), 404, 40407);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions?deleted=true`))).toEqual([2, 3]);
  });

  it('registering a soft-deleted schema again makes a new version with the same id and drops the deleted one', async () => {
    expect(ok(await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(v3)))).toEqual({
      id: ids[2],
    });
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions?deleted=true`))).toEqual([2, 4]);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions/latest`))).toMatchObject({
      version: 4,
      id: ids[2],
    });
  });

  it('DELETE /subjects/{s}?permanent=true is refused with 40405 while the subject has live versions', async () => {
    failure(await call(url, 'DELETE', `/subjects/${subject}?permanent=true`), 404, 40405);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([2, 4]);
  });

  it('DELETE /subjects/{s} soft-deletes every live version, returns them and drops the subject level', async () => {
    expect(ok(await call(url, 'PUT', `/config/${subject}`, { compatibility: 'NONE' }))).toEqual({
      compatibility: 'NONE',
    });
    expect(ok(await call(url, 'DELETE', `/subjects/${subject}`))).toEqual([2, 4]);
    expect(ok(await call(url, 'GET', '/subjects'))).toEqual([]);
    expect(ok(await call(url, 'GET', '/subjects?deleted=true'))).toEqual([subject]);
    failure(await call(url, 'GET', `/subjects/${subject}/versions`), 404, 40401);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions?deleted=true`))).toEqual([2, 4]);
    failure(await call(url, 'GET', `/subjects/${subject}/versions/latest`), 404, 40401);
    failure(await call(url, 'GET', `/config/${subject}`), 404, 40408);
    failure(await call(url, 'DELETE', `/subjects/${subject}`), 404, 40404);
    failure(await call(url, 'DELETE', `/subjects/${uniqueName('lt-none-')}`), 404, 40401);
  });

  it('DELETE /subjects/{s}?permanent=true after the soft delete removes every version for good', async () => {
    expect(ok(await call(url, 'DELETE', `/subjects/${subject}?permanent=true`))).toEqual([2, 4]);
    expect(ok(await call(url, 'GET', '/subjects?deleted=true'))).toEqual([]);
    failure(await call(url, 'GET', `/subjects/${subject}/versions?deleted=true`), 404, 40401);
    failure(await call(url, 'GET', `/schemas/ids/${ids[1]}`), 404, 40403);
    failure(await call(url, 'GET', `/schemas/ids/${ids[2]}`), 404, 40403);
  });

  it('ids are never reused after a permanent delete, while versions of the emptied subject start again at 1', async () => {
    const fresh = record('Parcel', [idField, { name: 'owner', type: 'string' }]);
    const { id } = ok(await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(fresh))) as {
      id: number;
    };
    expect(ids).not.toContain(id);
    expect(id).toBe(Math.max(...ids) + 1);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([1]);
  });
});

describe('POST /compatibility/subjects/{s}/versions/{v} tests a schema without registering it', () => {
  let url: string;
  const subject = uniqueName('lt-conf-compat-');
  const v1 = record('Vehicle', [idField]);
  const v2 = record('Vehicle', [idField, ageWithDefault]);
  // reads v2 data (which has age) but not v1 data (no age, and no default here)
  const candidate = record('Vehicle', [idField, ageField]);

  beforeAll(async () => {
    ({ url } = await testRegistry());
    for (const schema of [v1, v2])
      ok(await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(schema)));
  });

  it('answers {is_compatible} against latest, true for a compatible schema and false for an incompatible one', async () => {
    const path = `/compatibility/subjects/${subject}/versions/latest`;
    expect(
      ok(await call(url, 'POST', path, schemaBody(record('Vehicle', [idField, ageWithDefault, emailField])))),
    ).toEqual({
      is_compatible: true,
    });
    expect(
      ok(
        await call(
          url,
          'POST',
          path,
          schemaBody(record('Vehicle', [idField, ageWithDefault, nationalIdField])),
        ),
      ),
    ).toEqual({
      is_compatible: false,
    });
  });

  it('with ?verbose=true lists the incompatibilities, and an empty list when compatible', async () => {
    const path = `/compatibility/subjects/${subject}/versions/latest?verbose=true`;
    const refused = ok(
      await call(
        url,
        'POST',
        path,
        schemaBody(record('Vehicle', [idField, ageWithDefault, nationalIdField])),
      ),
    ) as { is_compatible: boolean; messages: string[] };
    expect(refused.is_compatible).toBe(false);
    expect(refused.messages).toHaveLength(2);
    expect(refused.messages[0]).toContain("errorType:'READER_FIELD_MISSING_DEFAULT_VALUE'");
    expect(refused.messages[0]).toContain("'nationalId'");
    expect(refused.messages[1]).toBe("{compatibility: 'BACKWARD'}");
    expect(ok(await call(url, 'POST', path, schemaBody(v2)))).toEqual({ is_compatible: true, messages: [] });
  });

  it('checks against the one version named, and latest against the latest version only, even in a transitive level', async () => {
    const against = (version: string): Promise<Reply> =>
      call(url, 'POST', `/compatibility/subjects/${subject}/versions/${version}`, schemaBody(candidate));
    expect(ok(await against('1'))).toEqual({ is_compatible: false });
    expect(ok(await against('2'))).toEqual({ is_compatible: true });
    ok(await call(url, 'PUT', `/config/${subject}`, { compatibility: 'BACKWARD_TRANSITIVE' }));
    expect(ok(await against('latest'))).toEqual({ is_compatible: true });
    // registering, by contrast, checks every version in a transitive level
    failure(await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(candidate)), 409, 409);
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([1, 2]);
  });

  it('an unknown version is 40402, while latest of an unknown subject is compatible', async () => {
    failure(
      await call(url, 'POST', `/compatibility/subjects/${subject}/versions/7`, schemaBody(candidate)),
      404,
      40402,
    );
    const unknown = uniqueName('lt-none-');
    failure(
      await call(url, 'POST', `/compatibility/subjects/${unknown}/versions/1`, schemaBody(candidate)),
      404,
      40402,
    );
    expect(
      ok(
        await call(url, 'POST', `/compatibility/subjects/${unknown}/versions/latest`, schemaBody(candidate)),
      ),
    ).toEqual({ is_compatible: true });
  });

  it('an invalid schema is a 42201, or is_compatible false with the parser reason when verbose', async () => {
    const typo = record('Vehicle', [idField, { name: 'age', type: 'innt' }]);
    const path = `/compatibility/subjects/${subject}/versions/latest`;
    expect(failure(await call(url, 'POST', path, schemaBody(typo)), 422, 42201)).toContain(
      'undefined type name: lt.conformance.innt',
    );
    const verbose = ok(await call(url, 'POST', `${path}?verbose=true`, schemaBody(typo))) as {
      is_compatible: boolean;
      messages: string[];
    };
    expect(verbose.is_compatible).toBe(false);
    expect(verbose.messages).toEqual([expect.stringContaining('undefined type name: lt.conformance.innt')]);
  });
});

describe('GET/PUT /config and GET/PUT/DELETE /config/{s} manage compatibility levels', () => {
  let url: string;
  const subject = uniqueName('lt-conf-cfg-');

  beforeAll(async () => {
    ({ url } = await testRegistry());
    ok(await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(record('Permit', [idField]))));
  });

  it('GET /config returns the global level, BACKWARD by default, and PUT /config changes it and echoes the request', async () => {
    expect(ok(await call(url, 'GET', '/config'))).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect(ok(await call(url, 'PUT', '/config', { compatibility: 'FULL' }))).toEqual({
      compatibility: 'FULL',
    });
    expect(ok(await call(url, 'GET', '/config'))).toEqual({ compatibilityLevel: 'FULL' });
    expect(ok(await call(url, 'PUT', '/config', { compatibility: 'BACKWARD' }))).toEqual({
      compatibility: 'BACKWARD',
    });
  });

  it('GET /config/{s} without a subject level is 40408, or the global level with defaultToGlobal=true', async () => {
    expect(failure(await call(url, 'GET', `/config/${subject}`), 404, 40408)).toBe(
      `Subject '${subject}' does not have subject-level compatibility configured`,
    );
    expect(ok(await call(url, 'GET', `/config/${subject}?defaultToGlobal=true`))).toEqual({
      compatibilityLevel: 'BACKWARD',
    });
  });

  it('PUT /config/{s} sets the subject level, which GET /config/{s} returns and registration obeys', async () => {
    const breaking = record('Permit', [idField, nationalIdField]);
    failure(await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(breaking)), 409, 409);
    expect(ok(await call(url, 'PUT', `/config/${subject}`, { compatibility: 'NONE' }))).toEqual({
      compatibility: 'NONE',
    });
    expect(ok(await call(url, 'GET', `/config/${subject}`))).toEqual({ compatibilityLevel: 'NONE' });
    expect(ok(await call(url, 'GET', `/config/${subject}?defaultToGlobal=true`))).toEqual({
      compatibilityLevel: 'NONE',
    });
    expect(ok(await call(url, 'POST', `/subjects/${subject}/versions`, schemaBody(breaking)))).toEqual({
      id: expect.any(Number),
    });
    expect(ok(await call(url, 'GET', `/subjects/${subject}/versions`))).toEqual([1, 2]);
  });

  it('DELETE /config/{s} returns the removed level and reverts to the global one; with none set it is 40401', async () => {
    expect(ok(await call(url, 'DELETE', `/config/${subject}`))).toEqual({ compatibilityLevel: 'NONE' });
    failure(await call(url, 'GET', `/config/${subject}`), 404, 40408);
    expect(failure(await call(url, 'DELETE', `/config/${subject}`), 404, 40401)).toBe(
      `Subject '${subject}' not found.`,
    );
  });

  it('soft-deleting the last live version of a subject drops its subject level too', async () => {
    const lone = uniqueName('lt-conf-lone-');
    ok(await call(url, 'POST', `/subjects/${lone}/versions`, schemaBody(record('Licence', [idField]))));
    ok(await call(url, 'PUT', `/config/${lone}`, { compatibility: 'FULL' }));
    expect(ok(await call(url, 'DELETE', `/subjects/${lone}/versions/1`))).toBe(1);
    failure(await call(url, 'GET', `/config/${lone}`), 404, 40408);
  });

  it('an unknown compatibility level is a 42203 for the global and the subject level, and changes nothing', async () => {
    failure(await call(url, 'PUT', '/config', { compatibility: 'SIDEWAYS' }), 422, 42203);
    failure(await call(url, 'PUT', `/config/${subject}`, { compatibility: 'SIDEWAYS' }), 422, 42203);
    expect(ok(await call(url, 'GET', '/config'))).toEqual({ compatibilityLevel: 'BACKWARD' });
    failure(await call(url, 'GET', `/config/${subject}`), 404, 40408);
  });
});
