// SPDX-License-Identifier: GPL-2.0

//! `swarmctl watch` over sequences of `status` snapshots
//! (`fixtures/watch-*/1, 2, ...`) written one after the other into a
//! temporary configfs tree: the plain lines, the summary of a replay that
//! enabled the volume, the reason of one that did not; and the binary
//! itself following a replay that ends while it watches.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use swarmctl::configfs::Configfs;
use swarmctl::watch::{line, Step, Watch};
use swarmctl::watch_loop::poll;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A configfs tree with an empty volume `vol0`, for test `name`.
fn tree(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("swarmctl-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("vol0")).unwrap();
    fs::write(root.join("vol0/disk"), "\n").unwrap();
    root
}

/// Writes each snapshot of `seq` in turn as `vol0/status` (with `disk`
/// once enabled) and polls it: the steps, up to the first that ends.
fn follow(root: &Path, seq: &str, wait: bool) -> Vec<Step> {
    let c = Configfs::new(root);
    let mut w = Watch::new(wait);
    let mut steps = Vec::new();
    for i in 1.. {
        let Ok(s) = fs::read_to_string(format!("{FIXTURES}/{seq}/{i}")) else {
            break;
        };
        fs::write(root.join("vol0/status"), &s).unwrap();
        if s.starts_with("state enabled") {
            fs::write(root.join("vol0/disk"), "swarmlog0\n").unwrap();
        }
        let step = poll(&c, "vol0", &mut w).unwrap();
        let end = matches!(step, Step::Done(_) | Step::Failed(_));
        steps.push(step);
        if end {
            break;
        }
    }
    steps
}

/// The plain lines of the running steps.
fn lines(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Running(c) => Some(line("vol0", c)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_replay_that_enables_the_volume() {
    let root = tree("watch-ok");
    let steps = follow(&root, "watch-ok", false);
    assert_eq!(
        lines(&steps),
        [
            "vol0: replaying: 0 messages, 0 swarms, 0 loads, 0 skipped, 800 µs, 0 msg/s",
            "vol0: replaying: 2000 messages (4096 scanned so far), 1 swarms, 120 loads, \
             0 skipped, 500.0 ms, 4000 msg/s",
            // The scan is done: the total is known, and the time left.
            "vol0: replaying: 4200 of 5120 messages, 2 swarms, 260 loads, 0 skipped, \
             1.00 s, 4200 msg/s, about 219.0 ms left",
        ]
    );
    assert_eq!(
        steps.last(),
        Some(&Step::Done(
            "replay done: 5120 messages, 2 swarms, 300 loads, 0 skipped, 251.0 ms, \
             20398 msg/s; enabled as /dev/swarmlog0"
                .into()
        ))
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_corrupt_log_ends_the_watch_with_its_reason() {
    let root = tree("watch-corrupt");
    let steps = follow(&root, "watch-corrupt", false);
    assert_eq!(steps.len(), 3);
    let Some(Step::Failed(why)) = steps.last() else {
        panic!("{steps:?}");
    };
    assert!(
        why.starts_with("the log is corrupt at seq 7001, log offset 1835072:"),
        "{why}"
    );
    assert!(why.contains("discard_corrupt"), "{why}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn the_end_states_and_a_volume_not_enabling() {
    let parse = |s: &str| swarmctl::status::Status::parse(s).unwrap();
    let ended = |replay: &str, extra: &str| {
        parse(&format!(
            "state configured\nreplay_state {replay}\nreplay_messages 7\nreplay_skipped 2\n{extra}"
        ))
    };
    let running = parse("state replaying\nreplay_state running\nreplay_messages 3\n");
    for (replay, extra, want) in [
        ("aborted", "", "aborted (enable 0) after 7 messages"),
        ("panic", "replay_panic_seq 42\n", "PANIC: message seq 42"),
        ("skipped-kept", "", "skipped 2 records"),
        ("done", "", "enable failed (replay_state done)"),
    ] {
        let mut w = Watch::new(false);
        assert!(matches!(w.step(&running, ""), Step::Running(_)));
        match w.step(&ended(replay, extra), "") {
            Step::Failed(why) => assert!(why.contains(want), "{replay}: {why}"),
            other => panic!("{replay}: {other:?}"),
        }
    }
    // Not enabling: refused at once, or waited for with --wait.
    let idle = ended("none", "");
    assert!(matches!(Watch::new(false).step(&idle, ""), Step::Failed(w) if w.contains("--wait")));
    assert_eq!(Watch::new(true).step(&idle, ""), Step::Waiting);
    // Enabled without a replay (a clean log).
    let clean = parse("state enabled\nreplay_state none\n");
    assert_eq!(
        Watch::new(false).step(&clean, "swarmlog3"),
        Step::Done("enabled as /dev/swarmlog3, no replay (the log was clean)".into())
    );
}

#[test]
fn the_binary_prints_a_line_per_interval_then_the_summary() {
    let root = tree("watch-cli");
    let status = root.join("vol0/status");
    fs::copy(format!("{FIXTURES}/watch-ok/2"), &status).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_swarmctl"))
        .args(["--configfs", root.to_str().unwrap(), "watch", "vol0"])
        .args(["--interval-ms", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    fs::copy(format!("{FIXTURES}/watch-ok/4"), &status).unwrap();
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{out}");
    let all: Vec<&str> = out.lines().collect();
    let (last, running) = all.split_last().unwrap();
    assert!(running.len() >= 2, "{out}");
    assert!(running
        .iter()
        .all(|l| l.starts_with("vol0: replaying: 2000 messages (4096 scanned so far)")));
    assert!(
        last.starts_with("vol0: replay done: 5120 messages"),
        "{out}"
    );
    // A volume without replay or enable: exit 1 with the reason.
    fs::write(&status, "state configured\nreplay_state none\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_swarmctl"))
        .args(["--configfs", root.to_str().unwrap(), "watch", "vol0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with("swarmctl: vol0: configured, no replay running"),
        "{err}"
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn waiting_for_a_volume_that_assemble_has_not_made_yet() {
    let root = std::env::temp_dir().join(format!("swarmctl-{}-absent", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    let c = Configfs::new(&root);
    // Without --wait a missing volume is an error; with it, a wait.
    assert!(poll(&c, "vol0", &mut Watch::new(false)).is_err());
    let mut w = Watch::new(true);
    assert!(matches!(poll(&c, "vol0", &mut w), Ok(Step::Waiting)));
    // Once made and replaying, the watch follows it.
    fs::create_dir_all(root.join("vol0")).unwrap();
    let s = fs::read_to_string(format!("{FIXTURES}/watch-ok/2")).unwrap();
    fs::write(root.join("vol0/status"), s).unwrap();
    fs::write(root.join("vol0/disk"), "\n").unwrap();
    assert!(matches!(poll(&c, "vol0", &mut w), Ok(Step::Running(_))));
    fs::remove_dir_all(root).unwrap();
}
