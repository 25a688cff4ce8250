//! Shared helpers for the mock's integration tests: start the real binary
//! over stdio or HTTP and read its ledger.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use gauntlet::mcp::{Client, HttpOptions, StdioOptions};
use gauntlet::mock::ledger::{self, LedgerRecord};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const POST: &str = "WizCommerce Open API_PostCustomers";
pub const GET: &str = "WizCommerce Open API_GetCustomers";

/// Generous: only ever reached when something is broken.
pub const WAIT: Duration = Duration::from_secs(20);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gauntlet")
}

/// Arguments PostCustomers accepts.
pub fn customer(email: &str) -> Value {
    json!({"company_name": "Acme", "first_name": "Ada", "email": email})
}

/// A temporary folder with a ledger path in it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn ledger(&self) -> PathBuf {
        self.dir.path().join("ledger.jsonl")
    }
}

/// The mock over stdio, through the crate's own client.
pub async fn stdio_mock(ledger: &Path, extra: &[&str], env: &[(&str, &str)]) -> Client {
    let mut args = vec![
        "mock".to_owned(),
        "--stdio".to_owned(),
        "--ledger".to_owned(),
        ledger.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let opts = StdioOptions {
        program: bin().to_owned(),
        args,
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        cwd: None,
    };
    Client::spawn(opts, WAIT).await.unwrap()
}

/// The mock over HTTP: the child and the URL from its first stdout line.
pub struct HttpMock {
    pub child: Child,
    pub url: String,
}

impl HttpMock {
    pub async fn start(ledger: &Path, extra: &[&str]) -> HttpMock {
        let mut cmd = Command::new(bin());
        cmd.args(["mock", "--http", "127.0.0.1:0", "--ledger"])
            .arg(ledger)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        tokio::time::timeout(WAIT, BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("the mock prints its URL")
            .unwrap();
        let url = line.trim().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"),
            "{url}"
        );
        HttpMock { child, url }
    }

    pub fn client(&self, token: Option<&str>) -> Client {
        let opts = HttpOptions {
            url: self.url.clone(),
            token: token.map(str::to_owned),
            headers: vec![],
        };
        Client::connect(opts, WAIT).unwrap()
    }
}

/// Waits until the ledger file holds a record matching `pred`.
pub async fn wait_record(path: &Path, pred: impl FnMut(&LedgerRecord) -> bool) -> LedgerRecord {
    let mut tail = ledger::Tail::new(path);
    tail.wait_for(WAIT, pred)
        .await
        .unwrap()
        .expect("record in the ledger")
}

/// Every record with an outcome, once the ledger has caught up to `n`
/// concluded records.
pub async fn settled(path: &Path, n: usize) -> Vec<LedgerRecord> {
    let mut tail = ledger::Tail::new(path);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        tail.poll().unwrap();
        let done = tail
            .records()
            .iter()
            .filter(|r| r.outcome.is_some())
            .count();
        if done >= n || tokio::time::Instant::now() > deadline {
            return tail.records().to_vec();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `tools/call` records of a ledger file.
pub fn calls(path: &Path) -> Vec<LedgerRecord> {
    ledger::read(path)
        .unwrap()
        .into_iter()
        .filter(LedgerRecord::is_call)
        .collect()
}

/// Unwraps a client result, showing what the mock wrote to stderr (and how
/// it exited) when the exchange failed.
pub trait OrStderr<T> {
    fn or_stderr(self, client: &Client) -> T;
}

impl<T> OrStderr<T> for Result<T, gauntlet::mcp::ClientError> {
    fn or_stderr(self, client: &Client) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!(
                "{e}; mock exit: {:?}; mock stderr: {}",
                client.exit_status(),
                client.stderr_tail()
            ),
        }
    }
}
