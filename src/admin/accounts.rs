//! `GET /admin/accounts/{account_number}` and `PUT /admin/accounts` (the accounts file as the
//! body, a JSON array or JSON lines as its `Content-Type` says, with the same validation and
//! all-or-nothing rule as `accounts import`).

use actix_web::http::Method;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::{OpenApi, ToSchema};

use super::error::{AdminError, AdminErrorCode, EntryProblem, ErrorBody};
use super::views::{AccountView, ImportAnswer, JournalEntryView, JournalFormatter, ProfileView};
use crate::domain::account::EntryError;
use crate::domain::accounts_file::{parse_all_as, Format};
use crate::domain::AccountNumber;
use crate::http::{media_type, read_body, resource};
use crate::state::AppState;
use crate::store::Store;

/// How many journal entries the account view shows.
pub const ACCOUNT_JOURNAL_ENTRIES: usize = 100;

#[derive(OpenApi)]
#[openapi(paths(account, put_accounts))]
pub struct Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource::<AdminError>(
        "/accounts/{account_number}",
        vec![(Method::GET, web::to(account))],
    ))
    .service(resource::<AdminError>(
        "/accounts",
        vec![(Method::PUT, web::to(put_accounts))],
    ));
}

/// An account, its profiles and its last journal entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    pub account: AccountView,
    pub customers: Vec<ProfileView>,
    /// The last 100 journal entries of the account, newest first.
    pub journal: Vec<JournalEntryView>,
}

/// The account with its live balance, its profiles and its last 100 journal entries.
#[utoipa::path(
    get,
    path = "/admin/accounts/{account_number}",
    tag = "admin",
    params(("account_number" = String, Path, description = "The biller account number", example = "ACC-100200")),
    responses(
        (status = 200, description = "The account", body = AccountPage),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
        (status = 404, description = "No such account", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn account(path: web::Path<String>, state: web::Data<AppState>) -> Result<HttpResponse, AdminError> {
    match account_page(&state.store, path.into_inner()).await? {
        Some(p) => Ok(HttpResponse::Ok().json(p)),
        None => Err(AdminError::not_found("account_number", "no such account")),
    }
}

/// The account with its profiles and last journal entries, for the admin API and the console.
/// A number that is not an account number names no account.
pub async fn account_page(store: &Store, number: String) -> Result<Option<AccountPage>, AdminError> {
    let Ok(number) = AccountNumber::try_from(number) else {
        return Ok(None);
    };
    let Some(account) = store.account(&number).await? else {
        return Ok(None);
    };
    let mut customers = Vec::with_capacity(account.customer_references.len());
    for reference in &account.customer_references {
        if let Some(p) = store.profile(reference).await? {
            customers.push(ProfileView::from(&p));
        }
    }
    let mut format = JournalFormatter::new(store);
    let mut journal = Vec::new();
    for entry in store.account_journal(&number, ACCOUNT_JOURNAL_ENTRIES).await? {
        journal.push(format.view(&entry).await?);
    }
    Ok(Some(AccountPage {
        account: AccountView::from(&account),
        customers,
        journal,
    }))
}
/// The accounts file as a JSON array (`Content-Type: application/json`).
pub const ARRAY_MEDIA_TYPE: &str = "application/json";
/// The accounts file as JSON lines, one account object per line (`application/x-ndjson`).
pub const LINES_MEDIA_TYPE: &str = "application/x-ndjson";

/// Upsert accounts and profiles. The body is the accounts file, in the form its `Content-Type`
/// names: a JSON array (`application/json`) or JSON lines (`application/x-ndjson`). Any bad entry
/// imports nothing and every bad entry is reported. Answers once the import is on disk.
#[utoipa::path(
    put,
    path = "/admin/accounts",
    tag = "admin",
    request_body(
        description = "The accounts file (docs/operations.md), at least one account: a JSON array as `application/json`, or JSON lines as `application/x-ndjson` (one account object per line, blank lines allowed; the schema describes the sequence of lines). Rules a schema cannot say are checked too: `account_number` unique in the body, `customer_reference` unique within an account, `min_payment_amount` not above `max_payment_amount`, a `currency` ISO 4217 knows with a minor unit, real calendar dates.",
        content(
            (AccountsFile = "application/json", example = json!(accounts_example())),
            (AccountsFile = "application/x-ndjson", example = json!(accounts_example())),
        ),
    ),
    responses(
        (status = 200, description = "What the import did", body = ImportAnswer,
            example = json!({"accounts_created": 1, "accounts_updated": 0, "profiles_created": 1, "profiles_updated": 0})),
        (status = 400, description = "`validation`: bad entries, nothing imported (`errors` lists each with its location and field), or the body holds no account; `malformed`: the body is not UTF-8, or an `application/json` body is not a JSON array", body = ErrorBody),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address within a minute (too_many_requests); no token was checked", body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until this address may authenticate again"))),
        (status = 413, description = "Body over admin.max_body_bytes (default 64 MiB)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the Content-Type is neither application/json nor application/x-ndjson", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn put_accounts(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let format = match media_type(&req).as_str() {
        ARRAY_MEDIA_TYPE => Format::Array,
        LINES_MEDIA_TYPE => Format::Lines,
        _ => {
            return Err(AdminError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                AdminErrorCode::UnsupportedMediaType,
                None,
                format!(
                    "the body is the accounts file: a JSON array as {ARRAY_MEDIA_TYPE}, or JSON lines as \
                     {LINES_MEDIA_TYPE}"
                ),
            ))
        }
    };
    // An account set is much larger than a posting: it has its own cap. Larger sets go
    // through `accounts import` on a stopped server.
    let body = read_body(&req, payload, state.settings.admin.max_body_bytes).await?;
    let text = String::from_utf8(body.to_vec()).map_err(|_| AdminError::malformed(None, "the body is not UTF-8"))?;
    let first = text.trim_start().chars().next();
    if first.is_none() {
        return Err(no_account());
    }
    if format == Format::Array && first != Some('[') {
        return Err(AdminError::malformed(
            None,
            format!("an {ARRAY_MEDIA_TYPE} body is a JSON array of accounts; send JSON lines as {LINES_MEDIA_TYPE}"),
        ));
    }
    // Parsing a large set takes a while: not on the worker.
    let entries = web::block(move || parse_all_as(text.as_bytes(), Some(format)))
        .await?
        .map_err(refused)?;
    if entries.is_empty() {
        return Err(no_account());
    }
    let summary = state.store.import_accounts(entries).await?;
    tracing::info!(
        accounts_created = summary.accounts_created,
        accounts_updated = summary.accounts_updated,
        "accounts upserted through the admin API"
    );
    Ok(HttpResponse::Ok().json(ImportAnswer::from(summary)))
}

