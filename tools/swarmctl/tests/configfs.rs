// SPDX-License-Identifier: GPL-2.0

//! The configfs commands against a temporary directory laid out as
//! `/sys/kernel/config/swarmlog`: what `create` writes, the refusals of a
//! missing volume, the order of `remove`, and `status` of a sample
//! `status` file, human and JSON.

use std::fs;
use std::path::PathBuf;

use swarmctl::configfs::Configfs;

const SAMPLE: &str = include_str!("fixtures/status-enabled");

mod common;
use common::{read, tmp};

#[test]
fn create_writes_log_array_and_format() {
    let root = tmp("create");
    let c = Configfs::new(&root);
    c.create("vol0", "/dev/pmem0", "/dev/md0", true).unwrap();
    assert_eq!(read(&root.join("vol0/log")), "/dev/pmem0\n");
    assert_eq!(read(&root.join("vol0/array")), "/dev/md0\n");
    assert_eq!(read(&root.join("vol0/format")), "1\n");
    // Without --format nothing is formatted.
    c.create("vol1", "/dev/vdc", "/dev/md1", false).unwrap();
    assert!(!root.join("vol1/format").exists());
    let again = c.create("vol0", "/dev/pmem0", "/dev/md0", false);
    assert!(again.unwrap_err().contains("exists already"));
    assert_eq!(c.volumes().unwrap(), ["vol0", "vol1"]);
    c.enable("vol1").unwrap();
    assert_eq!(read(&root.join("vol1/enable")), "1\n");
    c.disable("vol1").unwrap();
    assert_eq!(read(&root.join("vol1/enable")), "0\n");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_missing_volume_or_subsystem_is_refused() {
    let root = tmp("missing");
    let c = Configfs::new(&root);
    for e in [c.remove("nope"), c.enable("nope"), c.disable("nope")] {
        assert!(e.unwrap_err().contains("nope: no such volume"));
    }
    let gone = Configfs::new(&root.join("not-loaded"));
    assert!(gone
        .enable("vol0")
        .unwrap_err()
        .contains("is swarmlog loaded"));
    assert!(gone
        .create("vol0", "/dev/pmem0", "/dev/md0", false)
        .unwrap_err()
        .contains("is swarmlog loaded"));
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_refused_write_names_attribute_and_value() {
    let root = tmp("refused");
    fs::create_dir_all(root.join("vol0/enable")).unwrap();
    let e = Configfs::new(&root).enable("vol0").unwrap_err();
    assert!(
        e.starts_with("vol0: writing \"1\" to enable failed:"),
        "{e}"
    );
    assert!(e.contains("hint:"), "{e}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn remove_disables_an_enabled_volume_first() {
    let root = tmp("remove");
    let dir = root.join("vol0");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("enable"), "1\n").unwrap();
    // A plain directory with files is not removable as a configfs group
    // is: the disable must have happened before the rmdir failed.
    let e = Configfs::new(&root).remove("vol0").unwrap_err();
    assert!(e.contains("vol0: cannot remove"), "{e}");
    assert_eq!(read(&dir.join("enable")), "0\n");
    fs::remove_dir_all(root).unwrap();
}

/// A configfs tree with volume `vol0` enabled (the sample status) and
/// `vol1` unconfigured.
fn status_tree(name: &str) -> PathBuf {
    let root = tmp(name);
    fs::create_dir_all(root.join("vol0")).unwrap();
    fs::write(root.join("vol0/status"), SAMPLE).unwrap();
    fs::write(root.join("vol0/disk"), "swarmlog0\n").unwrap();
    fs::create_dir_all(root.join("vol1")).unwrap();
    fs::write(
        root.join("vol1/status"),
        "state unconfigured\nswarm_width 64\nlog_used_bytes 0\nlog_capacity_bytes 0\n\
         cp_count 0\nlast_cp_seq 0\nreplay_state none\n",
    )
    .unwrap();
    fs::write(root.join("vol1/disk"), "\n").unwrap();
    root
}

#[test]
fn status_human_has_units() {
    let root = status_tree("status-human");
    let c = Configfs::new(&root);
    let out = swarmctl::status(&c, Some("vol0"), false).unwrap();
    let first = out.lines().next().unwrap();
    assert_eq!(
        first,
        "vol0: enabled, /dev/swarmlog0, log 12.0 MiB of 256.0 MiB used (4.7%), replay done"
    );
    for line in [
        "  log_medium:              pmem",
        "  cp_duration_us:          3.40 s",
        "  data_offset_bytes:       8.0 MiB",
        "  replay_load_us:          850 µs",
        "  writes:                  1000",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} not in\n{out}");
    }
    // Every key is shown.
    assert_eq!(out.lines().count(), 1 + SAMPLE.lines().count());
    let both = swarmctl::status(&c, None, false).unwrap();
    assert!(
        both.contains("\nvol1: unconfigured, replay none\n"),
        "{both}"
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn status_json_has_every_key_numbers_as_numbers() {
    let root = status_tree("status-json");
    let c = Configfs::new(&root);
    let out = swarmctl::status(&c, None, true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let vol0 = v["vol0"].as_object().unwrap();
    assert_eq!(vol0.len(), SAMPLE.lines().count());
    assert_eq!(vol0["state"], "enabled");
    assert_eq!(vol0["log_medium"], "pmem");
    assert_eq!(vol0["log_used_bytes"], 12_582_912);
    assert_eq!(vol0["replay_duration_us"], 251_000);
    assert_eq!(v["vol1"]["replay_state"], "none");
    assert_eq!(v.as_object().unwrap().len(), 2);
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn status_of_a_malformed_file_is_refused() {
    let root = tmp("status-bad");
    fs::create_dir_all(root.join("vol0")).unwrap();
    fs::write(root.join("vol0/status"), "state enabled\nwrites\n").unwrap();
    let e = swarmctl::status(&Configfs::new(&root), None, false).unwrap_err();
    assert!(e.contains("vol0: status line 2"), "{e}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn remove_aborts_a_replay_first() {
    let root = tmp("remove-replaying");
    let dir = root.join("vol0");
    fs::create_dir_all(&dir).unwrap();
    // During a replay `enable` reads 0; `status` says so. (No newline
    // here: the tool's write of 0 adds one.)
    fs::write(dir.join("enable"), "0").unwrap();
    fs::write(
        dir.join("status"),
        "state replaying\nreplay_state running\n",
    )
    .unwrap();
    let c = Configfs::new(&root);
    assert!(c.active("vol0"));
    let e = c.remove("vol0").unwrap_err();
    assert!(e.contains("vol0: cannot remove"), "{e}");
    // The 0 that aborts the replay was written.
    assert_eq!(read(&dir.join("enable")), "0\n");
    fs::write(dir.join("status"), "state disabled\n").unwrap();
    assert!(!c.active("vol0"));
    fs::remove_dir_all(root).unwrap();
}
