//! The Empayre webhook event model (spec B3), for deserializing verified bodies.
//!
//! Design rules, all from the spec:
//! * Nothing a verified sender sends may be lost (A3, B5.4). Every enum is "known variants +
//!   `Unknown(String)`" and keeps the sent text; unknown fields are ignored, never rejected
//!   (no `deny_unknown_fields`). Whether an event can be *applied* is a separate question,
//!   answered by [`Event::is_known`]; the caller quarantines the rest (and the raw bytes are
//!   always stored, so fields not modelled here are not lost either).
//! * "Required" does not mean present (B3.10, B5.14): everything except `eventID`, `occuredAt`,
//!   `topic`, `eventType` and the entity `id`s is an `Option`.
//! * Wire names are kept exactly, including the misspelled `occuredAt` and the mixed casing
//!   (`shopID`, `externalId`, `invoiceId`, `customerID`, `invoiceID`, …) (B5.5).
//! * Amounts are `i64` minor units, never floats (B5.6).
//! * Payment tokens, sessions, contact details and IPs are masked in `Debug` output, because
//!   events get logged (B5.16).

use std::fmt;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use crate::domain::status::open_enum;

open_enum! {
    /// `eventType`, the discriminator of the root Event (B3.2).
    EventType {
        InvoiceCreated => "InvoiceCreated",
        InvoicePaid => "InvoicePaid",
        InvoiceCancelled => "InvoiceCancelled",
        InvoiceFulfilled => "InvoiceFulfilled",
        PaymentStarted => "PaymentStarted",
        PaymentProcessed => "PaymentProcessed",
        PaymentCaptured => "PaymentCaptured",
        PaymentCancelled => "PaymentCancelled",
        PaymentRefunded => "PaymentRefunded",
        PaymentFailed => "PaymentFailed",
        PaymentChargedBack => "PaymentChargedBack",
        PaymentCashChanged => "PaymentCashChanged",
        RefundCreated => "RefundCreated",
        RefundPending => "RefundPending",
        RefundSucceeded => "RefundSucceeded",
        RefundFailed => "RefundFailed",
        PaymentInteractionRequested => "PaymentInteractionRequested",
        PaymentInteractionCompleted => "PaymentInteractionCompleted",
        CustomerCreated => "CustomerCreated",
        CustomerDeleted => "CustomerDeleted",
        CustomerReady => "CustomerReady",
        CustomerBindingStarted => "CustomerBindingStarted",
        CustomerBindingSucceeded => "CustomerBindingSucceeded",
        CustomerBindingFailed => "CustomerBindingFailed",
    }
}

open_enum! {
    /// `topic` of the root Event. `CustomersTopic` is legacy (B5.17) but still parsed.
    Topic {
        InvoicesTopic => "InvoicesTopic",
        CustomersTopic => "CustomersTopic",
    }
}

open_enum! {
    /// `invoice.status` (B3.3). The sender never produces `refunded`, but the schema lists it.
    InvoiceStatus {
        Unpaid => "unpaid",
        Cancelled => "cancelled",
        Paid => "paid",
        Refunded => "refunded",
        Fulfilled => "fulfilled",
    }
}

pub use crate::domain::status::{EmpayrePaymentStatus as PaymentStatus, EmpayreRefundStatus as RefundStatus};

open_enum! {
    /// `payer.payerType` (B3.5). `CustomerPayer` is legacy.
    PayerType {
        PaymentResourcePayer => "PaymentResourcePayer",
        RecurrentPayer => "RecurrentPayer",
        CustomerPayer => "CustomerPayer",
    }
}

open_enum! {
    /// `paymentToolDetails.detailsType` (B3.6).
    DetailsType {
        BankCard => "PaymentToolDetailsBankCard",
        PaymentTerminal => "PaymentToolDetailsPaymentTerminal",
        DigitalWallet => "PaymentToolDetailsDigitalWallet",
        CryptoWallet => "PaymentToolDetailsCryptoWallet",
        MobileCommerce => "PaymentToolDetailsMobileCommerce",
    }
}

open_enum! {
    /// `customer.status` (B3.9, legacy).
    CustomerStatus {
        Ready => "ready",
        Unready => "unready",
    }
}

open_enum! {
    /// `binding.status` (B3.9, legacy).
    BindingStatus {
        Pending => "pending",
        Succeeded => "succeeded",
        Failed => "failed",
    }
}

