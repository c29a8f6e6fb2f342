//! The Orbipay EBPP request wire: parsing and validation of the four biller endpoints
//! (docs/orbipay.md). Validation only: no business rules, no storage.
//!
//! EBPP sends every scalar as a JSON string (amounts too), treats `""` as "absent", nests the
//! payment in `posting_info` (a bare object is accepted too) and expects every invalid field of a
//! request to be reported at once, each with its dotted path. This module turns a body into
//!
//! - a typed posting ([`PaymentPosting`], [`RefundPosting`], [`LookupQuery`]) holding what the
//!   ledger needs, and
//! - for postings, the sanitised copy of the posted object that §6 stores: unknown fields kept,
//!   `card_cvv_number` and `ssn` removed wherever they appear, funding account numbers masked.
//!
//! or into the complete list of [`FieldError`]s. Error messages name the rule that failed, never
//! the value: a rejected CVV or SSN must not come back in a 400 or reach a log line.
//!
//! This is the hot path of every posting, so the body is parsed once into a `serde_json::Value`,
//! validated by borrowing from it, and the same map is then scrubbed in place and returned as
//! the stored copy. Regexes are compiled once per process; strings are copied only into the
//! typed posting and error paths are the only place that formats.

use std::fmt;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};
use regex::Regex;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::money;
use crate::domain::{AccountNumber, Currency};
pub use crate::orbipay::enums::PostingStatus;
use crate::orbipay::enums::{
    DEFAULT_PAYMENT_AMOUNT_TYPE, PAYMENT_AMOUNT_TYPES, PAYMENT_METHODS, PAYMENT_SCHEDULE_TYPES, REFUND_TYPES,
    REVERSAL_STATUSES, STATUSES,
};

type Object = Map<String, Value>;

/// One invalid field of a request. Its wire code is always [`FieldError::CODE`]; `field` is the
/// dotted path inside the posted object (`customer_account.account_number`), the form field name
/// for lookups, or `None` when no single field is at fault (malformed body, no lookup criterion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

impl FieldError {
    /// The EBPP error code of every validation failure.
    pub const CODE: &'static str = "error_field";

    /// An error about the body as a whole.
    fn body(message: impl Into<String>) -> Self {
        Self {
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A validated payment (payment posting or reversal), as the ledger needs it. Dates are
/// normalised to `YYYY-MM-DD` (EBPP may drop leading zeros: `2026-1-5`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentPosting {
    pub id: String,
    pub amount: Decimal,
    pub confirmation_number: String,
    /// `currency_code3d`.
    pub currency: Currency,
    /// `customer_account.account_number`.
    pub account_number: AccountNumber,
    /// `customer.customer_reference`: names the profile whose warnings §5.3 rule 5 checks.
    pub customer_reference: Option<String>,
    pub payment_date: String,
    pub payment_method: String,
    pub payment_schedule_type: String,
    /// `other` when EBPP sent none.
    pub payment_amount_type: String,
    pub status: PostingStatus,
    pub payment_reference: Option<String>,
    /// Lower-cased (EBPP's pattern is lower case; upper case is accepted).
    pub return_code: Option<String>,
    pub payment_return_date: Option<String>,
    pub token: Option<String>,
    /// `fee.fee_amount`: recorded, never credited.
    pub fee_amount: Option<Decimal>,
    /// `funding_account.account_number`, masked as it is stored.
    pub funding_account_masked: Option<String>,
}

/// A validated refund posting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPosting {
    pub id: String,
    pub status: PostingStatus,
    pub confirmation_number: String,
    /// `source_payment.id`: the EBPP id of the refunded payment.
    pub source_payment_id: String,
    pub refund_reference: Option<String>,
    pub refund_type: Option<String>,
    pub refund_amount: Option<Decimal>,
    /// `fee_refund.fee_refund_amount`.
    pub fee_refund_amount: Option<Decimal>,
    pub refund_date: Option<String>,
}

/// The criteria of a customer lookup (§4). At least one is present after [`parse_lookup`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LookupQuery {
    pub customer_reference: Option<String>,
    pub account_number: Option<String>,
    pub ssn: Option<String>,
    pub email: Option<String>,
    pub lookup_reference: Option<String>,
}

/// By hand so that a `{:?}` in a log line never prints the SSN.
impl fmt::Debug for LookupQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupQuery")
            .field("customer_reference", &self.customer_reference)
            .field("account_number", &self.account_number)
            .field("ssn", &self.ssn.as_ref().map(|_| "<redacted>"))
            .field("email", &self.email)
            .field("lookup_reference", &self.lookup_reference)
            .finish()
    }
}

/// Parses and validates a payment posting (`POST /paymentposting`). Returns the typed payment
/// and the sanitised posted object to store, or every invalid field.
pub fn parse_payment(body: &[u8]) -> Result<(PaymentPosting, Value), Vec<FieldError>> {
    parse_payment_with(body, STATUSES)
}

/// Like [`parse_payment`] for `POST /paymentreversalposting` (§5.4): the same body, but a live
/// `status` (scheduled, processing, processed) is an `error_field` on `status`, reported together
/// with any other invalid field.
pub fn parse_reversal(body: &[u8]) -> Result<(PaymentPosting, Value), Vec<FieldError>> {
    parse_payment_with(body, REVERSAL_STATUSES)
}

/// Parses and validates a refund posting (`POST /paymentrefundposting`). Returns the typed
/// refund and the sanitised posted object to store, or every invalid field.
pub fn parse_refund(body: &[u8]) -> Result<(RefundPosting, Value), Vec<FieldError>> {
    let mut object = posting_object(body)?;
    let refund = validate_refund(&object)?;
    scrub_object(&mut object);
    Ok((refund, Value::Object(object)))
}

/// Parses and validates a lookup form (`POST /mpacustomers`,
/// `application/x-www-form-urlencoded`). Unknown fields are ignored and `""` is absent; a known
/// field given twice is an error (which value would EBPP mean?).
pub fn parse_lookup(body: &[u8]) -> Result<LookupQuery, Vec<FieldError>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|_| vec![FieldError::body("request body is not a valid urlencoded form")])?;
    let mut query = LookupQuery::default();
    let mut checker = Checker::default();
    // One bit per known field: seen once, reported as repeated.
    let (mut seen, mut repeated) = (0u8, 0u8);
    for (name, value) in pairs {
        let (bit, rule, slot) = match name.as_str() {
            "customer_reference" => (1, Rule::Limited(&EBPP_REFERENCE, 100), &mut query.customer_reference),
            "account_number" => (2, Rule::Limited(&ACCOUNT_NUMBER, 100), &mut query.account_number),
            "ssn" => (4, Rule::Pattern(&SSN), &mut query.ssn),
            "email" => (8, Rule::Limited(&EMAIL, 100), &mut query.email),
            "lookup_reference" => (16, Rule::Limited(&EBPP_REFERENCE, 100), &mut query.lookup_reference),
            _ => continue,
        };
        if seen & bit != 0 {
            if repeated & bit == 0 {
                checker.fail("", &name, Problem::Repeated);
            }
            repeated |= bit;
            *slot = None;
            continue;
        }
        seen |= bit;
        if value.is_empty() {
            continue;
        }
        match rule.check(&value) {
            Ok(()) => *slot = Some(value),
            Err(problem) => checker.fail("", &name, problem),
        }
    }
    if !checker.errors.is_empty() {
        return Err(checker.errors);
    }
    let LookupQuery {
        customer_reference,
        account_number,
        ssn,
        email,
        lookup_reference,
    } = &query;
    if customer_reference.is_none()
        && account_number.is_none()
        && ssn.is_none()
        && email.is_none()
        && lookup_reference.is_none()
    {
        return Err(vec![FieldError::body(
            "at least one lookup criterion is required: customer_reference, account_number, \
             ssn, email or lookup_reference",
        )]);
    }
    Ok(query)
}

