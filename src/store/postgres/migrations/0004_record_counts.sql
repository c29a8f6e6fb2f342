-- Records counted per minute and per hour, by kind, status and amount bucket, so that the
-- search's exact totalCount over a day is a sum of a few thousand counts plus the records of
-- the window's ragged ends, not a count of every record in the window (see search.rs).

-- The amount bucket of a value, as the sled store's search index defines it: a positive amount
-- with at most two significant digits (1, 0.5, 25, 10.00) has a bucket of its own (even
-- number); the amounts between two such share the odd bucket after it (1.01-1.09, 25.01-25.99).
-- Zero and negative amounts are bucket 0, amounts below 10^-4 bucket 1, amounts from 10^16 the
-- last. What the search relies on: buckets never decrease as amounts grow, and an even bucket
-- from 2 to 3600 holds one amount only.
CREATE FUNCTION biller_inbox_amount_bucket(amount numeric) RETURNS smallint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT (CASE
        WHEN amount <= 0 THEN 0
        WHEN decade < -4 THEN 1
        WHEN decade >= 16 THEN 3602
        ELSE 2 + 2 * ((decade + 4) * 90 + rpad(left(digits, 2), 2, '0')::int - 10)
             + CASE WHEN length(digits) <= 2 THEN 0 ELSE 1 END
    END)::smallint
    FROM (SELECT digits, length(digits) - 1 - scale(trim_scale(amount)) AS decade
          FROM (SELECT ltrim(replace(trim_scale(abs(amount))::text, '.', ''), '0') AS digits) AS m) AS d
$$;

-- level 1: slot = minutes since the epoch; level 2: hours. channel follows from kind (kept so
-- that a channel filter is a plain condition on these rows). n may reach 0 when statuses move.
CREATE TABLE record_counts (
    level   smallint NOT NULL CHECK (level IN (1, 2)),
    slot    bigint NOT NULL,
    kind    text COLLATE "C" NOT NULL,
    status  text COLLATE "C" NOT NULL,
    bucket  smallint NOT NULL,
    channel text COLLATE "C" NOT NULL,
    n       bigint NOT NULL,
    PRIMARY KEY (level, slot, kind, status, bucket)
);

-- Adds the counts of every record in `records` (an empty table, or one whose counts are not
-- there yet): this migration's backfill and `biller-inbox store copy`.
CREATE FUNCTION biller_inbox_count_records() RETURNS bigint
LANGUAGE sql AS $$
    WITH added AS (
        INSERT INTO record_counts (level, slot, kind, status, bucket, channel, n)
        SELECT l.level, floor(extract(epoch FROM r.received_at) / l.seconds)::bigint, r.kind, r.status,
               biller_inbox_amount_bucket(r.amount), min(r.channel), count(*)
        FROM records r CROSS JOIN (VALUES (1::smallint, 60), (2::smallint, 3600)) AS l(level, seconds)
        GROUP BY 1, 2, 3, 4, 5
        ON CONFLICT (level, slot, kind, status, bucket) DO UPDATE SET n = record_counts.n + EXCLUDED.n
        RETURNING 1)
    SELECT count(*) FROM added
$$;

SELECT biller_inbox_count_records();
