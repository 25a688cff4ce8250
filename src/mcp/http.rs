//! Streamable HTTP pieces shared by the mock, the enforcer and the client.

/// Issued by the server at initialize; echoed by the client after it.
pub const SESSION_ID: &str = "mcp-session-id";
/// The negotiated revision, required on requests after initialize.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// 2026-07-28: the JSON-RPC method of the body.
pub const MCP_METHOD: &str = "mcp-method";
/// 2026-07-28: `params.name` of a `tools/call` body.
pub const MCP_NAME: &str = "mcp-name";

/// A listener for `axum::serve` whose connections send each write at once
/// (`TCP_NODELAY`). axum leaves Nagle's algorithm on, and a reply written in
/// two parts could otherwise wait for the peer's delayed ACK.
pub fn no_delay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    fn set(tcp: &mut tokio::net::TcpStream) {
        // A socket that refuses the option still works, only slower.
        let _ = tcp.set_nodelay(true);
    }
    listener.tap_io(set as fn(&mut tokio::net::TcpStream))
}

/// Whether an `Origin` header is acceptable to a server bound on loopback.
///
/// A browser page on some other site can reach a loopback server through DNS
/// rebinding; the page's origin then names that site. No Origin at all is a
/// non-browser client and is allowed.
pub fn origin_allowed(origin: Option<&str>) -> bool {
    let Some(origin) = origin else { return true };
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, tail)) if tail.is_empty() || tail.starts_with(':') => h,
            _ => return false,
        }
    } else {
        match rest.split_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return false,
            None => rest,
        }
    };
    matches!(host, "localhost" | "127.0.0.1" | "::1")
}

/// The token of an `Authorization: Bearer …` header value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Encodes one JSON-RPC message as a server-sent event.
pub fn sse_event(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 24);
    out.extend_from_slice(b"event: message\n");
    // A message never holds a raw newline, but split anyway so a malformed
    // one cannot forge a second event.
    for line in data.split(|b| *b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// The `data` payloads of every event in an SSE body, in order.
pub fn sse_data(body: &[u8]) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    for raw in body.split(|b| *b == b'\n') {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            if let Some(data) = current.take() {
                events.push(data);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix(b"data:") {
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            match &mut current {
                Some(data) => {
                    data.push(b'\n');
                    data.extend_from_slice(rest);
                }
                None => current = Some(rest.to_vec()),
            }
        }
    }
    events.extend(current);
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_check_allows_only_loopback() {
        for ok in [
            None,
            Some("http://localhost"),
            Some("http://localhost:5173"),
            Some("http://127.0.0.1:8080"),
            Some("http://[::1]:3000"),
        ] {
            assert!(origin_allowed(ok), "{ok:?}");
        }
        for bad in [
            "http://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://127.0.0.1:80@evil.example",
            "null",
            "file://",
        ] {
            assert!(!origin_allowed(Some(bad)), "{bad}");
        }
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer("Bearer alice"), Some("alice"));
        assert_eq!(bearer("bearer  bob "), Some("bob"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }

    #[test]
    fn sse_round_trip() {
        let mut body = sse_event(br#"{"a":1}"#);
        body.extend(sse_event(br#"{"b":2}"#));
        body.extend_from_slice(b": keep-alive\n\n");
        assert_eq!(
            sse_data(&body),
            vec![br#"{"a":1}"#.to_vec(), br#"{"b":2}"#.to_vec()]
        );
    }
}
