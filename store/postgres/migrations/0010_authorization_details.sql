-- 0010: Rich Authorization Requests (RFC 9396), as in the SQLite store's
-- 0014 (see there). Text, not JSONB: the value is read back byte for
-- byte as package authzdetails wrote it.

ALTER TABLE auth_codes ADD COLUMN authorization_details TEXT NOT NULL DEFAULT ''
	CHECK (authorization_details = '' OR jsonb_typeof(authorization_details::jsonb) = 'array');
ALTER TABLE refresh_families ADD COLUMN authorization_details TEXT NOT NULL DEFAULT ''
	CHECK (authorization_details = '' OR jsonb_typeof(authorization_details::jsonb) = 'array');