/// The EBPP `id` of a posting body, when it has a well-formed one: for the request log of a
/// rejected posting ("id if parseable", §6). Parses the body again, so use it on error paths.
pub fn posting_id(body: &[u8]) -> Option<String> {
    match posting_object(body).ok()?.get("id") {
        Some(Value::String(id)) if ID.matches(id) => Some(id.clone()),
        _ => None,
    }
}

/// `x` for every character but the last four (`4111111111111111` → `xxxxxxxxxxxx1111`), as the
/// funding account number is stored (§3). Four characters or fewer are left as they are.
pub fn mask_account_number(number: &str) -> String {
    let hidden = number.chars().count().saturating_sub(4);
    number
        .chars()
        .enumerate()
        .map(|(i, ch)| if i < hidden { 'x' } else { ch })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Patterns (§3, §4). Anchored; `shown` is what error messages quote, in the spec's spelling,
// `source` what is compiled (escaped for the regex crate, ASCII-only where the spec class has
// `\s`, since EBPP's Java `\s` is ASCII and Rust's is Unicode).

struct Pattern {
    shown: &'static str,
    source: &'static str,
    compiled: OnceLock<Regex>,
}

impl Pattern {
    const fn new(shown: &'static str, source: &'static str) -> Self {
        Self {
            shown,
            source,
            compiled: OnceLock::new(),
        }
    }

    fn matches(&self, s: &str) -> bool {
        self.compiled
            .get_or_init(|| Regex::new(self.source).expect("wire pattern literal compiles"))
            .is_match(s)
    }
}

static ID: Pattern = Pattern::new("^[0-9]{1,20}$", patterns::ID);
static CONFIRMATION: Pattern = Pattern::new("^[a-zA-Z0-9]{1,30}$", patterns::CONFIRMATION);
static CURRENCY: Pattern = Pattern::new("^[A-Z]{3}$", patterns::CURRENCY);
static REFERENCE: Pattern = Pattern::new("^[0-9a-zA-Z._-]{1,50}$", patterns::REFERENCE);
static TOKEN: Pattern = Pattern::new("^[0-9a-zA-Z._-]{1,64}$", patterns::TOKEN);
/// Upper case is accepted and stored lower-cased (§3).
static RETURN_CODE: Pattern = Pattern::new("^[a-z0-9]{1,10}$ (either case)", patterns::RETURN_CODE);
static CVV: Pattern = Pattern::new("^[0-9]{3,4}$", patterns::CVV);
static SSN: Pattern = Pattern::new("^[0-9]{9}$", patterns::SSN);
/// The EBPP reference class of `customer_reference` and `lookup_reference`.
static EBPP_REFERENCE: Pattern = Pattern::new(
    r"^[0-9a-zA-Z #,.'&/\-@!$%*()_+={}|:;`\[\]\^~\s\\]+$",
    patterns::EBPP_REFERENCE,
);
static ACCOUNT_NUMBER: Pattern = Pattern::new("^[a-zA-Z0-9-_/!@#$%&*{}. ']+$", patterns::ACCOUNT_NUMBER);
/// EBPP's email pattern, as the spec spells it; `patterns::EMAIL` spells its Java range out.
static EMAIL: Pattern = Pattern::new(
    r"^[a-zA-Z0-9!#$%&'*+-/=?^._`{|}~]+@[a-zA-Z0-9_.-]+\.[a-zA-Z0-9._]+$",
    patterns::EMAIL,
);
/// The EBPP comment class; the length is checked apart (`Rule::Limited`).
static COMMENTS: Pattern = Pattern::new(
    r#"^[0-9a-zA-Z #,.'&/\-@!$%*()_+={}|:;`\[\]\^~\\"\r\n]{1,1000}$"#,
    patterns::COMMENTS,
);

/// What the field patterns compile from, and what `/openapi.json` shows for them: each is
/// written in the common part of Rust's regex, ECMA-262 and Python's `re` (explicit ASCII
/// classes, no flags, no `\d` or `\s`), so the parser and the document cannot disagree.
pub mod patterns {
    pub const ID: &str = "^[0-9]{1,20}$";
    pub const CONFIRMATION: &str = "^[a-zA-Z0-9]{1,30}$";
    pub const CURRENCY: &str = "^[A-Z]{3}$";
    pub const REFERENCE: &str = r"^[0-9a-zA-Z._\-]{1,50}$";
    pub const TOKEN: &str = r"^[0-9a-zA-Z._\-]{1,64}$";
    pub const RETURN_CODE: &str = "^[a-zA-Z0-9]{1,10}$";
    pub const CVV: &str = "^[0-9]{3,4}$";
    pub const SSN: &str = "^[0-9]{9}$";
    /// EBPP's Java `\s` is ASCII whitespace: tab, LF, VT, FF, CR and space, spelled out.
    pub const EBPP_REFERENCE: &str = r"^[0-9a-zA-Z #,.'&/\-@!$%*()_+=\{\}|:;`\[\]\^~\t\n\x0B\f\r\\]+$";
    pub const ACCOUNT_NUMBER: &str = r"^[a-zA-Z0-9\-_/!@#$%&*\{\}. ']+$";
    /// The local-part class has the Java range `+-/`, i.e. `+ , - . /`, spelled out so that
    /// everything EBPP itself accepts passes here.
    pub const EMAIL: &str = r"^[a-zA-Z0-9!#$%&'*+,\-./=?\^_`\{|\}~]+@[a-zA-Z0-9_.\-]+\.[a-zA-Z0-9._]+$";
    /// Letters, digits, space, punctuation, `\`, `"`, CR and LF; at most 1000 characters, which
    /// is checked apart so the regex need not unroll `{1,1000}`.
    pub const COMMENTS: &str = r#"^[0-9a-zA-Z #,.'&/\-@!$%*()_+=\{\}|:;`\[\]\^~\\"\r\n]+$"#;
    /// An amount: up to 14 digits and up to 2 decimals (checked by `money::parse_amount`).
    pub const AMOUNT: &str = r"^[0-9]{1,14}(\.[0-9]{1,2})?$";
    /// A date's shape (`parse_date` also wants a real calendar date).
    pub const DATE: &str = "^[0-9]{4}-(0?[1-9]|1[0-2])-(0?[1-9]|[12][0-9]|3[01])$";
}

const AMOUNT_SHOWN: &str = r"^[0-9]{1,14}(\.[0-9]{1,2})?$";
const DATE_SHOWN: &str = r"^[0-9]{4}-(0?[1-9]|1[0-2])-(0?[1-9]|1\d|2\d|3[01])$";

/// What a string field must satisfy.
#[derive(Clone, Copy)]
enum Rule {
    /// Any string (EBPP gives no pattern: names, urls, network codes).
    Text,
    Pattern(&'static Pattern),
    /// A pattern plus a maximum length in characters. The classes are ASCII, so once the
    /// pattern matched, bytes are characters.
    Limited(&'static Pattern, usize),
    OneOf(&'static [&'static str]),
}

impl Rule {
    fn check(self, s: &str) -> Result<(), Problem> {
        match self {
            Rule::Text => Ok(()),
            Rule::Pattern(pattern) if pattern.matches(s) => Ok(()),
            Rule::Pattern(pattern) => Err(Problem::Pattern(pattern.shown)),
            Rule::Limited(pattern, _) if !pattern.matches(s) => Err(Problem::Pattern(pattern.shown)),
            Rule::Limited(_, max) if s.len() > max => Err(Problem::TooLong(max)),
            Rule::Limited(..) => Ok(()),
            Rule::OneOf(values) if values.contains(&s) => Ok(()),
            Rule::OneOf(values) => Err(Problem::OneOf(values)),
        }
    }
}

/// Why a field was refused. Deliberately carries no part of the value.
enum Problem {
    Required,
    NotString,
    NotObject,
    Pattern(&'static str),
    TooLong(usize),
    Date,
    OneOf(&'static [&'static str]),
    Repeated,
}

impl Problem {
    fn message(&self, field: &str) -> String {
        match self {
            Problem::Required => format!("{field} is required"),
            Problem::NotString => format!("{field} must be a string"),
            Problem::NotObject => format!("{field} must be an object"),
            Problem::Pattern(shown) => format!("{field} must match {shown}"),
            Problem::TooLong(max) => format!("{field} must be at most {max} characters"),
            Problem::Date => format!("{field} must be a real calendar date matching {DATE_SHOWN}"),
            Problem::OneOf(values) => format!("{field} must be one of: {}", values.join(", ")),
            Problem::Repeated => format!("{field} must not be given more than once"),
        }
    }
}

/// Collects every problem of one request. Getters take the object, the dotted path of that
/// object (`""` at the top) and the key, report what is wrong and return what is usable, so a
/// validator reads as a list of fields and never stops at the first error.
#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn fail(&mut self, prefix: &str, key: &str, problem: Problem) {
        let field = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        let message = problem.message(&field);
        self.errors.push(FieldError {
            field: Some(field),
            message,
        });
    }

    /// The string at `key`. Absent, `null` and `""` are all "absent" (an error when
    /// `required`); any other non-string is an error.
    fn string<'a>(&mut self, object: &'a Object, prefix: &str, key: &str, required: bool) -> Option<&'a str> {
        match object.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s),
            None | Some(Value::Null) | Some(Value::String(_)) => {
                if required {
                    self.fail(prefix, key, Problem::Required);
                }
                None
            }
            Some(_) => {
                self.fail(prefix, key, Problem::NotString);
                None
            }
        }
    }

    fn field<'a>(
        &mut self,
        object: &'a Object,
        prefix: &str,
        key: &str,
        rule: Rule,
        required: bool,
    ) -> Option<&'a str> {
        let s = self.string(object, prefix, key, required)?;
        match rule.check(s) {
            Ok(()) => Some(s),
            Err(problem) => {
                self.fail(prefix, key, problem);
                None
            }
        }
    }

    /// Optional strings without a pattern: checked only for being strings.
    fn texts(&mut self, object: &Object, prefix: &str, keys: &[&str]) {
        for key in keys {
            self.string(object, prefix, key, false);
        }
    }

    fn amount(&mut self, object: &Object, prefix: &str, key: &str, required: bool) -> Option<Decimal> {
        let s = self.string(object, prefix, key, required)?;
        let amount = money::parse_amount(s);
        if amount.is_none() {
            self.fail(prefix, key, Problem::Pattern(AMOUNT_SHOWN));
        }
        amount
    }

    /// A date, normalised to `YYYY-MM-DD`.
    fn date(&mut self, object: &Object, prefix: &str, key: &str, required: bool) -> Option<String> {
        let s = self.string(object, prefix, key, required)?;
        match parse_date(s) {
            Some(date) => Some(format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())),
            None => {
                self.fail(prefix, key, Problem::Date);
                None
            }
        }
    }

    fn status(&mut self, object: &Object, allowed: &'static [&'static str]) -> Option<PostingStatus> {
        self.field(object, "", "status", Rule::OneOf(allowed), true)
            .and_then(PostingStatus::parse)
    }

    /// The object at `key`; absent, `null` and `""` are "absent".
    fn object<'a>(&mut self, object: &'a Object, prefix: &str, key: &str, required: bool) -> Option<&'a Object> {
        match object.get(key) {
            Some(Value::Object(inner)) => Some(inner),
            None | Some(Value::Null) => {
                if required {
                    self.fail(prefix, key, Problem::Required);
                }
                None
            }
            Some(Value::String(s)) if s.is_empty() => {
                if required {
                    self.fail(prefix, key, Problem::Required);
                }
                None
            }
            Some(_) => {
                self.fail(prefix, key, Problem::NotObject);
                None
            }
        }
    }

    /// The collected errors; never empty when called on a failed validation, even if a bug
    /// left a required value missing without a report.
    fn into_errors(mut self) -> Vec<FieldError> {
        if self.errors.is_empty() {
            self.errors.push(FieldError::body("request is invalid"));
        }
        self.errors
    }
}

