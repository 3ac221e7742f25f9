-- Per-account settings, and the index behind daily sending limits.
-- Additive only: one column with a default, one new index.

-- The account's own overrides as one JSON object (`sync_mailboxes`, `sent_copy`,
-- `send_rate_per_minute`, `send_daily_limit`); a missing key means "the default" (the provider's
-- preset, else the server's configuration), so every existing account reads as `{}`: unchanged.
-- JSON rather than a column per knob: settings will grow, and SQLite cannot drop or retype a
-- column without rebuilding the table.
ALTER TABLE accounts ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

-- "How many messages did this account send in the last 24 hours, and when was the oldest?":
-- asked before every send of an account with a daily limit, so it must not scan the outbox.
-- Partial: only sent items have a `sent_at` worth counting.
CREATE INDEX outbox_sent_by_account ON outbox (account_id, sent_at) WHERE status = 'sent';