/// The root of every notification (B3.1, B3.2). Which payload fields are set depends on
/// `event_type`; see [`Event::is_known`].
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Platform-wide message id; the same event sent to several webhooks keeps it (B5.7).
    #[serde(rename = "eventID")]
    pub event_id: i64,
    /// Misspelled on the wire; the text is kept exactly as sent (RFC 3339, 0–9 fraction digits).
    pub occured_at: String,
    pub topic: Topic,
    pub event_type: EventType,
    #[serde(default, deserialize_with = "object")]
    pub invoice: Option<Invoice>,
    #[serde(default, deserialize_with = "object")]
    pub payment: Option<Payment>,
    #[serde(default, deserialize_with = "object")]
    pub refund: Option<Refund>,
    /// `PaymentInteraction*` only, which carry ids instead of objects (note `Id` casing).
    pub invoice_id: Option<String>,
    /// `PaymentInteraction*` only.
    pub payment_id: Option<String>,
    /// `PaymentInteraction*` only; polymorphic on `userInteractionType`, kept as JSON.
    pub user_interaction_details: Option<Value>,
    #[serde(default, deserialize_with = "object")]
    pub customer: Option<Customer>,
    #[serde(default, deserialize_with = "object")]
    pub binding: Option<CustomerBinding>,
}

impl Event {
    /// True when this version can apply the event: known topic, known type, the topic that type
    /// belongs to, and the payload the type requires. Anything else is quarantined by the caller
    /// (still answered 200, A3).
    pub fn is_known(&self) -> bool {
        use EventType as T;
        let invoices = self.topic == Topic::InvoicesTopic;
        let customers = self.topic == Topic::CustomersTopic;
        match self.event_type {
            T::InvoiceCreated | T::InvoicePaid | T::InvoiceCancelled | T::InvoiceFulfilled => {
                invoices && self.invoice.is_some()
            }
            T::PaymentStarted
            | T::PaymentProcessed
            | T::PaymentCaptured
            | T::PaymentCancelled
            | T::PaymentRefunded
            | T::PaymentFailed
            | T::PaymentChargedBack
            | T::PaymentCashChanged => invoices && self.invoice.is_some() && self.payment.is_some(),
            T::RefundCreated | T::RefundPending | T::RefundSucceeded | T::RefundFailed => {
                invoices && self.invoice.is_some() && self.payment.is_some() && self.refund.is_some()
            }
            T::PaymentInteractionRequested | T::PaymentInteractionCompleted => {
                invoices && self.invoice_id.is_some() && self.payment_id.is_some()
            }
            T::CustomerCreated | T::CustomerDeleted | T::CustomerReady => customers && self.customer.is_some(),
            T::CustomerBindingStarted | T::CustomerBindingSucceeded | T::CustomerBindingFailed => {
                customers && self.customer.is_some() && self.binding.is_some()
            }
            T::Unknown(_) => false,
        }
    }

    /// The invoice this event concerns, from `invoice.id` or (`PaymentInteraction*`) `invoiceId`.
    pub fn invoice_ref(&self) -> Option<&str> {
        self.invoice
            .as_ref()
            .map(|i| i.id.as_str())
            .or(self.invoice_id.as_deref())
    }

    /// The payment this event concerns, from `payment.id` or (`PaymentInteraction*`) `paymentId`.
    pub fn payment_ref(&self) -> Option<&str> {
        self.payment
            .as_ref()
            .map(|p| p.id.as_str())
            .or(self.payment_id.as_deref())
    }
}

/// Parse a verified body. `Err` (with serde's description) when it is not a well-formed Event:
/// not a JSON object, `eventID` missing or not an integer, `occuredAt`/`topic`/`eventType`
/// missing or not strings, an entity that is not an object or lacks its `id`, a field of the
/// wrong JSON type. Unknown enum values and unknown fields are *not* errors.
pub fn parse_event(body: &[u8]) -> Result<Event, String> {
    // serde's derived struct visitor also accepts a JSON array (fields by position); an Event is
    // an object on the wire, so refuse anything else up front.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err("body is not a JSON object".to_string());
    }
    serde_json::from_slice::<Event>(body).map_err(|e| e.to_string())
}

/// Deserialize an optional entity, refusing non-objects (see [`parse_event`] on arrays).
fn object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(v @ Value::Object(_)) => T::deserialize(v).map(Some).map_err(de::Error::custom),
        Some(_) => Err(de::Error::custom("expected a JSON object")),
    }
}