/// `^[0-9]{4}-(0?[1-9]|1[0-2])-(0?[1-9]|1\d|2\d|3[01])$` and a real calendar date. By hand
/// rather than by regex: a 4-digit year, 1–2 digit month and day whose ranges `from_ymd_opt`
/// checks (month 0/13, day 0/32, 2024-02-30 and 2023-02-29 all fail), ASCII digits only.
fn parse_date(s: &str) -> Option<NaiveDate> {
    let mut parts = s.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let digits = |part: &str, min: usize, max: usize| {
        (min..=max).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(year, 4, 4) || !digits(month, 1, 2) || !digits(day, 1, 2) {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, day.parse().ok()?)
}

// ---------------------------------------------------------------------------------------------
// Bodies.

/// The posted object: `posting_info` when present (it must be an object), else the body itself.
fn posting_object(body: &[u8]) -> Result<Object, Vec<FieldError>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(vec![FieldError::body(
            "request body is empty; a JSON object is required",
        )]);
    }
    let root: Value = serde_json::from_slice(body).map_err(|e| vec![FieldError::body(json_error(&e))])?;
    let Value::Object(mut root) = root else {
        return Err(vec![FieldError::body("request body must be a JSON object")]);
    };
    match root.remove("posting_info") {
        None => Ok(root),
        Some(Value::Object(inner)) => Ok(inner),
        Some(_) => Err(vec![FieldError {
            field: Some("posting_info".to_owned()),
            message: Problem::NotObject.message("posting_info"),
        }]),
    }
}

/// Where the JSON broke, without quoting any of it.
fn json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Eof => "it ends early",
        Category::Syntax => "syntax error",
        Category::Data => "invalid data",
        Category::Io => "read error",
    };
    format!(
        "request body is not valid JSON ({what} at line {} column {})",
        error.line(),
        error.column()
    )
}

fn parse_payment_with(
    body: &[u8],
    statuses: &'static [&'static str],
) -> Result<(PaymentPosting, Value), Vec<FieldError>> {
    let mut object = posting_object(body)?;
    let payment = validate_payment(&object, statuses)?;
    scrub_object(&mut object);
    Ok((payment, Value::Object(object)))
}

