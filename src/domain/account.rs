//! Biller accounts and customer profiles, and the accounts file (docs/operations.md, Accounts file) that
//! creates and updates them.
//!
//! The balance is held as `opening_balance + posted_delta`: the opening balance comes from the
//! import, `posted_delta` is the sum of every balance change the ledger applied. Keeping the two
//! apart makes the ledger invariant checkable and lets a re-import with `reset_balance` set a new
//! live balance without losing what was posted.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::domain::money;
use crate::domain::names::{AccountNumber, Currency};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Active,
    Inactive,
    Incollections,
    Inbankruptcy,
    Closed,
    Repair,
}

impl AccountStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "inactive" => Self::Inactive,
            "incollections" => Self::Incollections,
            "inbankruptcy" => Self::Inbankruptcy,
            "closed" => Self::Closed,
            "repair" => Self::Repair,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Incollections => "incollections",
            Self::Inbankruptcy => "inbankruptcy",
            Self::Closed => "closed",
            Self::Repair => "repair",
        }
    }

    /// EBPP knows only active, inactive, incollections and inbankruptcy.
    pub fn as_ebpp(self) -> &'static str {
        match self {
            Self::Closed | Self::Repair => "inactive",
            other => other.as_str(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileStatus {
    Active,
    Suspended,
    Revoked,
}

impl ProfileStatus {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "revoked" => Self::Revoked,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
        }
    }
}

/// Postal address as EBPP names its fields; kept as given.
pub type Address = serde_json::Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub account_number: AccountNumber,
    pub customer_account_reference: Option<String>,
    pub account_holder_name: Option<String>,
    pub nickname: Option<String>,
    pub status: AccountStatus,
    pub currency: Currency,
    pub warning: Option<String>,
    pub opening_balance: Decimal,
    /// Sum of every balance change applied by the ledger since the account was created.
    pub posted_delta: Decimal,
    pub current_statement_balance: Option<Decimal>,
    pub minimum_payment_due: Option<Decimal>,
    pub past_amount_due: Option<Decimal>,
    pub payment_due_date: Option<String>,
    pub statement_date: Option<String>,
    pub payoff_amount: Option<Decimal>,
    pub payoff_expiry_date: Option<String>,
    pub min_payment_amount: Option<Decimal>,
    pub max_payment_amount: Option<Decimal>,
    pub address: Option<Address>,
    /// Profiles linked to this account (multi-profile model), by customer_reference.
    pub customer_references: Vec<String>,
    /// The commit log entry of this account's newest journal entry: the head of the chain the
    /// account view walks (each entry links to the one before). Kept by the store only; not
    /// part of the accounts file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_journal_commit: Option<u64>,
}

impl Account {
    pub fn current_balance(&self) -> Decimal {
        self.opening_balance + self.posted_delta
    }

    pub fn exponent(&self) -> u32 {
        self.currency.exponent().unwrap_or(2)
    }

