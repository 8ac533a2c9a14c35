// SPDX-License-Identifier: GPL-2.0

//! Boot integration: `swarmlog.conf` parsed and refused line by line,
//! `assemble` against a temporary configfs tree (made, already enabled,
//! other devices, a failed enable that does not stop the others),
//! `config-line`, `disable --all` and `udev-name`; and the shipped
//! `samples/boot/swarmlog.conf`.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use swarmctl::assemble::{assemble, config_lines, disable_all, udev_name};
use swarmctl::conf::{parse, VolumeConf};
use swarmctl::configfs::Configfs;

mod common;
use common::{read, tmp};

const CONF: &str = "\
# swarmlog volumes
VOLUME vol0 log=/dev/pmem0 array=/dev/md0   # the pmem one

VOLUME vol1 array=/dev/md1 log=/dev/nvme1n1 swarm_width=256
  VOLUME vol2 log=/dev/vdc array=/dev/md2
";

#[test]
fn the_file_gives_its_volumes() {
    let v = parse(CONF).unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(
        v[1],
        VolumeConf {
            name: "vol1".into(),
            log: "/dev/nvme1n1".into(),
            array: "/dev/md1".into(),
            swarm_width: Some(256),
        }
    );
    assert_eq!(v[0].swarm_width, None);
    assert_eq!(
        v[1].line(),
        "VOLUME vol1 log=/dev/nvme1n1 array=/dev/md1 swarm_width=256"
    );
    assert_eq!(parse("# nothing\n\n").unwrap(), []);
}

#[test]
fn errors_name_their_lines() {
    let e = parse(
        "VOLUME a log=/dev/x array=/dev/y\n\
         VOLUME b log=/dev/x array=/dev/y colour=red\n\
         VOLUME c log=/dev/x log=/dev/z array=/dev/y\n\
         VOLUME a log=/dev/p array=/dev/q\n\
         ARRAY /dev/md0\n\
         VOLUME d log=/dev/x\n\
         VOLUME e log=dev/x array=/dev/y\n\
         VOLUME f log=/dev/x array=/dev/y swarm_width=0\n\
         VOLUME g/h log=/dev/x array=/dev/y\n\
         VOLUME\n\
         VOLUME i log /dev/x\n",
    )
    .unwrap_err();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "line 2: unknown key \"colour\" (log, array, swarm_width)",
            "line 3: log given twice",
            "line 4: volume a already listed on line 1",
            "line 5: unknown keyword \"ARRAY\" (VOLUME)",
            "line 6: d: no array=",
            "line 7: log=dev/x: not an absolute device path",
            "line 8: swarm_width=0: not a number in 1..=4096",
            "line 9: \"g/h\": not a volume name (letters, digits and -_.:+@)",
            "line 10: VOLUME without a name",
            "line 11: \"log\": not key=value",
        ]
    );
}

#[test]
fn the_sample_file_lists_nothing_and_its_examples_parse() {
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../samples/boot/swarmlog.conf"
    );
    // As shipped it lists no volume; its examples are valid lines.
    assert_eq!(swarmctl::conf::load(Path::new(p)).unwrap(), []);
    let text = read(Path::new(p));
    let examples: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("#VOLUME "))
        .map(|l| format!("VOLUME {l}\n"))
        .collect();
    assert_eq!(parse(&examples).unwrap().len(), 2);
}

