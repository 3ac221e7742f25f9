-- Webhooks and their deliveries. Additive only: earlier tables are untouched.
-- Timestamps are INTEGER Unix milliseconds (UTC). The signing secret is NOT here: it lives sealed
-- in `secrets`, addressed ('webhook', webhook id, 'signing_secret').
-- `status` carries no CHECK list, like the enums of 0002: the store is its only writer and reports
-- an unknown name as corrupt data on read.

CREATE TABLE webhooks (
    id          TEXT    NOT NULL PRIMARY KEY,                 -- UUID v7
    url         TEXT    NOT NULL,
    events      TEXT    NOT NULL DEFAULT '[]',                -- JSON array of patterns
    account_ids TEXT,                                         -- JSON array, NULL = every account
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    -- The last event id the delivery pipeline has looked at: events after it are still to be
    -- matched against this webhook. Starts at the newest event when the webhook is created.
    cursor      INTEGER NOT NULL DEFAULT 0 CHECK (cursor >= 0),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- One row per (webhook, event) the webhook must receive. Deleting a webhook deletes its
-- deliveries; the reference to `events` keeps an event from being pruned under a delivery.
CREATE TABLE webhook_deliveries (
    id               TEXT    NOT NULL PRIMARY KEY,            -- UUID v7
    webhook_id       TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id         INTEGER NOT NULL REFERENCES events (id),
    account_id       TEXT,                                    -- the event's; the ordering key
    status           TEXT    NOT NULL DEFAULT 'pending',      -- pending | delivered | dead
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 4294967295),
    next_attempt_at  INTEGER NOT NULL,
    pending_since    INTEGER NOT NULL,                        -- start of the retry window
    last_attempt_at  INTEGER,
    last_status_code INTEGER CHECK (last_status_code BETWEEN 0 AND 65535),
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (webhook_id, event_id)
) STRICT;

-- The deliverer's two questions, both over pending rows only (the partial indexes stay small):
-- "which pending deliveries, in event order?" and "is this account's queue waiting for a retry?".
CREATE INDEX webhook_deliveries_pending
    ON webhook_deliveries (webhook_id, event_id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_pending_by_account
    ON webhook_deliveries (webhook_id, account_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (event_id);
