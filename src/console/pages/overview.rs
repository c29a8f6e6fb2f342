//! Overview: is the service healthy, what is arriving, what is being refused, how the commits
//! behave; refreshes itself.

use std::sync::atomic::Ordering;

use actix_web::{web, HttpResponse};
use chrono::Utc;
use maud::{html, Markup};

use super::super::chart::{self, Series};
use super::super::error::ConsoleError;
use super::super::layout::{self, Nav};
use super::super::Operator;
use super::lists::refusal_rows;
use crate::admin::empayre::unmatched_list;
use crate::admin::feeds::rejection_list;
use crate::http::rfc3339;
use crate::state::AppState;
use crate::store::{MinuteCount, BATCH_BOUNDS, LATENCY_BOUNDS_MICROS};

/// How often the overview refreshes itself, unless the address asks otherwise
/// (`/console?refresh=N`, N seconds from `MIN_REFRESH_SECS` to `MAX_REFRESH_SECS`).
pub const REFRESH_SECS: u32 = 15;
pub const MIN_REFRESH_SECS: u32 = 2;
pub const MAX_REFRESH_SECS: u32 = 3600;

#[derive(serde::Deserialize)]
pub struct OverviewQuery {
    refresh: Option<String>,
}

/// The refresh period the address asks for, within bounds; the default when it asks for none
/// or for something that is not a number of seconds.
fn refresh_secs(asked: Option<&str>) -> u32 {
    asked
        .and_then(|a| a.trim().parse::<u32>().ok())
        .map_or(REFRESH_SECS, |n| n.clamp(MIN_REFRESH_SECS, MAX_REFRESH_SECS))
}
const NEWEST_REFUSALS: usize = 10;

pub async fn page(
    state: web::Data<AppState>,
    op: Operator,
    query: web::Query<OverviewQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let refresh = refresh_secs(query.refresh.as_deref());
    let now = Utc::now();
    let this_minute = now.timestamp().div_euclid(60);
    // The last 24 hours, minute by minute, the current minute last.
    let day = state
        .store
        .received_per_minute(this_minute - 1439, 1440)
        .await
        .map_err(crate::admin::AdminError::from)?;
    let hour = &day[day.len().saturating_sub(60)..];
    // The same check as `/health/ready`.
    let health = state.store.readiness().await.map_err(|not_ready| not_ready.check);
    let refusals = rejection_list(&state.store, NEWEST_REFUSALS).await?;
    let unmatched = unmatched_list(&state.store).await?;

    let body = html! {
        h1 { "Overview" }
        p.lead { "As of " (layout::time(&rfc3339(now))) ". Refreshes every " (refresh) " seconds." }
        div.panels {
            section.panel aria-labelledby="health-h" {
                h2 #health-h { "Store health" }
                @match health {
                    Ok(()) => p.figure.status-ok { "Ready" },
                    Err(check) => {
                        p.figure.status-bad { "Not ready" }
                        p { "Failing check: " code { (check) } }
                    }
                }
                p.help { "The same checks as " code { "/health/ready" } "." }
            }
            section.panel aria-labelledby="recv-h" {
                h2 #recv-h { "Received in the last hour" }
                p.figure { (sum(hour, MinuteCount::total)) }
                p {
                    (sum(hour, |m| m.orbipay)) " EBPP postings, " (sum(hour, |m| m.empayre)) " Empayre payments and refunds; "
                    (sum(&day, MinuteCount::total)) " in the last 24 hours."
                }
            }
            section.panel aria-labelledby="wait-h" {
                h2 #wait-h { "Waiting for an operator" }
                p.figure { (unmatched.items.len()) }
                p { a href="/console/unmatched" { "Unmatched Empayre payments" } " to assign. See also the " a href="/console/quarantine" { "quarantine" } "." }
            }
        }
        h2 { "Received per minute" }
        p.help { "Records by the minute they were received (UTC), from the store's per-minute counts." }
        ul.legend {
            li { span.key.orbipay {} "EBPP postings" }
            li { span.key.empayre {} "Empayre payments and refunds" }
        }
        div.panels {
            section.panel {
                (activity_chart("Last hour", hour, now, 60))
            }
            section.panel {
                (activity_chart("Last 24 hours", &day, now, 1440))
            }
        }
        div.panels {
            section.panel aria-labelledby="acc-h" {
                h2 #acc-h { "Accepted and refused since the server started" }
                (acceptance(&state))
            }
            section.panel aria-labelledby="commit-h" {
                h2 #commit-h { "Commits to disk" }
                (commits(&state))
            }
        }
        h2 { "Newest refusals" }
        (refusal_rows(&refusals.items))
        p { a href="/console/refusals" { "All recent refusals" } }
    };
    Ok(layout::ok(layout::page(
        "Overview",
        Nav::Overview,
        &op.csrf,
        Some(refresh),
        body,
    )))
}

fn sum(counts: &[MinuteCount], of: impl Fn(&MinuteCount) -> u64) -> u64 {
    counts.iter().map(of).sum()
}

