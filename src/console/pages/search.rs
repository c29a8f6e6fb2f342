//! Search: the admin API's operations search (`POST /admin/postings/search`) as a form. The
//! form becomes the same `SearchRequest` the API parses, so the checks, the query and the
//! answers are the API's; the CSV download is the API's CSV rendering of the same result.

use actix_web::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::super::error::ConsoleError;
use super::super::layout::urlencode;
use super::super::layout::{self, Nav};
use super::super::Operator;
use crate::admin::postings::{records_csv, run_search};
use crate::admin::search::{OrderParameter, Paging, SearchParameter, SearchRequest, MAX_PAGE_SIZE};
use crate::admin::AdminError;
use crate::state::AppState;

/// Rows a CSV download holds at most (the whole result up to this; narrow the window, or use
/// `biller-inbox export`, for more).
pub const CSV_MAX_ROWS: usize = 10_000;
const PAGE_SIZES: [usize; 4] = [25, 50, 100, 200];

/// The form, as its query string carries it. Every field is text so that a bad value comes
/// back to the form with the API's message instead of a bare 400.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SearchForm {
    from: String,
    to: String,
    channel: String,
    kind: String,
    status: String,
    min_amount: String,
    max_amount: String,
    account: String,
    id: String,
    confirmation: String,
    sort: String,
    dir: String,
    page: String,
    size: String,
}

impl SearchForm {
    /// Fills the window with the last 24 hours when it is left empty.
    fn with_defaults(mut self, now: DateTime<Utc>) -> Self {
        if self.to.trim().is_empty() {
            self.to = now.format("%Y-%m-%dT%H:%M:%S").to_string();
        }
        if self.from.trim().is_empty() {
            self.from = (now - Duration::hours(24)).format("%Y-%m-%dT%H:%M:%S").to_string();
        }
        if self.sort.is_empty() {
            self.sort = "received_at".into();
        }
        if self.dir.is_empty() {
            self.dir = "desc".into();
        }
        self
    }

    /// The API's search request for this form, page `page` of `size`.
    fn request(&self, page: u64, size: usize) -> SearchRequest {
        let mut params = vec![param("received_at", "between", &[&utc(&self.from), &utc(&self.to)])];
        let mut add = |name: &str, method: &str, value: &str| {
            let value = value.trim();
            if !value.is_empty() {
                params.push(param(name, method, &[value]));
            }
        };
        add("channel", "=", &self.channel);
        add("kind", "=", &self.kind);
        add("amount", ">=", &self.min_amount);
        add("amount", "<=", &self.max_amount);
        for (name, value) in [
            ("account_number", &self.account),
            ("id", &self.id),
            ("confirmation_number", &self.confirmation),
        ] {
            let method = if value.contains('%') { "like" } else { "=" };
            add(name, method, value);
        }
        let statuses: Vec<&str> = self
            .status
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if !statuses.is_empty() {
            params.push(param("status", "in", &statuses));
        }
        SearchRequest {
            paging: Some(Paging {
                page: Some(Value::from(page)),
                size: Some(Value::from(size as u64)),
            }),
            search_parameters: params,
            order_parameters: vec![OrderParameter {
                field: self.sort.clone(),
                type_order: Some(self.dir.to_ascii_uppercase()),
            }],
        }
    }

    fn page(&self) -> u64 {
        self.page.trim().parse().ok().filter(|p| *p >= 1).unwrap_or(1)
    }

    fn size(&self) -> usize {
        self.size
            .trim()
            .parse()
            .ok()
            .filter(|s| PAGE_SIZES.contains(s))
            .unwrap_or(50)
    }

    /// This form's query string with some fields replaced.
    fn query_with(&self, changes: &[(&str, String)]) -> String {
        let mut form = self.clone();
        for (k, v) in changes {
            match *k {
                "page" => form.page = v.clone(),
                "sort" => form.sort = v.clone(),
                "dir" => form.dir = v.clone(),
                _ => {}
            }
        }
        serde_urlencoded::to_string(&form).unwrap_or_default()
    }
}

