-- 0005: whether a dynamically registered client was registered openly,
-- as in the SQLite store's 0009 (see there for the design and why older
-- registrations without client_credentials are marked open).

ALTER TABLE clients ADD COLUMN registered_open BOOLEAN NOT NULL DEFAULT false;

UPDATE clients SET registered_open = true
	WHERE length(registration_token_hash) > 0
	AND NOT grant_types @> '["client_credentials"]'::jsonb;
