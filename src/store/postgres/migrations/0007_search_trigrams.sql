-- A `like` whose pattern starts with `%` (no literal start for a b-tree range) on ids, account
-- numbers and confirmation numbers: trigram indexes find the records whose value holds each run
-- of three or more literal characters of the pattern, and the search checks the pattern on
-- those. pg_trgm ships with PostgreSQL (contrib; Debian's postgresql-NN package) and is a trusted
-- extension since PostgreSQL 13: the database's owner may create it without being superuser.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The indexes are on `column || ''`, the form only such a search writes: a pattern with a literal
-- start keeps to its b-tree range (the planner, misled by the trigram index's estimate, would
-- otherwise pick it for `ACC-0001%` and recheck a tenth of the table), and a pattern too short
-- for trigrams walks the window instead of rechecking most of the table.
CREATE INDEX records_id_trigrams ON records USING gin ((id || '') gin_trgm_ops);
CREATE INDEX records_account_trigrams ON records USING gin ((account_number || '') gin_trgm_ops)
    WHERE account_number IS NOT NULL;
CREATE INDEX records_confirmation_trigrams ON records USING gin ((confirmation_number || '') gin_trgm_ops)
    WHERE confirmation_number IS NOT NULL;
