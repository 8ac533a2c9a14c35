// SPDX-License-Identifier: GPL-2.0

//! `swarmctl status`: a volume's `status` attribute (one `key value` per
//! line, `rust/device/stats.rs` and `rust/admin/configfs.rs`) parsed, shown
//! with human units (keys ending in `_bytes` as sizes, `_us` as durations)
//! or as JSON with every key, numbers as numbers.

use serde_json::{Map, Value};

use crate::human::{bytes, micros, Report};

/// A parsed `status` file: its keys and values, in their order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status(pub Vec<(String, String)>);

impl Status {
    /// Parses `key value` lines; a line without a value, or blank, is
    /// refused with its number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            match line.split_once(' ') {
                Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                    out.push((k.to_string(), v.to_string()));
                }
                _ => return Err(format!("status line {}: not `key value`: {line:?}", i + 1)),
            }
        }
        Ok(Self(out))
    }

    /// The value of `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` as a number.
    #[must_use]
    pub fn num(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }

    /// Every key, numbers as JSON numbers.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.0 {
            let val = v
                .parse::<u64>()
                .map(Value::from)
                .or_else(|_| v.parse::<i64>().map(Value::from))
                .unwrap_or_else(|_| Value::from(v.as_str()));
            m.insert(k.clone(), val);
        }
        Value::Object(m)
    }
}

/// A value for a person: sizes and durations in their units.
fn human_value(key: &str, v: &str) -> String {
    match v.parse::<u64>() {
        Ok(n) if key.ends_with("_bytes") => bytes(n),
        Ok(n) if key.ends_with("_us") => micros(n),
        _ => v.to_string(),
    }
}

/// The headline of a volume: its state, and what matters most of it.
fn headline(name: &str, s: &Status, disk: &str) -> String {
    let state = s.get("state").unwrap_or("unknown");
    let mut h = format!("{name}: {state}");
    if !disk.is_empty() {
        h += &format!(", /dev/{disk}");
    }
    if let (Some(used), Some(cap)) = (s.num("log_used_bytes"), s.num("log_capacity_bytes")) {
        if cap > 0 {
            let pct = used as f64 * 100.0 / cap as f64;
            h += &format!(", log {} of {} used ({pct:.1}%)", bytes(used), bytes(cap));
        }
    }
    if let Some(r) = s.get("replay_state") {
        h += &format!(", replay {r}");
    }
    h
}

/// Volume `name`'s status (with its `disk`) for a person: the headline,
/// then every key with its value in human units.
#[must_use]
pub fn human(name: &str, s: &Status, disk: &str) -> String {
    let mut r = Report::default();
    r.section(headline(name, s, disk));
    for (k, v) in &s.0 {
        r.line(k.as_str(), human_value(k, v));
    }
    r.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_line_without_value() {
        assert!(Status::parse("state enabled\nwrites\n").is_err());
        assert!(Status::parse("state enabled\n\n").is_err());
        assert_eq!(Status::parse("").map(|s| s.0.len()), Ok(0));
    }

    #[test]
    fn values_take_their_units() {
        assert_eq!(human_value("log_used_bytes", "1048576"), "1.0 MiB");
        assert_eq!(human_value("cp_duration_us", "2500"), "2.5 ms");
        assert_eq!(human_value("writes", "12"), "12");
        assert_eq!(human_value("log_medium", "pmem"), "pmem");
    }
}
