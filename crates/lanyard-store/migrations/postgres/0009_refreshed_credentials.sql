-- Credentials renewed with a refresh token (issue 19, for CONTRACT §14's OAuth providers).
--
-- A connection keeps its refresh token sealed, with a generation that every rotation bumps: a
-- refresh commits the rotated token only over the generation it read, so a second replica that
-- refreshed with the old token cannot overwrite the newer one.
--
-- A stored token is bound either to an installation (a GitHub App's, shared by the team's
-- connections to it) or to the one connection it was refreshed for.
ALTER TABLE github_connections ADD COLUMN refresh_ciphertext BYTEA;
ALTER TABLE github_connections ADD COLUMN refresh_generation BIGINT NOT NULL DEFAULT 0;

ALTER TABLE github_tokens ALTER COLUMN installation_id DROP NOT NULL;
ALTER TABLE github_tokens ADD COLUMN connection_id UUID;
-- Added unchecked, then checked without blocking writes for the scan.
ALTER TABLE github_tokens ADD CONSTRAINT github_tokens_one_binding
    CHECK ((installation_id IS NULL) <> (connection_id IS NULL)) NOT VALID;
ALTER TABLE github_tokens VALIDATE CONSTRAINT github_tokens_one_binding;
CREATE INDEX github_tokens_connection ON github_tokens (connection_id) WHERE connection_id IS NOT NULL;
