-- Audit records name who acted by its registry kind; the key, user or session goes alongside.
ALTER TABLE audit_events ADD COLUMN actor_id TEXT;

-- JSON columns become JSONB, so rows map through sqlx's Json on both dialects.
ALTER TABLE sessions ALTER COLUMN repos TYPE JSONB USING repos::jsonb;
ALTER TABLE sessions ALTER COLUMN permissions TYPE JSONB USING permissions::jsonb;
ALTER TABLE session_scopes ALTER COLUMN repositories TYPE JSONB USING repositories::jsonb;
ALTER TABLE github_tokens ALTER COLUMN repositories TYPE JSONB USING repositories::jsonb;
ALTER TABLE github_tokens ALTER COLUMN permissions TYPE JSONB USING permissions::jsonb;
ALTER TABLE audit_events ALTER COLUMN data DROP DEFAULT;
ALTER TABLE audit_events ALTER COLUMN data TYPE JSONB USING data::jsonb;
ALTER TABLE audit_events ALTER COLUMN data SET DEFAULT '{}'::jsonb;

-- An empty permission set once meant "everything the installation has". It is now refused, so
-- sessions that asked for it get the documented defaults instead of more than they named.
UPDATE sessions SET permissions = '{"contents": "read", "metadata": "read"}'::jsonb
    WHERE permissions = '{}'::jsonb;
