-- Indexes for the searches the console's form can make (see search.rs), so that each page
-- reads about the rows it shows instead of walking the window's time index.

-- Filters on kind, channel and status, and the order by status: the search reads one range
-- per (kind, status) pair in time order and merges them. amount is carried along so that an
-- amount filter is checked on the index entry, without visiting the row.
CREATE INDEX records_kind_status ON records (kind, status, received_at, id) INCLUDE (amount);

-- The order by amount.
CREATE INDEX records_amount ON records (amount, received_at, kind, id);

-- The order by account number (a record without one sorts first, as in the sled store) and an
-- account's records in time order: replaces records_account, which left those records out.
CREATE INDEX records_account_order ON records (account_number NULLS FIRST, received_at, kind, id);
DROP INDEX records_account;

-- A confirmation number, equal or starting with a literal (the column compares byte-wise).
CREATE INDEX records_confirmation ON records (confirmation_number) WHERE confirmation_number IS NOT NULL;