fn no_account() -> AdminError {
    AdminError::bad(AdminErrorCode::Validation, "(body)", "the body holds no account")
}

fn refused(errors: Vec<EntryError>) -> AdminError {
    let first = errors.first().map_or_else(|| "(body)".to_string(), |e| e.field.clone());
    let message = format!(
        "nothing imported; {} bad entr{}: {}",
        errors.len(),
        if errors.len() == 1 { "y" } else { "ies" },
        errors.first().map(ToString::to_string).unwrap_or_default()
    );
    AdminError::new(
        StatusCode::BAD_REQUEST,
        AdminErrorCode::Validation,
        Some(&first),
        message,
    )
    .with_errors(
        errors
            .into_iter()
            .map(|e| EntryProblem {
                location: e.location,
                field: e.field,
                message: e.message,
            })
            .collect(),
    )
}

// ---- The accounts file, described for `/openapi.json` (parsed by `domain::account`) ----

/// An account of the accounts file and a profile under it: hand-written JSON Schemas
/// ([`request_schemas`]), because their rules need what utoipa's model cannot say (`""` meaning
/// absent, type lists such as a warning that is a string or a boolean).
pub struct AccountsFile;
pub struct AccountsFileEntry;
pub struct AccountsFileProfile;
crate::openapi::hand_written!(AccountsFile, AccountsFileEntry, AccountsFileProfile);

/// `account_number`: what `domain::account::account_number_pattern` takes, 1 to 100 characters.
pub const ACCOUNT_NUMBER_PATTERN: &str = r"^[a-zA-Z0-9\-_/!@#$%&*\{\}. ']{1,100}$";
/// An amount of the accounts file: a decimal string with an optional minus, at most 14 integer
/// digits and two decimals (`domain::account`'s `opt_signed_amount`).
pub const SIGNED_AMOUNT_PATTERN: &str = r"^-?[0-9]{1,14}(\.[0-9]{1,2})?$";
/// A date of the accounts file: `YYYY-MM-DD` (a real calendar date is checked too).
pub const DATE_PATTERN: &str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$";
/// A currency: three capital letters (the code must also be one ISO 4217 gives a minor unit).
pub const CURRENCY_PATTERN: &str = "^[A-Z]{3}$";
/// A profile's SSN: nine digits.
pub const SSN_PATTERN: &str = "^[0-9]{9}$";