fn activity_chart(title: &str, counts: &[MinuteCount], now: chrono::DateTime<Utc>, minutes: i64) -> Markup {
    let start = now - chrono::Duration::minutes(minutes - 1);
    let peak = |of: fn(&MinuteCount) -> u64| counts.iter().map(of).max().unwrap_or(0);
    let label = format!(
        "{title}: {} EBPP postings (at most {} in a minute) and {} Empayre payments and refunds (at most {} in a minute)",
        sum(counts, |m| m.orbipay),
        peak(|m| m.orbipay),
        sum(counts, |m| m.empayre),
        peak(|m| m.empayre),
    );
    let series = |of: fn(&MinuteCount) -> u64| counts.iter().map(|m| of(m) as f64).collect();
    html! {
        figure.chart {
            (chart::lines(
                &label,
                &[
                    Series { class: "series-orbipay", values: series(|m| m.orbipay) },
                    Series { class: "series-empayre", values: series(|m| m.empayre) },
                ],
                &start.format("%H:%M UTC").to_string(),
                &now.format("%H:%M UTC").to_string(),
            ))
            figcaption { (title) }
        }
    }
}

fn acceptance(state: &AppState) -> Markup {
    let applied = state.metrics.postings_applied();
    let refused = state.metrics.rejections_by_cause();
    html! {
        div.table-wrap {
            table {
                thead { tr { th scope="col" { "Outcome" } th scope="col" { "Detail" } th.num scope="col" { "Requests" } } }
                tbody {
                    @for (channel, kind, n) in &applied {
                        tr { td { "Accepted" } td { (channel) " " (kind) } td.num { (n) } }
                    }
                    tr { td { "Duplicate" } td { "answered with the original" } td.num { (state.metrics.duplicates_total()) } }
                    @for (cause, n) in &refused {
                        tr { td { "Refused" } td { (cause) } td.num { (n) } }
                    }
                    @if applied.is_empty() && refused.is_empty() {
                        tr { td colspan="3" .muted { "Nothing yet since the server started." } }
                    }
                }
            }
        }
    }
}

fn commits(state: &AppState) -> Markup {
    let stats = state.store.stats();
    let flushes = stats.flushes.load(Ordering::Relaxed);
    let requests = stats.flushed_requests.load(Ordering::Relaxed);
    let micros = stats.latency_micros_sum.load(Ordering::Relaxed);
    let mean = |total: u64| {
        if flushes == 0 {
            0.0
        } else {
            total as f64 / flushes as f64
        }
    };
    let batch_labels = bucket_labels(&BATCH_BOUNDS, |b| b.to_string());
    let latency_labels = bucket_labels(&LATENCY_BOUNDS_MICROS, |b| format!("{} ms", *b as f64 / 1000.0));
    html! {
        dl.facts {
            dt { "Commits (fsync)" } dd { (flushes) }
            dt { "Requests they made durable" } dd { (requests) }
            dt { "Mean batch size" } dd { (format!("{:.1}", mean(requests))) }
            dt { "Mean commit latency" } dd { (format!("{:.2} ms", mean(micros) / 1000.0)) }
            dt { "Failed commits" } dd { (stats.failures.load(Ordering::Relaxed)) }
        }
        div.table-wrap {
            table {
                caption { "Batch sizes and latencies (commits per bucket)" }
                thead { tr { th scope="col" { "Batch size" } th.num scope="col" { "Commits" } th scope="col" { "Latency" } th.num scope="col" { "Commits" } } }
                tbody {
                    @for i in 0..latency_labels.len().max(batch_labels.len()) {
                        tr {
                            td { (batch_labels.get(i).map(String::as_str).unwrap_or("")) }
                            td.num { @if i < batch_labels.len() { (stats.batch_buckets[i].load(Ordering::Relaxed)) } }
                            td { (latency_labels.get(i).map(String::as_str).unwrap_or("")) }
                            td.num { @if i < latency_labels.len() { (stats.latency_buckets[i].load(Ordering::Relaxed)) } }
                        }
                    }
                }
            }
        }
    }
}

/// "≤ b" for each bound, then "> last".
fn bucket_labels<T>(bounds: &[T], show: impl Fn(&T) -> String) -> Vec<String> {
    let mut labels: Vec<String> = bounds.iter().map(|b| format!("≤ {}", show(b))).collect();
    if let Some(last) = bounds.last() {
        labels.push(format!("> {}", show(last)));
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_may_ask_for_another_refresh_period_within_bounds() {
        let cases = [
            (None, REFRESH_SECS),
            (Some("5"), 5),
            (Some("0"), MIN_REFRESH_SECS),
            (Some("1"), MIN_REFRESH_SECS),
            (Some("99999"), MAX_REFRESH_SECS),
            (Some("-3"), REFRESH_SECS),
            (Some("soon"), REFRESH_SECS),
        ];
        for (asked, want) in cases {
            assert_eq!(refresh_secs(asked), want, "{asked:?}");
        }
    }
}
