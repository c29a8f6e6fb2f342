//! The command line (docs/operations.md, Command line). Exit status: 0 success, 1 a failed check or
//! operation, 2 bad usage or configuration. Errors are one line on stderr.

mod empayre;
mod export;
mod hash_secret;
mod import;
mod keygen;
mod migrate;
mod replay;
mod store_copy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::{ConfigSources, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "biller-inbox",
    version,
    about = "Biller-side receiver for Orbipay EBPP postings and Empayre webhooks"
)]
pub struct Cli {
    /// Configuration file layered over config/default.toml (also BILLER_INBOX_CONFIG); relative
    /// paths in it are resolved against its folder.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Write a fresh RSA-2048 test key pair for signing Empayre fixtures.
    Keygen {
        /// Folder for empayre_test_private.pem (PKCS#8) and empayre_test_public.pem (SPKI).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Send fixture files to a running server and compare each answer with its expectation.
    Replay {
        /// Fixture files and folders (a folder: its *.json files in name order), replayed in
        /// the order given.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Base URL of the server, for example http://127.0.0.1:8080.
        #[arg(long, value_name = "URL")]
        target: String,
        /// Private key (PKCS#8 or PKCS#1 PEM) that signs Empayre bodies.
        #[arg(long, value_name = "PEM", default_value = "fixtures/keys/empayre_test_private.pem")]
        sign_key: PathBuf,
    },
    /// Write the journal and the records as JSON lines to stdout (offline: the store must not
    /// be held by a running server).
    Export {
        /// Only journal entries and records at or after this RFC 3339 time.
        #[arg(long, value_name = "RFC3339")]
        since: Option<String>,
    },
    /// Apply the PostgreSQL schema migrations and exit (store.backend = "postgres").
    Migrate,
    /// Read a secret on stdin and print its SHA-256 digest, for `{ sha256 = "..." }` in the
    /// configuration (api-key values, admin.token). Surrounding whitespace is not part of it.
    HashSecret,
    /// Move a whole store to another backend.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Manage biller accounts and profiles.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Calls to the Empayre API of a source (api_url, api_token): register its webhook,
    /// reconcile its payments.
    Empayre {
        #[command(subcommand)]
        command: EmpayreCommand,
    },
}

#[derive(Debug, Subcommand)]
enum EmpayreCommand {
    /// Create the shop's webhook (InvoicesTopic) and write the key it signs with to the source's
    /// first public_key_files entry. Refuses a second webhook for the same shop and URL.
    Register {
        /// The [[empayre.sources]] entry: its API access and its key file.
        #[arg(long, value_name = "NAME")]
        source: String,
        /// The Empayre shop whose events the webhook delivers.
        #[arg(long, value_name = "ID")]
        shop_id: String,
        /// The public URL Empayre will POST to, e.g. https://biller.example/empayre/webhook/NAME.
        #[arg(long, value_name = "URL")]
        url: String,
        /// Event types to subscribe to (comma-separated or repeated); default: every invoice,
        /// payment and refund type.
        #[arg(long, value_name = "TYPES", num_args = 1..)]
        event_types: Vec<String>,
        /// Check everything, list the webhooks, create nothing, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace a different (or unusable) key in the key file.
        #[arg(long)]
        force: bool,
    },
    /// Apply captured payments, refunds and charge-backs of a window that no webhook delivered.
    /// Runs inside the running server (through its admin API), which holds the store.
    Reconcile {
        /// The [[empayre.sources]] entry (api_token, shop_ids).
        #[arg(long, value_name = "NAME")]
        source: String,
        /// Start of the window (RFC 3339): payments and refunds created from then on.
        #[arg(long, value_name = "RFC3339")]
        since: String,
        /// End of the window (RFC 3339); now when absent.
        #[arg(long, value_name = "RFC3339")]
        until: Option<String>,
        /// Decide and report, apply nothing.
        #[arg(long)]
        dry_run: bool,
        /// The running server, e.g. http://127.0.0.1:8080 (default: server.host and server.port).
        #[arg(long, value_name = "URL")]
        target: Option<String>,
        /// Print the server's report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    /// Copy a stopped server's sled store into an empty PostgreSQL database (migrated first), in
    /// one transaction: counts, balances and the journal's last seq are compared before it
    /// commits; on any difference nothing is committed. Progress on stderr, the comparison on
    /// stdout.
    Copy {
        /// The sled store: sled:PATH (sled: alone is store.path).
        #[arg(long, value_name = "sled:PATH")]
        from: String,
        /// The database: postgres:URL (postgres: alone is store.postgres.url, so the password
        /// can stay in BILLER_INBOX__STORE__POSTGRES__URL rather than on the command line).
        #[arg(long, value_name = "postgres:URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum AccountsCommand {
    /// Upsert accounts and profiles from a JSON array or JSON-lines file (all-or-nothing: every
    /// entry is checked before anything is written). Progress and bad entries go to stderr.
    Import {
        /// The accounts file: a JSON array of accounts, or one account per line (JSON lines).
        file: PathBuf,
        /// Write every bad entry to FILE, one per line (stderr shows the first 100).
        #[arg(long, value_name = "FILE")]
        errors_out: Option<PathBuf>,
        /// Seconds between progress lines when stderr is not a terminal (a terminal gets a bar).
        #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
        progress_every: f64,
    },
}

/// A command's failure: the message for stderr and the exit status.
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn check(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
        }
    }
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cli.config.as_deref()),
        Command::Keygen { out } => keygen::run(&out),
        Command::Export { since } => since
            .as_deref()
            .map(export::parse_since)
            .transpose()
            .and_then(|since| load(cli.config.as_deref()).and_then(|(s, _)| export::run(&s, since))),
        Command::Replay {
            paths,
            target,
            sign_key,
        } => replay::run(&replay::Options {
            paths,
            target,
            sign_key,
            config: cli.config,
        }),
        Command::HashSecret => hash_secret::run(),
        Command::Store {
            command: StoreCommand::Copy { from, to },
        } => load(cli.config.as_deref()).and_then(|(s, _)| store_copy::run(&s, &store_copy::Options { from, to })),
        Command::Migrate => load(cli.config.as_deref()).and_then(|(s, _)| migrate::run(&s)),
        Command::Accounts {
            command:
                AccountsCommand::Import {
                    file,
                    errors_out,
                    progress_every,
                },
        } => import::Options::new(file, errors_out, progress_every).and_then(|options| {
            load(cli.config.as_deref()).and_then(|(s, sources)| import::run(&s, &sources, &options))
        }),
        Command::Empayre {
            command:
                EmpayreCommand::Register {
                    source,
                    shop_id,
                    url,
                    event_types,
                    dry_run,
                    force,
                },
        } => load(cli.config.as_deref()).and_then(|(s, _)| {
            empayre::register(
                &s,
                empayre::RegisterOptions {
                    source,
                    shop_id,
                    url,
                    event_types,
                    dry_run,
                    force,
                },
            )
        }),
        Command::Empayre {
            command:
                EmpayreCommand::Reconcile {
                    source,
                    since,
                    until,
                    dry_run,
                    target,
                    json,
                },
        } => load(cli.config.as_deref()).and_then(|(s, _)| {
            empayre::reconcile(
                &s,
                empayre::ReconcileOptions {
                    source,
                    since,
                    until,
                    dry_run,
                    target,
                    json,
                },
            )
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("biller-inbox: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Runs a store call from a command-line tool, on a runtime of its own (the store's interface is
/// async because a network backend needs it).
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::check(format!("cannot start the async runtime: {e}")))?;
    Ok(runtime.block_on(future))
}

/// Loads the settings for an offline command. Without `config/default.toml` it says so on
/// stderr, since the command then runs on other settings than the user may think; otherwise it
/// stays quiet, so a failure is one line (`accounts import` names its configuration itself).
fn load(config: Option<&std::path::Path>) -> Result<(Settings, ConfigSources), Failure> {
    let (settings, sources) = load_reporting(config)?;
    if !sources.demo_found {
        eprintln!("biller-inbox: configuration: {sources}");
    }
    Ok((settings, sources))
}

fn load_reporting(config: Option<&std::path::Path>) -> Result<(Settings, ConfigSources), Failure> {
    Settings::load_reporting(config).map_err(|e| Failure::usage(e.to_string()))
}

fn serve(config: Option<&std::path::Path>) -> Result<(), Failure> {
    let (settings, sources) = load_reporting(config)?;
    crate::telemetry::init(&settings.log);
    // The first log line says what was read, so a server started from the wrong folder (no
    // demo configuration) says so before anything else.
    if sources.demo_found {
        tracing::info!(sources = %sources, "configuration read");
    } else {
        tracing::warn!(sources = %sources, "configuration read");
    }
    let system = actix_rt::System::new();
    system.block_on(async move {
        let host = settings.server.host.clone();
        let app = crate::startup::Application::build(settings)
            .await
            .map_err(|e| match e {
                crate::startup::StartupError::Settings(s) => Failure::usage(s.to_string()),
                crate::startup::StartupError::Tls(t) => Failure::usage(t.to_string()),
                other => Failure::check(other.to_string()),
            })?;
        // Scripts and tests read the bound address from this line, printed once SIGTERM/SIGINT
        // would stop the server cleanly.
        let listening = format!("biller-inbox listening on {}://{host}:{}", app.scheme(), app.port());
        let port = app.port();
        crate::serve::serve_until_signalled(app, move || {
            println!("{listening}");
            tracing::info!(port, "serving");
        })
        .await
        .map_err(|e| Failure::check(e.to_string()))
    })
}