/// Every hand-written schema of this area, by its name under `components/schemas`.
pub fn request_schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "AccountsFile",
            json!({"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/AccountsFileEntry"},
                   "description": "The accounts in the body, in order; any bad one imports nothing"}),
        ),
        ("AccountsFileEntry", entry_schema()),
        ("AccountsFileProfile", profile_schema()),
    ]
}

/// `pattern` with `""` (absent) allowed too: `^(?:P)?$` for an anchored `^P$`.
fn or_empty(pattern: &str) -> String {
    let inner = pattern.trim_start_matches('^').trim_end_matches('$');
    format!("^(?:{inner})?$")
}

/// An optional text: absent, `null`, or any string (`""` is absent).
fn text() -> Value {
    json!({"type": ["string", "null"]})
}

/// An optional string that, when not `""`, matches `pattern`.
fn optional(pattern: &str, description: &str) -> Value {
    json!({"type": ["string", "null"], "pattern": or_empty(pattern), "description": description})
}

/// An optional value of a closed set (`""` and `null` take the default).
fn optional_enum(values: &[&str], description: &str) -> Value {
    let mut all: Vec<Value> = values.iter().map(|v| json!(v)).collect();
    all.extend([json!(""), Value::Null]);
    json!({"type": ["string", "null"], "enum": all, "description": description})
}

fn warning() -> Value {
    json!({"type": ["string", "boolean", "null"],
           "description": "A warning shown with the account or profile: text, `true` (a warning without text), or `false`/`null`/`\"\"` (none)"})
}

fn address() -> Value {
    json!({"type": ["object", "null"], "description": "Postal address, kept as given (EBPP's field names)"})
}

fn entry_schema() -> Value {
    use crate::domain::account::AccountStatus;
    let statuses = crate::openapi::wire_names!(AccountStatus {
        Active,
        Inactive,
        Incollections,
        Inbankruptcy,
        Closed,
        Repair
    });
    let amount = |what: &str| optional(SIGNED_AMOUNT_PATTERN, what);
    let date = |what: &str| optional(DATE_PATTERN, what);
    json!({
        "type": "object",
        "description": "One account. Unknown fields are ignored; `\"\"` is the same as absent.",
        "required": ["account_number"],
        "properties": {
            "account_number": {"type": "string", "pattern": ACCOUNT_NUMBER_PATTERN,
                               "description": "Unique in the body; an existing account is updated"},
            "customer_account_reference": text(),
            "account_holder_name": text(),
            "nickname": text(),
            "status": optional_enum(&statuses, "Default active"),
            "currency": optional(CURRENCY_PATTERN, "ISO 4217 code with a minor unit (default USD)"),
            "warning": warning(),
            "current_balance": amount("The opening balance on first import; later imports keep the live balance unless `reset_balance` is true"),
            "current_statement_balance": amount("Decimal string"),
            "minimum_payment_due": amount("Decimal string"),
            "past_amount_due": amount("Decimal string"),
            "payment_due_date": date("YYYY-MM-DD"),
            "statement_date": date("YYYY-MM-DD"),
            "payoff_amount": amount("Decimal string"),
            "payoff_expiry_date": date("YYYY-MM-DD"),
            "min_payment_amount": amount("The smallest payment taken; not above max_payment_amount"),
            "max_payment_amount": amount("The largest payment taken"),
            "address": address(),
            "reset_balance": {"type": ["boolean", "null"], "description": "Set the balance to current_balance even if the account exists"},
            "customers": {"type": ["array", "null"], "items": {"$ref": "#/components/schemas/AccountsFileProfile"},
                          "description": "The account's profiles, each customer_reference once"},
        },
    })
}

fn profile_schema() -> Value {
    use crate::domain::account::ProfileStatus;
    let statuses = crate::openapi::wire_names!(ProfileStatus {
        Active,
        Suspended,
        Revoked
    });
    json!({
        "type": "object",
        "description": "A profile under an account; merged across accounts by customer_reference. Unknown fields are ignored.",
        "required": ["customer_reference"],
        "properties": {
            "customer_reference": {"type": "string", "minLength": 1, "maxLength": 100},
            "lookup_reference": text(),
            "first_name": text(),
            "last_name": text(),
            "email": {"type": ["string", "null"], "maxLength": 100, "pattern": "^$|@",
                      "description": "At most 100 characters, with an @"},
            "ssn": optional(SSN_PATTERN, "Nine digits; kept only as a SHA-256 digest, for lookups"),
            "home_phone": text(),
            "status": optional_enum(&statuses, "Default active"),
            "warning": warning(),
            "address": address(),
        },
    })
}

