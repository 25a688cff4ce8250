//! What the harness talks to, and how it is started and stopped.
//!
//! Every target is reduced to one shape: per scenario an [`Arena`] with a
//! fresh work folder and a mock whose ledger the harness can read through a
//! side channel (a file), plus sessions opened on demand. The built-in
//! enforcer is just a command template like any external one, so the path
//! external enforcers take is the path the maintainers run on every change.

mod arena;
mod faketime;
mod process;
mod redis_db;
mod reuse;
mod template;

use std::path::PathBuf;
use std::time::Duration;

pub use arena::{Arena, ArenaSpec, SessionKey};
pub use process::Server;
pub use reuse::resettable;
pub use template::{Placeholders, expand, uses};

/// How the harness reaches the enforcer under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// The reference enforcer, `gauntlet enforce`.
    Builtin,
    /// Straight to the mock: the control run.
    None,
    /// An external enforcer started from a command template. With `{port}`
    /// in it the enforcer serves HTTP; otherwise it speaks stdio and starts
    /// its upstream (`{upstream}`) itself.
    Command(String),
    /// An enforcer already running at this URL, whose upstream is the mock
    /// the harness serves at `mock_http`.
    Url { url: String, mock_http: String },
}

impl TargetSpec {
    /// A short label for reports.
    pub fn label(&self) -> String {
        match self {
            TargetSpec::Builtin => "builtin".into(),
            TargetSpec::None => "none".into(),
            TargetSpec::Command(t) => format!("cmd: {t}"),
            TargetSpec::Url { url, .. } => url.clone(),
        }
    }
}

/// Which transport the client speaks to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Stdio,
    Http,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        })
    }
}

/// Settings shared by every arena of a run.
#[derive(Debug, Clone)]
pub struct HarnessConfig {
    /// The `gauntlet` executable: it serves the mock and the built-in
    /// enforcer. (Inside tests the running executable is the test binary.)
    pub exe: PathBuf,
    /// How long any one exchange or start-up may take.
    pub timeout: Duration,
    /// The transport used where the target allows a choice.
    pub transport: Transport,
    /// Kept work folders (ledgers, audit logs) for inspection, if set.
    pub keep_workdirs: Option<PathBuf>,
    /// The ledger of a mock the run serves for an already-running enforcer
    /// (`TargetSpec::Url`); every arena reads its own part of it.
    pub shared_ledger: Option<PathBuf>,
    /// Instances of the target started per scenario (at least 1).
    pub replicas: usize,
    /// A Redis server (`redis://HOST:PORT`) whose databases are handed to
    /// each scenario as `{redis_url}`; the built-in enforcer then keeps its
    /// counters there.
    pub redis: Option<String>,
    /// How much faster than the wall clock the enforcer's clock runs.
    pub time_scale: f64,
    /// The tools manifest every mock serves (`gauntlet mock --tools`): a
    /// `tools/list` result saved as JSON, or a folder of tool files. `None`
    /// serves the bundled Aksjah tools. Give an absolute path, or one the
    /// harness's own working folder resolves.
    pub tools: Option<PathBuf>,
}

impl HarnessConfig {
    /// The command line's defaults around `exe`: one instance over stdio, a
    /// 5 s timeout, the bundled tools, no Redis, the wall clock. Callers set
    /// what differs with struct update syntax.
    pub fn new(exe: PathBuf) -> HarnessConfig {
        HarnessConfig {
            exe,
            timeout: Duration::from_secs(5),
            transport: Transport::Stdio,
            keep_workdirs: None,
            shared_ledger: None,
            replicas: 1,
            redis: None,
            time_scale: 1.0,
            tools: None,
        }
    }

    /// The switches that make a mock serve [`HarnessConfig::tools`] (none
    /// for the bundled tools): every mock the harness starts gets them.
    pub fn mock_tools_args(&self) -> Vec<String> {
        match &self.tools {
            Some(path) => vec!["--tools".to_owned(), path.display().to_string()],
            None => Vec::new(),
        }
    }

    /// The tools the mocks of this harness serve, loaded as they load them:
    /// what the generator and the oracle must judge against.
    pub fn catalogue(
        &self,
    ) -> Result<crate::mock::catalogue::Catalogue, crate::mock::catalogue::CatalogueError> {
        crate::mock::catalogue::Catalogue::load_or_bundled(self.tools.as_deref())
    }
}

