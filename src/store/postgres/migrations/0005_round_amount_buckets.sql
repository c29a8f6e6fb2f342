-- Round amounts from 100 on (100, 1200, 25000: at most two significant digits, the others
-- trailing zeros of the integer part) get an amount bucket of their own, as smaller round
-- amounts (0.50, 1, 25) already had: version 4's function counted the digits of the amount's
-- text, so 100 shared the bucket of 100.01-109.99 and a threshold at 100.00 cut that bucket (the
-- search then counted the window's records instead of reading the counts). Only the bucket of
-- such amounts changes (from the odd bucket after theirs to their own, even one).
--
-- The batch writer computes the bucket itself (src/store/amount_bucket.rs); this function is
-- for the backfills (below, and `store copy` through biller_inbox_count_records) and gives the
-- same numbers (tested against the Rust definition over a table of amounts).
CREATE OR REPLACE FUNCTION biller_inbox_amount_bucket(amount numeric) RETURNS smallint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (CASE
        WHEN amount <= 0 THEN 0
        WHEN decade < -4 THEN 1
        WHEN decade >= 16 THEN 3602
        ELSE 2 + 2 * ((decade + 4) * 90 + rpad(left(digits, 2), 2, '0')::int - 10)
             + CASE WHEN length(rtrim(digits, '0')) <= 2 THEN 0 ELSE 1 END
    END)::smallint
    FROM (SELECT digits, length(digits) - 1 - scale(trim_scale(amount)) AS decade
          FROM (SELECT ltrim(replace(trim_scale(abs(amount))::text, '.', ''), '0') AS digits) AS m) AS d
$$;

-- The counts again, with the new buckets. TRUNCATE locks the table until this migration
-- commits, so a batch writer of a replica still running waits to add its counts and adds them
-- after: the records it wrote are not visible to the recount (not committed yet), so none is
-- counted twice or missed. (An older replica's writer calls the function above for its
-- buckets, so it counts as this version does once the migration commits.)
TRUNCATE record_counts;
SELECT biller_inbox_count_records();
