//! Rules (Pacemaker's rule grammar): node attribute expressions and date expressions joined
//! with `and` and `or`, written as text the way `pcs` takes them:
//!
//! ```text
//! #uname eq node1 or (pingd gt 0 and rack ne "b")
//! defined pingd
//! not_defined pingd
//! pingd gte integer 100
//! date gt 2026-01-01
//! date in_range 2026-01-01 to "2026-02-01 12:00"
//! date-spec hours=9-16 weekdays=1-5
//! ```
//!
//! `and` binds tighter than `or`; parentheses group. Values are words or quoted text. A
//! comparison's type is `string`, `integer`, `number` or `version`; without one, `lt`, `lte`,
//! `gt` and `gte` compare as numbers (integers unless a value has a `.`) and `eq` and `ne`
//! as text, case-insensitively, as Pacemaker does.

use std::cmp::Ordering;
use std::fmt;

use crate::time::Time;

/// A parsed rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Every part holds.
    All(Vec<Rule>),
    /// At least one part holds.
    Any(Vec<Rule>),
    /// A node attribute expression.
    Attr {
        attribute: String,
        op: AttrOp,
        /// None for `defined` and `not_defined`.
        value: Option<String>,
        kind: Option<ValueKind>,
    },
    /// A date expression, against the scheduler's `now`.
    Date(DateExpr),
}

/// How a node attribute is tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrOp {
    Defined,
    NotDefined,
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
}

/// How two values compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Integer,
    Number,
    Version,
}

/// A date expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DateExpr {
    /// Holds after this instant.
    Gt(Time),
    /// Holds before this instant.
    Lt(Time),
    /// Holds from `start` to `end`, both included (either may be open).
    InRange {
        start: Option<Time>,
        end: Option<Time>,
    },
    /// Holds when every field of the (UTC) date falls in its ranges (cron-like).
    Spec(Vec<(SpecField, u64, u64)>),
}

/// A field of a `date-spec`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecField {
    Years,
    Months,
    Monthdays,
    Weekdays,
    Yeardays,
    Hours,
    Minutes,
    Seconds,
}

const SPEC_FIELDS: &[(&str, SpecField)] = &[
    ("years", SpecField::Years),
    ("months", SpecField::Months),
    ("monthdays", SpecField::Monthdays),
    ("weekdays", SpecField::Weekdays),
    ("yeardays", SpecField::Yeardays),
    ("hours", SpecField::Hours),
    ("minutes", SpecField::Minutes),
    ("seconds", SpecField::Seconds),
];

impl AttrOp {
    const ALL: &'static [(&'static str, AttrOp)] = &[
        ("eq", AttrOp::Eq),
        ("ne", AttrOp::Ne),
        ("lt", AttrOp::Lt),
        ("lte", AttrOp::Lte),
        ("gt", AttrOp::Gt),
        ("gte", AttrOp::Gte),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttrOp::Defined => "defined",
            AttrOp::NotDefined => "not_defined",
            AttrOp::Eq => "eq",
            AttrOp::Ne => "ne",
            AttrOp::Lt => "lt",
            AttrOp::Lte => "lte",
            AttrOp::Gt => "gt",
            AttrOp::Gte => "gte",
        }
    }

    /// A comparison's keyword (`eq`, ..., `gte`), any case.
    pub fn comparison(word: &str) -> Option<AttrOp> {
        let w = word.to_ascii_lowercase();
        AttrOp::ALL.iter().find(|(k, _)| *k == w).map(|(_, o)| *o)
    }
}

impl ValueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Integer => "integer",
            ValueKind::Number => "number",
            ValueKind::Version => "version",
        }
    }

    pub fn parse(word: &str) -> Option<ValueKind> {
        Some(match word.to_ascii_lowercase().as_str() {
            "string" => ValueKind::String,
            "integer" | "int" => ValueKind::Integer,
            "number" | "float" => ValueKind::Number,
            "version" => ValueKind::Version,
            _ => return None,
        })
    }
}

