-- biller-inbox schema, version 1: what the sled store keeps in its trees, as tables.
-- Applied by the binary (at start-up under an advisory lock, or by `biller-inbox migrate`), in
-- one transaction together with its row in biller_inbox_schema. Never edit an applied
-- migration: add the next file instead (the binary refuses a database whose applied files
-- differ from its own).

-- Biller accounts. The balance is opening_balance + posted_delta (see domain::account).
CREATE TABLE accounts (
    account_number             text PRIMARY KEY,
    customer_account_reference text,
    account_holder_name        text,
    nickname                   text,
    status                     text NOT NULL,
    currency                   text NOT NULL,
    warning                    text,
    opening_balance            numeric NOT NULL,
    posted_delta               numeric NOT NULL DEFAULT 0,
    current_statement_balance  numeric,
    minimum_payment_due        numeric,
    past_amount_due            numeric,
    payment_due_date           text,
    statement_date             text,
    payoff_amount              numeric,
    payoff_expiry_date         text,
    min_payment_amount         numeric,
    max_payment_amount         numeric,
    address                    jsonb,
    -- Linked profiles (multi-profile model), in the order the accounts file gave them.
    customer_references        text[] NOT NULL DEFAULT '{}'
);

-- Customer profiles; a profile may belong to several accounts.
CREATE TABLE profiles (
    customer_reference text PRIMARY KEY,
    lookup_reference   text,
    first_name         text,
    last_name          text,
    email              text,
    -- SHA-256 (hex) of the SSN: the number itself is never stored.
    ssn_sha256         text,
    home_phone         text,
    status             text NOT NULL,
    warning            text,
    address            jsonb,
    account_numbers    text[] NOT NULL DEFAULT '{}'
);
-- EBPP lookups (interfaces.md, orbipay-mpa.md): by email (case-insensitive), SSN digest and
-- lookup reference; customer reference and account number are the primary keys.
CREATE INDEX profiles_email ON profiles (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX profiles_ssn ON profiles (ssn_sha256) WHERE ssn_sha256 IS NOT NULL;
CREATE INDEX profiles_lookup_reference ON profiles (lookup_reference) WHERE lookup_reference IS NOT NULL;

-- Payments and refunds of both channels. The primary key is the posting's identity: a
-- second replica inserting the same one gets no row back (exactly once).
CREATE TABLE records (
    -- Identifiers and the fields the search filters and sorts on compare byte-wise, as in
    -- the sled store, whatever the database's default collation.
    kind                   text COLLATE "C" NOT NULL
        CHECK (kind IN ('payment', 'refund', 'empayre-payment', 'empayre-refund')),
    id                     text COLLATE "C" NOT NULL,
    channel                text COLLATE "C" NOT NULL CHECK (channel IN ('orbipay', 'empayre')),
    status                 text COLLATE "C" NOT NULL,
    live                   boolean NOT NULL,
    amount                 numeric NOT NULL,
    currency               text COLLATE "C" NOT NULL,
    account_number         text COLLATE "C",
    confirmation_number    text COLLATE "C",
    reference              text COLLATE "C",
    parent_id              text COLLATE "C",
    refund_ids             text[] NOT NULL DEFAULT '{}',
    counts_against_payment boolean NOT NULL,
    posted_amount          numeric,
    payment_method         text COLLATE "C",
    client_key             text COLLATE "C",
    received_at            timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    history                jsonb NOT NULL,
    details                jsonb NOT NULL,
    PRIMARY KEY (kind, id)
);
-- The search's time window, an account's postings, a payment's refunds.
CREATE INDEX records_received ON records (received_at, kind, id);
CREATE INDEX records_account ON records (account_number, received_at) WHERE account_number IS NOT NULL;
CREATE INDEX records_parent ON records (kind, parent_id) WHERE parent_id IS NOT NULL;

-- One entry per balance change. seq is gap-free from 1 and visible in order: it is taken
-- from journal_head, which every writing transaction bumps once, last, so commits that
-- journal are serialised in seq order (a sequence cannot do this: its values are not given
-- back on rollback, and transactions commit out of sequence order).
CREATE TABLE journal (
    seq            bigint PRIMARY KEY CHECK (seq > 0),
    at             timestamptz NOT NULL,
    channel        text NOT NULL,
    kind           text NOT NULL,
    record_id      text NOT NULL,
    account_number text NOT NULL,
    status         text NOT NULL,
    delta          numeric NOT NULL,
    balance_after  numeric NOT NULL
);
CREATE INDEX journal_account ON journal (account_number, seq);

CREATE TABLE journal_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_seq  bigint NOT NULL CHECK (last_seq >= 0)
);
INSERT INTO journal_head (singleton, last_seq) VALUES (true, 0);

-- The stored copy of every accepted EBPP posting, as received (orbipay-mpa.md §6).
CREATE TABLE accepted_postings (
    id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL,
    entry       jsonb NOT NULL
);

-- Every verified Empayre body, in arrival order (seq: arrival order, gaps possible), with
-- what it changed. (source, event_id) is the dedupe key.
CREATE TABLE events (
    seq           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    source        text NOT NULL,
    event_id      bigint,
    event_type    text,
    invoice_id    text,
    status        text NOT NULL CHECK (status IN ('stored', 'quarantined')),
    reason        text,
    key_id        text NOT NULL,
    received_at   timestamptz NOT NULL,
    request_id    text NOT NULL,
    body_sha256   text NOT NULL,
    body          text NOT NULL,
    body_encoding text NOT NULL CHECK (body_encoding IN ('text', 'base64')),
    changes       jsonb NOT NULL,
    stale         text[] NOT NULL DEFAULT '{}'
);
CREATE UNIQUE INDEX events_dedupe ON events (source, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX events_invoice ON events (invoice_id, seq) WHERE invoice_id IS NOT NULL;
CREATE INDEX events_quarantined ON events (seq) WHERE status = 'quarantined';

-- The newest snapshot (status, amount, last event id) of each Empayre invoice.
CREATE TABLE invoice_snapshots (
    source     text NOT NULL,
    invoice_id text NOT NULL,
    snapshot   jsonb NOT NULL,
    PRIMARY KEY (source, invoice_id)
);

-- Empayre payments no account could be found for, until an operator assigns one.
CREATE TABLE unmatched (
    key         text PRIMARY KEY,
    received_at timestamptz NOT NULL,
    item        jsonb NOT NULL
);
CREATE INDEX unmatched_received ON unmatched (received_at);

-- The request log of refused requests (bounded: the newest 10,000 are kept).
CREATE TABLE rejections (
    id    bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    at    timestamptz NOT NULL DEFAULT now(),
    entry jsonb NOT NULL
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

-- References for postings EBPP sent none for (P/R + 12 digits): unique, may skip numbers.
-- Each replica takes a block of 100 at a time.
CREATE SEQUENCE reference_numbers INCREMENT BY 100 MINVALUE 1 START WITH 1;
