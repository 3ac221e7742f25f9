-- The audit log: who did what to which account's authorization, when, and how it went.
-- Additive only: earlier tables are untouched. Timestamps are INTEGER Unix milliseconds (UTC).
-- `account_id` and `app_id` carry no foreign key on purpose: the entry that records an account's
-- removal must outlive the account. `action` and `outcome` carry no CHECK list, like the enums of
-- 0002: the store is their only writer and reports an unknown name as corrupt data on read.
-- `detail` is a sentence for people and never holds a secret.

CREATE TABLE audit_log (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,   -- the cursor; never reused
    at         INTEGER NOT NULL,
    account_id TEXT,                                         -- UUID v7, NULL for server-wide entries
    app_id     TEXT,                                         -- UUID v7
    actor      TEXT    NOT NULL,                             -- API token name | cli | system | browser
    action     TEXT    NOT NULL,                             -- authorize.started | … | app.removed
    outcome    TEXT    NOT NULL,                             -- ok | failed
    detail     TEXT    NOT NULL DEFAULT ''
) STRICT;

-- Pages go newest first: each filter has an index ending in `id`.
CREATE INDEX audit_log_by_account ON audit_log (account_id, id) WHERE account_id IS NOT NULL;
CREATE INDEX audit_log_by_action ON audit_log (action, id);
