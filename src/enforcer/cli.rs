//! `gauntlet enforce`: the reference enforcer as a process.
//!
//! ```text
//! gauntlet enforce --policy FILE [--grant NAME] [--audit PATH] [--audit-values] [--state FILE|redis://HOST:PORT/DB] [--time-scale K] -- UPSTREAM_CMD...
//! gauntlet enforce --policy FILE --listen 127.0.0.1:0 --upstream-url URL [--audit PATH] [--audit-values] [--threads N]
//! ```
//!
//! The policy is loaded before anything starts: a malformed one stops the
//! process with its diagnostics (exit 2), never at the first call.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use super::state_file::StateFileStore;
use super::{AuditSink, DEFAULT_MAX_FRAME, Enforcer, SessionInfo};
use crate::mcp::pipes;
use crate::policy::{
    self, Clock, CounterStore, MemoryStore, RedisOptions, RedisStore, ScaledClock, SystemClock,
};

/// Arguments of `gauntlet enforce`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["upstream", "listen"])))]
pub struct EnforceArgs {
    /// The policy file (PolicyLayer JSON or Intercept YAML).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The grant (identity) of the stdio session; HTTP takes it from the
    /// bearer token.
    #[arg(
        long,
        value_name = "NAME",
        env = "GAUNTLET_IDENTITY",
        default_value = "anonymous"
    )]
    pub grant: String,
    /// Append one JSON line per decision to this file.
    #[arg(long, value_name = "PATH")]
    pub audit: Option<PathBuf>,
    /// Put argument values in the audit log, not only their keys.
    #[arg(long, requires = "audit")]
    pub audit_values: bool,
    /// Keep counters in this file, shared with other enforce processes, or
    /// in Redis (`redis://HOST:PORT/DB`), shared with every replica.
    #[arg(long, value_name = "FILE|URL")]
    pub state: Option<PathBuf>,
    /// Bound on connecting to Redis and on each of its operations, in
    /// milliseconds; past it the call is refused.
    #[arg(long, value_name = "MS", default_value_t = 250)]
    pub redis_timeout: u64,
    /// Run the enforcer's clock this many times faster than the wall clock
    /// (windows of a minute pass in a second at 60).
    #[arg(long, value_name = "K", default_value_t = 1.0)]
    pub time_scale: f64,
    /// With `--time-scale`: the Unix time (seconds) from which the clock
    /// runs faster; replicas sharing counters must be given the same one.
    #[arg(long, value_name = "SECS", default_value_t = policy::SCALE_ORIGIN.as_secs())]
    pub time_origin: u64,
    /// Serve Streamable HTTP on this address (port 0 picks a free one); the
    /// endpoint URL is printed as the first line of stdout.
    #[arg(
        long,
        value_name = "ADDR",
        requires = "upstream_url",
        conflicts_with = "upstream"
    )]
    pub listen: Option<SocketAddr>,
    /// The upstream MCP endpoint for the HTTP form.
    #[arg(long, value_name = "URL", requires = "listen")]
    pub upstream_url: Option<String>,
    /// HTTP form: worker threads serving connections (default: one per
    /// core). `1` serves every connection on one thread, which saves the
    /// hand-offs between threads a small machine pays for on every call.
    #[arg(long, value_name = "N", requires = "listen",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Largest client frame accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// The upstream server's command line (stdio form), after `--`.
    #[arg(last = true, value_name = "UPSTREAM_CMD")]
    pub upstream: Vec<String>,
}

/// Runs `gauntlet enforce`; returns the process exit code (0, or 2 when the
/// enforcer could not run).
pub fn run(args: &EnforceArgs) -> u8 {
    match build(args) {
        Ok(enforcer) => {
            let outcome = if args.listen.is_some() {
                run_http(args, enforcer.clone())
            } else {
                run_stdio(args, enforcer.clone())
            };
            if let Some(a) = enforcer.audit() {
                a.sync();
            }
            match outcome {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("gauntlet enforce: {e}");
                    2
                }
            }
        }
        Err(e) => {
            eprintln!("gauntlet enforce: {e}");
            2
        }
    }
}

fn build(args: &EnforceArgs) -> Result<Arc<Enforcer>, String> {
    let policy =
        policy::load_file(&args.policy).map_err(|e| format!("the policy is not valid:\n{e}"))?;
    let store: Arc<dyn CounterStore> = match &args.state {
        Some(url) if url.to_str().is_some_and(policy::is_redis_url) => {
            let options = RedisOptions {
                timeout: Duration::from_millis(args.redis_timeout.max(1)),
                ..RedisOptions::default()
            };
            let url = url.to_string_lossy();
            Arc::new(RedisStore::open(&url, options).map_err(|e| e.to_string())?)
        }
        Some(path) => Arc::new(StateFileStore::open(path).map_err(|e| e.to_string())?),
        None => Arc::new(MemoryStore::default()),
    };
    let audit = match &args.audit {
        Some(path) => Some(
            AuditSink::to_file(path, args.audit_values)
                .map_err(|e| format!("opening the audit log `{}`: {e}", path.display()))?,
        ),
        None => None,
    };
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        return Err(format!(
            "--time-scale `{}` must be a positive number",
            args.time_scale
        ));
    }
    let clock: Arc<dyn Clock> = if args.time_scale == 1.0 {
        Arc::new(SystemClock)
    } else {
        Arc::new(ScaledClock::new(
            args.time_scale,
            Duration::from_secs(args.time_origin),
        ))
    };
    Ok(Enforcer::with_max_frame(
        Arc::new(policy),
        store,
        clock,
        audit,
        args.max_frame,
    ))
}

fn run_stdio(args: &EnforceArgs, enforcer: Arc<Enforcer>) -> Result<(), String> {
    let (program, rest) = args
        .upstream
        .split_first()
        .ok_or("no upstream command after `--`")?;
    // One session per process: no thread hops on the hot path.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut child = tokio::process::Command::new(program)
            .args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting `{program}`: {e}"))?;
        let (Some(up_in), Some(up_out)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the upstream's pipes were not set up".to_owned());
        };
        let info = SessionInfo {
            grant: args.grant.clone(),
            session_id: stdio_session_id(),
        };
        let served = super::stdio::serve(
            enforcer,
            info,
            (pipes::stdin(), pipes::stdout()),
            (up_out, up_in),
        )
        .await;
        // The upstream saw end of input; give it a moment to exit cleanly.
        if tokio::time::timeout(Duration::from_secs(2), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        served.map_err(|e| e.to_string())
    })
}

/// Unique across processes sharing a state file: pid and start time.
fn stdio_session_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("stdio-{}-{nanos}", std::process::id())
}

fn run_http(args: &EnforceArgs, enforcer: Arc<Enforcer>) -> Result<(), String> {
    let (Some(addr), Some(url)) = (args.listen, args.upstream_url.as_deref()) else {
        return Err("--listen needs --upstream-url".to_owned());
    };
    let rt = crate::runtime::build(args.threads).map_err(|e| e.to_string())?;
    rt.block_on(async {
        let proxy = super::http::bind(enforcer, addr, url)
            .await
            .map_err(|e| e.to_string())?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", proxy.url()).map_err(|e| e.to_string())?;
            out.flush().map_err(|e| e.to_string())?;
        }
        pipes::terminated().await;
        proxy.shutdown().await.map_err(|e| e.to_string())
    })
}
