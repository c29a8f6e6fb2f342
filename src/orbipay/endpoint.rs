//! The four EBPP routes (docs/orbipay.md), by name and path.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Lookup,
    Payment,
    Reversal,
    Refund,
}

impl Endpoint {
    /// Every EBPP route, in the order docs/orbipay.md gives them.
    pub const ALL: [Endpoint; 4] = [Self::Lookup, Self::Payment, Self::Reversal, Self::Refund];

    /// The route's path before `orbipay.base_path`.
    pub const fn path(self) -> &'static str {
        match self {
            Self::Lookup => "/mpacustomers",
            Self::Payment => "/paymentposting",
            Self::Reversal => "/paymentreversalposting",
            Self::Refund => "/paymentrefundposting",
        }
    }
}
