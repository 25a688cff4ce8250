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
}

/// How `gauntlet plan` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Table,
    Json,
}

/// A policy loaded for planning, with the tools it is planned over.
pub struct Prepared {
    pub policy: Policy,
    pub source: PolicySource,
    pub tools: Catalogue,
    /// What the tools are, for messages.
    pub tools_label: String,
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
    let (tools, tools_label) = tools_for(&policy, manifest)?;
    let source = PolicySource::File(policy_path.to_path_buf());
    let plan = super::derive_with(&policy, &source, &tools, opts)?;
    Ok(Prepared {
        policy,
        source,
        tools,
        tools_label,
        plan,
    })
}

/// The tools a plan runs over: the manifest when given, else the bundled
/// tools of the mock.
pub fn tools_for(
    _policy: &Policy,
    manifest: Option<&Path>,
) -> Result<(Catalogue, String), PlanError> {
    match manifest {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| PlanError::read(path, e))?;
            let cat = Catalogue::from_manifest(&text).map_err(|e| PlanError::Manifest {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            Ok((cat, format!("manifest `{}`", path.display())))
        }
        None => Catalogue::bundled()
            .map(|c| (c, "the bundled Aksjah tools".to_owned()))
            .map_err(|e| PlanError::Manifest {
                path: "(bundled)".into(),
                message: e.to_string(),
            }),
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
            if let ArgSpec::Literal(v) = args {
                s.push_str(&format!(" {v}"));
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
        p.tools_label,
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
        ..Options::default()
    };
    let prepared = match prepare(&args.policy, args.tools.as_deref(), &opts) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
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
        match prepared.plan.save(dir, &prepared.source) {
            Ok(files) => {
                let _ = writeln!(
                    err,
                    "wrote {} files under `{}`; run them with `gauntlet run --catalogue {}`",
                    files.len(),
                    dir.display(),
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
