//! Reading one TOML table of the configuration. A section's reader takes each key as it reads
//! it; what no reader took is reported at its place, with did-you-mean against that table's own
//! keys (cargo-deny's `TableHelper` pattern). So a key is written once in the code, and the
//! keys each section took are recorded: that is how the documentation test (docs/config.md
//! names every key the reader accepts, and no other) knows them.
//!
//! Rule for section readers: take every key of the section whatever the others say (a key
//! that does not apply is taken with [`Reader::forbid`]), so a section read once, even empty,
//! has taken all its keys.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};
use warden_engine::Score;

use crate::diag::{Diagnostics, did_you_mean};
use crate::duration;

pub(super) type Table<'i> = DeTable<'i>;
pub(super) type Value<'i> = Spanned<DeValue<'i>>;
pub(super) type Span = Range<usize>;

/// A kind of table: `name` as docs/config.md titles it, `what` as messages call it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Section {
    pub name: &'static str,
    pub what: &'static str,
}

impl Section {
    pub const fn new(name: &'static str, what: &'static str) -> Section {
        Section { name, what }
    }
}

/// One table being read.
pub(super) struct Tbl<'a, 'i> {
    t: &'a Table<'i>,
    /// The table's place: its first key, else where its value is written.
    pub span: Span,
    taken: RefCell<Vec<&'static str>>,
    /// Keys taken as not applying here (not offered as "allowed").
    forbidden: RefCell<Vec<&'static str>>,
}

impl<'a, 'i> Tbl<'a, 'i> {
    /// Takes `key`: it belongs to this section, whether this table has it or not.
    pub fn take(&self, key: &'static str) -> Option<&'a Value<'i>> {
        let mut taken = self.taken.borrow_mut();
        if !taken.contains(&key) {
            taken.push(key);
        }
        self.t.get(key)
    }

    /// The span of `key`'s value, or of the table when it has none.
    pub fn span_of(&self, key: &'static str) -> Span {
        self.take(key).map_or(self.span.clone(), |v| v.span())
    }
}

/// Diagnostics of one file and the keys each section took.
pub(super) struct Reader<'s> {
    pub d: Diagnostics<'s>,
    /// Per section name, the keys its reader took, in the order taken.
    pub keys: BTreeMap<&'static str, Vec<&'static str>>,
    /// What the readers found that the shell checks on the machine.
    pub found: super::Found,
}

impl<'s> Reader<'s> {
    pub fn new(d: Diagnostics<'s>) -> Reader<'s> {
        Reader {
            d,
            keys: BTreeMap::new(),
            found: super::Found::default(),
        }
    }

    /// Reads `t` as a `section` with `f`, then reports every key `f` did not take. `at` is
    /// where the table is written (its place when it is empty).
    pub fn section<'a, 'i, R>(
        &mut self,
        t: &'a Table<'i>,
        at: Span,
        section: Section,
        f: impl FnOnce(&mut Self, &Tbl<'a, 'i>) -> R,
    ) -> R {
        let span = t.iter().next().map_or(at, |(k, _)| k.span());
        let tbl = Tbl {
            t,
            span,
            taken: RefCell::new(Vec::new()),
            forbidden: RefCell::new(Vec::new()),
        };
        let out = f(self, &tbl);
        let taken = tbl.taken.into_inner();
        let forbidden = tbl.forbidden.into_inner();
        let allowed: Vec<&str> = taken
            .iter()
            .copied()
            .filter(|k| !forbidden.contains(k))
            .collect();
        for (k, _) in t.iter() {
            let key: &str = k.get_ref();
            if !taken.contains(&key) {
                let hint = did_you_mean(key, &allowed)
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                self.d.error(
                    k.span(),
                    format!(
                        "unknown key `{key}` in {}{hint} (allowed: {})",
                        section.what,
                        allowed.join(", ")
                    ),
                );
            }
        }
        let known = self.keys.entry(section.name).or_default();
        for k in taken {
            if !known.contains(&k) {
                known.push(k);
            }
        }
        out
    }

    /// Reads the sub-table `key` of `t` (absent: an empty one, so its keys are taken and its
    /// defaults apply) as a `section`.
    pub fn sub<'a, 'i, R>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &'static str,
        section: Section,
        f: impl FnOnce(&mut Self, &Tbl<'_, 'i>) -> R,
    ) -> R {
        let empty = Table::default();
        match self.table(t, key) {
            Some((sub, span)) => self.section(sub, span, section, f),
            None => self.section(&empty, t.span.clone(), section, f),
        }
    }