/// `shopID` is a string today, but the 2017 sender sent a number (B3.3): accept both as text.
fn string_or_number<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(de::Error::custom("expected a string or a number")),
    }
}

/// Invoice snapshot (B3.3).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invoice {
    pub id: String,
    #[serde(rename = "shopID", default, deserialize_with = "string_or_number")]
    pub shop_id: Option<String>,
    pub created_at: Option<String>,
    pub status: Option<InvoiceStatus>,
    /// Why it was cancelled (`overdue`, …) or fulfilled.
    pub reason: Option<String>,
    pub due_date: Option<String>,
    /// Minor units of `currency`.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// Any JSON the merchant set; left out when empty.
    pub metadata: Option<Value>,
    pub product: Option<String>,
    pub description: Option<String>,
    pub cart: Option<Vec<CartLine>>,
    pub external_id: Option<String>,
}

/// One invoice cart line (B3.3).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartLine {
    pub product: Option<String>,
    pub quantity: Option<i64>,
    /// Minor units.
    pub price: Option<i64>,
    /// Minor units, price × quantity.
    pub cost: Option<i64>,
    pub tax_mode: Option<TaxMode>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TaxMode {
    /// `0%`, `10%`, `18%`, `20%`, `10/110`, … kept as text.
    pub rate: Option<String>,
}

/// Payment snapshot (B3.4). `Debug` masks payer data.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: String,
    pub created_at: Option<String>,
    pub status: Option<PaymentStatus>,
    pub error: Option<PaymentError>,
    /// Minor units; when `changed_amount` is set this is the invoice cost.
    pub amount: Option<i64>,
    /// Amount changed on the provider's side (`PaymentCashChanged`).
    pub changed_amount: Option<i64>,
    pub currency: Option<String>,
    pub metadata: Option<Value>,
    /// Deprecated, sensitive (card token inside).
    pub payment_tool_token: Option<String>,
    /// Deprecated, sensitive; missing for recurrent payments.
    pub payment_session: Option<String>,
    pub contact_info: Option<ContactInfo>,
    pub ip: Option<String>,
    pub fingerprint: Option<String>,
    pub payer: Option<Payer>,
    /// Platform fee in minor units; 0 when unknown.
    pub fee: Option<i64>,
    pub rrn: Option<String>,
    pub external_id: Option<String>,
    pub extra_payment_info: Option<Value>,
}

impl Payment {
    /// The amount actually moved: `changedAmount` when set, else `amount` (A4).
    pub fn effective_amount(&self) -> Option<i64> {
        self.changed_amount.or(self.amount)
    }
}

/// `payment.error` (B3.4): a code tree, `code` → `subError.code` → ….
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentError {
    pub code: Option<String>,
    /// Deprecated; a copy of `code`.
    pub message: Option<String>,
    pub sub_error: Option<Box<SubError>>,
}

/// Nested failure code. Depth is bounded by serde_json's recursion limit.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubError {
    pub code: Option<String>,
    pub sub_error: Option<Box<SubError>>,
}

impl PaymentError {
    /// Codes from the top down, e.g. `["authorization_failed", "payment_tool_rejected", …]`.
    pub fn code_path(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.code.as_deref().into_iter().collect();
        let mut next = self.sub_error.as_deref();
        while let Some(sub) = next {
            out.extend(sub.code.as_deref());
            next = sub.sub_error.as_deref();
        }
        out
    }
}

/// `{code, message}` errors of refunds and customer bindings.
#[derive(Clone, Debug, Deserialize)]
pub struct ErrorInfo {
    pub code: Option<String>,
    pub message: Option<String>,
}

/// The polymorphic payer (B3.5), flattened into one struct so that an unknown `payerType` still
/// parses with whatever fields it shares. Which fields are set depends on `payer_type`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payer {
    pub payer_type: Option<PayerType>,
    /// PaymentResourcePayer.
    pub payment_tool_token: Option<String>,
    /// PaymentResourcePayer.
    pub payment_session: Option<String>,
    /// PaymentResourcePayer.
    pub payment_tool_details: Option<PaymentToolDetails>,
    /// PaymentResourcePayer.
    pub client_info: Option<ClientInfo>,
    /// PaymentResourcePayer and RecurrentPayer.
    pub contact_info: Option<ContactInfo>,
    /// RecurrentPayer.
    pub recurrent_parent_payment: Option<PaymentRecurrentParent>,
    /// CustomerPayer (legacy); note the `ID` casing.
    #[serde(rename = "customerID")]
    pub customer_id: Option<String>,
}

