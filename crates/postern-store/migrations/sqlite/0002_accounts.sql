-- OAuth apps, mailbox accounts, their OAuth2 grants and pending authorization-code flows.
-- Additive only: 0001's tables are untouched. Timestamps are INTEGER Unix milliseconds (UTC).
-- Secrets (client secrets, passwords, tokens, PKCE verifiers) are NOT here: they live sealed in
-- `secrets`, addressed ('oauth_app' | 'account' | 'authorization', owner id, name).
-- Enum-valued TEXT columns (provider, status, security, auth_kind, mechanism, state) carry no
-- CHECK list: SQLite cannot change a CHECK without rebuilding the table, and these lists will
-- grow. The store is their only writer and reports an unknown name as corrupt data on read.

CREATE TABLE oauth_apps (
    id                       TEXT    NOT NULL PRIMARY KEY,   -- UUID v7
    name                     TEXT    NOT NULL,
    provider                 TEXT    NOT NULL,               -- google | microsoft | yahoo | generic
    client_id                TEXT    NOT NULL,
    redirect_uri             TEXT,
    scopes                   TEXT    NOT NULL DEFAULT '[]',  -- JSON array of strings
    tenant                   TEXT,
    authorize_url            TEXT    NOT NULL,
    token_url                TEXT    NOT NULL,
    revoke_url               TEXT,
    device_authorization_url TEXT,
    extra_params             TEXT    NOT NULL DEFAULT '{}',  -- JSON object of strings
    imap_host                TEXT,
    imap_port                INTEGER CHECK (imap_port BETWEEN 0 AND 65535),
    smtp_host                TEXT,
    smtp_port                INTEGER CHECK (smtp_port BETWEEN 0 AND 65535),
    secret_expires_at        INTEGER,
    status                   TEXT    NOT NULL DEFAULT 'active',  -- active | failed
    last_error               TEXT,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
) STRICT;

-- An OAuth account names its app (`app_id` + `mechanism`); a password account names neither.
-- The foreign key keeps an app from being deleted under its accounts.
CREATE TABLE accounts (
    id            TEXT    NOT NULL PRIMARY KEY,              -- UUID v7
    email         TEXT    NOT NULL,
    name          TEXT,
    imap_host     TEXT    NOT NULL,
    imap_port     INTEGER NOT NULL CHECK (imap_port BETWEEN 0 AND 65535),
    imap_security TEXT    NOT NULL,                          -- tls | starttls | none
    imap_ca_file  TEXT,
    smtp_host     TEXT    NOT NULL,
    smtp_port     INTEGER NOT NULL CHECK (smtp_port BETWEEN 0 AND 65535),
    smtp_security TEXT    NOT NULL,
    smtp_ca_file  TEXT,
    auth_kind     TEXT    NOT NULL,                          -- oauth2 | oauth2_app | password
    app_id        TEXT    REFERENCES oauth_apps (id),
    mechanism     TEXT,                                      -- xoauth2 | oauthbearer
    username      TEXT,
    state         TEXT    NOT NULL,                          -- pending_authorization | … | disabled
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CHECK ((app_id IS NULL) = (mechanism IS NULL))
) STRICT;

CREATE INDEX accounts_by_app ON accounts (app_id) WHERE app_id IS NOT NULL;

-- The non-secret half of an account's OAuth2 grant; the tokens are in `secrets`.
CREATE TABLE grants (
    account_id        TEXT    NOT NULL PRIMARY KEY REFERENCES accounts (id),
    scope             TEXT,
    access_expires_at INTEGER,
    obtained_at       INTEGER NOT NULL,
    last_refreshed_at INTEGER,
    refresh_failures  INTEGER NOT NULL DEFAULT 0 CHECK (refresh_failures BETWEEN 0 AND 4294967295),
    next_attempt_at   INTEGER,
    consented_at      INTEGER
) STRICT;

CREATE INDEX grants_by_expiry ON grants (access_expires_at) WHERE access_expires_at IS NOT NULL;

-- Pending authorization-code flows, keyed by the SHA-256 of their `state` (never the state).
-- `used_at` is set by the one successful take; used rows stay until purged after `expires_at`,
-- so a replayed state is told apart from an unknown one.
CREATE TABLE authorizations (
    state_hash   BLOB    NOT NULL PRIMARY KEY CHECK (length(state_hash) = 32),
    account_id   TEXT    NOT NULL REFERENCES accounts (id),
    app_id       TEXT    NOT NULL REFERENCES oauth_apps (id),
    redirect_uri TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
) STRICT;

CREATE INDEX authorizations_by_expiry ON authorizations (expires_at);
CREATE INDEX authorizations_by_account ON authorizations (account_id);
CREATE INDEX authorizations_by_app ON authorizations (app_id);