/// §5.1 payment object, every field in the spec's order.
fn validate_payment(p: &Object, statuses: &'static [&'static str]) -> Result<PaymentPosting, Vec<FieldError>> {
    let mut c = Checker::default();
    // Required.
    let id = c.field(p, "", "id", Rule::Pattern(&ID), true);
    let amount = c.amount(p, "", "amount", true);
    let confirmation_number = c.field(p, "", "confirmation_number", Rule::Pattern(&CONFIRMATION), true);
    let currency = c.field(p, "", "currency_code3d", Rule::Pattern(&CURRENCY), true);
    c.object(p, "", "custom_fields", true);
    let customer_reference = match c.object(p, "", "customer", true) {
        Some(customer) => check_customer(&mut c, customer, "customer"),
        None => None,
    };
    let account_number = match c.object(p, "", "customer_account", true) {
        Some(account) => check_customer_account(&mut c, account, "customer_account", true),
        None => None,
    };
    let funding_account_masked = match c.object(p, "", "funding_account", true) {
        Some(funding) => check_funding_account(&mut c, funding, "funding_account"),
        None => None,
    };
    let payment_date = c.date(p, "", "payment_date", true);
    let payment_method = c.field(p, "", "payment_method", Rule::OneOf(PAYMENT_METHODS), true);
    if let Some(response) = c.object(p, "", "payment_network_response", true) {
        check_network_response(&mut c, response, "payment_network_response");
    }
    let payment_schedule_type = c.field(
        p,
        "",
        "payment_schedule_type",
        Rule::OneOf(PAYMENT_SCHEDULE_TYPES),
        true,
    );
    let status = c.status(p, statuses);
    // Optional.
    c.field(p, "", "url", Rule::Text, false);
    let payment_amount_type = c.field(p, "", "payment_amount_type", Rule::OneOf(PAYMENT_AMOUNT_TYPES), false);
    c.date(p, "", "payment_entry_date", false);
    c.date(p, "", "payment_request_date", false);
    c.date(p, "", "expected_payment_settlement_date", false);
    let payment_return_date = c.date(p, "", "payment_return_date", false);
    let return_code = c.field(p, "", "return_code", Rule::Pattern(&RETURN_CODE), false);
    let payment_reference = c.field(p, "", "payment_reference", Rule::Pattern(&REFERENCE), false);
    let token = c.field(p, "", "token", Rule::Pattern(&TOKEN), false);
    c.field(p, "", "payment_notification_email", Rule::Pattern(&EMAIL), false);
    c.field(p, "", "comments", Rule::Limited(&COMMENTS, 1000), false);
    // Validated so a malformed CVV is refused like any field, then dropped by the scrub.
    c.field(p, "", "card_cvv_number", Rule::Pattern(&CVV), false);
    let fee_amount = match c.object(p, "", "fee", false) {
        Some(fee) => check_fee(&mut c, fee, "fee"),
        None => None,
    };
    // The patterns above are the names' own rules, so these only turn checked text into the
    // types the ledger takes.
    let currency = currency.and_then(|s| Currency::parse(s).ok());
    let account_number = account_number.and_then(|s| AccountNumber::parse(s).ok());

    match (
        id,
        amount,
        confirmation_number,
        currency,
        account_number,
        payment_date,
        payment_method,
        payment_schedule_type,
        status,
    ) {
        (
            Some(id),
            Some(amount),
            Some(confirmation_number),
            Some(currency),
            Some(account_number),
            Some(payment_date),
            Some(payment_method),
            Some(payment_schedule_type),
            Some(status),
        ) if c.errors.is_empty() => Ok(PaymentPosting {
            id: id.to_owned(),
            amount,
            confirmation_number: confirmation_number.to_owned(),
            currency,
            account_number,
            customer_reference: customer_reference.map(str::to_owned),
            payment_date,
            payment_method: payment_method.to_owned(),
            payment_schedule_type: payment_schedule_type.to_owned(),
            payment_amount_type: payment_amount_type.unwrap_or(DEFAULT_PAYMENT_AMOUNT_TYPE).to_owned(),
            status,
            payment_reference: payment_reference.map(str::to_owned),
            return_code: return_code.map(str::to_ascii_lowercase),
            payment_return_date,
            token: token.map(str::to_owned),
            fee_amount,
            funding_account_masked,
        }),
        _ => Err(c.into_errors()),
    }
}

/// §5.1 refund object.
fn validate_refund(r: &Object) -> Result<RefundPosting, Vec<FieldError>> {
    let mut c = Checker::default();
    // Required.
    let id = c.field(r, "", "id", Rule::Pattern(&ID), true);
    let status = c.status(r, STATUSES);
    let confirmation_number = c.field(r, "", "confirmation_number", Rule::Pattern(&CONFIRMATION), true);
    let source_payment_id = match c.object(r, "", "source_payment", true) {
        Some(source) => check_source_payment(&mut c, source),
        None => None,
    };
    // Optional.
    c.field(r, "", "url", Rule::Text, false);
    let refund_reference = c.field(r, "", "refund_reference", Rule::Pattern(&REFERENCE), false);
    let refund_type = c.field(r, "", "refund_type", Rule::OneOf(REFUND_TYPES), false);
    let refund_amount = c.amount(r, "", "refund_amount", false);
    let fee_refund_amount = match c.object(r, "", "fee_refund", false) {
        Some(fee) => {
            c.texts(fee, "fee_refund", &["fee_type"]);
            c.amount(fee, "fee_refund", "fee_refund_amount", false)
        }
        None => None,
    };
    let refund_date = c.date(r, "", "refund_date", false);
    c.date(r, "", "refund_entry_date", false);
    c.date(r, "", "expected_refund_settlement_date", false);
    if let Some(response) = c.object(r, "", "payment_network_response", false) {
        check_network_response(&mut c, response, "payment_network_response");
    }
    c.object(r, "", "custom_fields", false);
    c.field(r, "", "comments", Rule::Limited(&COMMENTS, 1000), false);

    match (id, status, confirmation_number, source_payment_id) {
        (Some(id), Some(status), Some(confirmation_number), Some(source_payment_id)) if c.errors.is_empty() => {
            Ok(RefundPosting {
                id: id.to_owned(),
                status,
                confirmation_number: confirmation_number.to_owned(),
                source_payment_id: source_payment_id.to_owned(),
                refund_reference: refund_reference.map(str::to_owned),
                refund_type: refund_type.map(str::to_owned),
                refund_amount,
                fee_refund_amount,
                refund_date,
            })
        }
        _ => Err(c.into_errors()),
    }
}

/// `source_payment`: its `id` is required; the nested objects EBPP may add follow the same rules
/// as in a payment (the account number is optional here).
fn check_source_payment<'a>(c: &mut Checker, source: &'a Object) -> Option<&'a str> {
    const PATH: &str = "source_payment";
    let id = c.field(source, PATH, "id", Rule::Pattern(&ID), true);
    if let Some(customer) = c.object(source, PATH, "customer", false) {
        check_customer(c, customer, "source_payment.customer");
    }
    if let Some(account) = c.object(source, PATH, "customer_account", false) {
        check_customer_account(c, account, "source_payment.customer_account", false);
    }
    if let Some(funding) = c.object(source, PATH, "funding_account", false) {
        check_funding_account(c, funding, "source_payment.funding_account");
    }
    id
}

/// EBPP `customer {id, url, customer_reference, first_name, last_name, middle_name, email,
/// home_phone, address}`; returns `customer_reference`. An `ssn` is not validated: it is dropped.
fn check_customer<'a>(c: &mut Checker, customer: &'a Object, path: &str) -> Option<&'a str> {
    let reference = c.field(
        customer,
        path,
        "customer_reference",
        Rule::Limited(&EBPP_REFERENCE, 100),
        false,
    );
    c.field(customer, path, "email", Rule::Limited(&EMAIL, 100), false);
    c.texts(
        customer,
        path,
        &["id", "url", "first_name", "last_name", "middle_name", "home_phone"],
    );
    c.object(customer, path, "address", false);
    reference
}

/// EBPP `customer_account {id, url, account_number}`; returns `account_number`.
fn check_customer_account<'a>(c: &mut Checker, account: &'a Object, path: &str, required: bool) -> Option<&'a str> {
    let number = c.field(
        account,
        path,
        "account_number",
        Rule::Limited(&ACCOUNT_NUMBER, 100),
        required,
    );
    c.texts(account, path, &["id", "url"]);
    number
}

/// EBPP `funding_account`; returns the masked account number.
fn check_funding_account(c: &mut Checker, funding: &Object, path: &str) -> Option<String> {
    let number = c.field(funding, path, "account_number", Rule::Text, false);
    c.texts(
        funding,
        path,
        &[
            "id",
            "url",
            "account_type",
            "account_subtype",
            "aba_routing_number",
            "issuer_name",
            "nickname",
            "display_text",
            "account_holder_name",
        ],
    );
    number.map(mask_account_number)
}

fn check_network_response(c: &mut Checker, response: &Object, path: &str) {
    c.texts(
        response,
        path,
        &["payment_auth_code", "payment_response_code", "payment_response_msg"],
    );
}

/// EBPP `fee {fee_type, fee_amount, id, url}`; returns `fee_amount`.
fn check_fee(c: &mut Checker, fee: &Object, path: &str) -> Option<Decimal> {
    c.texts(fee, path, &["fee_type", "id", "url"]);
    c.amount(fee, path, "fee_amount", false)
}

// ---------------------------------------------------------------------------------------------
// The stored copy (§3 sensitive data, §6).

/// Removes `card_cvv_number` and `ssn` at every depth and masks every
/// `funding_account.account_number`, in place. Everywhere rather than at the known paths: EBPP
/// may nest a whole payment (`source_payment`) or echo data in `custom_fields`, and a CVV or SSN
/// that reaches the store can never be taken back. `shift_remove` keeps the field order.
fn scrub_object(object: &mut Object) {
    object.shift_remove("card_cvv_number");
    object.shift_remove("ssn");
    if let Some(Value::Object(funding)) = object.get_mut("funding_account") {
        if let Some(number) = funding.get_mut("account_number") {
            mask_value(number);
        }
    }
    for (_, value) in object.iter_mut() {
        scrub_value(value);
    }
}

