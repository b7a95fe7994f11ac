//! Field-by-field reading of a TOML tree that keeps going after a mistake.
//!
//! serde stops at the first bad field; an operator fixing a config wants
//! every problem at once. `Section` reads one field at a time, records
//! `path: reason` for each failure (including keys nobody asked for) and
//! returns a default so reading can go on. The caller turns a non-empty
//! problem list into an error.

use serde::de::DeserializeOwned;
use std::collections::BTreeSet;
use toml::{Table, Value};

/// One problem with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

pub struct Section<'a> {
    path: String,
    table: Table,
    used: BTreeSet<String>,
    issues: &'a mut Vec<Issue>,
    /// The environment `*_env` settings read from (the process's, or a
    /// test's own).
    env: &'a Env,
}

/// Environment variables by name.
pub type Env = std::collections::BTreeMap<String, String>;

fn join(path: &str, key: &str) -> String {
    if key.is_empty() {
        path.to_owned()
    } else if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Section<'a> {
    pub fn root(table: Table, issues: &'a mut Vec<Issue>, env: &'a Env) -> Self {
        Section {
            path: String::new(),
            table,
            used: BTreeSet::new(),
            issues,
            env,
        }
    }

    /// An environment variable, for `*_env` settings.
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub fn problem(&mut self, key: &str, reason: impl Into<String>) {
        let path = self.path_of(key);
        self.issues.push(Issue {
            path,
            reason: reason.into(),
        });
    }

    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    fn take(&mut self, key: &str) -> Option<Value> {
        self.used.insert(key.to_owned());
        self.table.get(key).cloned()
    }

    fn convert<T: DeserializeOwned>(&mut self, key: &str, v: Value) -> Option<T> {
        match T::deserialize(v) {
            Ok(t) => Some(t),
            Err(e) => {
                let msg = e.message().trim().to_owned();
                self.problem(key, msg);
                None
            }
        }
    }

    /// An optional field; a present but bad value is recorded and gives `None`.
    pub fn opt<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let v = self.take(key)?;
        self.convert(key, v)
    }

    /// A field with a default.
    pub fn or<T: DeserializeOwned>(&mut self, key: &str, default: T) -> T {
        self.opt(key).unwrap_or(default)
    }

    /// A field that must be present.
    pub fn req<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        match self.take(key) {
            Some(v) => self.convert(key, v),
            None => {
                self.problem(key, "is required");
                None
            }
        }
    }

    /// A nested table (absent → empty); calls `f` then reports unknown keys.
    pub fn sub<T>(&mut self, key: &str, f: impl FnOnce(&mut Section<'_>) -> T) -> T {
        let table = match self.take(key) {
            Some(Value::Table(t)) => t,
            Some(_) => {
                self.problem(key, "must be a table");
                Table::new()
            }
            None => Table::new(),
        };
        let path = self.path_of(key);
        let mut s = Section {
            path,
            table,
            used: BTreeSet::new(),
            issues: self.issues,
            env: self.env,
        };
        let out = f(&mut s);
        s.finish();
        out
    }

    /// The keys of a table-of-tables (e.g. `[tiers.*]`), each read by `f`.
    pub fn each<T>(&mut self, key: &str, mut f: impl FnMut(&str, &mut Section<'_>) -> T) -> Vec<T> {
        let table = match self.take(key) {
            Some(Value::Table(t)) => t,
            Some(_) => {
                self.problem(key, "must be a table");
                return Vec::new();
            }
            None => return Vec::new(),
        };
        let base = self.path_of(key);
        let mut out = Vec::new();
        for (name, v) in table {
            let path = join(&base, &name);
            let Value::Table(t) = v else {
                self.issues.push(Issue {
                    path,
                    reason: "must be a table".into(),
                });
                continue;
            };
            let mut s = Section {
                path,
                table: t,
                used: BTreeSet::new(),
                issues: self.issues,
                env: self.env,
            };
            out.push(f(&name, &mut s));
            s.finish();
        }
        out
    }

    /// An array of tables (`[[auth.issuers]]`), each read by `f`.
    pub fn list<T>(&mut self, key: &str, mut f: impl FnMut(&mut Section<'_>) -> T) -> Vec<T> {
        let items = match self.take(key) {
            Some(Value::Array(a)) => a,
            Some(_) => {
                self.problem(key, "must be an array of tables");
                return Vec::new();
            }
            None => return Vec::new(),
        };
        let base = self.path_of(key);
        let mut out = Vec::new();
        for (i, v) in items.into_iter().enumerate() {
            let path = format!("{base}[{i}]");
            let Value::Table(t) = v else {
                self.issues.push(Issue {
                    path,
                    reason: "must be a table".into(),
                });
                continue;
            };
            let mut s = Section {
                path,
                table: t,
                used: BTreeSet::new(),
                issues: self.issues,
                env: self.env,
            };
            out.push(f(&mut s));
            s.finish();
        }
        out
    }

    /// Reports every key that no reader asked for (typos, stale settings).
    pub fn finish(&mut self) {
        let unknown: Vec<String> = self
            .table
            .keys()
            .filter(|k| !self.used.contains(*k))
            .cloned()
            .collect();
        for k in unknown {
            self.problem(&k, "unknown key");
        }
    }
}

/// Applies `PLAYGATE__SECTION__KEY=value` overrides to the tree. Values are
/// read as TOML when they parse as a TOML value (`8080`, `true`,
/// `["a","b"]`), otherwise as a plain string.
pub fn apply_env(table: &mut Table, vars: impl IntoIterator<Item = (String, String)>) {
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("PLAYGATE__") else {
            continue;
        };
        let keys: Vec<String> = rest.split("__").map(|k| k.to_ascii_lowercase()).collect();
        if keys.iter().any(|k| k.is_empty()) {
            continue;
        }
        let value = parse_env_value(&raw);
        set_path(table, &keys, value);
    }
}

fn parse_env_value(raw: &str) -> Value {
    let doc = format!("v = {raw}");
    match doc.parse::<Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| Value::String(raw.to_owned())),
        Err(_) => Value::String(raw.to_owned()),
    }
}

