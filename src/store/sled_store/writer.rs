//! The single writer: reads what a decision needs, then commits the decision's records, the
//! account balance and the journal entry as one commit (one commit log entry, see `log`).

use chrono::{DateTime, Utc};

use serde_json::Value;

use super::{log, minute_counts, received_key, SledStore, StoreError, TreeId, WriteSet};
use crate::domain::account::{Account, Profile};
use crate::domain::AccountNumber;
use crate::ledger::{Change, Channel, Origin, Record, RecordKind};
use crate::store::{Committed, UnmatchedUpdate, View, Writes};

/// The journal's and the commit log's next seqs, which only the writer advances. Both are
/// recovered from the last commit log entry at start-up, and a seq is used only by the entry
/// that holds it, so a crash cannot leave a gap.
pub(crate) struct WriterState {
    next_seq: u64,
    next_commit: u64,
}

impl WriterState {
    pub(super) fn load(log_tree: &sled::Tree) -> Result<Self, StoreError> {
        match log_tree.last()? {
            Some((k, v)) => Ok(Self {
                next_seq: log::header(&v)?.jseq_through + 1,
                next_commit: log::commit_of_key(&k)? + 1,
            }),
            None => Ok(Self {
                next_seq: 1,
                next_commit: 1,
            }),
        }
    }

    /// The last journal seq written (0 for an empty journal).
    pub(super) fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// The seq the next commit log entry gets.
    pub(super) fn next_commit(&self) -> u64 {
        self.next_commit
    }

    /// Called once the log entry `commit` is written.
    pub(super) fn committed(&mut self, commit: u64) {
        self.next_commit = commit + 1;
    }
}