/// What a target could not do.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("creating a work folder: {0}")]
    Workdir(std::io::Error),
    #[error("writing `{path}`: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("command template: {0}")]
    Template(String),
    #[error("starting `{command}`: {reason}")]
    Start { command: String, reason: String },
    #[error(transparent)]
    Client(#[from] crate::mcp::ClientError),
    #[error("reading the ledger: {0}")]
    Ledger(#[from] crate::mock::ledger::LedgerError),
    #[error("preparing a redis database: {0}")]
    Redis(String),
    #[error("this target's state cannot be reset between scenarios")]
    NotResettable,
}

/// The template the built-in enforcer runs from, over stdio: one process per
/// session, the sessions of one replica sharing counters through a state file
/// in the scenario's folder (or Redis, with `--redis`: see [`builtin_template`]).
pub const BUILTIN_STDIO: &str =
    "{gauntlet} enforce --policy {policy} --state {workdir}/counters-{replica}.json -- {upstream}";

/// The template the built-in enforcer runs from, over HTTP.
pub const BUILTIN_HTTP: &str =
    "{gauntlet} enforce --policy {policy} --listen 127.0.0.1:{port} --upstream-url {upstream_url}";

/// The built-in enforcer's template for `cfg`: counters in `{redis_url}`
/// when the run has a Redis, and the clock sped up by `cfg.time_scale`.
pub fn builtin_template(cfg: &HarnessConfig, transport: Transport) -> String {
    let mut t = match transport {
        Transport::Stdio => BUILTIN_STDIO.to_owned(),
        Transport::Http => BUILTIN_HTTP.to_owned(),
    };
    if cfg.redis.is_some() {
        t = match transport {
            Transport::Stdio => t.replace("{workdir}/counters-{replica}.json", "{redis_url}"),
            Transport::Http => t.replace(" --listen", " --state {redis_url} --listen"),
        };
    }
    if cfg.time_scale != 1.0 {
        let flags = format!(
            " enforce --time-scale {} --time-origin {} ",
            cfg.time_scale,
            time_origin().as_secs()
        );
        t = t.replacen(" enforce ", &flags, 1);
    }
    t
}

/// Where accelerated clocks start: the first time this process asked, in
/// whole seconds. Every arena of a run, the enforcers it starts and the
/// oracle share it, so they read the same accelerated time.
pub fn time_origin() -> Duration {
    static ORIGIN: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Duration::from_secs(now.as_secs())
    })
}

/// The accelerated clock of a run at `scale`.
pub fn scaled_clock(scale: f64) -> crate::policy::ScaledClock {
    crate::policy::ScaledClock::new(scale, time_origin())
}

/// Starts a server that prints its URL as its first line (the mock, the
/// built-in enforcer) and waits until it has.
pub async fn start_server(words: &[String], timeout: Duration) -> Result<Server, TargetError> {
    process::Server::start(words, &[], process::Ready::FirstLine, timeout)
        .await
        .map(|(server, _)| server)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(redis: Option<&str>, time_scale: f64) -> HarnessConfig {
        HarnessConfig {
            exe: PathBuf::from("gauntlet"),
            timeout: Duration::from_secs(1),
            transport: Transport::Stdio,
            keep_workdirs: None,
            shared_ledger: None,
            replicas: 3,
            redis: redis.map(str::to_owned),
            time_scale,
            tools: None,
        }
    }

    #[test]
    fn builtin_replicas_keep_their_own_counters_unless_the_run_has_redis() {
        let plain = builtin_template(&cfg(None, 1.0), Transport::Stdio);
        assert!(
            plain.contains("--state {workdir}/counters-{replica}.json"),
            "{plain}"
        );
        let shared = builtin_template(&cfg(Some("redis://127.0.0.1:1"), 1.0), Transport::Stdio);
        assert!(shared.contains("--state {redis_url} --"), "{shared}");
        let http = builtin_template(&cfg(Some("redis://127.0.0.1:1"), 1.0), Transport::Http);
        assert!(http.contains("--state {redis_url} --listen"), "{http}");
        assert!(!builtin_template(&cfg(None, 1.0), Transport::Http).contains("--state"));
    }

    #[test]
    fn an_accelerated_builtin_gets_the_runs_scale_and_origin() {
        let t = builtin_template(&cfg(None, 60.0), Transport::Stdio);
        let want = format!("--time-scale 60 --time-origin {}", time_origin().as_secs());
        assert!(t.contains(&want), "{t}");
        assert!(!builtin_template(&cfg(None, 1.0), Transport::Stdio).contains("--time-scale"));
    }
}
