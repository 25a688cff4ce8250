//! `gauntlet snapshot`: a server's manifest (or one synthesised from a
//! policy) as pretty JSON, ready for `gauntlet mock --tools`.
//!
//! ```text
//! gauntlet snapshot --upstream 'npx -y some-mcp-server' > manifest.json
//! gauntlet snapshot --upstream-url http://127.0.0.1:8080/mcp [--token T] [--header 'K: V']
//! gauntlet snapshot --policy my.yaml      # synthesised; notes on stderr
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::snapshot::{SnapshotError, Upstream, snapshot};
use crate::mock::catalogue::Catalogue;

/// Arguments of `gauntlet snapshot`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["upstream", "upstream_url", "policy"])))]
pub struct SnapshotArgs {
    /// A stdio MCP server's command line (one argument, split like a shell
    /// would); it is started, asked for its tools and stopped.
    #[arg(long, value_name = "CMD")]
    pub upstream: Option<String>,
    /// A Streamable HTTP MCP endpoint.
    #[arg(long, value_name = "URL")]
    pub upstream_url: Option<String>,
    /// No server: synthesise a permissive manifest from this policy's tool
    /// names and argument paths (what was made is said on stderr).
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<PathBuf>,
    /// Bearer token for the HTTP endpoint.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GAUNTLET_UPSTREAM_TOKEN",
        requires = "upstream_url"
    )]
    pub token: Option<String>,
    /// An extra header for the HTTP endpoint, `Name: value` (repeatable).
    #[arg(long, value_name = "HEADER", requires = "upstream_url")]
    pub header: Vec<String>,
    /// How long the server may take to start and to answer each request, in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub timeout: u64,
    /// Write the manifest to this file instead of stdout.
    #[arg(long, short, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Why `gauntlet snapshot` failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotCliError {
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("header `{0}` is not `Name: value`")]
    Header(String),
    #[error("{0}")]
    Policy(String),
    #[error("writing `{path}`: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl SnapshotArgs {
    fn upstream(&self) -> Result<Option<Upstream>, SnapshotCliError> {
        if let Some(cmd) = &self.upstream {
            return Ok(Some(Upstream::Command(cmd.clone())));
        }
        let Some(url) = &self.upstream_url else {
            return Ok(None);
        };
        let headers = self
            .header
            .iter()
            .map(|h| {
                h.split_once(':')
                    .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
                    .filter(|(n, _)| !n.is_empty())
                    .ok_or_else(|| SnapshotCliError::Header(h.clone()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Upstream::Url {
            url: url.clone(),
            token: self.token.clone(),
            headers,
        }))
    }
}

/// Runs `gauntlet snapshot`: prints the manifest (stdout or `--output`) and
/// says on `err` what the mock would make of it, and for a synthesised
/// one, what was synthesised.
pub async fn run(args: &SnapshotArgs, err: &mut dyn Write) -> Result<(), SnapshotCliError> {
    let manifest = match args.upstream()? {
        Some(upstream) => snapshot(&upstream, Duration::from_millis(args.timeout)).await?,
        None => {
            let path = args.policy.clone().unwrap_or_default();
            let policy = crate::policy::load_file(&path)
                .map_err(|e| SnapshotCliError::Policy(e.to_string()))?;
            let made = super::synthesize(&policy);
            for note in &made.notes {
                let _ = writeln!(err, "note: {note}");
            }
            made.manifest
        }
    };
    let count = manifest["tools"].as_array().map_or(0, Vec::len);
    match Catalogue::from_manifest(&manifest.to_string(), "the captured manifest") {
        Ok(_) => {
            let _ = writeln!(err, "{count} tool(s)");
        }
        // The capture is still what the server said: print it, and say
        // what to fix before the mock can serve it.
        Err(e) => {
            let _ = writeln!(
                err,
                "warning: {count} tool(s), but `gauntlet mock --tools` will refuse them: {e}"
            );
        }
    }
    write_out(&manifest, args.output.as_ref())
}

fn write_out(manifest: &Value, output: Option<&PathBuf>) -> Result<(), SnapshotCliError> {
    let mut text = serde_json::to_string_pretty(manifest).unwrap_or_default();
    text.push('\n');
    let written = match output {
        Some(path) => std::fs::write(path, text).map_err(|source| (path.clone(), source)),
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                // A closed pipe (`| head`) is the reader's choice, not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.map_err(|source| (PathBuf::from("stdout"), source)),
            }
        }
    };
    written.map_err(|(path, source)| SnapshotCliError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// `gauntlet snapshot` as a process: exit 0 with the manifest written, 2 on
/// any error.
pub async fn main(args: SnapshotArgs) -> std::process::ExitCode {
    let mut err = std::io::stderr();
    match run(&args, &mut err).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(err, "gauntlet snapshot: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
