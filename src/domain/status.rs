//! The statuses payments and refunds have in each channel's words, and which of them take
//! effect on a balance ("live"). The ledger keeps a record's status as one of these
//! (`ledger::RecordStatus`), so the status and its liveness can never disagree.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines an enum of known wire values plus `Unknown(String)`, (de)serialized as the plain
/// string, so unknown values round-trip unchanged. Hand-written rather than
/// `#[serde(other)]`, which would drop the sent text.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $wire, "`")] $variant,)+
            /// A value this version does not know, kept exactly as sent.
            Unknown(String),
        }

        impl $name {
            /// The wire string (for `Unknown`, the string that was sent).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(s) => s,
                }
            }

            /// False for `Unknown`.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($wire => Self::$variant,)+
                    other => Self::Unknown(other.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match Self::from(s.as_str()) {
                    // Reuse the allocation we already have.
                    Self::Unknown(_) => Self::Unknown(s),
                    known => known,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::from)
            }
        }
    };
}

pub(crate) use open_enum;

/// The status of a payment or refund posting. The same eight values serve both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostingStatus {
    Scheduled,
    Cancelled,
    Processing,
    Processed,
    Returned,
    Declined,
    Disputed,
    Error,
}

impl PostingStatus {
    /// Every status, in the order the EBPP document lists them.
    pub const ALL: [PostingStatus; 8] = [
        Self::Scheduled,
        Self::Cancelled,
        Self::Processing,
        Self::Processed,
        Self::Returned,
        Self::Declined,
        Self::Disputed,
        Self::Error,
    ];

    /// The wire spelling, exactly (lower case; `"Processed"` is not a status).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scheduled" => Self::Scheduled,
            "cancelled" => Self::Cancelled,
            "processing" => Self::Processing,
            "processed" => Self::Processed,
            "returned" => Self::Returned,
            "declined" => Self::Declined,
            "disputed" => Self::Disputed,
            "error" => Self::Error,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Cancelled => "cancelled",
            Self::Processing => "processing",
            Self::Processed => "processed",
            Self::Returned => "returned",
            Self::Declined => "declined",
            Self::Disputed => "disputed",
            Self::Error => "error",
        }
    }

    /// Whether a record in this status moves money (§5.2): scheduled, processing and processed
    /// do; cancelled, returned, declined, disputed and error do not.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Scheduled | Self::Processing | Self::Processed)
    }
}

impl fmt::Display for PostingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

open_enum! {
    /// An Empayre `payment.status` (B3.4). `charged_back` is the only snake_case value.
    EmpayrePaymentStatus {
        Pending => "pending",
        Processed => "processed",
        Captured => "captured",
        Cancelled => "cancelled",
        Refunded => "refunded",
        Failed => "failed",
        ChargedBack => "charged_back",
    }
}

open_enum! {
    /// An Empayre `refund.status` (B3.7).
    EmpayreRefundStatus {
        Pending => "pending",
        Succeeded => "succeeded",
        Failed => "failed",
    }
}