    /// Reports `key` of `t` as not applying, with the reason, when it is there.
    pub fn forbid(&mut self, t: &Tbl<'_, '_>, key: &'static str, why: &str) {
        t.forbidden.borrow_mut().push(key);
        if let Some(v) = t.take(key) {
            // At the key: the start of the line that sets it.
            let at = key_span(t, key).unwrap_or(v.span());
            self.d
                .error(at, format!("`{key}` does not apply here: {why}"));
        }
    }

    /// A string, number or boolean as text (agent parameters, node attributes); anything else
    /// is an error naming `what`.
    pub fn scalar_text(&mut self, v: &Value<'_>, what: &str) -> Option<String> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            DeValue::Integer(i) => Some(i.to_string()),
            DeValue::Float(f) => Some(f.to_string()),
            DeValue::Boolean(b) => Some(b.to_string()),
            other => {
                self.d.error(
                    v.span(),
                    format!(
                        "{what} must be a string, number or boolean, not {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    pub fn type_error(&mut self, v: &Value<'_>, want: &str) {
        self.d.error(
            v.span(),
            format!("expected {want}, found {}", v.get_ref().type_str()),
        );
    }

    pub fn table<'a, 'i>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &'static str,
    ) -> Option<(&'a Table<'i>, Span)> {
        let v = t.take(key)?;
        match v.get_ref() {
            DeValue::Table(sub) => Some((sub, v.span())),
            _ => {
                self.type_error(v, &format!("a table for `{key}`"));
                None
            }
        }
    }

    pub fn array<'a, 'i>(&mut self, t: &Tbl<'a, 'i>, key: &'static str) -> Option<&'a [Value<'i>]> {
        let v = t.take(key)?;
        match v.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.type_error(v, &format!("an array for `{key}`"));
                None
            }
        }
    }

    /// The tables of an array of tables (`[[key]]`), with their places.
    pub fn tables<'a, 'i>(
        &mut self,
        t: &Tbl<'a, 'i>,
        key: &'static str,
    ) -> Vec<(&'a Table<'i>, Span)> {
        let mut out = Vec::new();
        for v in self.array(t, key).unwrap_or_default() {
            match v.get_ref() {
                DeValue::Table(sub) => out.push((sub, v.span())),
                _ => self.type_error(v, &format!("a table in `{key}` (write [[{key}]])")),
            }
        }
        out
    }

    pub fn string(&mut self, t: &Tbl<'_, '_>, key: &'static str) -> Option<(String, Span)> {
        let v = t.take(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), v.span())),
            _ => {
                self.type_error(v, &format!("a string for `{key}`"));
                None
            }
        }
    }

    pub fn required_string(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &'static str,
        what: &str,
    ) -> Option<(String, Span)> {
        if t.take(key).is_none() {
            self.d
                .error(t.span.clone(), format!("{what} needs `{key}`"));
            return None;
        }
        self.string(t, key)
    }

    /// A name other things refer to: non-empty, letters, digits, '_', '-' and '.'.
    pub fn required_name(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &'static str,
        what: &str,
    ) -> Option<(String, Span)> {
        let (s, span) = self.required_string(t, key, what)?;
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !ok {
            self.d.error(
                span,
                format!("bad {key} {s:?}: use letters, digits, '_', '-' and '.'"),
            );
            return None;
        }
        Some((s, span))
    }

    pub fn string_list(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &'static str,
    ) -> Option<Vec<(String, Span)>> {
        let arr = self.array(t, key)?;
        let mut out = Vec::new();
        for v in arr {
            match v.get_ref() {
                DeValue::String(s) => out.push((s.to_string(), v.span())),
                _ => self.type_error(v, &format!("a string in `{key}`")),
            }
        }
        Some(out)
    }

    /// A program and its arguments (`key` = `["/usr/bin/prog", "--flag"]`), with the place of
    /// the program; `what` names the owner when it is required and missing.
    pub fn argv(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &'static str,
        required: Option<&str>,
    ) -> Option<(Vec<String>, Span)> {
        let Some(v) = t.take(key) else {
            if let Some(what) = required {
                self.d.error(
                    t.span.clone(),
                    format!("{what} needs `{key}` (an array like [\"/usr/bin/prog\", \"--flag\"])"),
                );
            }
            return None;
        };
        let list = self.string_list(t, key)?;
        match list.first() {
            None => {
                self.d
                    .error(v.span(), format!("`{key}` must name a program"));
                None
            }
            Some((_, span)) => {
                let span = span.clone();
                Some((list.into_iter().map(|(s, _)| s).collect(), span))
            }
        }
    }

    pub fn boolean(&mut self, t: &Tbl<'_, '_>, key: &'static str) -> Option<bool> {
        let v = t.take(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.type_error(v, &format!("true or false for `{key}`"));
                None
            }
        }
    }

    pub fn keyword<T: Copy + PartialEq + std::fmt::Display + std::str::FromStr>(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &'static str,
        all: &[T],
    ) -> Option<(T, Span)> {
        let v = t.take(key)?;
        self.keyword_value(v, all).map(|k| (k, v.span()))
    }

    pub fn keyword_value<T: Copy + PartialEq + std::fmt::Display + std::str::FromStr>(
        &mut self,
        v: &Value<'_>,
        all: &[T],
    ) -> Option<T> {
        let allowed: Vec<String> = all.iter().map(|x| x.to_string()).collect();
        let DeValue::String(s) = v.get_ref() else {
            self.type_error(v, &format!("one of {}", allowed.join(", ")));
            return None;
        };
        // A word of the type that is not one of `all` here is as unknown as any other.
        match s.parse::<T>().ok().filter(|x| all.contains(x)) {
            Some(x) => Some(x),
            None => {
                let refs: Vec<&str> = allowed.iter().map(String::as_str).collect();
                let hint = did_you_mean(s, &refs)
                    .map(|h| format!("; did you mean {h:?}?"))
                    .unwrap_or_default();
                self.d.error(
                    v.span(),
                    format!(
                        "unknown value {s:?}{hint} (allowed: {})",
                        allowed.join(", ")
                    ),
                );
                None
            }
        }
    }

    pub fn int_value(&mut self, v: &Value<'_>, key: &str) -> Option<i64> {
        match v.get_ref() {
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.d.error(v.span(), format!("`{key}` is out of range"));
                    None
                }
            },
            _ => {
                self.type_error(v, &format!("an integer for `{key}`"));
                None
            }
        }
    }

    /// A table of named values (`attributes`, `utilization`): names as node attributes'
    /// (a bad one is reported as a bad `what` name, `bad_name` saying what they may be), each
    /// value read by `value`; a bad entry is reported at its place and left out.
    pub fn named_values<T>(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &'static str,
        what: &str,
        bad_name: &str,
        mut value: impl FnMut(&mut Self, &str, &Value<'_>) -> Option<T>,
    ) -> Vec<(String, T)> {
        let mut out = Vec::new();
        let Some((table, _)) = self.table(t, key) else {
            return out;
        };
        for (k, v) in table.iter() {
            let name = k.get_ref().to_string();
            if !warden_engine::valid_attribute(&name) {
                self.d
                    .error(k.span(), format!("bad {what} name {name:?}: {bad_name}"));
                continue;
            }
            if let Some(v) = value(self, &name, v) {
                out.push((name, v));
            }
        }
        out
    }

    /// `utilization = { cpu = 2, memory = 2048 }`: capacities (of a node) or what a resource
    /// uses, by name: whole numbers from 0.
    pub fn utilization(&mut self, t: &Tbl<'_, '_>) -> Vec<(String, i64)> {
        let names = "letters, digits, '_', '.', ':', '-'";
        self.named_values(t, "utilization", "utilization", names, |r, name, v| {
            let n = r.int_value(v, name)?;
            if n < 0 {
                r.d.error(v.span(), format!("`{name}` must be 0 or more"));
                return None;
            }
            Some(n)
        })
    }

    pub fn int(&mut self, t: &Tbl<'_, '_>, key: &'static str) -> Option<i64> {
        let v = t.take(key)?;
        self.int_value(v, key)
    }

    pub fn u32_value(&mut self, v: &Value<'_>, key: &str) -> Option<u32> {
        let n = self.int_value(v, key)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                self.d.error(
                    v.span(),
                    format!("`{key}` must be between 0 and {}", u32::MAX),
                );
                None
            }
        }
    }

    pub fn u32(&mut self, t: &Tbl<'_, '_>, key: &'static str) -> Option<u32> {
        let v = t.take(key)?;
        self.u32_value(v, key)
    }

    /// A count that must be at least 1.
    pub fn at_least_one(&mut self, t: &Tbl<'_, '_>, key: &'static str) -> Option<u32> {
        let v = t.take(key)?;
        match self.u32_value(v, key)? {
            0 => {
                self.d
                    .error(v.span(), format!("`{key}` must be at least 1"));
                None
            }
            n => Some(n),
        }
    }

    pub fn duration_value(&mut self, v: &Value<'_>) -> Option<Duration> {
        match v.get_ref() {
            DeValue::String(s) => match duration::parse(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.d.error(v.span(), e);
                    None
                }
            },
            DeValue::Integer(i) => {
                self.d.error(
                    v.span(),
                    format!(
                        "durations are strings with a unit, like \"{}s\"",
                        i.as_str()
                    ),
                );
                None
            }
            DeValue::Float(f) => {
                self.d.error(
                    v.span(),
                    format!(
                        "durations are strings with a unit, like {:?}",
                        duration::suggest_ms(f.to_string().parse().unwrap_or(0.0))
                    ),
                );
                None
            }
            _ => {
                self.type_error(v, "a duration like \"10s\"");
                None
            }
        }
    }

    pub fn duration(&mut self, t: &Tbl<'_, '_>, key: &'static str) -> Option<Duration> {
        let v = t.take(key)?;
        self.duration_value(v)
    }

    pub fn positive_duration(&mut self, t: &Tbl<'_, '_>, key: &'static str) -> Option<Duration> {
        let v = t.take(key)?;
        let d = self.duration_value(v)?;
        if d.is_zero() {
            self.d
                .error(v.span(), format!("`{key}` must be longer than 0"));
            return None;
        }
        Some(d)
    }

    /// A size in bytes (`"10MiB"`, `"512K"`, or an integer) of at least `min` (`min_said` as
    /// the error says it).
    pub fn size(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &'static str,
        min: u64,
        min_said: &str,
    ) -> Option<u64> {
        let v = t.take(key)?;
        let parsed = match v.get_ref() {
            DeValue::String(s) => crate::exec::output::parse_size(s),
            DeValue::Integer(_) => {
                let n = self.int_value(v, key)?;
                u64::try_from(n).map_err(|_| format!("`{key}` must be a positive size"))
            }
            _ => Err(format!("`{key}` is a size, like \"10MiB\"")),
        };
        match parsed {
            Ok(n) if n >= min => Some(n),
            Ok(_) => {
                self.d
                    .error(v.span(), format!("`{key}` must be at least {min_said}"));
                None
            }
            Err(e) => {
                self.d.error(v.span(), e);
                None
            }
        }
    }

    pub fn score_value(&mut self, v: &Value<'_>) -> Option<Score> {
        match v.get_ref() {
            DeValue::String(s) => match s.to_ascii_uppercase().as_str() {
                "INFINITY" | "+INFINITY" => Some(Score::INFINITY),
                "-INFINITY" => Some(Score::MINUS_INFINITY),
                _ => {
                    self.d.error(
                        v.span(),
                        format!("bad score {s:?}: an integer, \"INFINITY\" or \"-INFINITY\""),
                    );
                    None
                }
            },
            DeValue::Integer(_) => self.int_value(v, "score").map(Score::new),
            _ => {
                self.type_error(v, "a score (an integer, \"INFINITY\" or \"-INFINITY\")");
                None
            }
        }
    }

    pub fn score(&mut self, t: &Tbl<'_, '_>, key: &'static str) -> Option<Score> {
        let v = t.take(key)?;
        self.score_value(v)
    }
}

/// The span of `key` itself (not its value) in `t`.
fn key_span(t: &Tbl<'_, '_>, key: &str) -> Option<Span> {
    t.t.iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(k, _)| k.span())
}

/// `; did you mean "x"?` or ` (known: a, b)`, for a name that refers to nothing.
pub(super) fn suggest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let c: Vec<&str> = candidates.collect();
    match did_you_mean(name, &c) {
        Some(s) => format!("; did you mean {s:?}?"),
        None if c.is_empty() => String::new(),
        None => format!(" (known: {})", c.join(", ")),
    }
}
