//! One scenario's live world: a fresh folder, the mock and its ledger, the
//! enforcer (per session over stdio, or one server over HTTP), and sessions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::process::{Ready, Server, free_port};
use super::template::{Placeholders, expand, uses};
use super::{HarnessConfig, TargetError, TargetSpec, Transport, builtin_template};
use crate::mcp::{Client, HttpOptions, Revision, StdioOptions};
use crate::mock::ledger::{LedgerRecord, Tail};
use crate::policy::Policy;

/// A session: who speaks, and under which label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub identity: String,
    pub label: String,
    /// The instance of the target the session talks to.
    pub replica: usize,
}

/// How sessions are opened in this arena.
enum Opener {
    /// A process per session, from these template words' source.
    Stdio(String),
    /// A client per session against the URL of its replica.
    Http(Vec<String>),
}

/// A scenario's world. Dropping it kills every process it started.
pub struct Arena {
    cfg: HarnessConfig,
    revision: Revision,
    transport: Transport,
    workdir: tempfile::TempDir,
    placeholders: Placeholders,
    opener: Opener,
    replicas: usize,
    time_scale: f64,
    servers: Vec<Server>,
    pub(super) sessions: HashMap<SessionKey, Arc<Client>>,
    pub(super) tail: Tail,
    /// Records that were in a shared ledger before this arena began.
    pub(super) base: usize,
    /// The target's counter files, when the harness knows where the target
    /// keeps all of its state between calls (see [`Arena::reset`]).
    pub(super) counter_files: Option<Vec<PathBuf>>,
}

/// What an arena needs to know about the scenario.
pub struct ArenaSpec<'a> {
    pub policy: &'a Policy,
    pub strict_mock: bool,
    pub revision: Revision,
}

impl Arena {
    /// Builds the world for one scenario against `target`.
    pub async fn new(
        cfg: &HarnessConfig,
        target: &TargetSpec,
        spec: &ArenaSpec<'_>,
    ) -> Result<Arena, TargetError> {
        Arena::with_mock_args(cfg, target, spec, &[]).await
    }

