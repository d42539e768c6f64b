-- The relay looks rows up by key after a stale refusal (crash recovery); keep that cheap on a large outbox.
CREATE INDEX lt_outbox_dataset_key ON lt_outbox (dataset, key);
