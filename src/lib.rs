//! gauntlet puts MCP policy enforcers through the gauntlet.
//!
//! A mock Aksjah MCP server stands behind the enforcer under test and keeps a
//! ledger of every frame that reaches it. The harness replays a catalogue of
//! attacks (and generated ones) through the enforcer, then judges each call
//! from the ledger, never from the enforcer's reply alone.
//!
//! # Layout
//!
//! One module per stage of the data flow; each arrow goes one way.
//!
//! | module      | owns                                                            |
//! |-------------|-----------------------------------------------------------------|
//! | [`mcp`]     | JSON-RPC 2.0 / MCP messages, stdio and HTTP framing, the client |
//! | [`mock`]    | the Aksjah server: tool catalogue, name resolution, the ledger  |
//! | [`manifest`]| capturing a server's tools (`snapshot`), synthesising them from |
//! |             | a policy; the mock serves either with `--tools`                 |
//! | [`policy`]  | both policy dialects, one model, `decide`, counter stores       |
//! | [`enforcer`]| the reference enforcer: stdio and HTTP proxies over `policy`    |
//! | [`target`]  | starting and stopping whatever the harness talks to             |
//! | [`scenario`]| the attack catalogue's file format and loader                   |
//! | [`plan`]    | attack plans derived from a policy: the catalogue's patterns    |
//! |             | instantiated against its own rules and tools                    |
//! | [`generate`]| proptest strategies for arguments, names, frames, sequences     |
//! | [`oracle`]  | ledger + replies + model -> verdicts                            |
//! | [`run`]     | replay, control runs and fuzz campaigns; emits events           |
//! | [`load`]    | load schedules, workers, histograms, interval logs and merges   |
//! | [`report`]  | events -> table, JSON, JUnit, SARIF, Markdown, HTML; the matrix |
//! |             | site of several runs; the CI gate (`--fail-on`, known gaps)     |
//!
//! [`runtime`] builds the async runtime of a command that takes
//! `--threads`: the built-in enforcer over HTTP and the load generator.
//!
//! [`names`] is a leaf shared by `mock` and `policy`: both must fold a tool
//! name the same way, or a variant judged as "unknown" could still execute.
//! `report` folds names with it too, so SARIF fingerprints ignore variants.

pub mod enforcer;
pub mod generate;
pub mod load;
pub mod manifest;
pub mod mcp;
pub mod mock;
pub mod names;
pub mod oracle;
pub mod plan;
pub mod policy;
pub mod report;
pub mod run;
pub mod runtime;
pub mod scenario;
pub mod target;
