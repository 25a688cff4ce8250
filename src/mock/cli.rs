//! `gauntlet mock`: the mock Aksjah server (or any tools manifest) on stdio
//! or HTTP.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::catalogue::{Catalogue, CatalogueError};
use super::ledger::{Ledger, LedgerError};
use super::stdio::ServeError;
use super::{Mock, MockConfig};
use crate::mcp::framing::DEFAULT_MAX_FRAME;
use crate::mcp::pipes;

/// Arguments of `gauntlet mock`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("transport").required(true).args(["stdio", "http"])))]
pub struct MockArgs {
    /// Speak newline-delimited JSON on stdin/stdout.
    #[arg(long)]
    pub stdio: bool,
    /// Serve Streamable HTTP on this address (port 0 picks a free one); the
    /// endpoint URL is printed as the first line of stdout.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<SocketAddr>,
    /// Append the ledger to this file as JSON lines.
    #[arg(long, value_name = "PATH")]
    pub ledger: Option<PathBuf>,
    /// The identity recorded for stdio messages (HTTP uses the bearer token).
    #[arg(long, value_name = "NAME", env = "GAUNTLET_IDENTITY")]
    pub identity: Option<String>,
    /// Behave exactly as the specification says instead of leniently.
    #[arg(long)]
    pub strict: bool,
    /// Answer over SSE when the client accepts `text/event-stream` (HTTP).
    #[arg(long)]
    pub sse: bool,
    /// Simulated backend latency per executed tool call, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency: u64,
    /// Every N tool calls, stall one for `--stall-ms` more.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "stall_ms")]
    pub stall_every: u64,
    /// How long a periodic stall lasts, in milliseconds.
    #[arg(long, value_name = "MS", requires = "stall_every")]
    pub stall_ms: Option<u64>,
    /// Largest frame accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// Tools per `tools/list` page (default: all on one page).
    #[arg(long, value_name = "N")]
    pub page_size: Option<usize>,
    /// Serve this tools manifest instead of the bundled Aksjah one: a saved
    /// `tools/list` result (or a bare array of tools) as JSON, or a folder of
    /// tool files, one tool object per `.json` file, listed in file-name
    /// order. Foreign tools echo their arguments.
    #[arg(long = "tools", alias = "manifest", value_name = "MANIFEST")]
    pub tools: Option<PathBuf>,
    /// HTTP form: worker threads serving connections (default: one per
    /// core). 1 serves every connection on one thread, sparing the
    /// hand-offs between threads a small machine pays for on every call.
    /// Over stdio the mock always runs on one thread.
    #[arg(long, value_name = "N", conflicts_with = "stdio",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

/// Why the mock could not run.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("binding `{addr}`: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("starting the runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("http server: {0}")]
    Http(std::io::Error),
}

impl MockArgs {
    /// The behaviour these arguments ask for.
    pub fn config(&self) -> MockConfig {
        MockConfig {
            strict: self.strict,
            latency: Duration::from_millis(self.latency),
            stall_every: self.stall_every,
            stall: Duration::from_millis(self.stall_ms.unwrap_or(0)),
            max_frame: self.max_frame,
            sse: self.sse,
            page_size: self.page_size,
            crash_exits: true,
        }
    }

    fn build(&self) -> Result<Mock, MockError> {
        let catalogue = Catalogue::load_or_bundled(self.tools.as_deref())?;
        let ledger = match &self.ledger {
            Some(path) => Ledger::to_file(path, false)?,
            None => Ledger::discard(),
        };
        Ok(Mock::new(self.config(), catalogue, ledger))
    }
}

/// Runs the mock until stdin ends (stdio) or a termination signal (HTTP).
pub fn run(args: &MockArgs) -> Result<(), MockError> {
    let mock = Arc::new(args.build()?);
    // One stdio connection is served in arrival order anyway: a single
    // thread spares every reply a hop between threads, and every session
    // the start-up of a thread pool.
    let threads = if args.http.is_some() {
        args.threads
    } else {
        Some(1)
    };
    let runtime = crate::runtime::build(threads).map_err(MockError::Runtime)?;
    runtime.block_on(async {
        match args.http {
            Some(addr) => serve_http(mock, addr).await,
            None => {
                let identity = args.identity.clone();
                super::stdio::serve(mock, pipes::stdin(), pipes::stdout(), identity)
                    .await
                    .map_err(MockError::from)
            }
        }
    })
}

async fn serve_http(mock: Arc<Mock>, addr: SocketAddr) -> Result<(), MockError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MockError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| MockError::Bind { addr, source })?;
    {
        let mut out = std::io::stdout().lock();
        // A harness waits for this line; if stdout is gone there is no one
        // to serve, but the server still runs for whoever has the URL.
        let _ = writeln!(out, "http://{local}{}", super::http::PATH);
        let _ = out.flush();
    }
    super::http::serve(mock, listener, pipes::terminated())
        .await
        .map_err(MockError::Http)
}
