//! The page shell and the small pieces every page uses: times (UTC, local time on hover),
//! amounts (right-aligned, the currency's decimals as the API formats them), links.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};

use super::assets;

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Search,
    Unmatched,
    Quarantine,
    Refusals,
    Reconcile,
    Accounts,
}

const NAV: [(Nav, &str, &str); 6] = [
    (Nav::Overview, "/console", "Overview"),
    (Nav::Search, "/console/search", "Search"),
    (Nav::Unmatched, "/console/unmatched", "Unmatched payments"),
    (Nav::Quarantine, "/console/quarantine", "Quarantine"),
    (Nav::Refusals, "/console/refusals", "Refusals"),
    (Nav::Reconcile, "/console/reconcile", "Reconciliation"),
];

fn head(title: &str, refresh_secs: Option<u32>) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · biller-inbox console" }
            link rel="stylesheet" href=(assets::CSS_PATH);
            script src=(assets::JS_PATH) defer {}
            @if let Some(secs) = refresh_secs {
                // The script refreshes the page's data in place; without it the page reloads.
                noscript { meta http-equiv="refresh" content=(secs); }
            }
        }
    }
}

/// A page of a signed-in operator: navigation, the account jump box, sign-out (a form with
/// the session's CSRF token), then `body`.
pub fn page(title: &str, current: Nav, csrf: &str, refresh_secs: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, refresh_secs))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "biller-inbox" }
                    nav aria-label="Console" {
                        ul {
                            @for (nav, href, label) in NAV {
                                li {
                                    @if nav == current {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    form.jump method="get" action="/console/accounts" role="search" {
                        label for="jump-account" { "Account" }
                        input #jump-account type="text" name="number" required placeholder="ACC-100200" autocomplete="off";
                        button type="submit" { "Open" }
                    }
                    form.signout method="post" action="/console/sign-out" {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                main #main tabindex="-1" data-refresh=[refresh_secs] {
                    (body)
                }
            }
        }
    }
}

/// A page without navigation (sign-in, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title, None))
            body.bare {
                header.top { a.brand href="/console" { "biller-inbox" } }
                main #main { (body) }
            }
        }
    }
}

pub fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

pub fn ok(markup: Markup) -> HttpResponse {
    html_response(StatusCode::OK, markup)
}

/// An RFC 3339 UTC time shown as `2026-12-07 09:30:00 UTC`; the script puts the local time in
/// the title (shown on hover).
pub fn time(rfc3339: &str) -> Markup {
    let shown = to_milliseconds(rfc3339).replacen('T', " ", 1).replace('Z', " UTC");
    html! { time datetime=(rfc3339) title="UTC" { (shown) } }
}

/// A time with at most three decimals of a second (the whole value stays in `datetime`): a
/// reader compares times by the second, and nine digits push tables wider than the window.
fn to_milliseconds(rfc3339: &str) -> String {
    match rfc3339.split_once('.') {
        Some((whole, rest)) => {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            format!("{whole}.{}{}", &rest[..digits.min(3)], &rest[digits..])
        }
        None => rfc3339.to_string(),
    }
}

pub fn time_opt(rfc3339: Option<&str>) -> Markup {
    match rfc3339 {
        Some(t) => time(t),
        None => html! { "—" },
    }
}

/// An amount as the API formats it (the currency's decimals), with its currency.
pub fn money(amount: &str, currency: &str) -> Markup {
    html! { span.amount { (amount) } " " abbr.currency title="currency" { (currency) } }
}

/// The console page of a record.
pub fn record_href(kind: &str, id: &str) -> String {
    format!("/console/records/{}/{}", urlencode(kind), urlencode(id))
}

pub fn account_href(number: &str) -> String {
    format!("/console/accounts/{}", urlencode(number))
}

pub fn account_link(number: Option<&str>) -> Markup {
    match number {
        Some(n) => html! { a href=(account_href(n)) { (n) } },
        None => html! { span.muted { "none" } },
    }
}

pub fn text_or_dash(v: Option<&str>) -> Markup {
    match v {
        Some(s) if !s.is_empty() => html! { (s) },
        _ => html! { span.muted { "—" } },
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::to_milliseconds;

    #[test]
    fn times_are_shown_to_the_millisecond() {
        for (given, shown) in [
            ("2026-12-07T03:31:52.097943921Z", "2026-12-07T03:31:52.097Z"),
            ("2026-12-07T03:31:52.1Z", "2026-12-07T03:31:52.1Z"),
            ("2026-12-07T03:31:52Z", "2026-12-07T03:31:52Z"),
            ("2026-12-07T03:31:52.123456+02:00", "2026-12-07T03:31:52.123+02:00"),
        ] {
            assert_eq!(to_milliseconds(given), shown);
        }
    }
}