fn set_path(table: &mut Table, keys: &[String], value: Value) {
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut cur = table;
    for k in parents {
        let entry = cur
            .entry(k.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(t) = entry else { return };
        cur = t;
    }
    cur.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_problem() {
        let t: Table = r#"
            a = "x"
            typo = 1
            [s]
            n = "nope"
            extra = true
        "#
        .parse()
        .unwrap();
        let mut issues = Vec::new();
        let env = Env::new();
        let mut root = Section::root(t, &mut issues, &env);
        let a: u32 = root.or("a", 1);
        let n: u32 = root.sub("s", |s| s.or("n", 2));
        let _: Option<String> = root.req("missing");
        root.finish();
        assert_eq!((a, n), (1, 2));
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(paths, ["a", "s.n", "s.extra", "missing", "typo"]);
    }

    #[test]
    fn env_overrides_nested_keys() {
        let mut t: Table = "[server]\nlisten = \"127.0.0.1:1\"".parse().unwrap();
        apply_env(
            &mut t,
            [
                (
                    "PLAYGATE__SERVER__LISTEN".to_owned(),
                    "0.0.0.0:9".to_owned(),
                ),
                (
                    "PLAYGATE__SERVER__MAX_CONCURRENCY".to_owned(),
                    "7".to_owned(),
                ),
                (
                    "PLAYGATE__NEW__LIST".to_owned(),
                    "[\"a\", \"b\"]".to_owned(),
                ),
                ("OTHER".to_owned(), "x".to_owned()),
            ],
        );
        assert_eq!(t["server"]["listen"].as_str(), Some("0.0.0.0:9"));
        assert_eq!(t["server"]["max_concurrency"].as_integer(), Some(7));
        assert_eq!(t["new"]["list"].as_array().map(|a| a.len()), Some(2));
    }
}
