//! MCP protocol revisions and the wire rules that differ between them.

use std::fmt;

/// A protocol revision gauntlet speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Revision {
    /// Streamable HTTP arrives; JSON-RPC batches are allowed.
    V2025_03_26,
    /// Batches removed; `MCP-Protocol-Version` required on HTTP.
    V2025_06_18,
    /// Invalid tool input reported as an `isError` result.
    V2025_11_25,
    /// Stateless: no initialize, `_meta` on every request, `server/discover`.
    V2026_07_28,
}

impl Revision {
    /// Every revision, oldest first.
    pub const ALL: [Revision; 4] = [
        Revision::V2025_03_26,
        Revision::V2025_06_18,
        Revision::V2025_11_25,
        Revision::V2026_07_28,
    ];

    /// The newest revision with sessions; what a plain client negotiates.
    pub const LATEST_STATEFUL: Revision = Revision::V2025_11_25;

    /// The newest revision.
    pub const LATEST: Revision = Revision::V2026_07_28;

    /// The `_meta` key that carries the revision on stateless requests.
    pub const META_VERSION_KEY: &'static str = "io.modelcontextprotocol/protocolVersion";

    /// The `_meta` key that carries the client capabilities on stateless requests.
    pub const META_CAPABILITIES_KEY: &'static str = "io.modelcontextprotocol/clientCapabilities";

    /// The revision's date string, as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Revision::V2025_03_26 => "2025-03-26",
            Revision::V2025_06_18 => "2025-06-18",
            Revision::V2025_11_25 => "2025-11-25",
            Revision::V2026_07_28 => "2026-07-28",
        }
    }

    /// Parses a date string; unknown revisions are `None`.
    pub fn parse(s: &str) -> Option<Revision> {
        Revision::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether JSON-RPC batches are part of this revision.
    pub fn allows_batches(self) -> bool {
        self == Revision::V2025_03_26
    }

    /// Whether invalid tool arguments come back as an `isError` result
    /// rather than a -32602 protocol error.
    pub fn invalid_args_as_tool_error(self) -> bool {
        self >= Revision::V2025_06_18
    }

    /// Whether the revision has no initialize handshake and no sessions.
    pub fn is_stateless(self) -> bool {
        self >= Revision::V2026_07_28
    }

    /// Whether HTTP requests after initialize must carry `MCP-Protocol-Version`.
    pub fn requires_version_header(self) -> bool {
        self >= Revision::V2025_06_18
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Revision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Revision::parse(s).ok_or_else(|| {
            let known: Vec<_> = Revision::ALL.iter().map(|r| r.as_str()).collect();
            format!(
                "unknown protocol revision `{s}`, expected one of {}",
                known.join(", ")
            )
        })
    }
}

impl serde::Serialize for Revision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Revision {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_by_revision() {
        use Revision::*;
        assert!(V2025_03_26.allows_batches());
        assert!(!V2025_06_18.allows_batches() && !V2026_07_28.allows_batches());
        assert!(!V2025_03_26.invalid_args_as_tool_error());
        assert!(V2025_11_25.invalid_args_as_tool_error());
        assert!(V2026_07_28.is_stateless() && !V2025_11_25.is_stateless());
        for r in Revision::ALL {
            assert_eq!(r.as_str().parse::<Revision>(), Ok(r));
        }
        assert!("2024-11-05".parse::<Revision>().is_err());
    }
}