/// RecurrentPayer's parent payment; note the `ID` casing here, unlike `invoiceId` elsewhere.
#[derive(Clone, Debug, Deserialize)]
pub struct PaymentRecurrentParent {
    #[serde(rename = "invoiceID")]
    pub invoice_id: Option<String>,
    #[serde(rename = "paymentID")]
    pub payment_id: Option<String>,
}

/// Payment tool details (B3.6), flattened over the `detailsType` variants.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentToolDetails {
    pub details_type: Option<DetailsType>,
    // Bank card. BIN and last digits are the non-sensitive parts of a card number.
    pub bin: Option<String>,
    pub last_digits: Option<String>,
    pub card_number_mask: Option<String>,
    pub payment_system: Option<String>,
    /// `applepay`, `googlepay`, …, `unknown`; free text here (deprecated upstream).
    pub token_provider: Option<String>,
    pub token_provider_name: Option<String>,
    pub issuer_country: Option<String>,
    pub bank_name: Option<String>,
    // Payment terminal.
    pub provider: Option<String>,
    pub provider_name: Option<String>,
    // Digital wallet.
    pub digital_wallet_details_type: Option<String>,
    pub phone_number_mask: Option<String>,
    // Crypto wallet.
    pub crypto_currency: Option<String>,
    pub crypto_currency_type: Option<String>,
    /// Mobile commerce; not reliably masked by the sender, so masked in `Debug`.
    pub phone_number: Option<String>,
}

/// Contact details (B3.5); both fields personal data.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactInfo {
    pub email: Option<String>,
    pub phone_number: Option<String>,
}

/// Client details (B3.5); either field may be missing.
#[derive(Clone, Deserialize)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub fingerprint: Option<String>,
}

/// Refund snapshot (B3.7).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub id: String,
    pub created_at: Option<String>,
    pub status: Option<RefundStatus>,
    pub error: Option<ErrorInfo>,
    /// Minor units of the refund's own `currency`.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub reason: Option<String>,
    pub rrn: Option<String>,
}

/// Customer (B3.9, legacy).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: String,
    #[serde(rename = "shopID", default, deserialize_with = "string_or_number")]
    pub shop_id: Option<String>,
    pub status: Option<CustomerStatus>,
    pub contact_info: Option<ContactInfo>,
    pub metadata: Option<Value>,
}

/// Customer binding (B3.9, legacy).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerBinding {
    pub id: String,
    pub status: Option<BindingStatus>,
    pub error: Option<ErrorInfo>,
    pub payment_resource: Option<PaymentResource>,
}

/// Payment resource of a binding (B3.5, without `payerType`/`contactInfo`).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResource {
    pub payment_tool_token: Option<String>,
    pub payment_session: Option<String>,
    pub payment_tool_details: Option<PaymentToolDetails>,
    pub client_info: Option<ClientInfo>,
}

// ---- Debug with masking -------------------------------------------------------------------
//
// Logs may carry events, so personal and payment data are shortened to a recognisable prefix:
// enough to correlate two log lines, not enough to reuse a token or contact someone.

/// `Some("buye…")` / `None` for an optional sensitive string.
struct Masked<'a>(&'a Option<String>);

impl fmt::Debug for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            None => f.write_str("None"),
            Some(s) => write!(f, "Some({:?})", mask(s)),
        }
    }
}

/// First few characters (at most 4, and at most a third of the value, so short values reveal
/// little) followed by `…`. Counts characters, not bytes, to never split UTF-8.
fn mask(s: &str) -> String {
    let n = s.chars().count();
    let keep = (n / 3).min(4);
    let mut out: String = s.chars().take(keep).collect();
    out.push('…');
    out
}

impl fmt::Debug for Payment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payment")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("status", &self.status)
            .field("error", &self.error)
            .field("amount", &self.amount)
            .field("changed_amount", &self.changed_amount)
            .field("currency", &self.currency)
            .field("metadata", &self.metadata)
            .field("payment_tool_token", &Masked(&self.payment_tool_token))
            .field("payment_session", &Masked(&self.payment_session))
            .field("contact_info", &self.contact_info)
            .field("ip", &Masked(&self.ip))
            .field("fingerprint", &Masked(&self.fingerprint))
            .field("payer", &self.payer)
            .field("fee", &self.fee)
            .field("rrn", &self.rrn)
            .field("external_id", &self.external_id)
            .field("extra_payment_info", &self.extra_payment_info)
            .finish()
    }
}