    /// Like [`Arena::new`], with extra switches for every mock it starts
    /// (`--latency`, `--stall-every`, ...): the load bench shapes the
    /// upstream this way.
    pub async fn with_mock_args(
        cfg: &HarnessConfig,
        target: &TargetSpec,
        spec: &ArenaSpec<'_>,
        mock_extra: &[String],
    ) -> Result<Arena, TargetError> {
        let workdir = tempfile::Builder::new()
            .prefix("gauntlet-")
            .tempdir()
            .map_err(TargetError::Workdir)?;
        let dir = workdir.path().to_path_buf();
        let policy_json = write(&dir.join("policy.json"), &spec.policy.to_json())?;
        let policy_yaml = write(&dir.join("policy.yaml"), &spec.policy.to_yaml())?;
        let ledger = dir.join("ledger.jsonl");
        let exe = cfg.exe.display().to_string();

        let mut mock_args = vec![exe.clone(), "mock".into()];
        let mut placeholders = Placeholders {
            gauntlet: Some(exe.clone()),
            policy: Some(policy_json),
            policy_yaml: Some(policy_yaml),
            workdir: Some(dir.display().to_string()),
            replica: Some(0),
            faketime: Some(super::faketime::prefix(cfg.time_scale)),
            ..Placeholders::default()
        };
        let ledger_arg = ["--ledger".to_string(), ledger.display().to_string()];
        let strict: &[&str] = if spec.strict_mock { &["--strict"] } else { &[] };
        mock_args.extend(cfg.mock_tools_args());
        mock_args.extend(mock_extra.iter().cloned());

        let (template, transport) = match target {
            TargetSpec::None => (None, cfg.transport),
            TargetSpec::Builtin => (Some(builtin_template(cfg, cfg.transport)), cfg.transport),
            TargetSpec::Command(t) if uses(t, "port") => (Some(t.clone()), Transport::Http),
            TargetSpec::Command(t) => (Some(t.clone()), Transport::Stdio),
            TargetSpec::Url { .. } => (None, Transport::Http),
        };

        if let (Some(t), Some(base)) = (&template, &cfg.redis)
            && uses(t, "redis_url")
        {
            let base = base.clone();
            let timeout = cfg.timeout;
            let url = tokio::task::spawn_blocking(move || super::redis_db::fresh(&base, timeout))
                .await
                .map_err(|e| TargetError::Redis(e.to_string()))??;
            placeholders.redis_url = Some(url);
        }
        let replicas = if replicas_started(target) {
            cfg.replicas.max(1)
        } else {
            1
        };
        let mut servers = Vec::new();
        let needs_http_mock = match (target, &template) {
            (TargetSpec::Url { .. }, _) => false,
            (_, Some(t)) => uses(t, "upstream_url"),
            (TargetSpec::None, None) => transport == Transport::Http,
            _ => false,
        };
        if needs_http_mock {
            let mut words = mock_args.clone();
            words.extend(["--http".into(), "127.0.0.1:0".into()]);
            words.extend(ledger_arg.iter().cloned());
            words.extend(strict.iter().map(|s| s.to_string()));
            let (server, url) = Server::start(&words, &[], Ready::FirstLine, cfg.timeout).await?;
            placeholders.upstream_url = url;
            servers.push(server);
        }
        mock_args.push("--stdio".into());
        mock_args.extend(ledger_arg.iter().cloned());
        mock_args.extend(strict.iter().map(|s| s.to_string()));
        if cfg.time_scale != 1.0 {
            // An enforcer under libfaketime passes its fake clock on to the
            // processes it starts; the ledger must keep the wall clock.
            let env = ["env", "-u", "LD_PRELOAD", "-u", "FAKETIME"];
            mock_args.splice(0..0, env.iter().map(|s| s.to_string()));
        }
        placeholders.upstream = shlex::try_join(mock_args.iter().map(String::as_str))
            .ok()
            .or(Some(mock_args.join(" ")));

        let opener = match (target, transport, template) {
            (TargetSpec::Url { url, .. }, _, _) => Opener::Http(vec![url.clone()]),
            (TargetSpec::None, Transport::Http, _) => {
                Opener::Http(vec![placeholders.upstream_url.clone().ok_or_else(
                    || TargetError::Template("the http mock gave no url".into()),
                )?])
            }
            (TargetSpec::None, Transport::Stdio, _) => Opener::Stdio(
                placeholders.upstream.clone().unwrap_or_default() + " --identity {identity}",
            ),
            (_, Transport::Http, Some(t)) => {
                let mut urls = Vec::with_capacity(replicas);
                for replica in 0..replicas {
                    let port = free_port()?;
                    let mut values = placeholders.clone();
                    values.port = Some(port);
                    values.replica = Some(replica);
                    let words = expand(&t, &values).map_err(TargetError::Template)?;
                    let ready = if *target == TargetSpec::Builtin {
                        Ready::FirstLine
                    } else {
                        Ready::Port(port)
                    };
                    let (server, _) = Server::start(&words, &[], ready, cfg.timeout).await?;
                    servers.push(server);
                    urls.push(format!("http://127.0.0.1:{port}/mcp"));
                }
                Opener::Http(urls)
            }
            (_, _, Some(t)) => Opener::Stdio(t),
            (_, _, None) => return Err(TargetError::Template("no way to reach the target".into())),
        };

        let ledger = match (target, &cfg.shared_ledger) {
            (TargetSpec::Url { .. }, Some(shared)) => shared.clone(),
            _ => ledger,
        };
        let mut tail = Tail::new(ledger);
        tail.poll()?;
        let base = tail.records().len();
        // The built-in stdio enforcer keeps every counter (grant, session,
        // global) in these files and nothing else between calls.
        let counter_files = super::reuse::resettable(target, cfg).then(|| {
            (0..replicas)
                .map(|r| dir.join(format!("counters-{r}.json")))
                .collect()
        });
        Ok(Arena {
            cfg: cfg.clone(),
            revision: spec.revision,
            transport,
            workdir,
            placeholders,
            opener,
            replicas,
            time_scale: if replicas_started(target) {
                cfg.time_scale
            } else {
                1.0
            },
            servers,
            sessions: HashMap::new(),
            tail,
            base,
            counter_files,
        })
    }

