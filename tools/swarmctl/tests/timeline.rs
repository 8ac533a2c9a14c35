// SPDX-License-Identifier: GPL-2.0

//! `swarmctl timeline`: a small trace drawn (its spans and ticks counted
//! in the SVG), the message limit, and malformed traces refused with the
//! line's number.

use std::fs;
use std::process::Command;

use swarmctl::timeline::parse;

/// Two messages of swarm 1 (one suspended once, then retransferred) and
/// one of swarm 2, a message of swarm 2 listed first.
const TRACE: &str = "\
# swarmlog replay trace: 14 events, 0 dropped
# time_ns swarm seq state
100 2 9 NEW
200 1 1 NEW
300 1 2 NEW
400 1 1 LOADING
500 1 2 LOADING
900 1 1 LOADED
1000 1 2 SUSPENDED
1100 1 1 MODIFIED
1200 1 2 LOADING
1500 1 2 LOADED
1600 1 2 MODIFIED

1700 2 9 LOADING
1900 2 9 LOADED
2000 2 9 MODIFIED
";

fn count(svg: &str, what: &str) -> usize {
    svg.matches(what).count()
}

#[test]
fn a_small_trace_gives_its_spans_and_ticks() {
    let t = parse(TRACE, 400).unwrap();
    assert_eq!(t.events.len(), 3);
    assert_eq!(t.end_ns(), 2000);
    let svg = t.svg();
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1000\" height=\"58\"")
    );
    assert!(
        svg.contains(">replay timeline: 3 messages, 0.0 ms (blue"),
        "{svg}"
    );
    // LOADING spans: 1/1, 1/2 twice, 2/9; LOADED: one each; SUSPENDED: 1/2.
    assert_eq!(count(&svg, "fill=\"#3465a4\""), 4);
    assert_eq!(count(&svg, "fill=\"#babdb6\""), 3);
    assert_eq!(count(&svg, "fill=\"#cc0000\""), 1);
    assert_eq!(count(&svg, "fill=\"black\""), 3);
    assert_eq!(count(&svg, "<rect "), 11);
    // Rows in log order: swarm 1 first although 2/9 came first; 1/1's
    // LOAD from 400 to 900 ns of 2000.
    assert!(
        svg.contains("<rect x=\"246.0\" y=\"20\" width=\"232.5\" height=\"5\" fill=\"#3465a4\"/>"),
        "{svg}"
    );
    assert!(
        svg.contains("<rect x=\"990.0\" y=\"32\" width=\"1\" height=\"5\" fill=\"black\"/>"),
        "{svg}"
    );
    assert!(svg.ends_with("0.0 ms</text>\n</svg>\n"));
}

#[test]
fn only_the_first_messages_are_drawn() {
    let t = parse(TRACE, 2).unwrap();
    let keys: Vec<_> = t.events.keys().copied().collect();
    assert_eq!(keys, [(1, 1), (2, 9)]);
    assert_eq!(t.end_ns(), 2000);
}

#[test]
fn a_malformed_line_is_refused_with_its_number() {
    let bad = |text: &str| parse(text, 400).unwrap_err();
    let e = bad("# header\n100 1 1 NEW\n200 1 LOADING\n");
    assert_eq!(e, "line 3: not `time swarm seq STATE`: \"200 1 LOADING\"");
    assert!(bad("100 1 x NEW\n").starts_with("line 1: seq \"x\" is not a number"));
    assert!(bad("\n\n-5 1 1 NEW\n").starts_with("line 3: time \"-5\""));
    assert!(bad("100 1 1 DONE\n").contains("unknown state \"DONE\""));
}

#[test]
fn the_command_writes_the_svg_or_names_the_bad_line() {
    let dir = std::env::temp_dir().join(format!("swarmctl-{}-timeline", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let (trace, out) = (dir.join("trace"), dir.join("t.svg"));
    fs::write(&trace, TRACE).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_swarmctl"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&[
        "timeline",
        trace.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let said = String::from_utf8(o.stdout).unwrap();
    assert_eq!(said, format!("{}: 3 messages over 0.0 ms\n", out.display()));
    assert_eq!(count(&fs::read_to_string(&out).unwrap(), "<rect "), 11);
    // Without -o: TRACE.svg.
    assert_eq!(
        run(&["timeline", trace.to_str().unwrap()]).status.code(),
        Some(0)
    );
    assert!(dir.join("trace.svg").is_file());
    fs::write(&trace, "100 1 1 NEW\n200 1 1\n").unwrap();
    let o = run(&["timeline", trace.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.starts_with(&format!("swarmctl: {}: line 2: ", trace.display())),
        "{err}"
    );
    fs::write(&trace, "# nothing\n").unwrap();
    let err = String::from_utf8(run(&["timeline", trace.to_str().unwrap()]).stderr).unwrap();
    assert!(err.ends_with(": no events\n"), "{err}");
    fs::remove_dir_all(dir).unwrap();
}
