-- Schema registry storage (Confluent REST API semantics). Ids are never reused: a schema row is never
-- deleted, even when every subject version that used it is permanently deleted.
CREATE TABLE registry_schema (
  id          serial PRIMARY KEY,
  schema_type text NOT NULL DEFAULT 'AVRO',
  schema_text text NOT NULL,
  -- identity: the schema with object keys sorted and whitespace removed (see docs/registry.md)
  identity    text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (schema_type, identity)
);

CREATE TABLE registry_subject_version (
  subject    text NOT NULL,
  version    integer NOT NULL CHECK (version > 0),
  schema_id  integer NOT NULL REFERENCES registry_schema (id),
  deleted    boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (subject, version)
);
CREATE INDEX registry_subject_version_schema ON registry_subject_version (schema_id);

-- Compatibility level: subject '' is the global default.
CREATE TABLE registry_config (
  subject       text PRIMARY KEY,
  compatibility text NOT NULL
);
INSERT INTO registry_config (subject, compatibility) VALUES ('', 'BACKWARD');
