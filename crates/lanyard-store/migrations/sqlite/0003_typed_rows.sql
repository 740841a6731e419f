-- Audit records name who acted by its registry kind; the key, user or session goes alongside.
ALTER TABLE audit_events ADD COLUMN actor_id TEXT;

-- An empty permission set once meant "everything the installation has". It is now refused, so
-- sessions that asked for it get the documented defaults instead of more than they named.
UPDATE sessions SET permissions = '{"contents":"read","metadata":"read"}'
    WHERE permissions = '{}';
