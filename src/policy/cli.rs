//! `gauntlet policy check FILE [--to json|yaml]`.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;

use super::lower::scope_name;
use super::model::{Action, Condition, DefaultAction, Limit, Policy, WindowMode};

/// The `policy` subcommand.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// What to do with a policy.
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// What `gauntlet policy` can do.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Load and validate a policy; print a summary, or the policy in another dialect.
    Check {
        /// The policy file (.json: PolicyLayer; .yaml/.yml: Intercept).
        file: PathBuf,
        /// Print the policy converted into this dialect instead of a summary.
        #[arg(long, value_enum)]
        to: Option<Format>,
    },
}

/// An output dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// PolicyLayer JSON.
    Json,
    /// Intercept YAML.
    Yaml,
}

/// Runs the subcommand; returns the exit code (0 valid, 2 invalid or unreadable).
pub fn run(args: &PolicyArgs, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match &args.command {
        PolicyCommand::Check { file, to } => match super::load_file(file) {
            Ok(policy) => {
                let text = match to {
                    None => summary(&policy),
                    Some(Format::Json) => policy.to_json() + "\n",
                    Some(Format::Yaml) => policy.to_yaml(),
                };
                write_ok(out, &text);
                0
            }
            Err(e) => {
                write_ok(err, &format!("{e}\n"));
                2
            }
        },
    }
}

/// A broken pipe (output piped into `head`) is not a failure.
fn write_ok(to: &mut dyn Write, text: &str) {
    if let Err(e) = to.write_all(text.as_bytes()).and_then(|()| to.flush())
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        let _ = writeln!(io::stderr(), "cannot write output: {e}");
    }
}

/// A readable summary of a policy.
pub fn summary(policy: &Policy) -> String {
    let mut s = String::new();
    let default = match policy.default {
        DefaultAction::Allow => "allow",
        DefaultAction::Deny => "deny",
    };
    let mode = match policy.window_mode {
        WindowMode::Sliding => "sliding",
        WindowMode::Fixed => "fixed",
    };
    let refunds = if policy.refund_on_error {
        "refunded"
    } else {
        "kept"
    };
    let _ = writeln!(s, "{} ({})", policy.source.file, policy.source.dialect);
    if let Some(d) = &policy.description {
        let _ = writeln!(s, "  {d}");
    }
    let _ = writeln!(
        s,
        "default: {default}; windows: {mode}; quota of calls that fail upstream: {refunds}"
    );
    if !policy.hide.is_empty() {
        let _ = writeln!(s, "hidden: {}", policy.hide.join(", "));
    }
    if !policy.all_tools.is_empty() {
        let _ = writeln!(s, "all tools:");
        for l in &policy.all_tools {
            let _ = writeln!(s, "  {}", limit_line(l));
        }
    }
    let _ = writeln!(s, "tools: {}", policy.tools.len());
    for t in &policy.tools {
        let action = match t.action {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::RequireApproval => "require approval",
        };
        let _ = write!(s, "  `{}`: {action}", t.name);
        match &t.reason {
            Some(r) => {
                let _ = writeln!(s, " ({r})");
            }
            None => s.push('\n'),
        }
        for c in &t.require {
            let _ = writeln!(s, "    require {}", condition_line(c));
        }
        for c in &t.deny_if {
            let _ = writeln!(s, "    deny if {}", condition_line(c));
        }
        for l in &t.limits {
            let _ = writeln!(s, "    {}", limit_line(l));
        }
    }
    s
}

fn condition_line(c: &Condition) -> String {
    format!("`{}` {} {}", c.path, c.op, c.value)
}

fn limit_line(l: &Limit) -> String {
    let by = match &l.increment_from {
        Some(p) => format!(", charging `{p}`"),
        None if l.increment != 1 => format!(", charging {}", l.increment),
        None => String::new(),
    };
    format!(
        "limit `{}`: {} per {} ({}){by}",
        l.counter,
        l.max,
        l.window,
        scope_name(l.scope)
    )
}