pub(crate) struct Writer<'a> {
    store: &'a SledStore,
    state: &'a mut WriterState,
    /// Writes staged by the caller (stored copies, events) that commit with the next change.
    staged: WriteSet,
    /// The account last read in this writer section. Nothing else can write while the writer
    /// lock is held, so `apply` uses it instead of reading the same account again.
    last_account: std::cell::RefCell<Option<Account>>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(store: &'a SledStore, state: &'a mut WriterState) -> Self {
        Self {
            store,
            state,
            staged: WriteSet::default(),
            last_account: std::cell::RefCell::new(None),
        }
    }

    pub(super) fn staged_mut(&mut self) -> &mut WriteSet {
        &mut self.staged
    }

    /// Stages a record update that moves no money by itself (it commits with the next change).
    fn stage_record(&mut self, record: &Record) {
        self.staged.put_record(record);
    }

    /// Stages the stored copy of an accepted posting (docs/orbipay.md); it commits with the
    /// posting's change.
    fn stage_accepted_copy(&mut self, entry: &serde_json::Value) -> Result<(), StoreError> {
        let id = self.store.next_id()?;
        self.staged.put_json(TreeId::Accepted, id.to_be_bytes(), entry)
    }

    /// Commits what a decision wrote, as one commit; assigns the event's seq (the commit's).
    pub(super) fn commit_writes(&mut self, writes: Writes) -> Result<Committed, StoreError> {
        let Writes {
            change,
            channel,
            at,
            origin,
            records,
            accepted_copy,
            event,
            invoice,
            unmatched,
        } = writes;
        if let Some(copy) = &accepted_copy {
            self.stage_accepted_copy(copy)?;
        }
        if let Some((source, invoice_id, snapshot)) = &invoice {
            self.stage_invoice_snapshot(source, invoice_id, snapshot)?;
        }
        match &unmatched {
            Some(UnmatchedUpdate::Put(record_id, item)) => self.stage_unmatched(record_id, item)?,
            Some(UnmatchedUpdate::Clear(record_id)) => self.stage_matched(record_id),
            None => {}
        }
        for record in &records {
            self.stage_record(record);
        }
        let event_seq = match event {
            Some(mut event) => {
                // Stored events live in the commit log: an event's seq is its commit's.
                event.seq = self.next_commit_seq();
                self.stage_event(&event)?;
                Some(event.seq)
            }
            None => None,
        };
        match change {
            Some(change) => {
                let applied = self.apply(&change, channel, at, origin)?;
                Ok(Committed {
                    change: Some(change),
                    event_seq,
                    ..applied
                })
            }
            None => {
                self.commit(WriteSet::default())?;
                Ok(Committed {
                    event_seq,
                    currency_exponent: 2,
                    ..Committed::default()
                })
            }
        }
    }

    /// Commits a ledger change: the records, the account's balance and a journal entry when the
    /// balance moved, plus everything staged — all in one transaction.
    pub(crate) fn apply(
        &mut self,
        change: &Change,
        channel: Channel,
        at: DateTime<Utc>,
        origin: Option<Origin>,
    ) -> Result<Committed, StoreError> {
        let mut extra = std::mem::take(&mut self.staged);
        let cached = self.last_account.take();
        let account = match &change.payment.account_number {
            Some(n) => match cached.filter(|a| &a.account_number == n) {
                Some(a) => Some(a),
                None => self.store.account(n)?,
            },
            None => None,
        };
        let mut journal_seq = None;
        let set = &mut extra;
        let settlement =
            crate::ledger::settle(change, account, channel, at).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut account = settlement.account;
        if let Some(draft) = settlement.entry {
            let draft = draft.with_origin(origin);
            let acc = account
                .as_mut()
                .ok_or_else(|| StoreError::Corrupt("a journal entry without an account".into()))?;
            let seq = self.state.next_seq;
            let entry = draft.numbered(seq);
            set.put(TreeId::Journal, seq.to_be_bytes(), super::codec::encode_journal(&entry));
            // Link this entry to the account's previous one; the account points at this one.
            let previous = crate::ledger::link_chain(acc, self.state.next_commit());
            set.put(
                TreeId::JournalChain,
                acc.account_number.as_bytes(),
                previous.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default(),
            );
            set.put_account(acc);
            journal_seq = Some(seq);
        }
        set.put_record(&change.payment);
        if let Some(refund) = &change.refund {
            set.put_record(refund);
        }
        let new_payment = change.payment_created.then_some(&change.payment);
        let new_refund = change.refund.as_ref().filter(|_| change.created);
        let received: Vec<_> = new_payment
            .into_iter()
            .chain(new_refund)
            .map(|record| self.index_received(set, record))
            .collect();
        let commit = self.store.commit_logged(self.state, extra)?;
        if !received.is_empty() {
            self.store.minute_tally(|tally, _| tally.add(commit, &received))?;
        }
        if let Some(seq) = journal_seq {
            self.state.next_seq += 1;
            self.store
                .journal_marks()
                .committed
                .store(seq, std::sync::atomic::Ordering::Release);
        }
        Ok(Committed {
            balance_after: account.as_ref().map(Account::current_balance),
            currency_exponent: account.as_ref().map(Account::exponent).unwrap_or(2),
            journal_seq,
            event_seq: None,
            change: None,
        })
    }

    /// Adds a new record to the time index; returns its time for the minute counts, which are
    /// counted once the commit is made (see `minute_counts`).
    fn index_received(&self, set: &mut WriteSet, record: &Record) -> (i64, minute_counts::Channel) {
        set.put(
            TreeId::IdxReceived,
            received_key(record.received_at, record.kind, &record.id),
            Vec::new(),
        );
        (
            record.received_at.timestamp_nanos_opt().unwrap_or(i64::MAX),
            minute_counts::Channel::of(record.kind),
        )
    }

    /// Commits writes that move no money (stored events, quarantine, snapshots), with
    /// everything staged, as one commit.
    pub(crate) fn commit(&mut self, mut set: WriteSet) -> Result<(), StoreError> {
        set.ops.append(&mut std::mem::take(&mut self.staged).ops);
        if set.is_empty() {
            return Ok(());
        }
        self.store.commit_logged(self.state, set).map(|_| ())
    }

    /// Commits a bulk write (an accounts import chunk) in one transaction; see
    /// `SledStore::commit_transaction`.
    pub(crate) fn commit_bulk(&mut self, mut set: WriteSet) -> Result<(), StoreError> {
        set.ops.append(&mut std::mem::take(&mut self.staged).ops);
        self.store.commit_transaction(set)
    }

    /// The seq the next commit gets: a stored event's seq (see `log`).
    pub(crate) fn next_commit_seq(&self) -> u64 {
        self.state.next_commit()
    }
}

/// The decision's reads, under the writer lock: every earlier commit is visible, and nothing
/// else can write until the decision's writes are committed.
impl View for Writer<'_> {
    fn record(&self, kind: RecordKind, id: &str) -> Result<Option<Record>, StoreError> {
        self.store.record(kind, id)
    }

    /// Remembers the account: `apply` uses it instead of reading it again (nothing else can
    /// write while the writer lock is held).
    fn account(&self, number: &AccountNumber) -> Result<Option<Account>, StoreError> {
        let account = self.store.account(number)?;
        self.last_account.replace(account.clone());
        Ok(account)
    }

    fn profile(&self, customer_reference: &str) -> Result<Option<Profile>, StoreError> {
        self.store.profile(customer_reference)
    }

    fn event_seen(&self, source: &str, event_id: i64) -> Result<bool, StoreError> {
        self.store.event_seen(source, event_id)
    }

    fn invoice(&self, source: &str, invoice_id: &str) -> Result<Option<Value>, StoreError> {
        self.store.invoice_snapshot(source, invoice_id)
    }

    /// The number is sled's id generator, which stays unique across crashes (it skips ahead on
    /// recovery), so no counter has to be written with each posting.
    fn fresh_reference(&self, prefix: char) -> Result<String, StoreError> {
        Ok(format!("{prefix}{:012}", self.store.next_id()?))
    }
}
