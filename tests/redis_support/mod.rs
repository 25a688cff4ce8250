//! A private `redis-server` for a test: a free loopback port, no
//! persistence, killed when dropped.
//!
//! Redis cannot bind port 0 and report it, so a port is picked by binding a
//! listener to `127.0.0.1:0` and releasing it. When `redis-server` is not
//! installed the test is skipped with a message, unless `CI` is set: there
//! its absence is a failure.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    /// Starts a server, or returns `None` (after saying so) when none is installed outside CI.
    pub fn start() -> Option<RedisServer> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "redis-server is not installed, and CI is set"
            );
            eprintln!("SKIPPED: redis-server is not installed (CI is unset)");
            return None;
        }
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if let Some(server) = Self::on(port) {
                return Some(server);
            }
        }
        panic!("redis-server did not start on any of five free ports");
    }

    fn on(port: u16) -> Option<RedisServer> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes", "--databases", "64"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while let Some(Ok(line)) = lines.next() {
            if line.contains("Ready to accept connections") {
                // Keep draining its log so that a full pipe never stalls it.
                std::thread::spawn(move || lines.for_each(drop));
                return Some(RedisServer { child, port });
            }
        }
        // The port was taken between releasing and starting: try another.
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    pub fn url(&self, db: u32) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server now (to test what happens when Redis goes away).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Wait until the port refuses, so the next call sees a dead server.
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs `redis-cli`-free commands through the client crate.
    pub fn con(&self, db: u32) -> redis::Connection {
        redis::Client::open(self.url(db))
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
