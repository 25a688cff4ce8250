//! `gauntlet relay`: a null enforcer. It stands where an enforcer stands
//! and moves bytes both ways without reading them, so a bench through it
//! measures what one more process on the path costs on this machine (the
//! wake-ups, the pipe or loopback hops) and nothing else. No enforcer can
//! add less; what an enforcer adds beyond it is its own work.
//!
//! ```text
//! gauntlet relay -- UPSTREAM_CMD...                        (stdio)
//! gauntlet relay --listen 127.0.0.1:0 --upstream-url URL   (TCP, under HTTP)
//! ```
//!
//! As enforcer templates: `{gauntlet} relay -- {upstream}` and
//! `{gauntlet} relay --listen 127.0.0.1:{port} --upstream-url {upstream_url}`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::Stdio;

use axum::http::Uri;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::mcp::pipes;

/// The relay as an enforcer template, for a bench's `relay` phase.
pub fn template(transport: crate::target::Transport) -> &'static str {
    match transport {
        crate::target::Transport::Stdio => "{gauntlet} relay -- {upstream}",
        crate::target::Transport::Http => {
            "{gauntlet} relay --listen 127.0.0.1:{port} --upstream-url {upstream_url}"
        }
    }
}

/// Arguments of `gauntlet relay`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["upstream", "listen"])))]
pub struct RelayArgs {
    /// Accept TCP connections here (port 0 picks a free one) and splice each
    /// to the upstream's host and port; the endpoint URL (this address, the
    /// upstream's path) is printed as the first line of stdout.
    #[arg(
        long,
        value_name = "ADDR",
        requires = "upstream_url",
        conflicts_with = "upstream"
    )]
    pub listen: Option<SocketAddr>,
    /// The upstream endpoint for the TCP form (`http://HOST:PORT/PATH`).
    #[arg(long, value_name = "URL", requires = "listen")]
    pub upstream_url: Option<String>,
    /// The upstream server's command line (stdio form), after `--`.
    #[arg(last = true, value_name = "UPSTREAM_CMD")]
    pub upstream: Vec<String>,
}

/// Runs the relay until its input ends (stdio) or it is stopped (TCP).
pub fn run(args: &RelayArgs) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match (&args.listen, &args.upstream_url) {
        (Some(addr), Some(url)) => rt.block_on(tcp(*addr, url)),
        _ => rt.block_on(stdio(&args.upstream)),
    }
}

/// The host:port to dial and the path to print, from an `http://` URL.
fn split_url(url: &str) -> Result<(String, String), String> {
    let uri: Uri = url.parse().map_err(|e| format!("`{url}`: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("`{url}`: only plain `http://` urls are relayed"));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("`{url}` names no host"))?;
    let port = authority.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Ok((format!("{}:{port}", authority.host()), path.to_owned()))
}

async fn tcp(addr: SocketAddr, url: &str) -> Result<(), String> {
    let (upstream, path) = split_url(url)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listening on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{local}{path}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = pipes::terminated() => return Ok(()),
        };
        let Ok((mut client, _)) = accepted else {
            continue;
        };
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                // The client sees its connection close, as it would if
                // an enforcer could not reach its upstream.
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}

async fn stdio(upstream: &[String]) -> Result<(), String> {
    let (program, rest) = upstream
        .split_first()
        .ok_or("no upstream command after `--`")?;
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting `{program}`: {e}"))?;
    let (Some(mut to_child), Some(mut from_child)) = (child.stdin.take(), child.stdout.take())
    else {
        return Err("the upstream's pipes were not set up".to_owned());
    };
    let down = async {
        let _ = tokio::io::copy(&mut pipes::stdin(), &mut to_child).await;
        // End of our input is end of the upstream's: it exits, and its
        // output ends in turn.
        let _ = to_child.shutdown().await;
        drop(to_child);
    };
    let up = async {
        let mut out = pipes::stdout();
        let _ = tokio::io::copy(&mut from_child, &mut out).await;
        let _ = out.flush().await;
    };
    tokio::join!(down, up);
    let _ = child.wait().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_what_to_dial_and_what_to_print() {
        assert_eq!(
            split_url("http://127.0.0.1:8080/mcp?x=1").unwrap(),
            ("127.0.0.1:8080".to_owned(), "/mcp?x=1".to_owned())
        );
        assert_eq!(
            split_url("http://[::1]/").unwrap(),
            ("[::1]:80".to_owned(), "/".to_owned())
        );
        assert!(split_url("https://example.com/mcp").is_err());
        assert!(split_url("not a url").is_err());
    }
}
