-- The cross-replica mint lock without Redis (CONTRACT §6, §17): a lease row per scope being
-- minted. A replica claims it with one short statement and deletes it when its mint is stored,
-- so no pooled connection is held while GitHub answers. A crashed holder's lease lapses at
-- `expires_at`.
CREATE TABLE mint_leases (
    cache_key TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
