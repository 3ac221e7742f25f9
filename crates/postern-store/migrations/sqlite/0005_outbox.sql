-- The outbox: messages accepted for sending, durable before the API answers 202.
-- Additive only: earlier tables are untouched. Timestamps are INTEGER Unix milliseconds (UTC).
-- `status` carries no CHECK list, like the enums of 0002: the store is its only writer and reports
-- an unknown name as corrupt data on read.
-- Deleting an account deletes its outbox (ON DELETE CASCADE): nothing can be sent for it any more,
-- and the `message.*` events stay as history.

CREATE TABLE outbox (
    id               TEXT    NOT NULL PRIMARY KEY,             -- UUID v7
    account_id       TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status           TEXT    NOT NULL DEFAULT 'queued',        -- queued | sending | sent | failed | cancelled
    raw              BLOB    NOT NULL,                         -- the RFC 5322 bytes, Bcc stripped
    envelope_from    TEXT    NOT NULL,                         -- MAIL FROM (may be empty: null sender)
    envelope_to      TEXT    NOT NULL DEFAULT '[]',            -- JSON array of RCPT TO addresses
    message_id       TEXT    NOT NULL,                         -- without angle brackets
    send_at          INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 4294967295),
    next_attempt_at  INTEGER NOT NULL,
    -- Set while `sending`: who holds the item and until when. A worker that dies leaves both; the
    -- item is claimable again once `lease_expires_at` has passed, and the old holder's late
    -- `mark_*` no longer matches `lease_id`.
    lease_id         TEXT,
    lease_expires_at INTEGER,
    last_error       TEXT,
    recipients       TEXT    NOT NULL DEFAULT '[]',            -- JSON array of per-recipient results
    -- Unique per account while it is fresh (24 h); an older row's key is cleared when reused.
    idempotency_key  TEXT,
    sent_at          INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK ((lease_id IS NULL) = (lease_expires_at IS NULL))
) STRICT;

CREATE UNIQUE INDEX outbox_idempotency
    ON outbox (account_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- The workers' two questions: "what is due?" and "whose lease ran out?" (partial, so they stay small).
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbox_leased ON outbox (lease_expires_at) WHERE status = 'sending';
-- Listings, newest first (ids are time-ordered).
CREATE INDEX outbox_by_account ON outbox (account_id, id);
CREATE INDEX outbox_by_status ON outbox (status, id);
