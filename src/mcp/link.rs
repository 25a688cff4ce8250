//! Keep-alive HTTP/1.1 connections to upstream, each driven by the request
//! that uses it.
//!
//! A general client (reqwest, hyper-util's pool) runs every connection in a
//! task of its own: a request is handed to that task and its response
//! handed back, two wake-ups (often across threads) on top of the socket's
//! own, plus URL and header conversions on every call. Here a request takes
//! an idle connection from the pool and polls it itself while it sends and
//! reads, then puts it back, so a proxied call costs the socket work and
//! little else.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Mutex;
use std::task::Poll;

use axum::http::uri::{Authority, Scheme};
use axum::http::{HeaderValue, Method, Request, Response, Uri, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Conn = Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

/// One keep-alive connection: the handle requests go through, and the
/// connection state machine that moves their bytes.
struct Link {
    sender: SendRequest<Full<Bytes>>,
    conn: Conn,
}

/// Why an upstream exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("connecting to `{addr}`: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error("the connection closed before the reply")]
    Closed,
}

/// How a send failed: before the request left (it is handed back), or after.
enum Failed {
    Unsent(Box<Request<Full<Bytes>>>),
    Error(hyper::Error),
    /// The connection ended with the request's fate unknown.
    Gone,
}

/// Connections to one upstream origin.
pub struct Links {
    /// `host:port`, to connect to.
    addr: String,
    /// The `Host` header.
    host: HeaderValue,
    idle: Mutex<Vec<Link>>,
}

/// An `http://` URL split into what its requests need: connections to its
/// origin, and its path in origin form, parsed once.
pub struct Endpoint {
    links: Links,
    path: Uri,
}

impl Endpoint {
    /// Parses `url`; only plain `http` is spoken.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url.parse().map_err(|e| format!("`{url}`: {e}"))?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(format!(
                "`{url}`: only plain `http://` urls are supported, not `{}`",
                uri.scheme_str().unwrap_or("(no scheme)")
            ));
        }
        let authority: &Authority = uri
            .authority()
            .ok_or_else(|| format!("`{url}` names no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!("`{url}`: credentials in the url are not supported"));
        }
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(80);
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e| format!("`{url}`: {e}"))?;
        Ok(Endpoint {
            // `[::1]` keeps its brackets, which is what connect wants.
            links: Links::new(format!("{host}:{port}"), authority.as_str())?,
            path,
        })
    }

    /// A request to the endpoint's path.
    pub fn request(&self, method: Method, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = self.path.clone();
        req
    }

    /// A JSON-RPC POST: a JSON body, and either JSON or an event stream
    /// accepted back, as Streamable HTTP asks of every client.
    pub fn post_json(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = self.request(Method::POST, body);
        let map = req.headers_mut();
        map.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        map.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        req
    }

    /// Sends `req` over a kept connection: see [`Links::send`].
    pub async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(Response<()>, Bytes), LinkError> {
        self.links.send(req).await
    }
}

/// Polls `conn` along with `work` until `work` ends, so the connection moves
/// the bytes `work` waits for. `None` when the connection ends first and
/// left `work` nothing to finish with (an idle connection the server
/// closed): the link is then spent.
async fn driven<T>(conn: &mut Conn, work: impl Future<Output = T>) -> Option<T> {
    let mut work = pin!(work);
    tokio::select! {
        biased;
        out = &mut work => Some(out),
        _ = conn.as_mut() => {
            // Whatever the connection delivered before it ended (a reply,
            // an error for the request in flight) is there for one poll.
            std::future::poll_fn(|cx| Poll::Ready(match work.as_mut().poll(cx) {
                Poll::Ready(out) => Some(out),
                Poll::Pending => None,
            }))
            .await
        }
    }
}

