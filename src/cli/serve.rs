//! `playgate serve`: the server until SIGTERM/Ctrl-C, then a drain.

use super::{Fail, LogFormatArg, init_tracing, load_config};
use crate::config::LogFormat;
use std::path::Path;
use std::process::ExitCode;

pub(super) fn serve(path: &Path, log_format: Option<LogFormatArg>) -> Result<ExitCode, Fail> {
    let config = load_config(path)?;
    let format = match log_format {
        Some(LogFormatArg::Json) => LogFormat::Json,
        Some(LogFormatArg::Text) => LogFormat::Text,
        None => config.log.format,
    };
    let _log = init_tracing(format, &config.log.level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .map_err(|e| Fail(format!("cannot listen on {}: {e}", config.server.listen)))?;
        let addr = listener.local_addr()?;
        for w in config.warnings() {
            tracing::warn!(key = %w.path, "config: {}", w.reason);
        }
        tracing::info!(%addr, public_url = %config.server.public_url, "playgate listening");
        crate::run(config, listener, shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
