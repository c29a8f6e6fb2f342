//! Configuration: built-in defaults → `config/default.toml` → `--config FILE` (or
//! `BILLER_INBOX_CONFIG`) → `BILLER_INBOX__SECTION__KEY` environment variables.
//!
//! Every section denies unknown keys so a typo stops start-up instead of silently
//! falling back to a default; `validate` checks values and names the offending key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::secret::Secret;
use crate::tls::TlsSubject;

/// The defaults every layer starts from (the contract of docs/operations.md, Configuration, without the demo
/// credentials, which live in `config/default.toml`).
const BUILT_IN_DEFAULTS: &str = r#"
[server]
host = "127.0.0.1"
port = 8080
max_body_bytes = 262144
workers = 0
request_timeout_ms = 10000
keep_alive_secs = 30
drain_secs = 5
shutdown_timeout_secs = 30
auth_failures_per_minute = 30

[store]
backend = "sled"
path = "data/biller-inbox"
cache_capacity_bytes = 134217728
min_free_bytes = 268435456

[store.postgres]
url = ""
pool_size = 16
batch_max = 64
batch_wait_us = 500
connect_timeout_ms = 3000
statement_timeout_ms = 5000
migrate = true
allow_unsafe_commit = false

[log]
format = "pretty"
level = "info"

[orbipay]
base_path = ""
lookup_max_results = 20
min_payment_amount = "0.01"
clients = []

[empayre]
path = "/empayre/webhook"
sources = []

[admin]
token = ""
max_body_bytes = 67108864

[seed]
accounts_file = ""
"#;

/// Where the demo set-up lives, relative to the working directory (the repository root).
pub const DEMO_CONFIG_FILE: &str = "config/default.toml";

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct SettingsError {
    pub key: String,
    pub message: String,
}

impl SettingsError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub log: LogSettings,
    pub orbipay: OrbipaySettings,
    pub empayre: EmpayreSettings,
    pub admin: AdminSettings,
    pub seed: SeedSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
    pub workers: usize,
    /// Time allowed to receive a request's head and body before the connection is dropped.
    pub request_timeout_ms: u64,
    pub keep_alive_secs: u64,
    /// After SIGTERM or SIGINT: how long `/health/ready` says 503 while the listener still
    /// accepts and serves, before it closes.
    pub drain_secs: u64,
    /// The whole stop (drain, requests in progress, closing the store) ends within this.
    pub shutdown_timeout_secs: u64,
    /// Failed authentications allowed per client address (IPv6: per /64) and minute before its
    /// requests get 429 with `Retry-After` (`crate::throttle`); 0 turns the throttle off.
    pub auth_failures_per_minute: u32,
    /// HTTPS; without this table the server speaks plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

/// `[server.tls]`: the certificate chain and key (PEM, reloaded when the files change), and an
/// optional CA whose client certificates the server asks for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Empty: no client certificates are asked for.
    #[serde(default)]
    pub client_ca_file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Which store holds the ledger: the embedded sled store (one node) or PostgreSQL (several
    /// replicas on one database).
    pub backend: Backend,
    /// sled only.
    pub path: PathBuf,
    /// sled only.
    pub cache_capacity_bytes: u64,
    pub min_free_bytes: u64,
    /// PostgreSQL only (`backend = "postgres"`).
    pub postgres: PostgresSettings,
}

