//! `gauntlet attacks list|show`.
