-- What the batch writer and the reads need beyond version 1.

-- Identifiers and the fields the search filters and sorts on compare byte-wise, as in the
-- sled store, whatever the database's default collation.
ALTER TABLE records
    ALTER COLUMN kind                TYPE text COLLATE "C",
    ALTER COLUMN id                  TYPE text COLLATE "C",
    ALTER COLUMN channel             TYPE text COLLATE "C",
    ALTER COLUMN status              TYPE text COLLATE "C",
    ALTER COLUMN currency            TYPE text COLLATE "C",
    ALTER COLUMN account_number      TYPE text COLLATE "C",
    ALTER COLUMN confirmation_number TYPE text COLLATE "C",
    ALTER COLUMN reference           TYPE text COLLATE "C",
    ALTER COLUMN parent_id           TYPE text COLLATE "C",
    ALTER COLUMN payment_method      TYPE text COLLATE "C",
    ALTER COLUMN client_key          TYPE text COLLATE "C";

-- Which Empayre path applied a journal entry (a record's history steps say it in their JSON).
ALTER TABLE journal ADD COLUMN origin text CHECK (origin IN ('webhook', 'reconcile'));

-- A payment's refunds.
CREATE INDEX records_parent ON records (kind, parent_id) WHERE parent_id IS NOT NULL;

-- Small values the application keeps by name, outside the ledger (the Empayre
-- reconciliation's cursor and run list).
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value bytea NOT NULL
);

-- Fails the statement, and with it the batch transaction, when a batch's insert wrote fewer
-- rows than it meant to: another writer stored the same posting or event first. The batch
-- writer takes that as a lost race and decides again.
CREATE FUNCTION biller_inbox_expect_rows(written bigint, expected bigint, what text) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF written <> expected THEN
        RAISE EXCEPTION 'concurrent insert into %: % of % rows written', what, written, expected
            USING ERRCODE = 'unique_violation';
    END IF;
    RETURN written;
END
$$;