fn scrub_value(value: &mut Value) {
    match value {
        Value::Object(object) => scrub_object(object),
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        _ => {}
    }
}

fn mask_value(value: &mut Value) {
    let masked = match value {
        Value::String(number) => mask_account_number(number),
        // Validation refuses a number at the known paths; elsewhere mask it all the same.
        Value::Number(number) => mask_account_number(&number.to_string()),
        _ => return,
    };
    *value = Value::String(masked);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

    const CVV_TOP: &str = "4827";
    const CVV_NESTED: &str = "5936";
    const SSN_VALUE: &str = "078051120";
    const PAN: &str = "4111111111111111";

    fn valid_payment() -> Value {
        json!({"posting_info": {
            "id": "900000001",
            "amount": "101.05",
            "confirmation_number": "A12N12I12L",
            "currency_code3d": "USD",
            "custom_fields": {"branch": "north"},
            "customer": {
                "id": "555", "url": "https://ebpp.example/customers/555",
                "customer_reference": "C-1001", "first_name": "Ana", "last_name": "Diaz",
                "email": "ana@example.com", "home_phone": "2015550101", "ssn": SSN_VALUE,
                "address": {"address_line1": "1 Main St", "address_city": "Newark"}
            },
            "customer_account": {"id": "777", "account_number": "ACC-100200"},
            "funding_account": {
                "id": "888", "account_number": PAN, "account_type": "card",
                "account_subtype": "visa_debit", "card_cvv_number": CVV_NESTED
            },
            "payment_date": "2026-11-21",
            "payment_method": "visa_debit",
            "payment_network_response": {
                "payment_auth_code": "A1B2", "payment_response_code": "00",
                "payment_response_msg": "Approved"
            },
            "payment_schedule_type": "one_time_payment",
            "status": "processed",
            "url": "https://ebpp.example/payments/900000001",
            "payment_amount_type": "current_balance",
            "payment_entry_date": "2026-11-20",
            "payment_request_date": "2026-11-21",
            "expected_payment_settlement_date": "2026-11-23",
            "payment_reference": "P-42_a.b",
            "token": "tok.abc-1",
            "payment_notification_email": "ana+pay@example.com",
            "comments": "Paid at branch #3 (\"north\")\r\nThanks!",
            "card_cvv_number": CVV_TOP,
            "fee": {"fee_type": "convenience", "fee_amount": "1.50", "id": "9", "url": "u"},
            "x_unknown": {"kept": [1, 2, {"deep": "yes"}]}
        }})
    }

    fn valid_refund() -> Value {
        json!({"posting_info": {
            "id": "700000001",
            "status": "processed",
            "confirmation_number": "R12N12",
            "source_payment": {
                "id": "900000001",
                "customer": {"customer_reference": "C-1001", "ssn": SSN_VALUE},
                "customer_account": {"account_number": "ACC-100200"},
                "funding_account": {"account_number": PAN, "card_cvv_number": CVV_NESTED}
            },
            "url": "https://ebpp.example/refunds/700000001",
            "refund_reference": "RF-1",
            "refund_type": "payment_only",
            "refund_amount": "50.5",
            "fee_refund": {"fee_refund_amount": "1.00", "fee_type": "convenience"},
            "refund_date": "2026-11-22",
            "refund_entry_date": "2026-11-22",
            "expected_refund_settlement_date": "2026-11-25",
            "payment_network_response": {"payment_response_code": "00"},
            "custom_fields": {},
            "comments": "partial refund",
            "x_extra": "kept"
        }})
    }

    /// What to do at a dotted path inside `posting_info`.
    enum Edit {
        Remove,
        Set(Value),
    }

    fn edited(mut body: Value, path: &str, edit: &Edit) -> Vec<u8> {
        let mut target = &mut body["posting_info"];
        let mut keys: Vec<&str> = path.split('.').collect();
        let last = keys.pop().expect("path has a key");
        for key in keys {
            target = &mut target[key];
        }
        let object = target.as_object_mut().expect("parent is an object");
        match edit {
            Edit::Remove => {
                object.shift_remove(last);
            }
            Edit::Set(value) => {
                object.insert(last.to_owned(), value.clone());
            }
        }
        serde_json::to_vec(&body).expect("serialize")
    }

    fn fields(errors: &[FieldError]) -> Vec<Option<&str>> {
        errors.iter().map(|e| e.field.as_deref()).collect()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("test decimal")
    }

    #[test]
    fn every_pattern_compiles() {
        for pattern in [
            &ID,
            &CONFIRMATION,
            &CURRENCY,
            &REFERENCE,
            &TOKEN,
            &RETURN_CODE,
            &CVV,
            &SSN,
            &EBPP_REFERENCE,
            &ACCOUNT_NUMBER,
            &EMAIL,
            &COMMENTS,
        ] {
            assert!(!pattern.matches(""), "{} matches the empty string", pattern.shown);
        }
    }

    #[test]
    fn valid_payment_parses() {
        let body = serde_json::to_vec(&valid_payment()).expect("serialize");
        let (payment, _) = parse_payment(&body).expect("valid payment");
        assert_eq!(
            payment,
            PaymentPosting {
                id: "900000001".into(),
                amount: dec("101.05"),
                confirmation_number: "A12N12I12L".into(),
                currency: "USD".into(),
                account_number: "ACC-100200".into(),
                customer_reference: Some("C-1001".into()),
                payment_date: "2026-11-21".into(),
                payment_method: "visa_debit".into(),
                payment_schedule_type: "one_time_payment".into(),
                payment_amount_type: "current_balance".into(),
                status: PostingStatus::Processed,
                payment_reference: Some("P-42_a.b".into()),
                return_code: None,
                payment_return_date: None,
                token: Some("tok.abc-1".into()),
                fee_amount: Some(dec("1.50")),
                funding_account_masked: Some("xxxxxxxxxxxx1111".into()),
            }
        );
    }

    #[test]
    fn minimal_payment_gets_defaults() {
        let body = json!({
            "id": "1", "amount": "0.5", "confirmation_number": "C1", "currency_code3d": "JPY",
            "custom_fields": {}, "customer": {}, "customer_account": {"account_number": "A"},
            "funding_account": {}, "payment_date": "2024-2-9", "payment_method": "rtp_rfp",
            "payment_network_response": {}, "payment_schedule_type": "payment_plan_generated",
            "status": "scheduled", "payment_amount_type": "", "return_code": "R01",
            "payment_return_date": "2024-02-29", "token": null
        });
        let (payment, stored) = parse_payment(&serde_json::to_vec(&body).expect("serialize")).expect("valid");
        assert_eq!(payment.payment_amount_type, "other");
        assert_eq!(payment.payment_date, "2024-02-09");
        assert_eq!(payment.payment_return_date.as_deref(), Some("2024-02-29"));
        assert_eq!(payment.return_code.as_deref(), Some("r01"));
        assert_eq!(payment.customer_reference, None);
        assert_eq!(payment.funding_account_masked, None);
        assert_eq!(payment.token, None);
        assert_eq!(payment.amount, dec("0.5"));
        // The stored copy is the posted object as sent (here bare), dates not rewritten.
        assert_eq!(stored["payment_date"], "2024-2-9");
        assert_eq!(stored["return_code"], "R01");
    }

    #[test]
    fn bare_object_is_accepted() {
        let bare = valid_payment()["posting_info"].clone();
        let (from_bare, stored_bare) = parse_payment(&serde_json::to_vec(&bare).expect("serialize")).expect("bare");
        let (canonical, stored_canonical) =
            parse_payment(&serde_json::to_vec(&valid_payment()).expect("serialize")).expect("canonical");
        assert_eq!(from_bare, canonical);
        assert_eq!(stored_bare, stored_canonical);
    }

    #[test]
    fn invalid_payments_name_the_field() {
        use Edit::{Remove, Set};
        let long = |n: usize| Value::String("a".repeat(n));
        #[rustfmt::skip]
        let rows: Vec<(&str, Edit, &str)> = vec![
            // Patterns.
            ("id", Set(json!("12a")), "id"),
            ("id", Set(json!("123456789012345678901")), "id"),
            ("amount", Set(json!("10.123")), "amount"),
            ("amount", Set(json!("-1")), "amount"),
            ("amount", Set(json!("1e3")), "amount"),
            ("amount", Set(json!("1,00")), "amount"),
            ("amount", Set(json!("123456789012345")), "amount"),
            ("confirmation_number", Set(json!("A-1")), "confirmation_number"),
            ("confirmation_number", Set(long(31)), "confirmation_number"),
            ("currency_code3d", Set(json!("usd")), "currency_code3d"),
            ("currency_code3d", Set(json!("US")), "currency_code3d"),
            ("return_code", Set(json!("R01!")), "return_code"),
            ("return_code", Set(long(11)), "return_code"),
            ("payment_reference", Set(json!("P 42")), "payment_reference"),
            ("payment_reference", Set(long(51)), "payment_reference"),
            ("token", Set(long(65)), "token"),
            ("token", Set(json!("tok/1")), "token"),
            ("card_cvv_number", Set(json!("12")), "card_cvv_number"),
            ("card_cvv_number", Set(json!("12345")), "card_cvv_number"),
            ("card_cvv_number", Set(json!("12a")), "card_cvv_number"),
            ("comments", Set(long(1001)), "comments"),
            ("comments", Set(json!("tab\there")), "comments"),
            ("comments", Set(json!("café")), "comments"),
            ("comments", Set(json!("a<b>")), "comments"),
            ("payment_notification_email", Set(json!("not-an-email")), "payment_notification_email"),
            ("payment_notification_email", Set(json!("a@b")), "payment_notification_email"),
            ("customer.customer_reference", Set(json!("C<1>")), "customer.customer_reference"),
            ("customer.customer_reference", Set(long(101)), "customer.customer_reference"),
            ("customer.customer_reference", Set(json!("C\u{00a0}1")), "customer.customer_reference"),
            ("customer.email", Set(json!("ana@example")), "customer.email"),
            ("customer.email", Set(json!(format!("{}@example.com", "a".repeat(90)))), "customer.email"),
            ("customer_account.account_number", Set(json!("ACC~1")), "customer_account.account_number"),
            ("customer_account.account_number", Set(long(101)), "customer_account.account_number"),
            ("fee.fee_amount", Set(json!("1.234")), "fee.fee_amount"),
            // Enums.
            ("payment_method", Set(json!("bitcoin")), "payment_method"),
            ("payment_method", Set(json!("ACH")), "payment_method"),
            ("payment_schedule_type", Set(json!("weekly")), "payment_schedule_type"),
            ("status", Set(json!("live")), "status"),
            ("status", Set(json!("Processed")), "status"),
            ("payment_amount_type", Set(json!("everything")), "payment_amount_type"),
            // Dates.
            ("payment_date", Set(json!("2024-02-30")), "payment_date"),
            ("payment_date", Set(json!("2023-02-29")), "payment_date"),
            ("payment_date", Set(json!("2024-13-01")), "payment_date"),
            ("payment_date", Set(json!("2024-00-10")), "payment_date"),
            ("payment_date", Set(json!("2024-01-32")), "payment_date"),
            ("payment_date", Set(json!("2024-04-31")), "payment_date"),
            ("payment_date", Set(json!("24-01-01")), "payment_date"),
            ("payment_date", Set(json!("2024/01/01")), "payment_date"),
            ("payment_date", Set(json!("2024-001-01")), "payment_date"),
            ("payment_date", Set(json!("2024-01-01T00:00:00Z")), "payment_date"),
            ("payment_date", Set(json!("２０２４-01-01")), "payment_date"),
            ("payment_entry_date", Set(json!("2024-02-30")), "payment_entry_date"),
            ("payment_request_date", Set(json!("2023-02-29")), "payment_request_date"),
            ("expected_payment_settlement_date", Set(json!("tomorrow")), "expected_payment_settlement_date"),
            ("payment_return_date", Set(json!("2024-6-31")), "payment_return_date"),
            // Not strings.
            ("amount", Set(json!(10)), "amount"),
            ("amount", Set(json!(10.5)), "amount"),
            ("id", Set(json!(900000001)), "id"),
            ("status", Set(json!(true)), "status"),
            ("url", Set(json!(["u"])), "url"),
            ("customer.email", Set(json!(1)), "customer.email"),
            ("customer.first_name", Set(json!({"a": 1})), "customer.first_name"),
            ("funding_account.account_number", Set(json!(4111111111111111u64)), "funding_account.account_number"),
            ("payment_network_response.payment_response_code", Set(json!(0)), "payment_network_response.payment_response_code"),
            ("fee.fee_amount", Set(json!(1.5)), "fee.fee_amount"),
            // Nested objects that are not objects.
            ("custom_fields", Set(json!("a")), "custom_fields"),
            ("customer", Set(json!("x")), "customer"),
            ("customer_account", Set(json!([])), "customer_account"),
            ("funding_account", Set(json!("4111")), "funding_account"),
            ("payment_network_response", Set(json!(1)), "payment_network_response"),
            ("fee", Set(json!("x")), "fee"),
            ("customer.address", Set(json!("1 Main St")), "customer.address"),
            // A required nested field.
            ("customer_account.account_number", Remove, "customer_account.account_number"),
            ("customer_account.account_number", Set(json!("")), "customer_account.account_number"),
        ];
        for (path, edit, want) in &rows {
            let body = edited(valid_payment(), path, edit);
            let errors = parse_payment(&body).expect_err(path);
            assert_eq!(fields(&errors), [Some(*want)], "{path}: {errors:?}");
            assert!(errors[0].message.starts_with(want), "{path}: {}", errors[0].message);
        }
    }

    #[test]
    fn missing_or_empty_required_fields_are_required() {
        let required = [
            "id",
            "amount",
            "confirmation_number",
            "currency_code3d",
            "custom_fields",
            "customer",
            "customer_account",
            "funding_account",
            "payment_date",
            "payment_method",
            "payment_network_response",
            "payment_schedule_type",
            "status",
        ];
        for key in required {
            for edit in [Edit::Remove, Edit::Set(json!("")), Edit::Set(Value::Null)] {
                let errors = parse_payment(&edited(valid_payment(), key, &edit)).expect_err(key);
                assert_eq!(fields(&errors), [Some(key)], "{key}");
                assert_eq!(errors[0].message, format!("{key} is required"));
            }
        }
    }

    #[test]
    fn optional_fields_may_be_absent_or_empty() {
        let optional = [
            "url",
            "payment_amount_type",
            "payment_entry_date",
            "payment_request_date",
            "expected_payment_settlement_date",
            "payment_return_date",
            "return_code",
            "payment_reference",
            "token",
            "payment_notification_email",
            "comments",
            "card_cvv_number",
            "fee",
            "customer.customer_reference",
            "customer.email",
            "funding_account.account_number",
        ];
        for key in optional {
            for edit in [Edit::Remove, Edit::Set(json!("")), Edit::Set(Value::Null)] {
                let body = edited(valid_payment(), key, &edit);
                assert!(parse_payment(&body).is_ok(), "{key}");
            }
        }
    }

    #[test]
    fn valid_edge_values_pass() {
        let rows = [
            ("payment_date", json!("2024-02-29")),
            ("payment_date", json!("2024-2-9")),
            ("payment_date", json!("2024-12-31")),
            ("amount", json!("0")),
            ("amount", json!("99999999999999.99")),
            ("return_code", json!("R01")),
            ("card_cvv_number", json!("123")),
            ("comments", Value::String("a".repeat(1000))),
            ("comments", json!("all of #,.'&/-@!$%*()_+={}|:;`[]^~\\\" and\r\n")),
            (
                "customer.customer_reference",
                json!("C 1,#.'&/-@!$%*()_+={}|:;`[]^~\\\t"),
            ),
            ("customer_account.account_number", json!("a-_/!@#$%&*{}. 'Z9")),
            ("payment_notification_email", json!("o'neil.x+y/z@mail-1.example.co.uk")),
            ("payment_method", json!("rtp_rfp")),
        ];
        for (path, value) in rows {
            let body = edited(valid_payment(), path, &Edit::Set(value));
            assert!(parse_payment(&body).is_ok(), "{path}: {:?}", parse_payment(&body));
        }
    }

    #[test]
    fn every_invalid_field_is_reported_together() {
        let mut body = valid_payment();
        let info = body["posting_info"].as_object_mut().expect("object");
        info.shift_remove("id");
        info.insert("amount".into(), json!("ten"));
        info.insert("status".into(), json!("bad"));
        info.insert("payment_date".into(), json!("2024-02-30"));
        info.insert("card_cvv_number".into(), json!("1"));
        info["customer_account"]
            .as_object_mut()
            .expect("object")
            .shift_remove("account_number");
        info["customer"]["email"] = json!("nope");
        let errors = parse_payment(&serde_json::to_vec(&body).expect("serialize")).expect_err("invalid");
        assert_eq!(
            fields(&errors),
            [
                Some("id"),
                Some("amount"),
                Some("customer.email"),
                Some("customer_account.account_number"),
                Some("payment_date"),
                Some("status"),
                Some("card_cvv_number"),
            ]
        );
    }

    #[test]
    fn malformed_bodies() {
        let rows: [(&[u8], Option<&str>); 9] = [
            (b"", None),
            (b"  \n", None),
            (b"{\"posting_info\": ", None),
            (b"{\"id\": \"1\",}", None),
            (b"[]", None),
            (b"\"posting\"", None),
            (b"null", None),
            (b"{\"posting_info\": \"x\"}", Some("posting_info")),
            (b"{\"posting_info\": null}", Some("posting_info")),
        ];
        for (body, want) in rows {
            for parse in [
                |b: &[u8]| parse_payment(b).map(|_| ()),
                |b: &[u8]| parse_reversal(b).map(|_| ()),
                |b: &[u8]| parse_refund(b).map(|_| ()),
            ] {
                let errors = parse(body).expect_err("malformed");
                assert_eq!(fields(&errors), [want], "{}", String::from_utf8_lossy(body));
            }
        }
        let errors = parse_payment(b"{\"id\": \"secret-value").expect_err("malformed");
        assert!(!errors[0].message.contains("secret"), "{}", errors[0].message);
        assert!(errors[0].message.contains("not valid JSON"));
    }

    #[test]
    fn stored_copy_is_sanitised_and_keeps_unknown_fields() {
        let body = serde_json::to_vec(&valid_payment()).expect("serialize");
        let (_, stored) = parse_payment(&body).expect("valid");
        let text = serde_json::to_string(&stored).expect("serialize");
        for secret in [CVV_TOP, CVV_NESTED, SSN_VALUE, "41111111"] {
            assert!(!text.contains(secret), "{secret} stored: {text}");
        }
        assert!(stored.get("card_cvv_number").is_none());
        assert!(stored["funding_account"].get("card_cvv_number").is_none());
        assert!(stored["customer"].get("ssn").is_none());
        assert_eq!(stored["funding_account"]["account_number"], "xxxxxxxxxxxx1111");
        assert_eq!(stored["x_unknown"], json!({"kept": [1, 2, {"deep": "yes"}]}));
        assert_eq!(stored["custom_fields"], json!({"branch": "north"}));
        assert_eq!(stored["customer"]["first_name"], "Ana");
        // The stored copy is the posting_info object itself, in the posted order.
        assert!(stored.get("posting_info").is_none());
        let keys: Vec<&str> = stored.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(&keys[..3], ["id", "amount", "confirmation_number"]);
        assert_eq!(keys.last(), Some(&"x_unknown"));
    }

    #[test]
    fn secrets_are_scrubbed_at_any_depth() {
        let mut body = valid_payment();
        body["posting_info"]["custom_fields"] = json!({
            "ssn": SSN_VALUE,
            "items": [{"card_cvv_number": CVV_NESTED, "funding_account": {"account_number": 5500005555555559u64}}]
        });
        let (_, stored) = parse_payment(&serde_json::to_vec(&body).expect("serialize")).expect("valid");
        let text = serde_json::to_string(&stored).expect("serialize");
        for secret in [CVV_NESTED, SSN_VALUE, "550000555"] {
            assert!(!text.contains(secret), "{secret} stored: {text}");
        }
        assert_eq!(
            stored["custom_fields"]["items"][0]["funding_account"]["account_number"],
            "xxxxxxxxxxxx5559"
        );
    }

    #[test]
    fn cvv_and_ssn_never_appear_in_errors() {
        // A malformed CVV among other errors, and a well-formed one while other fields fail.
        for cvv in ["98a7x", "98765", CVV_TOP] {
            let mut body = valid_payment();
            body["posting_info"]["card_cvv_number"] = json!(cvv);
            body["posting_info"]["amount"] = json!("bad");
            body["posting_info"]["funding_account"]["card_cvv_number"] = json!(cvv);
            let errors = parse_payment(&serde_json::to_vec(&body).expect("serialize")).expect_err("invalid");
            for error in &errors {
                assert!(!error.message.contains(cvv), "{cvv} in {}", error.message);
                assert!(!format!("{error:?}").contains(cvv));
            }
        }
        let errors = parse_lookup(b"ssn=12345678&email=bad").expect_err("invalid");
        assert_eq!(fields(&errors), [Some("ssn"), Some("email")]);
        for error in &errors {
            assert!(!error.message.contains("12345678"), "{}", error.message);
        }
    }

    #[test]
    fn reversal_refuses_live_statuses() {
        for (status, ok) in [
            ("returned", true),
            ("cancelled", true),
            ("declined", true),
            ("disputed", true),
            ("error", true),
            ("processed", false),
            ("scheduled", false),
            ("processing", false),
        ] {
            let body = edited(valid_payment(), "status", &Edit::Set(json!(status)));
            match parse_reversal(&body) {
                Ok((payment, _)) => {
                    assert!(ok, "{status} accepted");
                    assert_eq!(payment.status.as_str(), status);
                }
                Err(errors) => {
                    assert!(!ok, "{status} refused");
                    assert_eq!(fields(&errors), [Some("status")]);
                }
            }
        }
        // Reported together with the other invalid fields.
        let mut body = valid_payment();
        body["posting_info"]["amount"] = json!(1);
        let errors = parse_reversal(&serde_json::to_vec(&body).expect("serialize")).expect_err("live");
        assert_eq!(fields(&errors), [Some("amount"), Some("status")]);
    }

    #[test]
    fn valid_refund_parses_and_is_sanitised() {
        let body = serde_json::to_vec(&valid_refund()).expect("serialize");
        let (refund, stored) = parse_refund(&body).expect("valid refund");
        assert_eq!(
            refund,
            RefundPosting {
                id: "700000001".into(),
                status: PostingStatus::Processed,
                confirmation_number: "R12N12".into(),
                source_payment_id: "900000001".into(),
                refund_reference: Some("RF-1".into()),
                refund_type: Some("payment_only".into()),
                refund_amount: Some(dec("50.5")),
                fee_refund_amount: Some(dec("1.00")),
                refund_date: Some("2026-11-22".into()),
            }
        );
        let text = serde_json::to_string(&stored).expect("serialize");
        for secret in [CVV_NESTED, SSN_VALUE, "41111111"] {
            assert!(!text.contains(secret), "{secret} stored: {text}");
        }
        assert_eq!(
            stored["source_payment"]["funding_account"]["account_number"],
            "xxxxxxxxxxxx1111"
        );
        assert!(stored["source_payment"]["customer"].get("ssn").is_none());
        assert_eq!(stored["x_extra"], "kept");
    }

    #[test]
    fn minimal_refund_parses() {
        let body = br#"{"id":"1","status":"scheduled","confirmation_number":"c","source_payment":{"id":"2"}}"#;
        let (refund, _) = parse_refund(body).expect("valid");
        assert_eq!(refund.source_payment_id, "2");
        assert_eq!(refund.refund_amount, None);
        assert_eq!(refund.refund_type, None);
    }

    #[test]
    fn invalid_refunds_name_the_field() {
        use Edit::{Remove, Set};
        #[rustfmt::skip]
        let rows: Vec<(&str, Edit, &str)> = vec![
            ("id", Remove, "id"),
            ("id", Set(json!("")), "id"),
            ("id", Set(json!("r1")), "id"),
            ("status", Remove, "status"),
            ("status", Set(json!("refunded")), "status"),
            ("confirmation_number", Remove, "confirmation_number"),
            ("confirmation_number", Set(json!("R 1")), "confirmation_number"),
            ("source_payment", Remove, "source_payment"),
            ("source_payment", Set(json!("900000001")), "source_payment"),
            ("source_payment.id", Remove, "source_payment.id"),
            ("source_payment.id", Set(json!("abc")), "source_payment.id"),
            ("source_payment.id", Set(json!(900000001)), "source_payment.id"),
            ("source_payment.customer", Set(json!(1)), "source_payment.customer"),
            ("source_payment.customer.email", Set(json!("x@y")), "source_payment.customer.email"),
            ("source_payment.customer_account.account_number", Set(json!("a~b")), "source_payment.customer_account.account_number"),
            ("source_payment.funding_account", Set(json!("x")), "source_payment.funding_account"),
            ("refund_reference", Set(json!("RF 1")), "refund_reference"),
            ("refund_type", Set(json!("all")), "refund_type"),
            ("refund_amount", Set(json!("1.234")), "refund_amount"),
            ("refund_amount", Set(json!(5)), "refund_amount"),
            ("fee_refund", Set(json!("x")), "fee_refund"),
            ("fee_refund.fee_refund_amount", Set(json!("-1")), "fee_refund.fee_refund_amount"),
            ("refund_date", Set(json!("2024-02-30")), "refund_date"),
            ("refund_entry_date", Set(json!("2023-02-29")), "refund_entry_date"),
            ("expected_refund_settlement_date", Set(json!("2024-13-01")), "expected_refund_settlement_date"),
            ("payment_network_response", Set(json!([])), "payment_network_response"),
            ("custom_fields", Set(json!("x")), "custom_fields"),
            ("comments", Set(Value::String("a".repeat(1001))), "comments"),
        ];
        for (path, edit, want) in &rows {
            let body = edited(valid_refund(), path, edit);
            let errors = parse_refund(&body).expect_err(path);
            assert_eq!(fields(&errors), [Some(*want)], "{path}: {errors:?}");
        }
        // Optional nested parts of source_payment may be absent.
        let body = edited(
            valid_refund(),
            "source_payment.customer_account.account_number",
            &Remove,
        );
        assert!(parse_refund(&body).is_ok());
    }

    #[test]
    fn posting_id_for_the_request_log() {
        assert_eq!(
            posting_id(br#"{"posting_info":{"id":"42","amount":1}}"#).as_deref(),
            Some("42")
        );
        assert_eq!(posting_id(br#"{"id":"43"}"#).as_deref(), Some("43"));
        assert_eq!(posting_id(br#"{"id":"4 3"}"#), None);
        assert_eq!(posting_id(b"{"), None);
    }

    #[test]
    fn messages_name_the_rule() {
        let rows = [
            (
                "amount",
                json!("1.234"),
                r"amount must match ^[0-9]{1,14}(\.[0-9]{1,2})?$",
            ),
            ("amount", json!(1), "amount must be a string"),
            ("customer", json!(1), "customer must be an object"),
            (
                "comments",
                Value::String("a".repeat(1001)),
                "comments must be at most 1000 characters",
            ),
            (
                "payment_date",
                json!("2024-02-30"),
                r"payment_date must be a real calendar date matching ^[0-9]{4}-(0?[1-9]|1[0-2])-(0?[1-9]|1\d|2\d|3[01])$",
            ),
            (
                "payment_schedule_type",
                json!("x"),
                "payment_schedule_type must be one of: one_time_payment, autopay_generated_payment, \
                 variable_recurring_generated_payment, payment_plan_generated",
            ),
        ];
        for (path, value, want) in rows {
            let errors = parse_payment(&edited(valid_payment(), path, &Edit::Set(value))).expect_err(path);
            assert_eq!(errors[0].message, want);
            assert_eq!(errors[0].to_string(), want);
        }
        let errors = parse_lookup(b"").expect_err("no criterion");
        assert_eq!(errors[0].field, None);
        assert!(errors[0]
            .message
            .starts_with("at least one lookup criterion is required"));
        let json = serde_json::to_value(&errors[0]).expect("serialize");
        assert!(json.get("field").is_none(), "{json}");
    }

    #[test]
    fn mask_keeps_the_last_four() {
        assert_eq!(mask_account_number("4111111111111111"), "xxxxxxxxxxxx1111");
        assert_eq!(mask_account_number("12345"), "x2345");
        assert_eq!(mask_account_number("1234"), "1234");
        assert_eq!(mask_account_number(""), "");
        assert_eq!(mask_account_number("ßß12345"), "xxx2345");
        assert_eq!(mask_account_number("xxxxxxxxxxxx1111"), "xxxxxxxxxxxx1111");
    }

    #[test]
    fn valid_lookup_parses() {
        let body = b"customer_reference=C-1001&account_number=ACC-100200&ssn=123456789\
                     &email=Ana%40Example.com&lookup_reference=LR+77&unknown=zzz";
        let query = parse_lookup(body).expect("valid");
        assert_eq!(
            query,
            LookupQuery {
                customer_reference: Some("C-1001".into()),
                account_number: Some("ACC-100200".into()),
                ssn: Some("123456789".into()),
                email: Some("Ana@Example.com".into()),
                lookup_reference: Some("LR 77".into()),
            }
        );
        let debug = format!("{query:?}");
        assert!(!debug.contains("123456789"), "{debug}");
        assert!(debug.contains("<redacted>"));
        let single = parse_lookup(b"account_number=A1&email=").expect("one criterion");
        assert_eq!(single.account_number.as_deref(), Some("A1"));
        assert_eq!(single.email, None);
    }

    #[test]
    fn invalid_lookups() {
        let long = "a".repeat(101);
        let rows: Vec<(String, Option<&str>)> = vec![
            ("".into(), None),
            ("unknown=1".into(), None),
            ("ssn=&email=&account_number=".into(), None),
            ("ssn=12345678".into(), Some("ssn")),
            ("ssn=1234567890".into(), Some("ssn")),
            ("ssn=12345678a".into(), Some("ssn")),
            ("email=ana".into(), Some("email")),
            (format!("email={}%40example.com", "a".repeat(90)), Some("email")),
            (format!("account_number={long}"), Some("account_number")),
            ("account_number=a~b".into(), Some("account_number")),
            (format!("customer_reference={long}"), Some("customer_reference")),
            ("customer_reference=C%3C1".into(), Some("customer_reference")),
            ("lookup_reference=%C3%A9".into(), Some("lookup_reference")),
            ("ssn=123456789&ssn=123456789".into(), Some("ssn")),
            ("ssn=123456789&ssn=987654321&ssn=1".into(), Some("ssn")),
        ];
        for (body, want) in rows {
            let errors = parse_lookup(body.as_bytes()).expect_err(&body);
            assert_eq!(fields(&errors), [want], "{body}");
        }
        let errors = parse_lookup(b"ssn=1&account_number=a~b&email=x").expect_err("three");
        assert_eq!(fields(&errors), [Some("ssn"), Some("account_number"), Some("email")]);
    }
}
