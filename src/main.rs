//! The `gauntlet` command line. It only parses arguments and maps outcomes to
//! exit codes: 0 clean, 1 findings, 2 harness error.

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gauntlet",
    version,
    about = "Puts MCP policy enforcers through the gauntlet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay the attack catalogue against an enforcer and judge it from the mock's ledger.
    Run(gauntlet::run::cli::RunArgs),
    /// Derive attacks from a policy's own rules and print them, or save them as a catalogue.
    Plan(gauntlet::plan::cli::PlanArgs),
    /// List the attack catalogue, or show one scenario in full.
    Attacks(gauntlet::scenario::cli::AttacksArgs),
    /// Run the mock Aksjah MCP server, recording every message in a ledger.
    Mock(gauntlet::mock::cli::MockArgs),
    /// Run the reference enforcer in front of an MCP server (stdio or HTTP).
    Enforce(gauntlet::enforcer::cli::EnforceArgs),
    /// A null enforcer: moves bytes to an MCP server and back unread, to bench what one more process on the path costs.
    Relay(gauntlet::load::relay::RelayArgs),
    /// Check a policy file, or convert it to the other dialect.
    Policy(gauntlet::policy::cli::PolicyArgs),
    /// Re-render saved JSON runs as table, JSON, JUnit, SARIF, Markdown or HTML.
    Report(gauntlet::report::cli::ReportArgs),
    /// Combine runs against several enforcers into a static site: the enforcer × attack matrix.
    Matrix(gauntlet::report::cli::MatrixArgs),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Measure an enforcer's decision latency under load, against the bare mock.
    Bench(gauntlet::load::cli::BenchArgs),
    /// Combine sharded benches' interval logs into one report, as if one machine ran the load.
    Merge(gauntlet::load::cli::MergeArgs),
    /// Fuzz an enforcer with call sequences drawn against the policy model.
    Fuzz(gauntlet::run::fuzz::cli::FuzzArgs),
    /// Print an MCP server's tools manifest (one initialize, tools/list, no call), or one synthesised from a policy.
    Snapshot(gauntlet::manifest::cli::SnapshotArgs),
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    runtime_with(None)
}

fn runtime_with(threads: Option<u16>) -> Result<tokio::runtime::Runtime, ExitCode> {
    gauntlet::runtime::build(threads).map_err(|e| {
        eprintln!("error: starting the async runtime: {e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => match runtime() {
            Ok(rt) => rt.block_on(gauntlet::run::cli::main(args)),
            Err(code) => code,
        },
        Command::Bench(args) => match runtime_with(args.threads) {
            Ok(rt) => rt.block_on(gauntlet::load::cli::main(args)),
            Err(code) => code,
        },
        Command::Fuzz(args) => match runtime() {
            Ok(rt) => rt.block_on(gauntlet::run::fuzz::cli::main(args)),
            Err(code) => code,
        },
        Command::Plan(args) => ExitCode::from(gauntlet::plan::cli::run(
            &args,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Merge(args) => gauntlet::load::cli::merge_main(&args),
        Command::Snapshot(args) => match runtime() {
            Ok(rt) => rt.block_on(gauntlet::manifest::cli::main(args)),
            Err(code) => code,
        },
        Command::Attacks(args) => ExitCode::from(gauntlet::scenario::cli::run(
            &args,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Mock(args) => match gauntlet::mock::cli::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gauntlet mock: {e}");
                ExitCode::from(2)
            }
        },
        Command::Enforce(args) => ExitCode::from(gauntlet::enforcer::cli::run(&args)),
        Command::Relay(args) => match gauntlet::load::relay::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("gauntlet relay: {e}");
                ExitCode::from(2)
            }
        },
        Command::Policy(args) => ExitCode::from(gauntlet::policy::cli::run(
            &args,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Report(args) => gauntlet::report::cli::report_main(&args),
        Command::Matrix(args) => gauntlet::report::cli::matrix_main(&args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "gauntlet",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}
