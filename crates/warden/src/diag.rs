//! Problems found in an input file, each with the place it was found (`file:line:col`).

use std::fmt;
use std::ops::Range;

/// One problem at one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Collects diagnostics for one source text.
#[derive(Debug)]
pub struct Diagnostics<'s> {
    src: &'s str,
    pub list: Vec<Diagnostic>,
}

impl<'s> Diagnostics<'s> {
    pub fn new(src: &'s str) -> Self {
        Diagnostics {
            src,
            list: Vec::new(),
        }
    }

    /// Records a problem at the start of `span` (byte offsets into the source).
    pub fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, col) = line_col(self.src, span.start);
        self.list.push(Diagnostic {
            line,
            col,
            message: message.into(),
        });
    }

    /// The source text positions refer to.
    pub fn src(&self) -> &'s str {
        self.src
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The problems sorted by position, duplicates dropped.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|d| (d.line, d.col));
        self.list.dedup();
        self.list
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let mut start = offset;
    while !src.is_char_boundary(start) {
        start -= 1;
    }
    let before = &src[..start];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

/// Diagnostics of one file, printed as `file:line:col: error: message`.
#[derive(Debug)]
pub struct FileErrors {
    pub file: String,
    pub list: Vec<Diagnostic>,
}

impl fmt::Display for FileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.list.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, d.line, d.col, d.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for FileErrors {}

/// The closest of `candidates` to `word`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let w = norm(word);
    if let Some(c) = candidates.iter().find(|c| norm(c) == w) {
        return Some(c);
    }
    candidates
        .iter()
        .map(|c| (edit_distance(&w, &norm(c)), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 10), (2, 4));
        assert_eq!(line_col(src, 999), (3, 1));
    }

    #[test]
    fn suggestions() {
        let keys = ["migration_threshold", "failure_timeout", "priority"];
        assert_eq!(
            did_you_mean("migration-threshold", &keys),
            Some("migration_threshold")
        );
        assert_eq!(
            did_you_mean("failure_timout", &keys),
            Some("failure_timeout")
        );
        assert_eq!(did_you_mean("colour", &keys), None);
    }
}
