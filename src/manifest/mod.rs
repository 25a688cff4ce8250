//! Tool manifests beyond the bundled one: capturing a real server's
//! (`gauntlet snapshot`) and synthesising one from a policy when there is
//! no server to capture.
//!
//! A manifest is a `tools/list` result, `{"tools": [...]}`, with every page
//! merged. [`crate::mock::catalogue::Catalogue`] loads it (or a folder of
//! tool files) and the mock serves it with `gauntlet mock --tools`.
//!
//! | module       | owns                                                   |
//! |--------------|--------------------------------------------------------|
//! | [`snapshot`] | one `initialize`, `tools/list` (every page), no call   |
//! | [`synth`]    | a permissive manifest from a policy's names and paths  |
//! | [`cli`]      | `gauntlet snapshot`                                    |

pub mod cli;
pub mod snapshot;
pub mod synth;

pub use snapshot::{SnapshotError, Upstream, snapshot};
pub use synth::{Synthesized, UNLISTED_TOOL, synthesize};