#[test]
fn assemble_makes_enables_skips_and_goes_on_after_a_failure() {
    let root = tmp("assemble");
    let c = Configfs::new(&root);
    // vol1 exists, enabled; vol2 exists with another log; vol3's enable
    // is refused (a directory in its place).
    for (name, state, log) in [
        ("vol1", "enabled", "/dev/nvme1n1"),
        ("vol2", "configured", "/dev/vdd"),
        ("vol3", "unconfigured", ""),
    ] {
        let d = root.join(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("status"),
            format!("state {state}\nreplay_state none\n"),
        )
        .unwrap();
        fs::write(d.join("log"), format!("{log}\n")).unwrap();
        fs::write(d.join("array"), "\n").unwrap();
        fs::write(d.join("disk"), "swarmlog1\n").unwrap();
    }
    fs::create_dir_all(root.join("vol3/enable")).unwrap();
    let conf = format!(
        "{CONF}VOLUME vol3 log=/dev/vde array=/dev/md3\nVOLUME vol4 log=/dev/vdf array=/dev/md4\n"
    );
    let vols = parse(&conf).unwrap();
    let res = assemble(&c, &vols, None).unwrap();
    assert_eq!(res.len(), 5);
    assert_eq!(res[0], Ok("vol0: created and enabled".into()));
    assert_eq!(read(&root.join("vol0/log")), "/dev/pmem0\n");
    assert_eq!(read(&root.join("vol0/array")), "/dev/md0\n");
    assert_eq!(read(&root.join("vol0/enable")), "1\n");
    assert!(!root.join("vol0/format").exists() && !root.join("vol0/swarm_width").exists());
    assert_eq!(
        res[1],
        Ok("vol1: already enabled as /dev/swarmlog1, left as it is".into())
    );
    assert!(!root.join("vol1/swarm_width").exists());
    let e = res[2].clone().unwrap_err();
    assert!(
        e.starts_with("vol2: the volume exists with log /dev/vdd, the configuration says /dev/vdc"),
        "{e}"
    );
    assert!(!root.join("vol2/enable").exists());
    let e = res[3].clone().unwrap_err();
    assert!(e.starts_with("vol3: writing \"1\" to enable failed"), "{e}");
    assert!(e.contains("left in place"), "{e}");
    assert_eq!(read(&root.join("vol3/array")), "/dev/md3\n");
    assert_eq!(res[4], Ok("vol4: created and enabled".into()));
    // One volume by name; one not in the file.
    fs::write(root.join("vol1/status"), "state configured\n").unwrap();
    let res = assemble(&c, &vols, Some("vol1")).unwrap();
    assert_eq!(res, [Ok("vol1: enabled as /dev/swarmlog1".into())]);
    assert_eq!(read(&root.join("vol1/swarm_width")), "256\n");
    assert_eq!(read(&root.join("vol1/array")), "/dev/md1\n");
    let e = assemble(&c, &vols, Some("vol9")).unwrap_err();
    assert_eq!(e, "vol9: not listed in the configuration file");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn config_line_udev_name_and_disable_all() {
    let root = tmp("config-line");
    let c = Configfs::new(&root);
    for (name, log, width, disk, enable) in [
        ("vol0", "/dev/pmem0", "64", "swarmlog0", "1"),
        ("vol1", "/dev/nvme1n1", "256", "", "0"),
        ("vol2", "", "64", "", "0"),
    ] {
        let d = root.join(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("log"), format!("{log}\n")).unwrap();
        let array = if log.is_empty() { "\n" } else { "/dev/md0\n" };
        fs::write(d.join("array"), array).unwrap();
        fs::write(d.join("swarm_width"), format!("{width}\n")).unwrap();
        fs::write(d.join("disk"), format!("{disk}\n")).unwrap();
        fs::write(d.join("enable"), format!("{enable}\n")).unwrap();
    }
    assert_eq!(
        config_lines(&c, None).unwrap(),
        "VOLUME vol0 log=/dev/pmem0 array=/dev/md0\n\
         VOLUME vol1 log=/dev/nvme1n1 array=/dev/md0 swarm_width=256\n\
         # vol2: log or array not set\n"
    );
    // What config-line prints, assemble reads back.
    let back = parse(&config_lines(&c, Some("vol1")).unwrap()).unwrap();
    assert_eq!(back[0].swarm_width, Some(256));
    assert!(config_lines(&c, Some("vol2")).is_err());
    assert!(config_lines(&c, Some("nope"))
        .unwrap_err()
        .contains("no such volume"));
    let none = Duration::ZERO;
    assert_eq!(udev_name(&c, "swarmlog0", 1, none), Ok("vol0\n".into()));
    let e = udev_name(&c, "swarmlog7", 2, Duration::from_millis(1)).unwrap_err();
    assert_eq!(e, "swarmlog7: no volume has this disk");
    assert_eq!(disable_all(&c).unwrap(), [Ok("vol0: disabled".into())]);
    assert_eq!(read(&root.join("vol0/enable")), "0\n");
    assert_eq!(disable_all(&c).unwrap(), []);
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn the_commands_exit_non_zero_when_a_volume_failed() {
    let root = tmp("assemble-cli");
    let conf = root.join("swarmlog.conf");
    let cfs = root.join("configfs");
    fs::create_dir_all(cfs.join("bad/enable")).unwrap();
    for (attr, text) in [
        ("status", "state unconfigured\n"),
        ("log", "\n"),
        ("array", "\n"),
    ] {
        fs::write(cfs.join("bad").join(attr), text).unwrap();
    }
    fs::write(
        &conf,
        "VOLUME good log=/dev/a array=/dev/b\nVOLUME bad log=/dev/c array=/dev/d\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_swarmctl"))
            .args([
                "--configfs",
                cfs.to_str().unwrap(),
                "--config",
                conf.to_str().unwrap(),
            ])
            .args(args)
            .output()
            .unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (o.status.code().unwrap(), text(o.stdout), text(o.stderr))
    };
    let (code, out, err) = run(&["assemble", "--scan"]);
    assert_eq!(
        (code, out.as_str()),
        (1, "good: created and enabled\n"),
        "{err}"
    );
    assert!(
        err.starts_with("swarmctl: bad: writing \"1\" to enable failed"),
        "{err}"
    );
    assert!(err.ends_with("swarmctl: 1 of 2 volumes failed\n"), "{err}");
    fs::write(cfs.join("good/status"), "state enabled\n").unwrap();
    let (code, out, _) = run(&["assemble", "good"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "good: already enabled, left as it is\n")
    );
    assert_eq!(run(&["assemble"]).0, 2);
    assert_eq!(run(&["assemble", "good", "--scan"]).0, 2);
    let (code, out, _) = run(&["disable", "--all"]);
    assert_eq!((code, out.as_str()), (0, "good: disabled\n"));
    assert_eq!(run(&["disable"]).0, 2);
    fs::write(&conf, "VOLUME x log=/dev/a array=/dev/b mode=fast\n").unwrap();
    let (code, _, err) = run(&["assemble", "--scan"]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "swarmctl: {}: line 1: unknown key \"mode\" (log, array, swarm_width)\n",
            conf.display()
        )
    );
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn the_sample_unit_and_rules_run_commands_that_exist() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/boot");
    let unit = read(&Path::new(dir).join("swarmlog-assemble.service"));
    let rules = read(&Path::new(dir).join("60-swarmlog.rules"));
    let mut cmds: Vec<String> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart=").or(l.strip_prefix("ExecStop=")))
        .map(str::to_string)
        .collect();
    let program = rules
        .lines()
        .find_map(|l| l.strip_prefix("PROGRAM==\""))
        .and_then(|l| l.split_once('"'))
        .map(|(cmd, _)| cmd.replace("%k", "swarmlog0"))
        .unwrap();
    cmds.push(program);
    assert_eq!(cmds.len(), 3, "{cmds:?}");
    let root = tmp("samples");
    let conf = root.join("swarmlog.conf");
    fs::write(&conf, "# none\n").unwrap();
    fs::create_dir_all(root.join("cfs/vol0")).unwrap();
    fs::write(root.join("cfs/vol0/disk"), "swarmlog0\n").unwrap();
    for cmd in cmds {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        assert_eq!(args[0], "/usr/sbin/swarmctl");
        let o = Command::new(env!("CARGO_BIN_EXE_swarmctl"))
            .args(["--configfs", root.join("cfs").to_str().unwrap()])
            .args(["--config", conf.to_str().unwrap()])
            .args(&args[1..])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{cmd}: {o:?}");
    }
    fs::remove_dir_all(root).unwrap();
}
