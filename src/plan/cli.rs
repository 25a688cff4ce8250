//! `gauntlet plan`: print a policy's derived attacks, or save them as a
//! catalogue; and the loading both `plan` and `run --policy` share.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{LeftOut, Options, Pattern, Plan, PlanError};
use crate::mock::catalogue::Catalogue;
use crate::policy::Policy;
use crate::scenario::{ArgSpec, PolicySource, RuleRef, SessionSpec, Step, StepKind, Who};

/// `gauntlet plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// The policy to derive attacks from (.json: PolicyLayer; .yaml/.yml: Intercept).
    #[arg(long, value_name = "POLICY")]
    pub policy: PathBuf,
    /// The tools the mock serves: a saved `tools/list` result.
    #[arg(long, value_name = "MANIFEST")]
    pub tools: Option<PathBuf>,
    /// Write the plan into this folder as catalogue files, with the policy
    /// under `policies/`, for `gauntlet run --catalogue DIR`.
    #[arg(long, value_name = "DIR")]
    pub save: Option<PathBuf>,
    /// How to print the plan.
    #[arg(long, value_enum, default_value = "table")]
    pub format: PlanFormat,
    /// The enforcer clock's speed-up the plan will run under (as `run
    /// --time-scale`): longer windows then fit a window-edge attack.
    #[arg(long, value_name = "K", default_value_t = 1.0)]
    pub time_scale: f64,
    /// The plan will run without control runs (as `run --no-control`).
    #[arg(long)]
    pub no_control: bool,
}

/// How `gauntlet plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Table,
    Json,
}

/// The tools a plan runs over.
pub struct Tools {
    pub catalogue: Catalogue,
    /// What the tools are, for messages.
    pub label: String,
    /// The manifest synthesised from the policy, when none was given: the
    /// mocks of the run must serve it.
    pub synthesized: Option<serde_json::Value>,
    /// What the synthesis made, one line each.
    pub notes: Vec<String>,
}

/// A policy loaded for planning, with the tools it is planned over.
pub struct Prepared {
    pub policy: Policy,
    pub source: PolicySource,
    pub tools: Tools,
    pub plan: Plan,
}

/// Loads `policy` and the tools, and derives the plan.
pub fn prepare(
    policy_path: &Path,
    manifest: Option<&Path>,
    opts: &Options,
) -> Result<Prepared, PlanError> {
    let policy = crate::policy::load_file(policy_path).map_err(|e| {
        PlanError::Policy(
            e.diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })?;
    let tools = tools_for(&policy, manifest)?;
    let source = PolicySource::File(policy_path.to_path_buf());
    let plan = super::derive_with(&policy, &source, &tools.catalogue, opts)?;
    Ok(Prepared {
        policy,
        source,
        tools,
        plan,
    })
}

/// The tools a plan runs over: the manifest when given, else a permissive
/// one synthesised from the policy's own names and paths.
pub fn tools_for(policy: &Policy, manifest: Option<&Path>) -> Result<Tools, PlanError> {
    let bad = |path: String, e: crate::mock::catalogue::CatalogueError| PlanError::Manifest {
        path,
        message: e.to_string(),
    };
    match manifest {
        Some(path) => Ok(Tools {
            catalogue: Catalogue::load(path).map_err(|e| bad(path.display().to_string(), e))?,
            label: format!("manifest `{}`", path.display()),
            synthesized: None,
            notes: Vec::new(),
        }),
        None => {
            let synth = crate::manifest::synthesize(policy);
            let text = synth.manifest.to_string();
            let catalogue = Catalogue::from_manifest(&text, "(synthesised)")
                .map_err(|e| bad("(synthesised)".into(), e))?;
            Ok(Tools {
                catalogue,
                label: "tools synthesised from the policy".into(),
                synthesized: Some(synth.manifest),
                notes: synth.notes,
            })
        }
    }
}

/// One derived scenario, in brief.
#[derive(Debug, Serialize)]
pub struct ItemSummary {
    pub id: String,
    pub title: String,
    pub category: String,
    pub severity: String,
    pub pattern: Pattern,
    pub rule: Option<RuleRef>,
    pub transport: String,
    pub sends: u64,
    pub steps: Vec<String>,
}

/// The plan, in brief: what `--format json` prints.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub policy: String,
    pub scenarios: usize,
    pub sends: u64,
    pub plan: Vec<ItemSummary>,
    pub left_out: Vec<LeftOut>,
}

impl Plan {
    /// The plan in brief.
    pub fn summary(&self) -> Summary {
        Summary {
            policy: self.policy_file.clone(),
            scenarios: self.items.len(),
            sends: self.sends(),
            plan: self
                .items
                .iter()
                .map(|p| {
                    let s = &p.scenario;
                    ItemSummary {
                        id: s.id.clone(),
                        title: s.title.clone(),
                        category: s.category.as_str().into(),
                        severity: s.severity.as_str().into(),
                        pattern: p.pattern,
                        rule: s.rule.clone(),
                        transport: s.transport.as_str().into(),
                        sends: s.total_sends(),
                        steps: s.steps.iter().map(brief).collect(),
                    }
                })
                .collect(),
            left_out: self.left_out.clone(),
        }
    }
}