impl Links {
    /// Connections to `host:port`, sending `host` as the `Host` header.
    pub fn new(addr: String, host: &str) -> Result<Links, String> {
        Ok(Links {
            addr,
            host: HeaderValue::from_str(host).map_err(|e| e.to_string())?,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn take_idle(&self) -> Option<Link> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    fn put_back(&self, link: Link) {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(link);
    }

    async fn connect(&self) -> Result<Link, LinkError> {
        let connect_err = |source| LinkError::Connect {
            addr: self.addr.clone(),
            source,
        };
        let tcp = TcpStream::connect(&self.addr).await.map_err(connect_err)?;
        tcp.set_nodelay(true).map_err(connect_err)?;
        let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await?;
        Ok(Link {
            sender,
            conn: Box::pin(conn),
        })
    }

    /// An idle connection that is still open, or a new one.
    async fn link(&self) -> Result<Link, LinkError> {
        while let Some(mut link) = self.take_idle() {
            let Link { sender, conn } = &mut link;
            if let Some(Ok(())) = driven(conn, sender.ready()).await {
                return Ok(link);
            }
        }
        self.connect().await
    }

    /// Sends `req` (its URI in origin form) and reads the whole response.
    /// A request that an idle connection turns out to have closed under it
    /// before taking a byte is sent again on a fresh one; nothing that may
    /// have reached upstream is ever sent twice.
    pub async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<(Response<()>, Bytes), LinkError> {
        req.headers_mut().insert(header::HOST, self.host.clone());
        let mut fresh = false;
        loop {
            let mut link = if fresh {
                self.connect().await?
            } else {
                self.link().await?
            };
            let Link { sender, conn } = &mut link;
            let outcome = driven(conn, async {
                let resp = match sender.try_send_request(req).await {
                    Ok(resp) => resp,
                    Err(mut e) => {
                        return Err(match e.take_message() {
                            Some(unsent) => Failed::Unsent(Box::new(unsent)),
                            None => Failed::Error(e.into_error()),
                        });
                    }
                };
                let (parts, body) = resp.into_parts();
                let bytes = body.collect().await.map_err(Failed::Error)?.to_bytes();
                Ok((Response::from_parts(parts, ()), bytes))
            })
            .await;
            match outcome.unwrap_or(Err(Failed::Gone)) {
                Ok(done) => {
                    self.put_back(link);
                    return Ok(done);
                }
                // Never written: safe to send on another connection, once.
                Err(Failed::Unsent(unsent)) if !fresh => {
                    req = *unsent;
                    fresh = true;
                }
                Err(Failed::Unsent(_) | Failed::Gone) => return Err(LinkError::Closed),
                Err(Failed::Error(e)) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

    fn post() -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(Bytes::from_static(b"{}")));
        *req.method_mut() = axum::http::Method::POST;
        *req.uri_mut() = "/mcp".parse().unwrap();
        req
    }

    /// Reads until the end of one request's head and its 2-byte body.
    async fn read_request(tcp: &mut TcpStream) -> bool {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") || !seen.ends_with(b"{}") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    }

    /// A server that answers `per_conn` requests on each connection and
    /// then closes it (or, with `reply` false, closes after reading the
    /// request without answering); counts the requests it read and the
    /// connections it took.
    async fn server(per_conn: usize, reply: bool) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(AtomicUsize::new(0));
        let conns = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let accepted = conns.clone();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let counter = counter.clone();
                tokio::spawn(async move {
                    for _ in 0..per_conn {
                        if !read_request(&mut tcp).await {
                            return;
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                        if !reply {
                            return;
                        }
                        tcp.write_all(OK).await.unwrap();
                    }
                });
            }
        });
        (addr, seen, conns)
    }

    #[tokio::test]
    async fn connections_are_kept_and_a_closed_idle_one_is_replaced() {
        let (addr, seen, conns) = server(2, true).await;
        let links = Links::new(addr.clone(), &addr).unwrap();
        for _ in 0..5 {
            let (resp, body) = links.send(post()).await.unwrap();
            assert_eq!((resp.status().as_u16(), &body[..]), (200, &b"ok"[..]));
        }
        // Two requests a connection, each sent once: the third and fifth
        // found the kept connection closed and took a new one.
        assert_eq!(seen.load(Ordering::SeqCst), 5);
        assert_eq!(conns.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_request_that_may_have_arrived_is_never_sent_again() {
        let (addr, seen, _) = server(1, false).await;
        let links = Links::new(addr.clone(), &addr).unwrap();
        assert!(links.send(post()).await.is_err());
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let links = Links::new(addr.clone(), &addr).unwrap();
        let err = links.send(post()).await.unwrap_err();
        assert!(matches!(err, LinkError::Connect { .. }), "{err}");
    }
}