impl StoreSettings {
    /// Where the ledger is, for messages: the sled folder, or the database without its
    /// password.
    pub fn location(&self) -> String {
        match self.backend {
            Backend::Sled => format!("the store at {}", self.path.display()),
            Backend::Postgres => format!("PostgreSQL at {}", self.postgres.redacted_url()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sled,
    Postgres,
}

// Spelled out rather than derived: `config` reports a bad enum variant without the key, and
// a bad value must stop start-up naming `store.backend`.
impl<'de> Deserialize<'de> for Backend {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "sled" => Ok(Self::Sled),
            "postgres" => Ok(Self::Postgres),
            other => Err(serde::de::Error::custom(format!(
                "store.backend: must be \"sled\" or \"postgres\", not {other:?}"
            ))),
        }
    }
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// A connection URL (`postgres://user:password@host:port/db`) or a key=value string. A
    /// secret: it may hold the password, so it is never logged, never in an error or a metric
    /// (`redacted_url` says where it points without it).
    pub url: String,
    /// Connections per replica (the batch writer uses one, reads share the rest).
    pub pool_size: usize,
    /// Postings and events per write transaction.
    pub batch_max: usize,
    /// How long a batch waits for more requests once it has one (microseconds).
    pub batch_wait_us: u64,
    pub connect_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    /// Apply the schema migrations at start-up (under an advisory lock).
    pub migrate: bool,
    /// Serve even though the server runs with fsync, synchronous_commit or full_page_writes
    /// off (then a 2xx no longer means the posting survives a crash of the database machine).
    pub allow_unsafe_commit: bool,
}

impl PostgresSettings {
    /// `user@host:port/dbname` of the URL, without the password, for start-up lines and
    /// messages; `(unparseable)` when the URL does not parse.
    pub fn redacted_url(&self) -> String {
        match self.url.parse::<tokio_postgres::Config>() {
            Ok(config) => describe_pg_config(&config),
            Err(_) => "(unparseable)".into(),
        }
    }
}

/// Where a PostgreSQL configuration points, without its password.
pub fn describe_pg_config(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or(user);
    if user.is_empty() {
        format!("{host}:{port}/{db}")
    } else {
        format!("{user}@{host}:{port}/{db}")
    }
}

// The URL may carry a password: `{:?}` of the settings shows where it points, never the URL.
impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("url", &self.redacted_url())
            .field("pool_size", &self.pool_size)
            .field("batch_max", &self.batch_max)
            .field("batch_wait_us", &self.batch_wait_us)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("statement_timeout_ms", &self.statement_timeout_ms)
            .field("migrate", &self.migrate)
            .field("allow_unsafe_commit", &self.allow_unsafe_commit)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: String,
    pub level: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrbipaySettings {
    pub base_path: String,
    pub lookup_max_results: usize,
    pub min_payment_amount: String,
    pub clients: Vec<OrbipayClient>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrbipayClient {
    pub client_key: String,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Each set maps header name → value; any one set must match completely. A value may be
    /// given inline, as `{ sha256 = "..." }` or as `{ file = "..." }` (`crate::secret`).
    pub credentials: Vec<BTreeMap<String, Secret>>,
    /// With `server.tls.client_ca_file`: the client certificate must name this (its subject
    /// attributes or one of its alternative names), else 401.
    #[serde(default)]
    pub tls_subject: Option<TlsSubject>,
}

// Secrets must never reach a log line, not even through `{:?}` of the settings.
impl std::fmt::Debug for OrbipayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrbipayClient")
            .field("client_key", &self.client_key)
            .field("enabled", &self.enabled)
            .field("credential_sets", &self.credentials.len())
            .field("tls_subject", &self.tls_subject)
            .finish()
    }
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmpayreSettings {
    pub path: String,
    pub sources: Vec<EmpayreSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmpayreSource {
    pub name: String,
    #[serde(default)]
    pub public_keys: Vec<String>,
    #[serde(default)]
    pub public_key_files: Vec<PathBuf>,
    #[serde(default = "default_account_pointer")]
    pub account_pointer: String,
    /// Base URL of the Empayre API (Part C). With it or `api_token` set the source has an API
    /// client (for `empayre register`, `empayre reconcile` and the background reconciliation);
    /// without `api_url` the public one is used.
    #[serde(default)]
    pub api_url: Option<String>,
    /// Bearer token of the Empayre API: inline or `{ file = "..." }`; never printed or logged.
    #[serde(default)]
    pub api_token: Option<crate::empayre::api::ApiToken>,
    /// Time one API request may take, connect included.
    #[serde(default = "default_api_timeout_secs")]
    pub api_timeout_secs: u64,
    /// The shops whose payments and refunds reconciliation looks at.
    #[serde(default)]
    pub shop_ids: Vec<String>,
    /// 0 = no background reconciliation in `serve`.
    #[serde(default)]
    pub reconcile_interval_secs: u64,
    /// Each window starts this much before the previous one ended, so nothing on a boundary
    /// is missed.
    #[serde(default = "default_reconcile_overlap_secs")]
    pub reconcile_overlap_secs: u64,
}

fn default_account_pointer() -> String {
    "/invoice/metadata/account_number".to_string()
}

fn default_api_timeout_secs() -> u64 {
    30
}

fn default_reconcile_overlap_secs() -> u64 {
    600
}

/// A source named `""` with no keys and every other key at its default: a base for code and
/// tests that build sources (`EmpayreSource { name, public_key_files, ..Default::default() }`).
impl Default for EmpayreSource {
    fn default() -> Self {
        Self {
            name: String::new(),
            public_keys: Vec::new(),
            public_key_files: Vec::new(),
            account_pointer: default_account_pointer(),
            api_url: None,
            api_token: None,
            api_timeout_secs: default_api_timeout_secs(),
            shop_ids: Vec::new(),
            reconcile_interval_secs: 0,
            reconcile_overlap_secs: default_reconcile_overlap_secs(),
        }
    }
}

impl EmpayreSource {
    /// What the source's API client needs, or `None` when the source has no API access.
    pub fn api_client_settings(&self) -> Option<crate::empayre::api::ClientSettings> {
        let token = self.api_token.as_ref().filter(|t| !t.is_empty())?;
        Some(crate::empayre::api::ClientSettings {
            source: self.name.clone(),
            base_url: self
                .api_url
                .clone()
                .unwrap_or_else(|| crate::empayre::api::DEFAULT_API_URL.to_string()),
            token: token.clone(),
            timeout: std::time::Duration::from_secs(self.api_timeout_secs),
            retry: Default::default(),
        })
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Bearer token of `/admin` and the console's sign-in; empty disables both. Inline,
    /// `{ sha256 = "..." }` or `{ file = "..." }` (`crate::secret`).
    pub token: Secret,
    /// Body limit of `PUT /admin/accounts`, which carries whole account sets (64 MiB is about
    /// 100,000 accounts); every other route uses `server.max_body_bytes`.
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSettings")
            .field("token_set", &!self.token.is_empty())
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSettings {
    pub accounts_file: String,
}

/// Keys whose values are file system paths. A relative path written in a configuration file is
/// resolved against that file's folder, so a file works from any working directory; from the
/// built-in defaults and the environment it stays relative to the working directory. `[]` stands
/// for every element of an array, `*` for every value of a table. A new path key belongs in this
/// list.
pub const PATH_KEYS: &[&str] = &[
    "store.path",
    "seed.accounts_file",
    "empayre.sources[].public_key_files[]",
    "empayre.sources[].api_token.file",
    "admin.token.file",
    "orbipay.clients[].credentials[].*.file",
    "server.tls.cert_file",
    "server.tls.key_file",
    "server.tls.client_ca_file",
];

/// The environment variables that configure the server start with this (`BILLER_INBOX__SERVER__PORT`).
const ENV_PREFIX: &str = "BILLER_INBOX";

/// What `Settings::load` read, for the start-up line.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The configuration files read, in layer order.
    pub files: Vec<PathBuf>,
    /// Whether `config/default.toml` was found in the working directory.
    pub demo_found: bool,
    /// The working directory, where `config/default.toml` was looked for.
    pub working_dir: PathBuf,
    /// The names (never the values) of the `BILLER_INBOX__*` variables that were set.
    pub env_vars: Vec<String>,
}

impl std::fmt::Display for ConfigSources {
    /// One line: `config/default.toml, /etc/x.toml, environment BILLER_INBOX__SERVER__PORT`, and
    /// when the demo file is missing, where it was looked for.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
        if !self.env_vars.is_empty() {
            parts.push(format!("environment {}", self.env_vars.join(", ")));
        }
        if parts.is_empty() {
            parts.push("built-in defaults only".into());
        }
        write!(f, "{}", parts.join(", "))?;
        if !self.demo_found {
            write!(
                f,
                " ({DEMO_CONFIG_FILE} not found in {}: run from the repository root or pass --config FILE)",
                self.working_dir.display()
            )?;
        }
        Ok(())
    }
}

/// One layer of the configuration as a tree, with its relative paths already resolved.
struct Layer {
    /// Where it came from, for messages: a file path or "environment".
    origin: String,
    tree: serde_json::Value,
}

impl Layer {
    fn file(path: &Path) -> Result<Self, SettingsError> {
        let raw = Config::builder()
            .add_source(File::from(path).format(FileFormat::Toml))
            .build()
            .map_err(|e| file_error(path, e))?;
        let mut tree: serde_json::Value = raw.try_deserialize().map_err(|e| file_error(path, e))?;
        let folder = path.parent().unwrap_or(Path::new(""));
        for key in PATH_KEYS {
            let segments: Vec<&str> = key.split('.').collect();
            resolve_paths(&mut tree, &segments, folder);
        }
        Ok(Self {
            origin: path.display().to_string(),
            tree,
        })
    }

    fn environment() -> Result<Self, SettingsError> {
        let raw = Config::builder()
            .add_source(
                Environment::with_prefix(ENV_PREFIX)
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .map_err(config_error)?;
        Ok(Self {
            origin: "environment".into(),
            tree: raw.try_deserialize().map_err(config_error)?,
        })
    }

    /// Whether this layer sets `key` (a path such as `server.port` or `orbipay.clients[0]`).
    fn sets(&self, key: &str) -> bool {
        let mut node = &self.tree;
        for part in key.split('.') {
            let (name, indexes) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            match node.get(name) {
                Some(next) => node = next,
                None => return false,
            }
            for index in indexes.split(['[', ']']).filter(|s| !s.is_empty()) {
                match index.parse::<usize>().ok().and_then(|i| node.get(i)) {
                    Some(next) => node = next,
                    None => return false,
                }
            }
        }
        true
    }
}

/// Rewrites the relative paths found at `segments` (see `PATH_KEYS`) to `folder`/path.
fn resolve_paths(node: &mut serde_json::Value, segments: &[&str], folder: &Path) {
    let Some((first, rest)) = segments.split_first() else {
        if let serde_json::Value::String(text) = node {
            if !text.is_empty() && Path::new(text.as_str()).is_relative() {
                *text = normalize(&folder.join(text.as_str())).display().to_string();
            }
        }
        return;
    };
    if *first == "*" {
        if let serde_json::Value::Object(values) = node {
            for value in values.values_mut() {
                resolve_paths(value, rest, folder);
            }
        }
        return;
    }
    let (name, each) = match first.strip_suffix("[]") {
        Some(name) => (name, true),
        None => (*first, false),
    };
    let Some(child) = node.get_mut(name) else { return };
    match (each, child) {
        (true, serde_json::Value::Array(items)) => {
            for item in items {
                resolve_paths(item, rest, folder);
            }
        }
        (false, child) => resolve_paths(child, rest, folder),
        _ => {}
    }
}

/// `a/b/../c` → `a/c`, `./x` → `x`, without touching the file system (the path may not exist
/// yet, as a new store's does not). A leading `..` stays.
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(part),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

impl Settings {
    /// Loads the layers in order. `config_file` is the `--config` argument; when absent the
    /// `BILLER_INBOX_CONFIG` variable is used. `config/default.toml` is read when present.
    pub fn load(config_file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_reporting(config_file).map(|(settings, _)| settings)
    }

    /// Like `load`, and says which files and variables were read.
    pub fn load_reporting(config_file: Option<&Path>) -> Result<(Self, ConfigSources), SettingsError> {
        let env_file = std::env::var_os("BILLER_INBOX_CONFIG").map(PathBuf::from);
        let chosen = config_file.map(Path::to_path_buf).or(env_file);
        let mut sources = ConfigSources {
            working_dir: std::env::current_dir().unwrap_or_default(),
            ..ConfigSources::default()
        };
        let mut layers = Vec::new();
        let demo = Path::new(DEMO_CONFIG_FILE);
        if demo.is_file() {
            layers.push(Layer::file(demo)?);
            sources.demo_found = true;
            sources.files.push(demo.to_path_buf());
        }
        if let Some(path) = chosen {
            if !path.is_file() {
                return Err(SettingsError::new(
                    "--config",
                    format!("{} is not a readable file", path.display()),
                ));
            }
            layers.push(Layer::file(&path)?);
            sources.files.push(path);
        }
        let env_prefix = format!("{ENV_PREFIX}__");
        sources.env_vars = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| name.starts_with(&env_prefix))
            .collect();
        sources.env_vars.sort();
        layers.push(Layer::environment()?);

        let mut builder = Config::builder().add_source(File::from_str(BUILT_IN_DEFAULTS, FileFormat::Toml));
        for layer in &layers {
            builder = builder.add_source(Config::try_from(&layer.tree).map_err(config_error)?);
        }
        let raw = builder.build().map_err(config_error)?;
        let settings: Settings = serde_path_to_error::deserialize(raw).map_err(|e| {
            let error = deserialize_error(&e);
            // Say which layer set the offending key (or, for a missing key, its table): the
            // last one that has it, as tables merge key by key and arrays are replaced whole.
            let culprit = if error.message == "missing" {
                error.key.rsplit_once('.').map_or("", |(parent, _)| parent)
            } else {
                error.key.as_str()
            };
            match layers.iter().rev().find(|l| !culprit.is_empty() && l.sets(culprit)) {
                Some(layer) => SettingsError::new(error.key, format!("{} (in {})", error.message, layer.origin)),
                None => error,
            }
        })?;
        settings.validate()?;
        Ok((settings, sources))
    }

    /// The built-in defaults alone (no file, no environment): the base tests build on.
    pub fn defaults() -> Self {
        // The embedded defaults are a constant checked by a unit test, so this cannot fail
        // at run time unless the constant itself is broken.
        Config::builder()
            .add_source(File::from_str(BUILT_IN_DEFAULTS, FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .unwrap_or_else(|e| panic!("built-in defaults are invalid: {e}"))
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.server.host.trim().is_empty() {
            return Err(SettingsError::new("server.host", "must not be empty"));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(SettingsError::new("server.max_body_bytes", "must be at least 1024"));
        }
        if self.admin.max_body_bytes < self.server.max_body_bytes {
            return Err(SettingsError::new(
                "admin.max_body_bytes",
                "must be at least server.max_body_bytes",
            ));
        }
        if self.server.request_timeout_ms == 0 {
            return Err(SettingsError::new("server.request_timeout_ms", "must be above 0"));
        }
        if self.server.shutdown_timeout_secs <= self.server.drain_secs {
            return Err(SettingsError::new(
                "server.shutdown_timeout_secs",
                "must be above server.drain_secs (the drain is part of the shutdown)",
            ));
        }
        self.validate_store()?;
        if !matches!(self.log.format.as_str(), "pretty" | "json") {
            return Err(SettingsError::new("log.format", "must be \"pretty\" or \"json\""));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(SettingsError::new("log.level", "must be a level such as info or debug"));
        }
        self.validate_tls()?;
        self.validate_orbipay()?;
        self.validate_empayre()?;
        Ok(())
    }

    fn validate_store(&self) -> Result<(), SettingsError> {
        let store = &self.store;
        if store.backend == Backend::Sled && store.path.as_os_str().is_empty() {
            return Err(SettingsError::new("store.path", "must not be empty"));
        }
        if store.cache_capacity_bytes < 1024 * 1024 {
            return Err(SettingsError::new(
                "store.cache_capacity_bytes",
                "must be at least 1048576",
            ));
        }
        let pg = &store.postgres;
        if store.backend == Backend::Postgres {
            if pg.url.trim().is_empty() {
                return Err(SettingsError::new(
                    "store.postgres.url",
                    "must be set when store.backend = \"postgres\" (or env BILLER_INBOX__STORE__POSTGRES__URL)",
                ));
            }
            // tokio-postgres's parse errors name the option, never its value; the URL itself
            // (which may hold the password) stays out of the message.
            if let Err(e) = pg.url.parse::<tokio_postgres::Config>() {
                return Err(SettingsError::new(
                    "store.postgres.url",
                    format!("is not a PostgreSQL connection URL (postgres://user:password@host:port/dbname): {e}"),
                ));
            }
        }
        let ranges: [(&str, u64, u64, u64); 5] = [
            ("store.postgres.pool_size", pg.pool_size as u64, 2, 512),
            ("store.postgres.batch_max", pg.batch_max as u64, 1, 4096),
            ("store.postgres.batch_wait_us", pg.batch_wait_us, 0, 1_000_000),
            ("store.postgres.connect_timeout_ms", pg.connect_timeout_ms, 1, 600_000),
            (
                "store.postgres.statement_timeout_ms",
                pg.statement_timeout_ms,
                1,
                3_600_000,
            ),
        ];
        for (key, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(SettingsError::new(key, format!("must be between {min} and {max}")));
            }
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), SettingsError> {
        if let Some(tls) = &self.server.tls {
            if tls.cert_file.as_os_str().is_empty() {
                return Err(SettingsError::new("server.tls.cert_file", "must name a PEM file"));
            }
            if tls.key_file.as_os_str().is_empty() {
                return Err(SettingsError::new("server.tls.key_file", "must name a PEM file"));
            }
        }
        let asks_for_certificates = self
            .server
            .tls
            .as_ref()
            .is_some_and(|t| !t.client_ca_file.as_os_str().is_empty());
        for (i, client) in self.orbipay.clients.iter().enumerate() {
            if client.tls_subject.is_some() && !asks_for_certificates {
                return Err(SettingsError::new(
                    format!("orbipay.clients[{i}].tls_subject"),
                    "needs server.tls.client_ca_file: without it no client certificate is asked for",
                ));
            }
        }
        Ok(())
    }

    fn validate_orbipay(&self) -> Result<(), SettingsError> {
        let o = &self.orbipay;
        if !o.base_path.is_empty() && (!o.base_path.starts_with('/') || o.base_path.ends_with('/')) {
            return Err(SettingsError::new(
                "orbipay.base_path",
                "must be empty or start with '/' and not end with '/'",
            ));
        }
        if o.lookup_max_results == 0 || o.lookup_max_results > 1000 {
            return Err(SettingsError::new(
                "orbipay.lookup_max_results",
                "must be between 1 and 1000",
            ));
        }
        self.min_payment_amount()?;
        let key_pattern = regex::Regex::new("^[a-zA-Z0-9_-]{1,50}$")
            .map_err(|e| SettingsError::new("orbipay.clients", e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for (i, client) in o.clients.iter().enumerate() {
            let key = format!("orbipay.clients[{i}]");
            if !key_pattern.is_match(&client.client_key) {
                return Err(SettingsError::new(
                    format!("{key}.client_key"),
                    "must match [a-zA-Z0-9_-]{1,50}",
                ));
            }
            if !seen.insert(client.client_key.as_str()) {
                return Err(SettingsError::new(format!("{key}.client_key"), "is configured twice"));
            }
            if client.credentials.is_empty() {
                return Err(SettingsError::new(
                    format!("{key}.credentials"),
                    "needs at least one credential set",
                ));
            }
            for (j, set) in client.credentials.iter().enumerate() {
                if set.is_empty() || set.iter().any(|(h, v)| h.is_empty() || v.is_empty()) {
                    return Err(SettingsError::new(
                        format!("{key}.credentials[{j}]"),
                        "every set needs at least one header with a non-empty value",
                    ));
                }
                if set
                    .keys()
                    .any(|h| actix_web::http::header::HeaderName::try_from(h.as_str()).is_err())
                {
                    return Err(SettingsError::new(
                        format!("{key}.credentials[{j}]"),
                        "a header name is not a valid HTTP header name",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_empayre(&self) -> Result<(), SettingsError> {
        if !self.empayre.path.starts_with('/') || self.empayre.path.ends_with('/') {
            return Err(SettingsError::new(
                "empayre.path",
                "must start with '/' and not end with '/'",
            ));
        }
        let name_pattern = regex::Regex::new("^[a-zA-Z0-9_.-]{1,64}$")
            .map_err(|e| SettingsError::new("empayre.sources", e.to_string()))?;
        let mut seen = std::collections::HashSet::new();
        for (i, source) in self.empayre.sources.iter().enumerate() {
            let key = format!("empayre.sources[{i}]");
            if !name_pattern.is_match(&source.name) {
                return Err(SettingsError::new(
                    format!("{key}.name"),
                    "must match [a-zA-Z0-9_.-]{1,64}",
                ));
            }
            if !seen.insert(source.name.as_str()) {
                return Err(SettingsError::new(format!("{key}.name"), "is configured twice"));
            }
            if source.public_keys.is_empty() && source.public_key_files.is_empty() {
                return Err(SettingsError::new(
                    format!("{key}.public_keys"),
                    "needs public_keys or public_key_files",
                ));
            }
            if !source.account_pointer.is_empty() && !source.account_pointer.starts_with('/') {
                return Err(SettingsError::new(
                    format!("{key}.account_pointer"),
                    "must be a JSON pointer starting with '/'",
                ));
            }
            validate_empayre_api(source, &key)?;
        }
        Ok(())
    }

    /// The default minimum payment amount as a decimal (validated at load).
    pub fn min_payment_amount(&self) -> Result<Decimal, SettingsError> {
        crate::domain::money::parse_amount(&self.orbipay.min_payment_amount)
            .ok_or_else(|| SettingsError::new("orbipay.min_payment_amount", "must be a decimal amount like \"0.01\""))
    }
}

/// A deserialization error with the full key path: `server.prot` for an unknown key `prot` in
/// `[server]` (serde names only the field), `server.port` for a value of the wrong type.
fn deserialize_error(e: &serde_path_to_error::Error<config::ConfigError>) -> SettingsError {
    // The path already ends with the offending field, unknown or not.
    let path = e.path().to_string();
    let key = if path == "." || path.is_empty() {
        "configuration".to_string()
    } else {
        path
    };
    let inner = e.inner().to_string();
    if let Some(rest) = inner.strip_prefix("unknown field `") {
        let message = match rest.split_once(", expected ") {
            Some((_, expected)) => format!("unknown key; expected {expected}"),
            None => "unknown key".to_string(),
        };
        return SettingsError::new(key, message);
    }
    if let Some(rest) = inner.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        let key = if key == "configuration" {
            field.to_string()
        } else {
            format!("{key}.{field}")
        };
        return SettingsError::new(key, "missing");
    }
    // config appends " for key `...`" to some messages; the key is already in front.
    let message = inner.split(" for key `").next().unwrap_or(&inner).to_string();
    SettingsError::new(key, message)
}

/// A configuration file that cannot be read or parsed: the cause, without `config`'s own
/// rendering of the file name (the key in front already names the file).
fn file_error(path: &Path, e: config::ConfigError) -> SettingsError {
    let message = match e {
        config::ConfigError::FileParse { cause, .. } => cause.to_string(),
        other => other.to_string(),
    };
    // The TOML parser draws the line and a caret under the error; keep the words, on one line.
    let is_drawing = |line: &&str| {
        let t = line.trim_start();
        t.is_empty() || t.starts_with('|') || t.split_once(" |").is_some_and(|(n, _)| n.trim().parse::<u32>().is_ok())
    };
    let words: Vec<&str> = message.lines().filter(|l| !is_drawing(l)).collect();
    SettingsError::new(path.display().to_string(), words.join("; "))
}

/// The API part of a source (Part C): a URL the client can use, a token wherever the API is
/// wanted, shops for reconciliation.
fn validate_empayre_api(source: &EmpayreSource, key: &str) -> Result<(), SettingsError> {
    if let Some(url) = &source.api_url {
        crate::empayre::api::check_base_url(url).map_err(|e| SettingsError::new(format!("{key}.api_url"), e))?;
        if source.api_token.as_ref().is_none_or(|t| t.is_empty()) {
            return Err(SettingsError::new(
                format!("{key}.api_token"),
                "is required with api_url (inline, or { file = \"...\" })",
            ));
        }
    }
    if !(1..=600).contains(&source.api_timeout_secs) {
        return Err(SettingsError::new(
            format!("{key}.api_timeout_secs"),
            "must be between 1 and 600",
        ));
    }
    for (j, shop) in source.shop_ids.iter().enumerate() {
        // The API's limit for a shop id (1..40 characters); it goes into a URL path.
        if shop.is_empty() || shop.chars().count() > 40 || shop.chars().any(char::is_control) {
            return Err(SettingsError::new(
                format!("{key}.shop_ids[{j}]"),
                "must be 1 to 40 characters",
            ));
        }
    }
    if source.reconcile_interval_secs > 0 {
        if source.api_client_settings().is_none() {
            return Err(SettingsError::new(
                format!("{key}.reconcile_interval_secs"),
                "needs api_token (and usually api_url)",
            ));
        }
        if source.shop_ids.is_empty() {
            return Err(SettingsError::new(
                format!("{key}.shop_ids"),
                "needs at least one shop id when reconcile_interval_secs is set",
            ));
        }
    }
    if source.reconcile_overlap_secs > 7 * 24 * 3600 {
        return Err(SettingsError::new(
            format!("{key}.reconcile_overlap_secs"),
            "must be at most 604800 (7 days)",
        ));
    }
    Ok(())
}

/// `config`'s messages already name the key ("... for key `server.port`"); keep them and
/// make sure the generic prefix says which layer was being read.
fn config_error(e: config::ConfigError) -> SettingsError {
    let text = e.to_string();
    let key = text
        .split("for key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or("configuration")
        .to_string();
    SettingsError::new(key, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_defaults_are_valid() {
        let s = Settings::defaults();
        s.validate().expect("defaults validate");
        assert_eq!(s.server.max_body_bytes, 262144);
        assert_eq!(s.orbipay.lookup_max_results, 20);
    }

    #[test]
    fn paths_are_normalized_without_the_file_system() {
        for (path, want) in [
            ("config/../fixtures/a.json", "fixtures/a.json"),
            ("./a", "a"),
            ("../x", "../x"),
            ("a/../../x", "../x"),
            ("/a/../b", "/b"),
            ("a/..", "."),
        ] {
            assert_eq!(normalize(Path::new(path)), PathBuf::from(want), "{path}");
        }
        // `..` at the file system root stays there.
        assert_eq!(normalize(&Path::new("/").join("..").join("b")), PathBuf::from("/b"));
    }

    #[test]
    fn relative_paths_resolve_against_the_file_folder_and_absolute_ones_stay() {
        let mut tree = serde_json::json!({
            "store": {"path": "../data"},
            "seed": {"accounts_file": ""},
            "empayre": {"sources": [{"public_key_files": ["k.pem", "/etc/k.pem"]}, {"name": "none"}]},
            "admin": {"token": {"file": "secrets/admin"}},
            "orbipay": {"clients": [{"credentials": [{"api-key": {"file": "k"}, "x-other": "inline"}, {"api-key": {"sha256": "ab"}}]}]}
        });
        for key in PATH_KEYS {
            let segments: Vec<&str> = key.split('.').collect();
            resolve_paths(&mut tree, &segments, Path::new("/srv/conf"));
        }
        assert_eq!(tree["store"]["path"], "/srv/data");
        assert_eq!(tree["seed"]["accounts_file"], "", "empty means none");
        assert_eq!(
            tree["empayre"]["sources"][0]["public_key_files"],
            serde_json::json!(["/srv/conf/k.pem", "/etc/k.pem"])
        );
        assert_eq!(tree["admin"]["token"]["file"], "/srv/conf/secrets/admin");
        assert_eq!(
            tree["orbipay"]["clients"][0]["credentials"],
            serde_json::json!([{"api-key": {"file": "/srv/conf/k"}, "x-other": "inline"}, {"api-key": {"sha256": "ab"}}])
        );
    }

    #[test]
    fn debug_of_settings_hides_secrets() {
        let mut s = Settings::defaults();
        s.admin.token = "very-secret-token".into();
        s.orbipay.clients.push(OrbipayClient {
            client_key: "c".into(),
            enabled: true,
            credentials: vec![BTreeMap::from([("api-key".to_string(), "hidden-api-key".into())])],
            tls_subject: None,
        });
        let text = format!("{s:?}");
        assert!(!text.contains("very-secret-token"));
        assert!(!text.contains("hidden-api-key"));
    }

    fn postgres_settings(url: &str) -> Settings {
        let mut s = Settings::defaults();
        s.store.backend = Backend::Postgres;
        s.store.postgres.url = url.into();
        s
    }

    #[test]
    fn the_postgres_backend_needs_a_parseable_url_and_says_which_key() {
        let missing = postgres_settings("").validate().expect_err("no url");
        assert_eq!(missing.key, "store.postgres.url");
        let ok = postgres_settings("postgres://biller:pw@db.internal:5432/biller_inbox");
        ok.validate().expect("a good url validates");
        let secret = "s3cr3t-Passw0rd";
        let bad = postgres_settings(&format!("postgres://biller:{secret}@db:notaport/x"))
            .validate()
            .expect_err("bad port");
        assert_eq!(bad.key, "store.postgres.url");
        assert!(!bad.to_string().contains(secret), "{bad}");
        // sled ignores the PostgreSQL keys entirely.
        let mut sled = Settings::defaults();
        sled.store.postgres.url = "not a url at all ::::".into();
        sled.validate().expect("sled does not read the url");
    }

    #[test]
    fn postgres_numbers_are_range_checked_by_key() {
        type Breaker = fn(&mut PostgresSettings);
        let table: [(&str, Breaker); 6] = [
            ("store.postgres.pool_size", |p| p.pool_size = 1),
            ("store.postgres.batch_max", |p| p.batch_max = 0),
            ("store.postgres.batch_max", |p| p.batch_max = 100_000),
            ("store.postgres.batch_wait_us", |p| p.batch_wait_us = 5_000_000),
            ("store.postgres.connect_timeout_ms", |p| p.connect_timeout_ms = 0),
            ("store.postgres.statement_timeout_ms", |p| p.statement_timeout_ms = 0),
        ];
        for (key, break_it) in table {
            let mut s = postgres_settings("postgres://u@h/d");
            break_it(&mut s.store.postgres);
            let e = s.validate().expect_err(key);
            assert_eq!(e.key, key);
        }
    }

    #[test]
    fn debug_of_postgres_settings_shows_where_not_the_password() {
        let s = postgres_settings("postgres://biller:hunter2-secret@db.internal:6432/ledger");
        let text = format!("{s:?}");
        assert!(!text.contains("hunter2-secret"), "{text}");
        assert!(text.contains("biller@db.internal:6432/ledger"), "{text}");
        let kv = postgres_settings("host=db user=biller password=kv-secret dbname=ledger");
        assert!(!format!("{kv:?}").contains("kv-secret"));
        assert_eq!(kv.store.postgres.redacted_url(), "biller@db:5432/ledger");
    }

    #[test]
    fn backend_names_are_a_closed_set() {
        let raw = Config::builder()
            .add_source(File::from_str(BUILT_IN_DEFAULTS, FileFormat::Toml))
            .add_source(File::from_str("[store]\nbackend = \"mysql\"", FileFormat::Toml))
            .build()
            .expect("layers");
        let e = config_error(raw.try_deserialize::<Settings>().expect_err("unknown backend"));
        assert!(e.to_string().contains("mysql"), "{e}");
    }
}
