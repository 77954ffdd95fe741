//! Placement scores with Pacemaker's INFINITY arithmetic.

use std::fmt;

/// Pacemaker's INFINITY: scores are clamped to ±1 000 000.
pub const INFINITY: i64 = 1_000_000;

/// A placement score. `-INFINITY` wins over everything: `INFINITY + -INFINITY = -INFINITY`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Score(i64);

impl Score {
    pub const ZERO: Score = Score(0);
    pub const INFINITY: Score = Score(INFINITY);
    pub const MINUS_INFINITY: Score = Score(-INFINITY);

    /// A score from an integer, clamped to ±INFINITY as Pacemaker does.
    pub fn new(v: i64) -> Score {
        Score(v.clamp(-INFINITY, INFINITY))
    }

    pub fn value(self) -> i64 {
        self.0
    }

    /// A score read as Pacemaker's `char2score` reads a node attribute's value: INFINITY
    /// words, else the leading integer ("10.5" is 10), else 0.
    pub fn parse_lenient(s: &str) -> Score {
        let t = s.trim();
        if let Ok(v) = t.parse::<Score>() {
            return v;
        }
        let end = t
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
            .map_or(t.len(), |(i, _)| i);
        t[..end].parse::<Score>().unwrap_or(Score::ZERO)
    }

    pub fn is_minus_infinity(self) -> bool {
        self.0 <= -INFINITY
    }

    /// Pacemaker's addition: -INFINITY absorbs, then +INFINITY absorbs, else clamp.
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, other: Score) -> Score {
        if self.0 <= -INFINITY || other.0 <= -INFINITY {
            Score::MINUS_INFINITY
        } else if self.0 >= INFINITY || other.0 >= INFINITY {
            Score::INFINITY
        } else {
            Score::new(self.0 + other.0)
        }
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            INFINITY => f.write_str("INFINITY"),
            v if v == -INFINITY => f.write_str("-INFINITY"),
            v => write!(f, "{v}"),
        }
    }
}

impl std::str::FromStr for Score {
    type Err = String;

    /// An integer (clamped, however many digits it has, as Pacemaker's `char2score`),
    /// `INFINITY`, `+INFINITY` or `-INFINITY`.
    fn from_str(s: &str) -> Result<Score, String> {
        use std::num::IntErrorKind;
        match s.trim().to_ascii_uppercase().as_str() {
            "INFINITY" | "+INFINITY" => Ok(Score::INFINITY),
            "-INFINITY" => Ok(Score::MINUS_INFINITY),
            v => v
                .parse::<i64>()
                .map(Score::new)
                .or_else(|e| match e.kind() {
                    IntErrorKind::PosOverflow => Ok(Score::INFINITY),
                    IntErrorKind::NegOverflow => Ok(Score::MINUS_INFINITY),
                    _ => Err(format!(
                        "bad score {s:?}: an integer, INFINITY or -INFINITY"
                    )),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_parse_as_pacemaker_reads_them() {
        let cases = [
            ("10", Ok(Score::new(10))),
            (" -5 ", Ok(Score::new(-5))),
            ("inf", Err(())),
            ("+INFINITY", Ok(Score::INFINITY)),
            ("-infinity", Ok(Score::MINUS_INFINITY)),
            ("2000000", Ok(Score::INFINITY)),
            // Beyond 64 bits: still clamped, not refused.
            ("2339323812683706826782", Ok(Score::INFINITY)),
            ("-99999999999999999999999", Ok(Score::MINUS_INFINITY)),
            ("12x", Err(())),
            ("", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Score>().map_err(|_| ()), want, "{text:?}");
        }
    }

    #[test]
    fn infinity_arithmetic() {
        let cases = [
            (
                Score::INFINITY,
                Score::MINUS_INFINITY,
                Score::MINUS_INFINITY,
            ),
            (
                Score::MINUS_INFINITY,
                Score::INFINITY,
                Score::MINUS_INFINITY,
            ),
            (Score::INFINITY, Score::new(5), Score::INFINITY),
            (Score::new(999_999), Score::new(10), Score::INFINITY),
            (Score::new(-999_999), Score::new(-10), Score::MINUS_INFINITY),
            (Score::new(100), Score::new(-30), Score::new(70)),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.add(b), want, "{a} + {b}");
        }
        assert_eq!(Score::new(5_000_000), Score::INFINITY);
        assert_eq!(Score::INFINITY.to_string(), "INFINITY");
        assert_eq!(Score::MINUS_INFINITY.to_string(), "-INFINITY");
    }
}
