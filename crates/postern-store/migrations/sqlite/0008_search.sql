-- Local full-text search over stored messages (SQLite FTS5).
-- Additive only: earlier tables are untouched.
--
-- A contentless table (content='') with contentless_delete=1: the index keeps only its tokens,
-- not a second copy of every body's text (the raw message is already in message_bodies), yet
-- rows can still be deleted by rowid. The rowid is messages.id. Because it is contentless,
-- snippet()/highlight() are unavailable; search results show the message's stored snippet.
--
-- Columns: subject; people (From and To, names and addresses); snippet; body (the text parts of
-- the raw message, filled by the store when a raw message is stored, empty otherwise).
-- unicode61 with remove_diacritics 2: "cafe" finds "café"; tokens are letter/digit runs, so an
-- address is found by any of its parts ("alice", "example").
CREATE VIRTUAL TABLE message_search USING fts5 (
    subject,
    people,
    snippet,
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- A deleted message leaves the index, whatever deleted it: a vanished UID, a mailbox reset or
-- an account's cascading delete.
CREATE TRIGGER message_search_forget AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
END;

-- Messages stored before this migration: their headers and snippet are indexed now; their
-- bodies (text extraction needs the MIME parser, which SQL lacks) are not.
INSERT INTO message_search (rowid, subject, people, snippet, body)
SELECT id, coalesce(subject, ''),
       (SELECT coalesce(group_concat(
                   coalesce(json_extract(value, '$.name'), '') || ' ' ||
                   coalesce(json_extract(value, '$.address'), ''), ' '), '')
          FROM (SELECT value FROM json_each(messages.from_addrs)
                UNION ALL SELECT value FROM json_each(messages.to_addrs))),
       coalesce(snippet, ''), ''
  FROM messages;