    pub fn format(&self, amount: Decimal) -> String {
        money::format_amount(amount, self.exponent())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub customer_reference: String,
    pub lookup_reference: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// SHA-256 of the SSN: enough to answer a lookup by SSN, and the number itself is never
    /// at rest in the store.
    pub ssn_sha256: Option<String>,
    pub home_phone: Option<String>,
    pub status: ProfileStatus,
    pub warning: Option<String>,
    pub address: Option<Address>,
    pub account_numbers: Vec<AccountNumber>,
}

impl Profile {
    /// Whether rule 5 of the posting rules blocks payments from this profile.
    pub fn blocks_payments(&self) -> bool {
        self.warning.is_some() || self.status != ProfileStatus::Active
    }
}

pub fn ssn_digest(ssn: &str) -> String {
    hex::encode(Sha256::digest(ssn.as_bytes()))
}

/// One validated entry of the accounts file: the account fields plus its profiles.
#[derive(Debug, Clone)]
pub struct AccountEntry {
    pub account: Account,
    pub profiles: Vec<Profile>,
    pub reset_balance: bool,
}

/// An accounts-file problem: which entry (index in an array, line in JSON lines) and field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{location}: {field}: {message}")]
pub struct EntryError {
    pub location: String,
    pub field: String,
    pub message: String,
}

/// Parses an accounts file held in memory: a JSON array or JSON lines. Every entry is
/// validated; any bad entry makes the whole file fail (all-or-nothing), and every bad entry is
/// reported, in input order. Large files are read as a stream by `accounts_file::read_accounts`.
pub fn parse_accounts_file(text: &str) -> Result<Vec<AccountEntry>, Vec<EntryError>> {
    super::accounts_file::parse_all(text.as_bytes())
}

type FieldProblem = (String, String);

/// Parses one account object of the accounts file (also the body items of `PUT /admin/accounts`).
pub fn parse_entry(value: &Value) -> Result<AccountEntry, FieldProblem> {
    let obj = value
        .as_object()
        .ok_or_else(|| ("(entry)".to_string(), "must be a JSON object".to_string()))?;
    let f = Fields { obj, prefix: "" };
    let account_number = AccountNumber::try_from(f.required_str("account_number")?)
        .map_err(|e| ("account_number".to_string(), e.to_string()))?;
    let status = match f.opt_str("status")? {
        None => AccountStatus::Active,
        Some(s) => AccountStatus::parse(&s).ok_or_else(|| {
            (
                "status".to_string(),
                "must be one of active, inactive, incollections, inbankruptcy, closed, repair".to_string(),
            )
        })?,
    };
    let not_iso = || ("currency".to_string(), "must be an ISO 4217 currency code".to_string());
    let currency = Currency::try_from(f.opt_str("currency")?.unwrap_or_else(|| "USD".into())).map_err(|_| not_iso())?;
    let exponent = currency.exponent().ok_or_else(not_iso)?;
    let current_balance = f.opt_signed_amount("current_balance", exponent)?;
    let mut customers = Vec::new();
    let mut refs = Vec::new();
    if let Some(list) = obj.get("customers").filter(|v| !v.is_null()) {
        let list = list
            .as_array()
            .ok_or_else(|| ("customers".to_string(), "must be an array".to_string()))?;
        for (i, c) in list.iter().enumerate() {
            let profile = parse_profile(c, &format!("customers[{i}]"), &account_number)?;
            if refs.contains(&profile.customer_reference) {
                return Err((
                    format!("customers[{i}].customer_reference"),
                    "appears twice in this account".into(),
                ));
            }
            refs.push(profile.customer_reference.clone());
            customers.push(profile);
        }
    }
    let account = Account {
        account_number: account_number.clone(),
        customer_account_reference: f.opt_str("customer_account_reference")?,
        account_holder_name: f.opt_str("account_holder_name")?,
        nickname: f.opt_str("nickname")?,
        status,
        currency,
        warning: f.warning()?,
        opening_balance: current_balance.unwrap_or(Decimal::ZERO),
        posted_delta: Decimal::ZERO,
        current_statement_balance: f.opt_signed_amount("current_statement_balance", exponent)?,
        minimum_payment_due: f.opt_signed_amount("minimum_payment_due", exponent)?,
        past_amount_due: f.opt_signed_amount("past_amount_due", exponent)?,
        payment_due_date: f.opt_date("payment_due_date")?,
        statement_date: f.opt_date("statement_date")?,
        payoff_amount: f.opt_signed_amount("payoff_amount", exponent)?,
        payoff_expiry_date: f.opt_date("payoff_expiry_date")?,
        min_payment_amount: f.opt_signed_amount("min_payment_amount", exponent)?,
        max_payment_amount: f.opt_signed_amount("max_payment_amount", exponent)?,
        address: f.opt_object("address")?,
        customer_references: refs,
        last_journal_commit: None,
    };
    if let (Some(min), Some(max)) = (account.min_payment_amount, account.max_payment_amount) {
        if min > max {
            return Err((
                "min_payment_amount".into(),
                "must not be above max_payment_amount".into(),
            ));
        }
    }
    let reset_balance = match obj.get("reset_balance") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(("reset_balance".into(), "must be true or false".into())),
    };
    Ok(AccountEntry {
        account,
        profiles: customers,
        reset_balance,
    })
}

fn parse_profile(value: &Value, prefix: &str, account_number: &AccountNumber) -> Result<Profile, FieldProblem> {
    let obj = value
        .as_object()
        .ok_or_else(|| (prefix.to_string(), "must be a JSON object".to_string()))?;
    let f = Fields { obj, prefix };
    let customer_reference = f.required_str("customer_reference")?;
    if customer_reference.chars().count() > 100 {
        return Err((f.path("customer_reference"), "must be at most 100 characters".into()));
    }
    let status = match f.opt_str("status")? {
        None => ProfileStatus::Active,
        Some(s) => ProfileStatus::parse(&s).ok_or_else(|| {
            (
                f.path("status"),
                "must be one of active, suspended, revoked".to_string(),
            )
        })?,
    };
    let ssn = f.opt_str("ssn")?;
    if let Some(ssn) = &ssn {
        if ssn.len() != 9 || !ssn.bytes().all(|b| b.is_ascii_digit()) {
            // Never echo the value: it is an SSN.
            return Err((f.path("ssn"), "must be 9 digits".into()));
        }
    }
    let email = f.opt_str("email")?;
    if let Some(email) = &email {
        if email.chars().count() > 100 || !email.contains('@') {
            return Err((
                f.path("email"),
                "must be an email address of at most 100 characters".into(),
            ));
        }
    }
    Ok(Profile {
        customer_reference,
        lookup_reference: f.opt_str("lookup_reference")?,
        first_name: f.opt_str("first_name")?,
        last_name: f.opt_str("last_name")?,
        email,
        ssn_sha256: ssn.as_deref().map(ssn_digest),
        home_phone: f.opt_str("home_phone")?,
        status,
        warning: f.warning()?,
        address: f.opt_object("address")?,
        account_numbers: vec![account_number.clone()],
    })
}