impl SpecField {
    pub fn as_str(self) -> &'static str {
        SPEC_FIELDS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(k, _)| k)
    }

    pub fn parse(word: &str) -> Option<SpecField> {
        SPEC_FIELDS
            .iter()
            .find(|(k, _)| *k == word)
            .map(|(_, f)| *f)
    }
}

impl Rule {
    /// Whether the rule holds for a node whose attributes `attr` gives, at `now`.
    pub fn matches<'a>(&self, attr: &dyn Fn(&str) -> Option<&'a str>, now: Time) -> bool {
        match self {
            Rule::All(parts) => parts.iter().all(|p| p.matches(attr, now)),
            Rule::Any(parts) => parts.iter().any(|p| p.matches(attr, now)),
            Rule::Attr {
                attribute,
                op,
                value,
                kind,
            } => accept(attr(attribute), value.as_deref(), *kind, *op),
            Rule::Date(d) => d.matches(now),
        }
    }

    /// Every node attribute the rule reads.
    pub fn attributes(&self) -> Vec<&str> {
        match self {
            Rule::All(parts) | Rule::Any(parts) => {
                parts.iter().flat_map(|p| p.attributes()).collect()
            }
            Rule::Attr { attribute, .. } => vec![attribute.as_str()],
            Rule::Date(_) => Vec::new(),
        }
    }

    /// The first instant after `now` when a date expression of the rule changes its value
    /// (the scheduler wakes then).
    pub fn next_change(&self, now: Time) -> Option<Time> {
        match self {
            Rule::All(parts) | Rule::Any(parts) => {
                parts.iter().filter_map(|p| p.next_change(now)).min()
            }
            Rule::Attr { .. } => None,
            Rule::Date(DateExpr::Gt(t)) => {
                (*t >= now).then(|| Time::from_millis(t.as_millis() + 1))
            }
            Rule::Date(DateExpr::Lt(t)) => (*t > now).then_some(*t),
            Rule::Date(DateExpr::InRange { start, end }) => {
                let s = start.filter(|s| *s > now);
                let e = end
                    .filter(|e| *e >= now)
                    .map(|e| Time::from_millis(e.as_millis() + 1));
                s.into_iter().chain(e).min()
            }
            // A cron-like spec changes at most every second: the next whole second.
            Rule::Date(DateExpr::Spec(_)) => {
                Some(Time::from_millis((now.as_millis() / 1000 + 1) * 1000))
            }
        }
    }

    /// Parses the text form (see the module's documentation).
    pub fn parse(text: &str) -> Result<Rule, String> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err("an empty rule".to_owned());
        }
        let mut p = Parser { tokens, at: 0 };
        let rule = p.or()?;
        if let Some(t) = p.peek() {
            return Err(format!("unexpected {:?} after a complete rule", t.text));
        }
        Ok(rule)
    }
}

impl DateExpr {
    fn matches(&self, now: Time) -> bool {
        match self {
            DateExpr::Gt(t) => now > *t,
            DateExpr::Lt(t) => now < *t,
            DateExpr::InRange { start, end } => {
                (start.is_some() || end.is_some())
                    && start.is_none_or(|s| now >= s)
                    && end.is_none_or(|e| now <= e)
            }
            DateExpr::Spec(fields) => {
                let c = now.civil();
                let days = now.as_millis() / 86_400_000;
                // 1970-01-01 was a Thursday; ISO weekdays: Monday 1 .. Sunday 7.
                let weekday = (days + 3) % 7 + 1;
                let yearday = yearday(c.year, c.month, c.day);
                fields.iter().all(|&(f, lo, hi)| {
                    let v = match f {
                        SpecField::Years => c.year,
                        SpecField::Months => c.month,
                        SpecField::Monthdays => c.day,
                        SpecField::Weekdays => weekday,
                        SpecField::Yeardays => yearday,
                        SpecField::Hours => c.hour,
                        SpecField::Minutes => c.minute,
                        SpecField::Seconds => c.second,
                    };
                    (lo..=hi).contains(&v)
                })
            }
        }
    }
}