fn param(name: &str, method: &str, values: &[&str]) -> SearchParameter {
    SearchParameter {
        name: name.into(),
        method: method.into(),
        values: values.iter().map(|v| Value::String((*v).to_string())).collect(),
    }
}

/// A time from the form as RFC 3339: the browser's `datetime-local` value (no zone) is read
/// as UTC, as the label says; an RFC 3339 time passes as it is (and the API checks it).
fn utc(value: &str) -> String {
    let v = value.trim();
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, format) {
            return format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S"));
        }
    }
    v.to_string()
}

pub async fn page(
    state: web::Data<AppState>,
    op: Operator,
    form: web::Query<SearchForm>,
) -> Result<HttpResponse, ConsoleError> {
    let form = form.into_inner().with_defaults(Utc::now());
    let (page, size) = (form.page(), form.size());
    let result = match form.request(page, size).to_query() {
        Ok(query) => Ok(run_search(&state.store, query).await?),
        Err(refused) => Err(refused),
    };
    let body = html! {
        h1 { "Search" }
        p.lead { "Payments and refunds of both channels received in a window. Times are UTC." }
        (filters(&form))
        @match &result {
            Err(e) => p.notice.error role="alert" { (problem(e)) },
            Ok(found) => {
                @let pages = found.total_count.div_ceil(size).max(1);
                div.pager {
                    span role="status" { strong { (found.total_count) } " records · page " (page) " of " (pages) }
                    @if page > 1 {
                        a href=(format!("/console/search?{}", form.query_with(&[("page", (page - 1).to_string())]))) rel="prev" { "← Previous" }
                    }
                    @if (page as usize) < pages {
                        a href=(format!("/console/search?{}", form.query_with(&[("page", (page + 1).to_string())]))) rel="next" { "Next →" }
                    }
                    a.button.secondary href=(format!("/console/search.csv?{}", form.query_with(&[]))) download { "Download CSV" }
                }
                (results(&form, &found.records))
            }
        }
    };
    Ok(layout::ok(layout::page("Search", Nav::Search, &op.csrf, None, body)))
}

fn problem(e: &AdminError) -> String {
    match e.field() {
        Some(f) => format!("{} ({f})", e.message()),
        None => e.message().to_string(),
    }
}

fn filters(form: &SearchForm) -> Markup {
    let select = |id: &str, label: &str, current: &str, options: &[(&str, &str)]| {
        html! {
            div {
                label for=(id) { (label) }
                select #(id) name=(id) {
                    @for (value, text) in options {
                        option value=(value) selected[*value == current] { (text) }
                    }
                }
            }
        }
    };
    let text = |id: &str, label: &str, value: &str, hint: &str| {
        html! {
            div {
                label for=(id) { (label) }
                input #(id) type="text" name=(id) value=(value) placeholder=(hint) autocomplete="off";
            }
        }
    };
    html! {
        form.filters method="get" action="/console/search" aria-label="Search filters" {
            div {
                label for="from" { "From (UTC)" }
                input #from type="datetime-local" step="1" name="from" value=(form.from) required;
            }
            div {
                label for="to" { "To (UTC)" }
                input #to type="datetime-local" step="1" name="to" value=(form.to) required;
            }
            (select("channel", "Channel", &form.channel, &[("", "Any"), ("orbipay", "Orbipay EBPP"), ("empayre", "Empayre")]))
            (select("kind", "Kind", &form.kind, &[("", "Any"), ("payment", "payment"), ("refund", "refund"), ("empayre-payment", "empayre-payment"), ("empayre-refund", "empayre-refund")]))
            (text("status", "Status (comma-separated)", &form.status, "processed, returned"))
            (text("min_amount", "Amount from", &form.min_amount, "0.01"))
            (text("max_amount", "Amount to", &form.max_amount, "1000.00"))
            (text("account", "Account number", &form.account, "ACC-100200 or ACC-%"))
            (text("id", "Record id", &form.id, "id, % as wildcard"))
            (text("confirmation", "Confirmation number", &form.confirmation, ""))
            (select("sort", "Sort by", &form.sort, &[("received_at", "Received"), ("amount", "Amount"), ("account_number", "Account"), ("status", "Status")]))
            (select("dir", "Order", &form.dir, &[("desc", "Descending"), ("asc", "Ascending")]))
            div {
                label for="size" { "Per page" }
                select #size name="size" {
                    @for n in PAGE_SIZES {
                        option value=(n) selected[n == form.size()] { (n) }
                    }
                }
            }
            div.actions { button type="submit" { "Search" } a href="/console/search" { "Reset" } }
        }
    }
}

