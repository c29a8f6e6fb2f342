//! The sled trees, each with its name on disk, declared once. The order is each tree's tag in
//! the commit log (`log`): append new trees at the end, never reorder.

/// Declares `TreeId` and the name of each tree from one table.
macro_rules! trees {
    ($($id:ident = $name:literal,)*) => {
        /// Every tree a commit may write, in a fixed order (its position is its commit-log tag).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum TreeId {
            $($id,)*
        }

        impl TreeId {
            /// Every tree, in tag order.
            pub(crate) const ALL: &'static [TreeId] = &[$(TreeId::$id,)*];

            /// The tree's name in the sled database.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(TreeId::$id => $name,)*
                }
            }
        }
    };
}

trees! {
    Accounts = "accounts",
    Profiles = "profiles",
    IdxEmail = "idx_email",
    IdxSsn = "idx_ssn",
    IdxLookupRef = "idx_lookup_ref",
    Records = "records",
    IdxReceived = "idx_received",
    Journal = "journal",
    JournalChain = "journal_chain",
    Accepted = "accepted",
    Rejections = "rejections",
    Events = "events",
    EventIds = "event_ids",
    Quarantine = "quarantine",
    Entities = "entities",
    Unmatched = "unmatched",
    CountByMinute = "count_by_minute",
    Meta = "meta",
    Log = "log",
    IdxAccount = "idx_account",
    IdxAmount = "idx_amount",
    CountByFacet = "count_by_facet",
    IdxJournalRecord = "idx_journal_record",
    IdxConfirmation = "idx_confirmation",
}

impl TreeId {
    pub(crate) fn from_tag(tag: u8) -> Option<TreeId> {
        Self::ALL.get(usize::from(tag)).copied()
    }

    /// Trees whose values live only in the commit log entry that wrote them (see `log`).
    pub(crate) fn is_log_resident(self) -> bool {
        matches!(
            self,
            TreeId::Journal | TreeId::JournalChain | TreeId::Events | TreeId::Accepted
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_names_stay_as_stored() {
        // A tree's tag is written into every commit log entry, its name into the database:
        // neither may change for a store written before.
        assert_eq!(TreeId::ALL.len(), 24);
        assert_eq!((TreeId::Accounts as u8, TreeId::Accounts.name()), (0, "accounts"));
        assert_eq!((TreeId::Records as u8, TreeId::Records.name()), (5, "records"));
        assert_eq!((TreeId::Log as u8, TreeId::Log.name()), (18, "log"));
        for (tag, tree) in TreeId::ALL.iter().enumerate() {
            assert_eq!(TreeId::from_tag(tag as u8), Some(*tree));
        }
        assert_eq!(TreeId::from_tag(24), None);
    }
}
