-- The local picture of each account's mail: mailboxes with their sync cursor, messages, raw bodies.
-- Additive only: earlier tables are untouched. Timestamps are INTEGER Unix milliseconds (UTC).
-- Ids are integers (not UUIDs like accounts): messages are many, and the listing cursor and the
-- indexes stay small. AUTOINCREMENT so an id is never reused after a delete (API ids stay stable).
-- Deleting an account deletes its mailboxes, messages and bodies (ON DELETE CASCADE; the store
-- opens every connection with foreign keys on).

CREATE TABLE mailboxes (
    id            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    account_id    TEXT    NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,                 -- as the server spells it (modified UTF-7)
    delimiter     TEXT,
    role          TEXT,                             -- inbox | sent | drafts | trash | junk | archive | all
    -- The sync cursor; all NULL until the first sync and again after a reset.
    uidvalidity   INTEGER CHECK (uidvalidity BETWEEN 0 AND 4294967295),
    uidnext       INTEGER CHECK (uidnext BETWEEN 0 AND 4294967295),
    highestmodseq INTEGER CHECK (highestmodseq >= 0),
    lowest_uid    INTEGER CHECK (lowest_uid BETWEEN 0 AND 4294967295),
    initial_done  INTEGER NOT NULL DEFAULT 0 CHECK (initial_done IN (0, 1)),
    -- What the server said at the last pass (EXISTS, STATUS UNSEEN).
    server_exists INTEGER NOT NULL DEFAULT 0 CHECK (server_exists BETWEEN 0 AND 4294967295),
    server_unseen INTEGER CHECK (server_unseen BETWEEN 0 AND 4294967295),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (account_id, name),
    CHECK ((uidvalidity IS NULL) = (uidnext IS NULL) AND (uidnext IS NULL) = (lowest_uid IS NULL))
) STRICT;

-- One row per message of a mailbox at one UIDVALIDITY. Addresses, references, flags and the MIME
-- summary are JSON; `account_id` is repeated so an account's messages list without a join.
CREATE TABLE messages (
    id             INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    account_id     TEXT    NOT NULL,
    mailbox_id     INTEGER NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uidvalidity    INTEGER NOT NULL CHECK (uidvalidity BETWEEN 0 AND 4294967295),
    uid            INTEGER NOT NULL CHECK (uid BETWEEN 1 AND 4294967295),
    modseq         INTEGER CHECK (modseq >= 0),
    message_id     TEXT,
    in_reply_to    TEXT,
    refs           TEXT    NOT NULL DEFAULT '[]',   -- JSON array of Message-IDs, oldest first
    from_addrs     TEXT    NOT NULL DEFAULT '[]',   -- JSON array of {name, address}
    to_addrs       TEXT    NOT NULL DEFAULT '[]',
    cc_addrs       TEXT    NOT NULL DEFAULT '[]',
    subject        TEXT,
    sent_at        INTEGER,                         -- the Date header
    internaldate   INTEGER NOT NULL,
    size           INTEGER NOT NULL CHECK (size BETWEEN 0 AND 4294967295),
    flags          TEXT    NOT NULL DEFAULT '[]',   -- JSON array, sorted
    snippet        TEXT,
    mime           TEXT    NOT NULL DEFAULT '{}',   -- JSON MIME summary (attachments ...)
    parse_problems TEXT,                            -- what did not parse, for people
    created_at     INTEGER NOT NULL,
    UNIQUE (mailbox_id, uidvalidity, uid)
) STRICT;

-- Newest first, per account and per mailbox; the id breaks ties so the cursor is total.
CREATE INDEX messages_newest_by_account ON messages (account_id, internaldate DESC, id DESC);
CREATE INDEX messages_newest_by_mailbox ON messages (mailbox_id, internaldate DESC, id DESC);

-- Raw messages, only when the bodies mode stores them. A table of its own so listing and flag
-- updates never page through body bytes.
CREATE TABLE message_bodies (
    message_id INTEGER NOT NULL PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    raw        BLOB    NOT NULL
) STRICT;