    /// How many instances of the target this arena runs.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// How much faster than the wall clock the target's clock runs (1 for
    /// the bare mock and for targets the harness did not start).
    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }

    /// The Redis database handed to the scenario, if any.
    pub fn redis_url(&self) -> Option<&str> {
        self.placeholders.redis_url.as_deref()
    }

    /// The transport sessions use.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The scenario's work folder.
    pub fn workdir(&self) -> &Path {
        self.workdir.path()
    }

    /// The session for `key`, opened (and its handshake run, unless
    /// `handshake` is false) on first use.
    pub async fn session(
        &mut self,
        key: &SessionKey,
        handshake: bool,
    ) -> Result<Arc<Client>, TargetError> {
        if let Some(c) = self.sessions.get(key) {
            return Ok(c.clone());
        }
        let client = match &self.opener {
            Opener::Stdio(template) => {
                let mut values = self.placeholders.clone();
                values.identity = Some(key.identity.clone());
                values.replica = Some(key.replica);
                let mut words = expand(template, &values)
                    .map_err(TargetError::Template)?
                    .into_iter();
                let program = words.next().unwrap_or_default();
                let opts = StdioOptions {
                    program,
                    args: words.collect(),
                    env: vec![("GAUNTLET_IDENTITY".into(), key.identity.clone())],
                    // The harness's own folder: templates name files relative to it.
                    cwd: None,
                };
                Client::spawn(opts, self.cfg.timeout).await?
            }
            Opener::Http(urls) => Client::connect(
                HttpOptions {
                    url: urls
                        .get(key.replica % urls.len().max(1))
                        .cloned()
                        .unwrap_or_default(),
                    token: Some(key.identity.clone()),
                    headers: Vec::new(),
                },
                self.cfg.timeout,
            )?,
        };
        if handshake {
            client.initialize(self.revision).await?;
        }
        let client = Arc::new(client);
        self.sessions.insert(key.clone(), client.clone());
        Ok(client)
    }

    /// Reads what the ledger gained since the last call; returns how many
    /// records it holds now (for this arena).
    pub fn poll_ledger(&mut self) -> Result<usize, TargetError> {
        self.tail.poll()?;
        Ok(self.tail.records().len().saturating_sub(self.base))
    }

    /// This arena's ledger records so far, in order.
    pub fn records(&self) -> &[LedgerRecord] {
        let all = self.tail.records();
        &all[self.base.min(all.len())..]
    }

    /// Hands over this arena's records so far, instead of copying them:
    /// [`Arena::records`] then starts after them, and outcome lines that
    /// come later for them are ignored.
    pub fn take_records(&mut self) -> Vec<LedgerRecord> {
        let mut all = self.tail.take();
        let mine = all.split_off(self.base.min(all.len()));
        self.base = 0;
        mine
    }

    /// Whether a server this arena started has died, with its stderr.
    pub fn dead_server(&mut self) -> Option<String> {
        self.servers.iter_mut().find_map(|s| {
            s.exited()
                .map(|st| format!("`{}` exited ({st}): {}", s.command(), s.stderr_tail()))
        })
    }

    /// Closes every session and stops every server; keeps the folder if the
    /// harness was asked to.
    pub async fn finish(self, keep_as: Option<&str>) -> Result<(), TargetError> {
        self.finish_with(keep_as, true).await
    }

    /// Like [`Arena::finish`], without reading the ledger's last lines: a
    /// load bench's ledger holds millions of records nobody here needs.
    pub async fn finish_unread(self, keep_as: Option<&str>) -> Result<(), TargetError> {
        self.finish_with(keep_as, false).await
    }

    async fn finish_with(mut self, keep_as: Option<&str>, read: bool) -> Result<(), TargetError> {
        // Close every session at once: each may wait a moment for its
        // process to exit, and those waits should not add up.
        let closing = self
            .sessions
            .drain()
            .filter_map(|(_, client)| Arc::try_unwrap(client).ok())
            .map(|client| client.close());
        futures_util::future::join_all(closing).await;
        for server in &mut self.servers {
            server.stop().await;
        }
        // The last outcome lines may land while sessions close.
        if read {
            let _ = self.tail.poll();
        }
        if let (Some(root), Some(name)) = (&self.cfg.keep_workdirs, keep_as) {
            let dest = root.join(name);
            let _ = std::fs::create_dir_all(root);
            let _ = std::fs::remove_dir_all(&dest);
            let kept = self.workdir.keep();
            std::fs::rename(&kept, &dest).map_err(|e| TargetError::Write {
                path: dest.display().to_string(),
                source: e,
            })?;
        }
        Ok(())
    }
}

/// Whether the harness starts (and so can replicate and speed up) the target.
fn replicas_started(target: &TargetSpec) -> bool {
    matches!(target, TargetSpec::Builtin | TargetSpec::Command(_))
}

fn write(path: &PathBuf, text: &str) -> Result<String, TargetError> {
    std::fs::write(path, text).map_err(|source| TargetError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(path.display().to_string())
}