fn yearday(year: u64, month: u64, day: u64) -> u64 {
    const BEFORE: [u64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let idx = usize::try_from(month.clamp(1, 12) - 1).unwrap_or(0);
    BEFORE[idx] + day + u64::from(leap && month > 2)
}

/// Pacemaker's `accept_attr_expr`: `l` is the node's value (None: not defined), `r` the
/// rule's.
fn accept(l: Option<&str>, r: Option<&str>, kind: Option<ValueKind>, op: AttrOp) -> bool {
    match op {
        AttrOp::Defined => return l.is_some(),
        AttrOp::NotDefined => return l.is_none(),
        _ => {}
    }
    let cmp = compare(l, r, kind, op);
    match op {
        AttrOp::Eq => cmp == Ordering::Equal,
        AttrOp::Ne => cmp != Ordering::Equal,
        _ if l.is_none() || r.is_none() => false,
        AttrOp::Lt => cmp == Ordering::Less,
        AttrOp::Lte => cmp != Ordering::Greater,
        AttrOp::Gt => cmp == Ordering::Greater,
        AttrOp::Gte => cmp != Ordering::Less,
        AttrOp::Defined | AttrOp::NotDefined => false,
    }
}

fn compare(l: Option<&str>, r: Option<&str>, kind: Option<ValueKind>, op: AttrOp) -> Ordering {
    let (l, r) = match (l, r) {
        (Some(l), Some(r)) => (l, r),
        (None, None) => return Ordering::Equal,
        (Some(_), None) => return Ordering::Greater,
        (None, Some(_)) => return Ordering::Less,
    };
    let kind = kind.unwrap_or(match op {
        AttrOp::Lt | AttrOp::Lte | AttrOp::Gt | AttrOp::Gte => {
            if l.contains('.') || r.contains('.') {
                ValueKind::Number
            } else {
                ValueKind::Integer
            }
        }
        _ => ValueKind::String,
    });
    let text = || l.to_ascii_lowercase().cmp(&r.to_ascii_lowercase());
    match kind {
        ValueKind::String => text(),
        ValueKind::Integer => match (leading_int(l), leading_int(r)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => text(),
        },
        ValueKind::Number => match (l.trim().parse::<f64>(), r.trim().parse::<f64>()) {
            (Ok(a), Ok(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
            _ => text(),
        },
        ValueKind::Version => version_cmp(l, r),
    }
}

/// An integer as Pacemaker's `pcmk__scan_ll` reads it: leading blanks, a sign, digits; text
/// after the digits is ignored.
fn leading_int(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let end = t
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(t.len(), |(i, _)| i);
    t[..end].parse().ok()
}

/// Pacemaker's `compare_version`: dot-separated numbers, compared field by field (a missing
/// field is lower).
fn version_cmp(a: &str, b: &str) -> Ordering {
    let fields =
        |s: &str| -> Vec<i64> { s.split('.').map(|f| leading_int(f).unwrap_or(0)).collect() };
    let (a, b) = (fields(a), fields(b));
    for i in 0..a.len().max(b.len()) {
        match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            (Some(_), None) => return Ordering::Greater,
            (None, Some(_)) => return Ordering::Less,
            _ => {}
        }
    }
    Ordering::Equal
}

/// An ISO 8601 date as Pacemaker's `crm_time_new` takes it, in UTC unless an offset is given:
/// `2026-01-01`, `2026-01-01 12:00`, `2026-01-01T12:00:00Z`, `2026-01-01 12:00:00 +02:00`.
pub fn parse_date(s: &str) -> Option<Time> {
    let s = s.trim();
    let (date, rest) = s.split_at(s.find([' ', 'T']).unwrap_or(s.len()));
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next().map_or(Some(1), |m| m.parse().ok())?;
    let day: i64 = d.next().map_or(Some(1), |m| m.parse().ok())?;
    if d.next().is_some()
        || !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
    {
        return None;
    }
    let rest = rest.trim_start_matches([' ', 'T']).trim();
    // The time, then an optional zone: Z, +hh:mm, -hh:mm, +hhmm.
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let mut c = clock.trim().split(':');
    let mut field = |max: i64| -> Option<i64> {
        match c.next().map(str::trim).filter(|f| !f.is_empty()) {
            None => Some(0),
            Some(f) => f
                .split('.')
                .next()
                .and_then(|f| f.parse::<i64>().ok())
                .filter(|v| (0..=max).contains(v)),
        }
    };
    let (hour, minute, second) = (field(24)?, field(59)?, field(60)?);
    let zone = zone.trim();
    let offset_secs = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let digits: String = z[1..].chars().filter(char::is_ascii_digit).collect();
            let (h, m) = match digits.len() {
                2 => (digits.parse::<i64>().ok()?, 0),
                4 => (
                    digits[..2].parse::<i64>().ok()?,
                    digits[2..].parse::<i64>().ok()?,
                ),
                _ => return None,
            };
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    u64::try_from(secs)
        .ok()
        .map(|s| Time::from_millis(s * 1000))
}

/// Days since 1970-01-01 (Howard Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn format_date(t: Time) -> String {
    let c = t.civil();
    format!(
        "\"{:04}-{:02}-{:02} {:02}:{:02}:{:02}\"",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// A word of the text form, quoted when it must be.
fn word(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.contains(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '"' | '\''))
        && !matches!(s.to_ascii_lowercase().as_str(), "and" | "or");
    if plain {
        s.to_owned()
    } else if s.contains('"') {
        format!("'{s}'")
    } else {
        format!("\"{s}\"")
    }
}

impl fmt::Display for Rule {
    /// The text form, which [`Rule::parse`] reads back to the same rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, parts: &[Rule], sep: &str| -> fmt::Result {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    write!(f, " {sep} ")?;
                }
                match p {
                    Rule::All(v) | Rule::Any(v) if v.len() > 1 => write!(f, "({p})")?,
                    _ => write!(f, "{p}")?,
                }
            }
            Ok(())
        };
        match self {
            Rule::All(parts) => join(f, parts, "and"),
            Rule::Any(parts) => join(f, parts, "or"),
            Rule::Attr {
                attribute,
                op,
                value,
                kind,
            } => {
                match op {
                    AttrOp::Defined | AttrOp::NotDefined => {
                        return write!(f, "{} {}", op.as_str(), word(attribute));
                    }
                    _ => write!(f, "{} {}", word(attribute), op.as_str())?,
                }
                if let Some(k) = kind {
                    write!(f, " {}", k.as_str())?;
                }
                write!(f, " {}", word(value.as_deref().unwrap_or("")))
            }
            Rule::Date(DateExpr::Gt(t)) => write!(f, "date gt {}", format_date(*t)),
            Rule::Date(DateExpr::Lt(t)) => write!(f, "date lt {}", format_date(*t)),
            Rule::Date(DateExpr::InRange { start, end }) => {
                f.write_str("date in_range")?;
                if let Some(s) = start {
                    write!(f, " {}", format_date(*s))?;
                }
                f.write_str(" to")?;
                if let Some(e) = end {
                    write!(f, " {}", format_date(*e))?;
                }
                Ok(())
            }
            Rule::Date(DateExpr::Spec(fields)) => {
                f.write_str("date-spec")?;
                for (field, lo, hi) in fields {
                    if lo == hi {
                        write!(f, " {}={lo}", field.as_str())?;
                    } else {
                        write!(f, " {}={lo}-{hi}", field.as_str())?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    text: String,
    quoted: bool,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' || c == ')' {
            chars.next();
            out.push(Token {
                text: c.to_string(),
                quoted: false,
            });
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(x) if x == c => break,
                    Some(x) => text.push(x),
                    None => return Err(format!("a {c} is not closed")),
                }
            }
            out.push(Token { text, quoted: true });
        } else {
            let mut text = String::new();
            while let Some(&x) = chars.peek() {
                if x.is_whitespace() || matches!(x, '(' | ')' | '"' | '\'') {
                    break;
                }
                text.push(x);
                chars.next();
            }
            out.push(Token {
                text,
                quoted: false,
            });
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self, what: &str) -> Result<Token, String> {
        let t = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or_else(|| format!("the rule ends where {what} should be"))?;
        self.at += 1;
        Ok(t)
    }

    fn keyword(&self, k: &str) -> bool {
        self.peek()
            .is_some_and(|t| !t.quoted && t.text.eq_ignore_ascii_case(k))
    }

    fn or(&mut self) -> Result<Rule, String> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            self.at += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Rule::Any(parts)
        })
    }

    fn and(&mut self) -> Result<Rule, String> {
        let mut parts = vec![self.unary()?];
        while self.keyword("and") {
            self.at += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Rule::All(parts)
        })
    }

    fn date(&mut self) -> Result<Time, String> {
        let t = self.next("a date")?;
        parse_date(&t.text).ok_or_else(|| {
            format!(
                "bad date {:?}: ISO 8601, like 2026-01-01 or \"2026-01-01 12:00:00\"",
                t.text
            )
        })
    }

    fn unary(&mut self) -> Result<Rule, String> {
        let t = self.next("an expression")?;
        if !t.quoted && t.text == "(" {
            let r = self.or()?;
            match self.next("')'")? {
                c if !c.quoted && c.text == ")" => return Ok(r),
                c => return Err(format!("expected ')', found {:?}", c.text)),
            }
        }
        let lower = t.text.to_ascii_lowercase();
        if !t.quoted && (lower == "defined" || lower == "not_defined") {
            let attribute = self.next("an attribute name")?.text;
            let op = if lower == "defined" {
                AttrOp::Defined
            } else {
                AttrOp::NotDefined
            };
            return Ok(Rule::Attr {
                attribute,
                op,
                value: None,
                kind: None,
            });
        }
        if !t.quoted && lower == "date" {
            let op = self.next("gt, lt or in_range")?.text.to_ascii_lowercase();
            return Ok(Rule::Date(match op.as_str() {
                "gt" => DateExpr::Gt(self.date()?),
                "lt" => DateExpr::Lt(self.date()?),
                "in_range" => {
                    let start = if self.keyword("to") {
                        None
                    } else {
                        Some(self.date()?)
                    };
                    if !self.keyword("to") {
                        return Err("date in_range needs `to` (date in_range START to END)".into());
                    }
                    self.at += 1;
                    let end = match self.peek() {
                        Some(n) if n.quoted || !matches!(n.text.as_str(), ")" | "and" | "or") => {
                            Some(self.date()?)
                        }
                        _ => None,
                    };
                    if start.is_none() && end.is_none() {
                        return Err("date in_range needs a start, an end or both".into());
                    }
                    DateExpr::InRange { start, end }
                }
                other => {
                    return Err(format!(
                        "unknown date operation {other:?} (allowed: gt, lt, in_range)"
                    ));
                }
            }));
        }
        if !t.quoted && lower == "date-spec" {
            let mut fields = Vec::new();
            while let Some(n) = self.peek().filter(|n| !n.quoted && n.text.contains('=')) {
                let (k, v) = n.text.split_once('=').unwrap_or_default();
                let field = SpecField::parse(k).ok_or_else(|| {
                    format!(
                        "unknown date-spec field {k:?} (allowed: {})",
                        SPEC_FIELDS
                            .iter()
                            .map(|(k, _)| *k)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                let (lo, hi) = match v.split_once('-') {
                    Some((a, b)) => (a.parse::<u64>().ok(), b.parse::<u64>().ok()),
                    None => (v.parse::<u64>().ok(), v.parse::<u64>().ok()),
                };
                let (Some(lo), Some(hi)) = (lo, hi) else {
                    return Err(format!("bad date-spec range {v:?}: N or N-M"));
                };
                fields.push((field, lo, hi));
                self.at += 1;
            }
            if fields.is_empty() {
                return Err("date-spec needs fields, like hours=9-16 weekdays=1-5".into());
            }
            return Ok(Rule::Date(DateExpr::Spec(fields)));
        }
        // ATTRIBUTE OP [TYPE] VALUE
        let attribute = t.text;
        let op_t = self.next("a comparison (eq, ne, lt, lte, gt, gte)")?;
        let op = AttrOp::comparison(&op_t.text).filter(|_| !op_t.quoted).ok_or_else(|| {
            format!(
                "unknown comparison {:?} after {attribute:?} (allowed: eq, ne, lt, lte, gt, gte; or defined NAME, not_defined NAME, date ..., date-spec ...)",
                op_t.text
            )
        })?;
        let mut v = self.next("a value")?;
        let mut kind = None;
        if !v.quoted {
            if let Some(k) = ValueKind::parse(&v.text) {
                // A type word, when a value follows it.
                if self.peek().is_some_and(|n| {
                    n.quoted || !matches!(n.text.to_ascii_lowercase().as_str(), ")" | "and" | "or")
                }) {
                    kind = Some(k);
                    v = self.next("a value")?;
                }
            }
        }
        Ok(Rule::Attr {
            attribute,
            op,
            value: Some(v.text),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(list: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |k| list.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
    }

    #[test]
    fn the_text_form_parses_evaluates_and_prints_back() {
        let now = parse_date("2026-06-15 10:30:00").expect("date");
        let node = [("#uname", "node1"), ("pingd", "200"), ("rack", "B")];
        let a = attrs(&node);
        for (text, want) in [
            ("#uname eq node1", true),
            ("#uname eq NODE1", true),
            ("#uname ne node1", false),
            ("pingd gt 100", true),
            ("pingd gt string 3", false),
            ("pingd lte integer 200", true),
            ("pingd lt 1.5", false),
            ("defined pingd", true),
            ("not_defined pingd", false),
            ("not_defined other", true),
            ("other lt 5", false),
            ("other ne 5", true),
            ("rack eq b and pingd gte 200", true),
            ("rack eq a or (pingd gt 0 and #uname eq node1)", true),
            ("rack eq a or pingd gt 0 and #uname eq node2", false),
            ("date gt 2026-01-01", true),
            ("date lt \"2026-06-15 10:00\"", false),
            ("date in_range 2026-06-01 to 2026-07-01", true),
            ("date in_range to 2026-06-01", false),
            ("date-spec hours=9-16 weekdays=1-5", true),
            ("date-spec weekdays=6-7", false),
            ("pingd lt version 199.10", false),
            ("pingd gt version 199.10", true),
        ] {
            let r = Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.matches(&a, now), want, "{text}");
            let back = Rule::parse(&r.to_string()).expect("reparse");
            assert_eq!(back, r, "{text} printed as {r}");
        }
        // 2026-06-15 is a Monday.
        assert_eq!(
            parse_date("2026-06-15").map(|t| (t.as_millis() / 86_400_000 + 3) % 7 + 1),
            Some(1)
        );
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (text, err) in [
            ("", "an empty rule"),
            ("pingd", "the rule ends where a comparison"),
            ("pingd is 3", "unknown comparison \"is\""),
            ("(pingd gt 3", "the rule ends where ')'"),
            ("date gt yesterday", "bad date \"yesterday\""),
            ("date-spec days=1", "unknown date-spec field \"days\""),
            ("pingd gt 3 x", "unexpected \"x\""),
            ("rack eq \"a", "is not closed"),
        ] {
            let e = Rule::parse(text).expect_err(text);
            assert!(e.contains(err), "{text}: {e}");
        }
    }

    #[test]
    fn dates_read_as_pacemaker_writes_them() {
        let t = |s| parse_date(s).map(Time::rfc3339);
        assert_eq!(t("2026-01-02"), Some("2026-01-02T00:00:00.000Z".into()));
        assert_eq!(
            t("2026-01-02 03:04:05"),
            Some("2026-01-02T03:04:05.000Z".into())
        );
        assert_eq!(
            t("2026-01-02T03:04:05Z"),
            Some("2026-01-02T03:04:05.000Z".into())
        );
        assert_eq!(
            t("2026-01-02 03:04:05 +02:00"),
            Some("2026-01-02T01:04:05.000Z".into())
        );
        assert_eq!(t("2026-13-02"), None);
        // Years no clock reaches are refused, not overflowed.
        assert_eq!(t("99999999999999-01-01"), None);
        assert_eq!(t("1969-12-31"), None);
    }
}
