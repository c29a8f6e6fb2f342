//! Building and running the server. `Application::build` binds the listener itself, so tests
//! pass port 0 and read the real port back; `configure` registers every route once for both.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::{web, App, HttpMessage, HttpServer};
use tracing::Instrument;

use crate::domain::account::parse_accounts_file;
use crate::empayre::sources::Sources;
use crate::http::{RequestId, REQUEST_ID_HEADER};
use crate::metrics::Metrics;
use crate::orbipay::auth::OrbipayAuth;
use crate::settings::Settings;
use crate::shutdown::{Fresh, Lifecycle, ListenerGate};
use crate::state::AppState;
use crate::store::{Store, StoreError};
use crate::tls::{CertReloader, ClientIdentity};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("seed accounts file {path}: {message}")]
    Seed { path: String, message: String },
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

pub struct Application {
    port: u16,
    server: Server,
    pub state: web::Data<AppState>,
    /// Background jobs (Empayre reconciliation), stopped when the server stops.
    jobs: Vec<tokio::task::JoinHandle<()>>,
    stop_jobs: tokio::sync::watch::Sender<bool>,
    /// With `[server.tls]`: the certificate reloader (the server checks the files every
    /// second; `reload_certificate` checks at once).
    tls: Option<Arc<CertReloader>>,
    /// The listening socket, for the drain to close it to new connections (`shutdown`).
    gate: Option<Arc<ListenerGate>>,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        settings.validate()?;
        let store = Store::open(&settings.store)?;
        seed_accounts(&store, &settings.seed.accounts_file).await?;
        let orbipay_auth = OrbipayAuth::new(&settings.orbipay.clients);
        if !orbipay_auth.is_configured() {
            tracing::warn!("no Orbipay client configured: the EBPP endpoints answer 503 (fail closed)");
        }
        let tls = settings
            .server
            .tls
            .as_ref()
            .map(|t| crate::tls::server_config(&t.cert_file, &t.key_file, &t.client_ca_file))
            .transpose()?;
        let empayre_sources = Sources::load(&settings.empayre)?;
        if empayre_sources.is_empty() {
            tracing::warn!("no Empayre source configured: the webhook routes answer 503 (fail closed)");
        }
        let reconciler = crate::empayre::reconcile::Reconciler::load(&store).await?;
        let state = web::Data::new(AppState {
            empayre_sources,
            min_payment_amount: settings.min_payment_amount()?,
            orbipay_auth,
            store,
            metrics: Metrics::default(),
            reconciler,
            console_sessions: Default::default(),
            lifecycle: Lifecycle::default(),
            auth_throttle: crate::throttle::AuthThrottle::new(settings.server.auth_failures_per_minute),
            settings,
        });
        let address = format!("{}:{}", state.settings.server.host, state.settings.server.port);
        let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
            address: address.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { address, source })?
            .port();
        let gate = match ListenerGate::new(&listener) {
            Ok(gate) => Some(Arc::new(gate)),
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep a handle on the listener: a stop resets queued connections");
                None
            }
        };
        let fresh = gate.as_ref().map(|g| g.fresh_connections());
        let connected = fresh.clone();
        let server_state = state.clone();
        let server = &state.settings.server;
        let mut http = HttpServer::new(move || {
            App::new()
                .app_data(server_state.clone())
                .configure(|cfg| configure(cfg, &server_state))
                .wrap_fn(|req, srv| {
                    use actix_web::dev::Service;
                    let started = Instant::now();
                    let rid = RequestId::from_header(req.headers().get(REQUEST_ID_HEADER));
                    req.extensions_mut().insert(rid.clone());
                    let span =
                        tracing::info_span!("request", request_id = %rid.0, method = %req.method(), path = %req.path());
                    let state = req.app_data::<web::Data<AppState>>().cloned();
                    if let Some(fresh) = req.conn_data::<Fresh>() {
                        fresh.begin();
                    }
                    let fut = srv.call(req);
                    async move {
                        let mut res: ServiceResponse<_> = fut.await?;
                        finish_request(&mut res, &rid, state.as_ref().map(|s| s.get_ref()), started);
                        Ok(res)
                    }
                    .instrument(span)
                })
        })
        .client_request_timeout(Duration::from_millis(server.request_timeout_ms))
        .keep_alive(Duration::from_secs(server.keep_alive_secs))
        // Stop signals are handled by `shutdown` (the drain), not by actix's own handlers.
        .disable_signals()
        // For requests in progress once the drain is over: what is left of shutdown_timeout_secs,
        // less two seconds for closing the listener and the store (`shutdown`).
        .shutdown_timeout(crate::shutdown::in_progress_grace(server).as_secs())
        // Before `listen`: the callback is captured when the listener is added.
        .on_connect(move |connection, extensions| {
            ClientIdentity::on_connect(connection, extensions);
            if let Some(fresh) = &connected {
                extensions.insert(fresh.connected());
            }
        });
        if server.workers > 0 {
            http = http.workers(server.workers);
        }
        let listen_error = |source| StartupError::Bind {
            address: "listener".into(),
            source,
        };
        let (http, reloader) = match tls {
            Some((config, reloader)) => {
                reloader.watch().map_err(listen_error)?;
                (
                    http.listen_rustls_0_23(listener, config).map_err(listen_error)?,
                    Some(reloader),
                )
            }
            None => (http.listen(listener).map_err(listen_error)?, None),
        };
        let (stop_jobs, stopped) = tokio::sync::watch::channel(false);
        let jobs = crate::empayre::reconcile_job::spawn_jobs(&state, &stopped);
        Ok(Self {
            port,
            server: http.run(),
            state,
            jobs,
            stop_jobs,
            tls: reloader,
            gate,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https` with `[server.tls]`, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Looks at the certificate files now (SIGHUP) rather than at the next periodic check.
    pub fn certificate_reloader(&self) -> Option<Arc<CertReloader>> {
        self.tls.clone()
    }

    /// The listening socket's gate, which the drain closes.
    pub fn listener_gate(&self) -> Option<Arc<ListenerGate>> {
        self.gate.clone()
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (its handle, or the drain of `shutdown`), then stops
    /// the background jobs and closes the store. When this returns, the store is closed: sled
    /// has let go of its directory even though the workers' copies of the state may still be
    /// dropped a moment later on their own threads, so the same store can be opened again at
    /// once (a restart in a test, `import` after `serve`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        // The jobs write through the store; they end before it closes.
        let _ = self.stop_jobs.send(true);
        for job in self.jobs {
            let _ = job.await;
        }
        let closed = self.state.store.close().await;
        served?;
        closed.map_err(|e| std::io::Error::other(format!("the store did not close cleanly: {e}")))
    }
}

/// Adds the request id header, counts the request and logs one line for it.
fn finish_request<B: MessageBody>(
    res: &mut ServiceResponse<B>,
    rid: &RequestId,
    state: Option<&AppState>,
    started: Instant,
) {
    if let Ok(value) = HeaderValue::from_str(&rid.0) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if state.is_some_and(|s| s.lifecycle.is_draining()) {
        // Draining: the client should open its next connection elsewhere (HTTP/1.1; HTTP/2
        // ignores it).
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
    }
    let status = res.status().as_u16();
    let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".to_string());
    let elapsed = started.elapsed();
    if let Some(state) = state {
        state.metrics.request(&route, status, elapsed);
    }
    tracing::info!(status, route = %route, micros = elapsed.as_micros() as u64, "request done");
}

/// Every route, registered once for the server and the tests.
pub fn configure(cfg: &mut web::ServiceConfig, state: &web::Data<AppState>) {
    crate::ops::configure(cfg);
    crate::openapi::configure(cfg);
    crate::admin::configure(cfg);
    crate::orbipay::routes::configure(cfg, &state.settings.orbipay.base_path);
    crate::empayre::routes::configure(cfg, &state.settings.empayre.path);
    crate::console::configure(cfg, state);
    cfg.default_service(web::to(crate::ops::unknown_path));
}

/// Imports `seed.accounts_file` when the store has no accounts yet (the demo set-up).
async fn seed_accounts(store: &Store, file: &str) -> Result<(), StartupError> {
    if file.is_empty() || store.has_accounts().await? {
        return Ok(());
    }
    let seed_error = |message: String| StartupError::Seed {
        path: file.to_string(),
        message,
    };
    let text = std::fs::read_to_string(file).map_err(|e| seed_error(e.to_string()))?;
    let entries = parse_accounts_file(&text)
        .map_err(|errors| seed_error(errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
    let summary = store.import_accounts(entries).await?;
    tracing::info!(
        accounts = summary.accounts_created,
        profiles = summary.profiles_created,
        "seeded accounts"
    );
    Ok(())
}
