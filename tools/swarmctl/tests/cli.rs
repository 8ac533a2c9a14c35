// SPDX-License-Identifier: GPL-2.0

//! The `swarmctl` binary end to end: an image file inspected read-only,
//! and the exit status and message of bad input.

use std::fs;
use std::process::Command;

use swarmlog_format::image::{LogImage, RecordKind};

fn swarmctl(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_swarmctl"))
        .args(args)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (o.status.code().unwrap(), text(o.stdout), text(o.stderr))
}

#[test]
fn inspect_an_image_file_without_changing_it() {
    let mut img = LogImage::pmem(4 << 20, 99).unwrap();
    img.append(RecordKind::Write, 8, 2, 1);
    let p = std::env::temp_dir().join(format!("swarmctl-cli-{}.img", std::process::id()));
    fs::write(&p, img.bytes()).unwrap();
    let path = p.to_str().unwrap();
    let (code, out, _) = swarmctl(&["inspect", path, "--json", "--records"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["scan"]["list"][0]["sector"], 8);
    assert_eq!(fs::read(&p).unwrap(), img.bytes());
    fs::remove_file(&p).unwrap();
}

#[test]
fn bad_input_exits_non_zero_with_a_message() {
    let (code, out, err) = swarmctl(&["inspect", "/nonexistent/log.img"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.starts_with("swarmctl: /nonexistent/log.img: "), "{err}");
    let (code, _, err) = swarmctl(&["inspect", "/dev/null"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read 64 bytes at offset 0"), "{err}");
    let (code, _, _) = swarmctl(&["inspect-array", "/dev/null", "--cp-generation", "x"]);
    assert_eq!(code, 2);
    // create checks its devices before it makes anything.
    for (log, why) in [
        ("/dev/nosuch", "/dev/nosuch: No such file"),
        ("/dev/null", "/dev/null: not a block device"),
    ] {
        let args = ["--configfs", "/nonexistent", "create", "v0", "--log", log];
        let (code, _, err) = swarmctl(&[&args[..], &["--array", "/dev/null"]].concat());
        assert_eq!(code, 1);
        assert!(err.contains(why), "{err}");
    }
    let (code, _, err) = swarmctl(&["--configfs", "/nonexistent", "status"]);
    assert_eq!(code, 1);
    assert!(err.contains("is swarmlog loaded"), "{err}");
}
