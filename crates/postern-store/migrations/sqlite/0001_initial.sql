-- Postern's first schema: API tokens, vault keys, sealed secrets, the event log.
-- Timestamps are INTEGER Unix milliseconds (UTC). Tables are STRICT so a wrong type is an error.
-- Changes after release are additive only, new columns NOT NULL DEFAULT (STYLE.md §11).

CREATE TABLE api_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,          -- UUID v7
    name         TEXT    NOT NULL,
    token_hash   BLOB    NOT NULL UNIQUE CHECK (length(token_hash) = 32), -- SHA-256, never the token
    scopes       TEXT    NOT NULL DEFAULT '[]',         -- JSON array of strings
    account_ids  TEXT,                                  -- JSON array, NULL = every account
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;

-- Data keys, wrapped under the master key. Exactly one is active once the vault is set up.
CREATE TABLE vault_keys (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295), -- KeyId (u32)
    wrapped    BLOB    NOT NULL,
    active     INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1)),
    created_at INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX vault_keys_one_active ON vault_keys (active) WHERE active = 1;

-- Every sealed secret of every aggregate. The foreign key makes deleting a key that still seals
-- a secret impossible, so a botched rotation cannot orphan ciphertexts.
CREATE TABLE secrets (
    owner_kind TEXT    NOT NULL,
    owner_id   TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    sealed     BLOB    NOT NULL,
    key_id     INTEGER NOT NULL REFERENCES vault_keys (id),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (owner_kind, owner_id, name)
) STRICT;

CREATE INDEX secrets_by_key ON secrets (key_id);

-- The event log. AUTOINCREMENT: ids are never reused, even after the newest rows are deleted,
-- because readers use them as cursors.
CREATE TABLE events (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    account_id TEXT,
    kind       TEXT    NOT NULL,
    payload    TEXT    NOT NULL,                        -- JSON
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX events_by_account ON events (account_id, id);
