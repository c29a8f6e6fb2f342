//! Structured logs through `tracing`: pretty for people, JSON for log shippers.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::settings::LogSettings;

/// Installs the global subscriber. `RUST_LOG` overrides `log.level` when set. Logs go to stderr
/// so stdout stays for what commands print (the bound address, export lines). Colours only on a
/// terminal, and not when `NO_COLOR` is set: a log file or a pipe gets plain text.
pub fn init(log: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // tokio-postgres logs every statement's parameters at debug level: posted bodies, stored
    // webhook bodies, the request log. Secrets never reach a log, whatever the level asked for.
    let filter = match "tokio_postgres=info".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(use_colour());
    let _ = if log.format == "json" {
        builder.json().flatten_event(true).with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Whether log lines may carry ANSI colour codes (<https://no-color.org>).
fn use_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