/// Typed access to one JSON object's fields, producing `(field path, message)` problems.
struct Fields<'a> {
    obj: &'a serde_json::Map<String, Value>,
    prefix: &'a str,
}

impl Fields<'_> {
    fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    fn opt_str(&self, name: &str) -> Result<Option<String>, FieldProblem> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err((self.path(name), "must be a string".into())),
        }
    }

    fn required_str(&self, name: &str) -> Result<String, FieldProblem> {
        self.opt_str(name)?
            .ok_or_else(|| (self.path(name), "is required".into()))
    }

    fn opt_signed_amount(&self, name: &str, exponent: u32) -> Result<Option<Decimal>, FieldProblem> {
        let Some(s) = self.opt_str(name)? else {
            return Ok(None);
        };
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.as_str()),
        };
        let amount = money::parse_amount(digits)
            .filter(|d| d.scale() <= exponent.max(2))
            .ok_or_else(|| (self.path(name), "must be a decimal amount like \"110.05\"".to_string()))?;
        Ok(Some(if negative { -amount } else { amount }))
    }

    fn opt_date(&self, name: &str) -> Result<Option<String>, FieldProblem> {
        let Some(s) = self.opt_str(name)? else {
            return Ok(None);
        };
        // The shape first: chrono alone would also take one-digit months and days.
        let shape = s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        match chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
            Ok(_) if shape => Ok(Some(s)),
            _ => Err((self.path(name), "must be a date YYYY-MM-DD".into())),
        }
    }

    fn opt_object(&self, name: &str) -> Result<Option<Address>, FieldProblem> {
        match self.obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(_) => Err((self.path(name), "must be an object".into())),
        }
    }

    /// `warning`: null/absent/"" means none; a string is the warning text; `true` is a warning
    /// without text.
    fn warning(&self) -> Result<Option<String>, FieldProblem> {
        match self.obj.get("warning") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
            Some(Value::Bool(true)) => Ok(Some("warning".into())),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err((self.path("warning"), "must be null, a string or a boolean".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"[{"account_number": "ACC-1", "currency": "USD", "current_balance": "110.05",
        "customers": [{"customer_reference": "C-1", "ssn": "123456789", "email": "A@x.com"}]}]"#;

    #[test]
    fn parses_array_and_hashes_ssn() {
        let entries = parse_accounts_file(GOOD).expect("valid");
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.account.current_balance().to_string(), "110.05");
        assert_eq!(
            e.profiles[0].ssn_sha256.as_deref(),
            Some(ssn_digest("123456789").as_str())
        );
        assert!(!format!("{e:?}").contains("123456789"));
    }

    #[test]
    fn parses_json_lines() {
        let text = "{\"account_number\": \"A1\"}\n\n{\"account_number\": \"A2\", \"currency\": \"JPY\", \"current_balance\": \"100\"}\n";
        let entries = parse_accounts_file(text).expect("valid");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].account.currency, "JPY");
    }

    #[test]
    fn bad_entries_are_all_reported_with_location_and_field() {
        let cases = [
            (r#"[{"currency": "USD"}]"#, "entry 0", "account_number"),
            (r#"[{"account_number": "A", "status": "open"}]"#, "entry 0", "status"),
            (r#"[{"account_number": "A", "currency": "XYZ"}]"#, "entry 0", "currency"),
            (
                r#"[{"account_number": "A", "current_balance": "1.2.3"}]"#,
                "entry 0",
                "current_balance",
            ),
            (
                r#"[{"account_number": "A", "customers": [{"ssn": "1"}]}]"#,
                "entry 0",
                "customers[0].customer_reference",
            ),
            (
                r#"[{"account_number": "A", "customers": [{"customer_reference": "C", "ssn": "12"}]}]"#,
                "entry 0",
                "customers[0].ssn",
            ),
            (
                r#"[{"account_number": "A", "payment_due_date": "2024-02-30"}]"#,
                "entry 0",
                "payment_due_date",
            ),
            (
                r#"[{"account_number": "A"}, {"account_number": "A"}]"#,
                "entry 1",
                "account_number",
            ),
            ("{\"account_number\": \"A\"}\n{oops", "line 2", "(line)"),
        ];
        for (text, location, field) in cases {
            let errors = parse_accounts_file(text).expect_err(text);
            assert_eq!(errors[0].location, location, "{text}");
            assert_eq!(errors[0].field, field, "{text}");
        }
        let errors = parse_accounts_file(
            r#"[{"account_number": "A", "status": "x"}, {"account_number": "B", "currency": "Q"}]"#,
        )
        .expect_err("two bad");
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn ssn_value_is_never_in_an_error() {
        let errors = parse_accounts_file(
            r#"[{"account_number": "A", "customers": [{"customer_reference": "C", "ssn": "98765432x"}]}]"#,
        )
        .expect_err("bad ssn");
        assert!(!errors[0].to_string().contains("98765432"));
    }
}