impl fmt::Debug for Payer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payer")
            .field("payer_type", &self.payer_type)
            .field("payment_tool_token", &Masked(&self.payment_tool_token))
            .field("payment_session", &Masked(&self.payment_session))
            .field("payment_tool_details", &self.payment_tool_details)
            .field("client_info", &self.client_info)
            .field("contact_info", &self.contact_info)
            .field("recurrent_parent_payment", &self.recurrent_parent_payment)
            .field("customer_id", &self.customer_id)
            .finish()
    }
}

impl fmt::Debug for PaymentResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentResource")
            .field("payment_tool_token", &Masked(&self.payment_tool_token))
            .field("payment_session", &Masked(&self.payment_session))
            .field("payment_tool_details", &self.payment_tool_details)
            .field("client_info", &self.client_info)
            .finish()
    }
}

impl fmt::Debug for PaymentToolDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentToolDetails")
            .field("details_type", &self.details_type)
            .field("bin", &self.bin)
            .field("last_digits", &self.last_digits)
            .field("card_number_mask", &self.card_number_mask)
            .field("payment_system", &self.payment_system)
            .field("token_provider", &self.token_provider)
            .field("token_provider_name", &self.token_provider_name)
            .field("issuer_country", &self.issuer_country)
            .field("bank_name", &self.bank_name)
            .field("provider", &self.provider)
            .field("provider_name", &self.provider_name)
            .field("digital_wallet_details_type", &self.digital_wallet_details_type)
            .field("phone_number_mask", &self.phone_number_mask)
            .field("crypto_currency", &self.crypto_currency)
            .field("crypto_currency_type", &self.crypto_currency_type)
            .field("phone_number", &Masked(&self.phone_number))
            .finish()
    }
}

impl fmt::Debug for ContactInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactInfo")
            .field("email", &Masked(&self.email))
            .field("phone_number", &Masked(&self.phone_number))
            .finish()
    }
}

