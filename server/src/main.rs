//! The `sessiond` binary: parse settings, start logging, build the tokio runtime, serve
//! until SIGINT, SIGTERM or `SHUTDOWN`.

use clap::Parser;
use sessiond_server::config::{Args, Config, RuntimeKind};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sessiond: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[global_allocator]
static ALLOC: sessiond_server::mem::CountingAlloc = sessiond_server::mem::CountingAlloc;

fn run() -> Result<(), Box<dyn std::error::Error>> {
    sessiond_server::mem::CountingAlloc::installed();
    sessiond_server::mem::tune_allocator();
    let config = Config::from_args(Args::parse())?;
    let filter = EnvFilter::try_new(&config.log_level)
        .map_err(|e| format!("invalid --log-level '{}': {e}", config.log_level))?;
    // The filter sits behind a reload handle, so `CONFIG SET loglevel` can change it.
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    if config.log_json {
        // One JSON object per line, fields flattened, for log shippers.
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt.json().flatten_event(true))
            .init();
    } else {
        tracing_subscriber::registry().with(filter).with(fmt).init();
    }
    sessiond_server::runtime::set_log_hook(Box::new(move |directive| {
        let f = EnvFilter::try_new(directive).map_err(|e| e.to_string())?;
        handle.reload(f).map_err(|e| e.to_string())
    }));

    // The per-thread flavour runs this thread's event loop here and starts the others
    // in `server::run`; work-stealing hands every thread to tokio's scheduler.
    let runtime = match config.runtime {
        RuntimeKind::WorkStealing if config.threads > 1 => {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(config.threads)
                .enable_all()
                .on_thread_park(sessiond_server::park::hook(config.coalesce_us))
                .build()?
        }
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .on_thread_park(sessiond_server::park::hook(config.coalesce_us))
            .build()?,
    };
    runtime.block_on(async {
        let addr = format!("{}:{}", config.bind, config.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        sessiond_server::server::run(listener, config, shutdown_signal()).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
