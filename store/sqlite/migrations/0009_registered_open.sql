-- 0009: whether a dynamically registered client was registered openly,
-- without an initial access token (sigil.Client.RegisteredOpen). It is
-- stored with the client: inferred from the server's current settings,
-- a client registered while registration was open could give itself
-- client_credentials once the operator closed it.
--
-- Clients registered before this migration did not record it. Those with
-- a registration access token and without client_credentials are marked
-- open, failing closed: a client registered with an initial access token
-- that never asked for client_credentials can no longer add it by
-- itself (the operator can), and one registered openly can never add it.

ALTER TABLE clients ADD COLUMN registered_open INTEGER NOT NULL DEFAULT 0 CHECK (registered_open IN (0, 1));

UPDATE clients SET registered_open = 1
	WHERE length(registration_token_hash) > 0
	AND NOT EXISTS (SELECT 1 FROM json_each(clients.grant_types) WHERE value = 'client_credentials');
