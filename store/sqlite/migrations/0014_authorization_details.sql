-- 0014: Rich Authorization Requests (RFC 9396).
--
-- The authorization details a user allowed travel with the code to the
-- tokens, and a refresh family keeps what it was granted, so a refresh
-- can narrow an access token's details but never widen the family's.
-- Compact JSON as package authzdetails encodes it; '' for none, which is
-- what every code and family stored before this migration has.
-- Consents do not record details: a request with details always shows
-- the consent page.

ALTER TABLE auth_codes ADD COLUMN authorization_details TEXT NOT NULL DEFAULT ''
	CHECK (authorization_details = '' OR json_type(authorization_details) = 'array');
ALTER TABLE refresh_families ADD COLUMN authorization_details TEXT NOT NULL DEFAULT ''
	CHECK (authorization_details = '' OR json_type(authorization_details) = 'array');
