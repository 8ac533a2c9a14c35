// SPDX-License-Identifier: GPL-2.0

//! swarmctl, the operator's command line for swarmlog: inspect a log or an
//! array offline with the module's own format code (`swarmlog-format`), and
//! make, enable, disable, remove and watch volumes through configfs,
//! assemble them at boot from `/etc/swarmlog.conf`, and draw a replay
//! trace. The command line itself is in `main.rs`; each command here
//! returns what it prints, or the message of its failure.

pub mod assemble;
pub mod conf;
pub mod configfs;
pub mod human;
pub mod inspect;
pub mod status;
pub mod timeline;
pub mod watch;
pub mod watch_loop;

use std::path::Path;

use configfs::Configfs;
use serde_json::{Map, Value};

/// `swarmctl inspect`: the log on `path`; `records` lists them, and
/// `check_all` checks every block-log record's data.
pub fn inspect_log(
    path: &Path,
    (records, check_all): (bool, bool),
    json: bool,
) -> Result<String, String> {
    let (f, size) = inspect::open(path)?;
    inspect::log(&f, size, (records, check_all), json)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `swarmctl inspect-array`: the array on `path`.
pub fn inspect_array(
    path: &Path,
    committed: Option<u64>,
    all_tables: bool,
    json: bool,
) -> Result<String, String> {
    let (f, size) = inspect::open(path)?;
    inspect::array(&f, size, (committed, all_tables), json)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `swarmctl status`: volume `name`, or every volume.
pub fn status(c: &Configfs, name: Option<&str>, json: bool) -> Result<String, String> {
    let names = match name {
        Some(n) => vec![n.to_string()],
        None => c.volumes()?,
    };
    let mut text = String::new();
    let mut all = Map::new();
    for n in &names {
        let s = status::Status::parse(&c.read(n, "status")?).map_err(|e| format!("{n}: {e}"))?;
        if json {
            all.insert(n.clone(), s.to_json());
        } else {
            // `disk` is empty unless enabled; an old module may lack it.
            let disk = c.read(n, "disk").unwrap_or_default();
            text += &status::human(n, &s, &disk);
        }
    }
    if json {
        return Ok(format!("{:#}\n", Value::Object(all)));
    }
    if names.is_empty() {
        text = "no volumes\n".into();
    }
    Ok(text)
}

/// `swarmctl timeline`: draws trace file `trace` (its first `limit`
/// messages) into `out`, by default `TRACE.svg`.
pub fn timeline(trace: &Path, out: Option<&Path>, limit: usize) -> Result<String, String> {
    let text = std::fs::read_to_string(trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    let t = timeline::parse(&text, limit).map_err(|e| format!("{}: {e}", trace.display()))?;
    if t.events.is_empty() {
        return Err(format!("{}: no events", trace.display()));
    }
    let out = out.map_or_else(
        || {
            let mut p = trace.as_os_str().to_owned();
            p.push(".svg");
            std::path::PathBuf::from(p)
        },
        Path::to_path_buf,
    );
    std::fs::write(&out, t.svg()).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(format!(
        "{}: {} messages over {:.1} ms\n",
        out.display(),
        t.events.len(),
        t.end_ns() as f64 / 1e6
    ))
}
