//! Ctrl-C in the middle of a bench, as a terminal sends it: to the whole
//! foreground process group. The servers the harness started sit in groups
//! of their own, so they keep serving while the bench drains its calls in
//! flight; the partial report is written, and it charges nothing to the
//! target that the signal did.

#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn ctrl_c_at_the_terminal_writes_a_clean_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut bench = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args([
            "bench",
            "--rate",
            "200",
            "--duration",
            "20s",
            "--warmup",
            "0",
            "--baseline",
            "--rounds",
            "4",
            "--format",
            "json",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // A group of its own stands for the terminal's foreground group.
        .process_group(0)
        .spawn()
        .unwrap();
    // The target's first slice takes 5 s; the signal lands in the
    // baseline's.
    std::thread::sleep(Duration::from_millis(6500));
    let group = format!("-{}", bench.id());
    let sent = Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = bench.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = bench.kill();
            panic!("the bench did not stop within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(bench.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    let text = std::fs::read_to_string(out.join("report.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let bench = &report["bench"];
    assert_eq!(bench["message"], "interrupted", "{bench}");
    // The target's slice ran whole: 5 s at 200/s.
    assert_eq!(bench["target"]["sent"], 1000, "{bench}");
    for phase in ["target", "baseline"] {
        let p = &bench[phase];
        // Had the servers died with the signal, the calls in flight would
        // show here as transport errors, and the rate as generator-bound.
        assert_eq!(p["errors"]["transport"], 0, "{phase}: {p}");
        assert_eq!(p["errors"]["timeout"], 0, "{phase}: {p}");
        assert_eq!(p["generator_bound"], false, "{phase}: {p}");
        assert!(out.join(format!("{phase}.hlog")).is_file());
    }
    assert!(bench["baseline"]["sent"].as_u64().unwrap() > 0);
}
