-- A record's journal entries (the console's record page asks for every entry of one posting or
-- event record, oldest first): without it that is a scan of the whole journal.
CREATE INDEX journal_record ON journal (kind, record_id, seq);
