-- The full-text index merges its segments less eagerly. FTS5 writes the tokens of each batch as a
-- new segment and, by default, merges a level once it holds 4 segments; with 16 (the level at
-- which FTS5's own crisis merge would start anyway) a level is merged once where it was merged
-- four times. `bench/stages`: the store's share of a 100,000-message initial sync fell by ~12 %;
-- searches on the resulting index took the same time (the segments of a level are read together).
INSERT INTO message_search (message_search, rank) VALUES ('automerge', 16);
