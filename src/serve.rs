//! Serving until a stop signal: the drain sequence of `shutdown` applied to a built
//! `Application` (the `serve` command's main loop). Apart from `shutdown` and `startup` so that
//! neither imports the other's user.

use std::time::{Duration, Instant};

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::startup::Application;

#[derive(Debug, thiserror::Error)]
pub enum ShutdownError {
    #[error("cannot listen for signals: {0}")]
    Signals(std::io::Error),
    #[error("server stopped: {0}")]
    Server(std::io::Error),
}

/// Serves until SIGTERM or SIGINT, then drains and stops as the module says. SIGHUP looks at the
/// TLS certificate files at once. `announce` runs once the signal handlers are in place: a
/// supervisor (or a script) that stops the server as soon as it says it listens gets the clean
/// stop, not the default action of the signal.
pub async fn serve_until_signalled(app: Application, announce: impl FnOnce()) -> Result<(), ShutdownError> {
    let state = app.state.clone();
    let handle = app.handle();
    let gate = app.listener_gate();
    let reloader = app.certificate_reloader();
    let mut terminate = signal(SignalKind::terminate()).map_err(ShutdownError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(ShutdownError::Signals)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(ShutdownError::Signals)?;
    let mut server = actix_rt::spawn(app.run_until_stopped());
    announce();
    let first = loop {
        tokio::select! {
            stopped = &mut server => {
                // The server ended without a signal (it cannot bind, a worker died for good).
                let result = stopped.map_err(|e| ShutdownError::Server(std::io::Error::other(e)))?;
                return result.map_err(ShutdownError::Server);
            }
            _ = terminate.recv() => break "SIGTERM",
            _ = interrupt.recv() => break "SIGINT",
            _ = hangup.recv() => match &reloader {
                Some(reloader) => {
                    tracing::info!("SIGHUP: looking at the TLS certificate files now");
                    reloader.check(true);
                }
                None => tracing::info!("SIGHUP: nothing to reload (no [server.tls])"),
            },
        }
    };
    let started = Instant::now();
    let server_settings = &state.settings.server;
    let drain = Duration::from_secs(server_settings.drain_secs);
    let timeout = Duration::from_secs(server_settings.shutdown_timeout_secs);
    state.lifecycle.start_draining();
    tracing::info!(
        signal = first,
        drain_secs = server_settings.drain_secs,
        shutdown_timeout_secs = server_settings.shutdown_timeout_secs,
        "signal received: /health/ready answers 503; accepting and serving for drain_secs, then stopping"
    );
    exit_when_late(timeout);
    actix_rt::spawn(exit_on_second_signal(terminate, interrupt));

    tokio::time::sleep(drain).await;
    match &gate {
        Some(gate) => match gate.close().await {
            Ok(0) => tracing::info!("listener closed to new connections"),
            Ok(queued) => tracing::warn!(queued, "listener closed; connections still queued will be reset"),
            Err(e) => tracing::warn!(error = %e, "could not hold new connections back; closing the listener as is"),
        },
        None => tracing::info!("closing the listener"),
    }
    if let Some(gate) = &gate {
        let waiting = gate.settle().await;
        if waiting > 0 {
            tracing::warn!(waiting, "connections that sent no request yet are closed");
        }
    }
    // Returns once the workers have answered what they had (or the grace ran out).
    handle.stop(true).await;
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "requests drained: every request received was answered"
    );
    // `run_until_stopped` ends by stopping the background jobs and closing the store.
    drop(state);
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(ShutdownError::Server(e)),
        Err(e) => return Err(ShutdownError::Server(std::io::Error::other(e))),
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "store closed; exiting"
    );
    Ok(())
}

/// A thread, not a task, so it fires even if the runtime is stuck.
fn exit_when_late(timeout: Duration) {
    let spawned = std::thread::Builder::new()
        .name("shutdown-deadline".into())
        .spawn(move || {
            std::thread::sleep(timeout);
            tracing::error!(
                shutdown_timeout_secs = timeout.as_secs(),
                "shutdown did not finish within server.shutdown_timeout_secs; exiting now (the store is crash-safe)"
            );
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no shutdown deadline thread: the shutdown is not bounded");
    }
}

async fn exit_on_second_signal(mut terminate: Signal, mut interrupt: Signal) {
    let (name, number) = tokio::select! {
        _ = terminate.recv() => ("SIGTERM", libc::SIGTERM),
        _ = interrupt.recv() => ("SIGINT", libc::SIGINT),
    };
    tracing::warn!(
        signal = name,
        "second signal: exiting at once (the store is crash-safe)"
    );
    std::process::exit(128 + number);
}
