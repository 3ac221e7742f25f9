-- Expiry forecasting: the Google "publishing status" of an OAuth app, and which expiries have
-- already been announced. Additive only: one column with a default, one new table.
-- Timestamps are INTEGER Unix milliseconds (UTC).

-- Google issues refresh tokens that die 7 days after consent while an app's consent screen is in
-- "Testing"; Postern can only forecast that if the operator says which apps are. Every existing
-- app is taken to be in production (nothing is announced for it), which is also true of every
-- provider that has no such notion.
ALTER TABLE oauth_apps ADD COLUMN publishing_status TEXT NOT NULL DEFAULT 'production';  -- testing | production

-- One row per announced expiry: the forecaster announces an expiry only when it can insert its
-- row, in the same transaction as the event, so each expiry is announced once however often the
-- forecast runs. A new expiry of the same subject (re-consent, a new client secret) is a new row.
-- `subject_id` has no foreign key: a notice of a removed account is harmless and small.
CREATE TABLE expiry_notices (
    subject_kind TEXT    NOT NULL,                             -- account | app
    subject_id   TEXT    NOT NULL,                             -- UUID v7
    reason       TEXT    NOT NULL,                             -- e.g. google_testing_7_days
    expires_at   INTEGER NOT NULL,
    announced_at INTEGER NOT NULL,
    event_id     INTEGER NOT NULL,
    PRIMARY KEY (subject_kind, subject_id, reason, expires_at)
) STRICT;