/// The request example: one new account with one profile (it succeeds on the demo store).
fn accounts_example() -> Value {
    json!([{
        "account_number": "ACC-300300",
        "account_holder_name": "Noor Haddad",
        "status": "active",
        "currency": "USD",
        "current_balance": "75.00",
        "payment_due_date": "2026-12-20",
        "min_payment_amount": "1.00",
        "max_payment_amount": "5000.00",
        "customers": [{"customer_reference": "C-3003", "first_name": "Noor", "last_name": "Haddad",
                        "email": "noor@example.com", "ssn": "111223333", "status": "active"}]
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::parse_entry;

    /// The schema's patterns take exactly what the parser takes, value by value (a value that
    /// matches but names no real day or currency is the parser's alone, said in the text).
    #[test]
    fn the_schema_patterns_agree_with_the_parser() {
        let long = |n: usize| "A".repeat(n);
        let cases: Vec<(&str, Option<&str>, &str, Vec<String>)> = vec![
            (
                "account_number",
                None,
                ACCOUNT_NUMBER_PATTERN,
                [
                    "ACC-1",
                    "a b.c'{}/!@#$%&*_",
                    "A",
                    "ACC\n",
                    "ÄCC",
                    "ACC+1",
                    "ACC?",
                    " ",
                    "\t",
                ]
                .map(String::from)
                .into_iter()
                .chain([long(100), long(101)])
                .collect(),
            ),
            (
                "current_balance",
                None,
                SIGNED_AMOUNT_PATTERN,
                [
                    "0", "-0", "1.5", "1.05", "1.005", "-1.50", "+1", "1e3", ".5", "5.", "--1", " 1", "1 ", "1,5",
                ]
                .map(String::from)
                .into_iter()
                .chain(["9".repeat(14), "9".repeat(15), format!("-{}.99", "9".repeat(14))])
                .collect(),
            ),
            (
                "payment_due_date",
                None,
                DATE_PATTERN,
                [
                    "2026-12-10",
                    "2026-1-10",
                    "2026-01-1",
                    "2026-13-01",
                    "2026-00-10",
                    "2026-12-00",
                    "20261210",
                    "2026-12-10T00:00:00Z",
                    "+2026-12-10",
                    " 2026-12-10",
                    "02026-12-10",
                ]
                .map(String::from)
                .to_vec(),
            ),
            (
                "ssn",
                Some("customers"),
                SSN_PATTERN,
                ["123456789", "12345678", "1234567890", "12345678x", "123-45-678"]
                    .map(String::from)
                    .to_vec(),
            ),
        ];
        for (field, under, pattern, values) in cases {
            let re = regex::Regex::new(pattern).expect("pattern");
            for value in values {
                let mut entry = json!({"account_number": "ACC-1"});
                match under {
                    Some(list) => entry[list] = json!([{"customer_reference": "C-1", field: value}]),
                    None => entry[field] = json!(value),
                }
                let parser = parse_entry(&entry).is_ok();
                assert_eq!(parser, re.is_match(&value), "{field} = {value:?}");
            }
        }
        // A currency the parser takes matches the pattern (the pattern is wider: XXX, ABC).
        let currency = regex::Regex::new(CURRENCY_PATTERN).expect("pattern");
        for code in ["USD", "JPY", "KWD", "usd", "US", "USDD", "XXX"] {
            let parser = parse_entry(&json!({"account_number": "A", "currency": code})).is_ok();
            assert!(!parser || currency.is_match(code), "{code}");
        }
    }

    /// The served document has the hand-written schemas with the patterns above, and the
    /// request example is a valid accounts file.
    #[test]
    fn the_request_example_is_a_valid_accounts_file() {
        let text = accounts_example().to_string();
        let entries = parse_all_as(text.as_bytes(), Some(Format::Array)).expect("the example parses");
        assert_eq!(entries.len(), 1);
        let schemas = request_schemas();
        let entry = &schemas
            .iter()
            .find(|(n, _)| *n == "AccountsFileEntry")
            .expect("entry")
            .1;
        assert_eq!(entry["properties"]["account_number"]["pattern"], ACCOUNT_NUMBER_PATTERN);
    }
}