impl fmt::Debug for ClientInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientInfo")
            .field("ip", &Masked(&self.ip))
            .field("fingerprint", &Masked(&self.fingerprint))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_data;

    fn example(name: &str) -> Vec<u8> {
        test_data::empayre_vector(&format!("examples/{name}"))
    }

    fn parse_example(name: &str) -> Event {
        parse_event(&example(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Apply `edit` to the JSON of an example and parse the result.
    fn parse_edited(name: &str, edit: impl FnOnce(&mut Value)) -> Result<Event, String> {
        let mut v: Value = serde_json::from_slice(&example(name)).unwrap();
        edit(&mut v);
        parse_event(&serde_json::to_vec(&v).unwrap())
    }

    #[test]
    fn every_example_parses_and_is_known() {
        let folder = test_data::path(&format!("{}/examples", test_data::EMPAYRE_VECTORS));
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("test data folder {} cannot be read: {e}", folder.display()))
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        assert_eq!(names.len(), 7, "{names:?}");
        for name in &names {
            let event = parse_example(name);
            assert!(event.is_known(), "{name}: {event:?}");
            assert!(event.event_id > 0, "{name}");
        }
        // The signed test vector is an example too.
        let tv = parse_event(&test_data::empayre_vector("tv_body.json")).unwrap();
        assert!(tv.is_known());
        assert_eq!(tv.invoice.unwrap().product.as_deref(), Some("Заказ A-100542"));
    }

    #[test]
    fn examples_map_wire_names() {
        let e = parse_example("invoice_paid.json");
        assert_eq!(e.event_id, 184467);
        assert_eq!(e.occured_at, "2025-03-14T09:27:41.20381Z");
        assert_eq!(e.topic, Topic::InvoicesTopic);
        assert_eq!(e.event_type, EventType::InvoicePaid);
        assert_eq!(e.invoice_ref(), Some("2Rk3QxJ7fWm"));
        assert_eq!(e.payment_ref(), None);
        let inv = e.invoice.unwrap();
        assert_eq!(inv.shop_id.as_deref(), Some("6c1f2b0e-2a4d-4b7e-9f8a-3d5e7c9b1a20"));
        assert_eq!(inv.status, Some(InvoiceStatus::Paid));
        assert_eq!(inv.amount, Some(150000));
        assert_eq!(inv.external_id.as_deref(), Some("A-100542"));
        assert_eq!(inv.due_date.as_deref(), Some("2025-03-15T09:26:53Z"));
        assert_eq!(inv.metadata.unwrap().pointer("/customerRef"), Some(&Value::from(77812)));
        let cart = inv.cart.unwrap();
        assert_eq!(
            (cart[1].quantity, cart[1].price, cart[1].cost),
            (Some(2), Some(25000), Some(50000))
        );
        assert_eq!(cart[0].tax_mode.as_ref().unwrap().rate.as_deref(), Some("20%"));
        assert!(cart[1].tax_mode.is_none());

        let e = parse_example("payment_captured.json");
        let p = e.payment.unwrap();
        assert_eq!(p.status, Some(PaymentStatus::Captured));
        assert_eq!(
            (p.amount, p.fee, p.effective_amount()),
            (Some(150000), Some(3750), Some(150000))
        );
        assert_eq!(p.external_id.as_deref(), Some("A-100542-p1"));
        assert_eq!(
            p.extra_payment_info.unwrap().get("approval_code"),
            Some(&Value::from("A1B2C3"))
        );
        assert!(p.metadata.is_none());
        let payer = p.payer.unwrap();
        assert_eq!(payer.payer_type, Some(PayerType::PaymentResourcePayer));
        let details = payer.payment_tool_details.unwrap();
        assert_eq!(details.details_type, Some(DetailsType::BankCard));
        assert_eq!(details.card_number_mask.as_deref(), Some("427600******1234"));
        assert_eq!(payer.client_info.unwrap().ip.as_deref(), Some("203.0.113.45"));

        let e = parse_example("payment_failed.json");
        let p = e.payment.unwrap();
        assert_eq!(p.status, Some(PaymentStatus::Failed));
        assert_eq!(p.fee, Some(0));
        assert_eq!(
            p.error.unwrap().code_path(),
            [
                "authorization_failed",
                "payment_tool_rejected",
                "bank_card_rejected",
                "cvv_invalid"
            ]
        );
        let contact = p.contact_info.unwrap();
        assert!(contact.email.is_none() && contact.phone_number.is_none());

        let e = parse_example("refund_succeeded.json");
        let r = e.refund.unwrap();
        assert_eq!(r.status, Some(RefundStatus::Succeeded));
        assert_eq!((r.id.as_str(), r.amount), ("1", Some(50000)));

        let e = parse_example("payment_interaction_requested.json");
        assert_eq!(e.invoice_id.as_deref(), Some("2Rk3QxJ7fWm"));
        assert_eq!(e.payment_id.as_deref(), Some("1"));
        assert_eq!((e.invoice_ref(), e.payment_ref()), (Some("2Rk3QxJ7fWm"), Some("1")));
        assert!(e.invoice.is_none() && e.payment.is_none());
        assert_eq!(
            e.user_interaction_details
                .unwrap()
                .pointer("/browserHTTPInfo/requestType"),
            Some(&Value::from("post"))
        );

        let e = parse_example("customer_binding_succeeded.json");
        assert_eq!(e.topic, Topic::CustomersTopic);
        let c = e.customer.unwrap();
        assert_eq!(c.status, Some(CustomerStatus::Ready));
        assert_eq!(c.contact_info.unwrap().phone_number.as_deref(), Some("+79990001122"));
        let b = e.binding.unwrap();
        assert_eq!(b.status, Some(BindingStatus::Succeeded));
        let details = b.payment_resource.unwrap().payment_tool_details.unwrap();
        assert_eq!(details.token_provider.as_deref(), Some("googlepay"));
    }

    #[test]
    fn other_payer_shapes_and_casing_traps() {
        let recurrent = parse_edited("payment_captured.json", |v| {
            v["payment"]["payer"] = serde_json::json!({
                "payerType": "RecurrentPayer",
                "contactInfo": {"email": "a@b.example"},
                "recurrentParentPayment": {"invoiceID": "2Rk0", "paymentID": "3"}
            });
            v["payment"]["changedAmount"] = Value::from(140000);
            let p = v["payment"].as_object_mut().unwrap();
            p.remove("paymentSession");
            p.remove("paymentToolToken");
        })
        .unwrap();
        assert!(recurrent.is_known());
        let p = recurrent.payment.unwrap();
        assert_eq!(p.effective_amount(), Some(140000));
        let payer = p.payer.unwrap();
        assert_eq!(payer.payer_type, Some(PayerType::RecurrentPayer));
        let parent = payer.recurrent_parent_payment.unwrap();
        assert_eq!(
            (parent.invoice_id.as_deref(), parent.payment_id.as_deref()),
            (Some("2Rk0"), Some("3"))
        );

        let customer = parse_edited("payment_captured.json", |v| {
            v["payment"]["payer"] = serde_json::json!({"payerType": "CustomerPayer", "customerID": "1Cx2"});
            v["invoice"]["shopID"] = Value::from(42); // the 2017 sender's numeric shop id
            v["payment"]["status"] = Value::from("charged_back");
        })
        .unwrap();
        assert_eq!(customer.invoice.as_ref().unwrap().shop_id.as_deref(), Some("42"));
        let p = customer.payment.unwrap();
        assert_eq!(p.status, Some(PaymentStatus::ChargedBack));
        assert_eq!(p.payer.unwrap().customer_id.as_deref(), Some("1Cx2"));
    }

    #[test]
    fn unknown_values_are_kept() {
        let e = parse_edited("payment_captured.json", |v| {
            v["eventType"] = Value::from("PaymentSplitAllocated");
        })
        .unwrap();
        assert_eq!(e.event_type, EventType::Unknown("PaymentSplitAllocated".into()));
        assert_eq!(e.event_type.as_str(), "PaymentSplitAllocated");
        assert!(!e.is_known());

        let e = parse_edited("payment_captured.json", |v| {
            v["payment"]["payer"]["payerType"] = Value::from("WalletPayer");
            v["payment"]["payer"]["paymentToolDetails"]["detailsType"] = Value::from("PaymentToolDetailsSbp");
            v["payment"]["status"] = Value::from("partially_refunded");
            v["newTopLevelField"] = serde_json::json!({"x": 1});
            v["payment"]["newField"] = Value::from(true);
        })
        .unwrap();
        // Unknown nested values do not stop the event from being applied.
        assert!(e.is_known());
        let p = e.payment.unwrap();
        assert_eq!(p.status.as_ref().map(|s| s.as_str()), Some("partially_refunded"));
        let payer = p.payer.unwrap();
        let payer_type = payer.payer_type.unwrap();
        assert!(!payer_type.is_known());
        assert_eq!(payer_type.as_str(), "WalletPayer");
        let details_type = payer.payment_tool_details.unwrap().details_type.unwrap();
        assert_eq!(details_type, DetailsType::Unknown("PaymentToolDetailsSbp".into()));
        assert_eq!(details_type.as_str(), "PaymentToolDetailsSbp");

        let e = parse_edited("invoice_paid.json", |v| {
            v["topic"] = Value::from("WalletsTopic");
        })
        .unwrap();
        assert_eq!(e.topic.as_str(), "WalletsTopic");
        assert!(!e.is_known());
    }

    #[test]
    fn enums_round_trip_as_strings() {
        for s in ["charged_back", "captured", "something_new"] {
            let status: PaymentStatus = serde_json::from_value(Value::from(s)).unwrap();
            assert_eq!(serde_json::to_value(&status).unwrap(), Value::from(s));
            assert_eq!(status.to_string(), s);
        }
        assert_eq!(EventType::from("RefundPending"), EventType::RefundPending);
        assert_eq!(
            serde_json::to_string(&DetailsType::MobileCommerce).unwrap(),
            "\"PaymentToolDetailsMobileCommerce\""
        );
        // Case matters on the wire: a differently cased value is unknown, not coerced.
        assert_eq!(Topic::from("invoicesTopic"), Topic::Unknown("invoicesTopic".into()));
    }

    #[test]
    fn known_type_without_its_payload_is_not_known() {
        type Edit = fn(&mut Value);
        let cases: Vec<(&str, &str, Edit)> = vec![
            ("payment event without payment", "payment_captured.json", |v| {
                v.as_object_mut().unwrap().remove("payment");
            }),
            ("payment event without invoice", "payment_captured.json", |v| {
                v.as_object_mut().unwrap().remove("invoice");
            }),
            ("refund event without refund", "refund_succeeded.json", |v| {
                v.as_object_mut().unwrap().remove("refund");
            }),
            ("invoice event without invoice", "invoice_paid.json", |v| {
                v.as_object_mut().unwrap().remove("invoice");
            }),
            (
                "interaction without paymentId",
                "payment_interaction_requested.json",
                |v| {
                    v.as_object_mut().unwrap().remove("paymentId");
                },
            ),
            (
                "binding event without binding",
                "customer_binding_succeeded.json",
                |v| {
                    v.as_object_mut().unwrap().remove("binding");
                },
            ),
            ("invoice type on customers topic", "invoice_paid.json", |v| {
                v["topic"] = Value::from("CustomersTopic");
            }),
            ("null payload", "payment_captured.json", |v| {
                v["payment"] = Value::Null;
            }),
        ];
        for (name, file, edit) in cases {
            let e = parse_edited(file, edit).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert!(!e.is_known(), "{name}");
        }
    }

    #[test]
    fn malformed_events_are_errors() {
        let raw: Vec<(&str, &[u8])> = vec![
            ("empty", b""),
            ("not json", b"eventID=1"),
            (
                "array",
                b"[184467, \"2025-03-14T09:27:41Z\", \"InvoicesTopic\", \"InvoicePaid\"]",
            ),
            ("string", b"\"InvoicePaid\""),
            ("number", b"184467"),
            ("null", b"null"),
            ("truncated", b"{\"eventID\":1,\"occuredAt\":\"x\""),
        ];
        for (name, body) in raw {
            assert!(parse_event(body).is_err(), "{name}");
        }

        type Edit = fn(&mut Value);
        let edits: Vec<(&str, Edit)> = vec![
            ("no eventID", |v| {
                v.as_object_mut().unwrap().remove("eventID");
            }),
            ("eventID as string", |v| v["eventID"] = Value::from("184467")),
            ("eventID as float", |v| v["eventID"] = Value::from(184467.5)),
            ("eventID null", |v| v["eventID"] = Value::Null),
            ("no occuredAt", |v| {
                v.as_object_mut().unwrap().remove("occuredAt");
            }),
            ("occurredAt spelled right", |v| {
                let o = v.as_object_mut().unwrap();
                let t = o.remove("occuredAt").unwrap();
                o.insert("occurredAt".into(), t);
            }),
            ("no topic", |v| {
                v.as_object_mut().unwrap().remove("topic");
            }),
            ("no eventType", |v| {
                v.as_object_mut().unwrap().remove("eventType");
            }),
            ("eventType not a string", |v| v["eventType"] = Value::from(3)),
            ("invoice without id", |v| {
                v["invoice"].as_object_mut().unwrap().remove("id");
            }),
            ("invoice as array", |v| {
                v["invoice"] = serde_json::json!(["2Rk3QxJ7fWm"])
            }),
            ("amount as float", |v| v["invoice"]["amount"] = Value::from(1500.0)),
            ("amount as string", |v| v["invoice"]["amount"] = Value::from("150000")),
        ];
        for (name, edit) in edits {
            assert!(parse_edited("invoice_paid.json", edit).is_err(), "{name}");
        }
    }

    #[test]
    fn debug_masks_sensitive_payment_data() {
        for name in [
            "payment_processed.json",
            "payment_captured.json",
            "customer_binding_succeeded.json",
        ] {
            let raw: Value = serde_json::from_slice(&example(name)).unwrap();
            let event = parse_event(&example(name)).unwrap();
            let dbg = format!("{event:?}");
            let mut secrets: Vec<String> = vec![
                "buyer@example.com".into(),
                "subscriber@example.com".into(),
                "+79990001122".into(),
                "203.0.113.45".into(),
                "198.51.100.7".into(),
                "7f1c2e9a4b5d6e7f8091a2b3c4d5e6f7".into(),
            ];
            for ptr in [
                "/payment/paymentToolToken",
                "/payment/paymentSession",
                "/payment/payer/paymentToolToken",
                "/binding/paymentResource/paymentToolToken",
                "/binding/paymentResource/paymentSession",
            ] {
                if let Some(s) = raw.pointer(ptr).and_then(Value::as_str) {
                    secrets.push(s.to_string());
                }
            }
            for secret in &secrets {
                assert!(!dbg.contains(secret.as_str()), "{name}: Debug leaks {secret}");
            }
            // The prefix is kept so log lines can still be correlated.
            if name.starts_with("payment") {
                assert!(dbg.contains("\"eyJ0…\""), "{name}: {dbg}");
                assert!(dbg.contains("\"buye…\""), "{name}");
                // Non-sensitive card data is still visible.
                assert!(dbg.contains("427600******1234"), "{name}");
            }
        }
        assert_eq!(mask("ab"), "…");
        assert_eq!(mask("Заказчик@пример"), "Зака…");
    }
}