fn results(form: &SearchForm, records: &[crate::admin::views::RecordView]) -> Markup {
    // A column header sorts by its field; sorting again by the same field flips the order.
    let sortable = |field: &str, label: &str, numeric: bool| {
        let active = form.sort == field;
        let dir = if active && form.dir == "desc" { "asc" } else { "desc" };
        let href = format!(
            "/console/search?{}",
            form.query_with(&[
                ("sort", field.to_string()),
                ("dir", dir.to_string()),
                ("page", "1".into())
            ])
        );
        let sort_state = match (active, form.dir.as_str()) {
            (false, _) => "none",
            (true, "asc") => "ascending",
            _ => "descending",
        };
        html! {
            th.num[numeric] scope="col" aria-sort=(sort_state) {
                a href=(href) { (label) @if active { @if form.dir == "asc" { " ▲" } @else { " ▼" } } }
            }
        }
    };
    html! {
        @if records.is_empty() {
            p.notice role="status" { "No record matches." }
        } @else {
            div.table-wrap {
                table {
                    caption { "Matching records" }
                    thead { tr {
                        (sortable("received_at", "Received", false))
                        th scope="col" { "Channel" }
                        th scope="col" { "Kind" }
                        th scope="col" { "Id" }
                        (sortable("account_number", "Account", false))
                        (sortable("status", "Status", false))
                        (sortable("amount", "Amount", true))
                        th scope="col" { "Confirmation" }
                    } }
                    tbody {
                        @for r in records {
                            tr {
                                td { (layout::time(&r.received_at)) }
                                td { (r.channel) }
                                td { (r.kind) }
                                td { a href=(layout::record_href(&r.kind, &r.id)) { (r.id) } }
                                td { (layout::account_link(r.account_number.as_deref())) }
                                td { (r.status) }
                                td.num { (layout::money(&r.amount, &r.currency)) }
                                td { (layout::text_or_dash(r.confirmation_number.as_deref())) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The whole result of the form's search as CSV (up to [`CSV_MAX_ROWS`]), page by page through
/// the same search as the page and the API.
pub async fn csv(
    state: web::Data<AppState>,
    _op: Operator,
    form: web::Query<SearchForm>,
) -> Result<HttpResponse, ConsoleError> {
    let form = form.into_inner().with_defaults(Utc::now());
    let mut records = Vec::new();
    let mut page = 1u64;
    loop {
        let query = form.request(page, MAX_PAGE_SIZE).to_query()?;
        let found = run_search(&state.store, query).await?;
        let last = found.records.len() < MAX_PAGE_SIZE;
        records.extend(found.records);
        if last || records.len() >= CSV_MAX_ROWS {
            break;
        }
        page += 1;
    }
    records.truncate(CSV_MAX_ROWS);
    let name = format!("biller-inbox-search-{}.csv", Utc::now().format("%Y%m%dT%H%M%SZ"));
    Ok(HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/csv; charset=utf-8"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", urlencode(&name)),
        ))
        .body(records_csv(&records)))
}