/// One step in a line.
pub fn brief(step: &Step) -> String {
    let mut out = match &step.kind {
        StepKind::Call { name, args, set } => {
            let mut s = format!("call {name:?}");
            match args {
                ArgSpec::Literal(v) => s.push_str(&format!(" {v}")),
                ArgSpec::Generate(_) => s.push_str(" generated"),
            }
            for (p, v) in set {
                s.push_str(&format!(" set {p}={v}"));
            }
            s
        }
        StepKind::Raw { bytes, headers, .. } => {
            let mut s = format!("raw {}", String::from_utf8_lossy(bytes));
            for (k, v) in headers {
                s.push_str(&format!(" [{k}: {v}]"));
            }
            s
        }
        StepKind::List => "list".into(),
    };
    if step.repeat > 1 {
        out.push_str(&format!(" ×{}", step.repeat));
    }
    if step.concurrency > 1 {
        out.push_str(&format!(" concurrency {}", step.concurrency));
    }
    match &step.who {
        Who::Identity(i) if i != crate::scenario::DEFAULT_IDENTITY => {
            out.push_str(&format!(" as {i}"));
        }
        Who::Rotate(ids) => out.push_str(&format!(" as {}", ids.join("/"))),
        Who::Identity(_) => {}
    }
    if let SessionSpec::Rotate(n) = step.session {
        out.push_str(&format!(" over {n} sessions"));
    }
    if step.at.is_some() {
        out.push_str(&format!(" at window-edge +{} ms", step.after_ms));
    }
    out
}

fn table(p: &Prepared, out: &mut dyn Write) -> std::io::Result<()> {
    let plan = &p.plan;
    writeln!(
        out,
        "{} ({}) over {}: {} scenarios, {} sends\n",
        plan.policy_file,
        p.policy.source.dialect,
        p.tools.label,
        plan.items.len(),
        plan.sends()
    )?;
    let width = plan
        .items
        .iter()
        .map(|i| i.scenario.id.len())
        .max()
        .unwrap_or(2)
        .max(2);
    writeln!(
        out,
        "{:<width$}  {:<19} {:<8} {:>5}  rule",
        "id", "category", "severity", "sends"
    )?;
    for item in &plan.items {
        let s = &item.scenario;
        let rule = s.rule.as_ref().map(ToString::to_string).unwrap_or_default();
        writeln!(
            out,
            "{:<width$}  {:<19} {:<8} {:>5}  {rule}",
            s.id,
            s.category.as_str(),
            s.severity.as_str(),
            s.total_sends()
        )?;
    }
    if !plan.left_out.is_empty() {
        writeln!(out, "\nleft out ({}):", plan.left_out.len())?;
        for l in &plan.left_out {
            writeln!(out, "  {} · {}: {}", l.pattern, l.rule, l.reason)?;
        }
    }
    Ok(())
}

/// Runs `gauntlet plan`; returns the exit code.
pub fn run(args: &PlanArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        let _ = writeln!(
            err,
            "error: --time-scale `{}` must be a positive number",
            args.time_scale
        );
        return 2;
    }
    let opts = Options {
        time_scale: args.time_scale,
        control: !args.no_control,
        ..Options::default()
    };
    let prepared = match prepare(&args.policy, args.tools.as_deref(), &opts) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    for note in &prepared.tools.notes {
        let _ = writeln!(err, "note: {note}");
    }
    let printed = match args.format {
        PlanFormat::Table => table(&prepared, out),
        PlanFormat::Json => serde_json::to_string_pretty(&prepared.plan.summary())
            .map_err(std::io::Error::other)
            .and_then(|s| writeln!(out, "{s}")),
    };
    if let Err(e) = printed
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let _ = writeln!(err, "error: {e}");
        return 2;
    }
    if let Some(dir) = &args.save {
        match save(&prepared, dir, args.tools.as_deref()) {
            Ok((files, run)) => {
                let _ = writeln!(
                    err,
                    "wrote {files} files under `{}`; run them with `{run}`",
                    dir.display()
                );
            }
            Err(e) => {
                let _ = writeln!(err, "error: {e}");
                return 2;
            }
        }
    }
    0
}

/// Saves the plan under `dir`, with a synthesised manifest as `tools.json`
/// beside it; returns the count of files and the command that runs them.
fn save(p: &Prepared, dir: &Path, manifest: Option<&Path>) -> Result<(usize, String), PlanError> {
    let mut files = p.plan.save(dir, &p.source)?.len();
    let quoted = |path: &Path| {
        shlex::try_quote(&path.display().to_string())
            .map(|q| q.into_owned())
            .unwrap_or_default()
    };
    let tools = match (&p.tools.synthesized, manifest) {
        (Some(m), _) => {
            let path = dir.join("tools.json");
            let text = serde_json::to_string_pretty(m).unwrap_or_default();
            std::fs::write(&path, text + "\n").map_err(|e| PlanError::write(&path, e))?;
            files += 1;
            Some(path)
        }
        (None, Some(m)) => Some(m.to_path_buf()),
        (None, None) => None,
    };
    let mut run = format!("gauntlet run --catalogue {}", quoted(dir));
    if let Some(t) = tools {
        run.push_str(&format!(" --tools {}", quoted(&t)));
    }
    Ok((files, run))
}
