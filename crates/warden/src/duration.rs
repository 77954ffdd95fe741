//! Durations as operators write them: `"500ms"`, `"10s"`, `"2m"`, `"1h30m"`, `"0"`.

use std::time::Duration;

/// The longest duration accepted: ten years. Longer ones are typos, and a time that far ahead
/// must still be a time every clock and formatter can hold.
pub const MAX: Duration = Duration::from_secs(3650 * 86_400);

/// Parses a duration; the error says what is wrong in words fit for a diagnostic.
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("bad duration {s:?}: expected a number at {rest:?}"));
        }
        let n: u128 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad duration {s:?}: number too large"))?;
        rest = &rest[digits..];
        if let Some(frac) = rest.strip_prefix('.') {
            return Err(fraction(s, n, frac));
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms_per = match &rest[..unit_len] {
            "" => {
                return Err(format!(
                    "bad duration {s:?}: add a unit (ms, s, m, h or d), like \"{n}s\""
                ));
            }
            u => unit_ms(u).ok_or_else(|| {
                format!("bad duration {s:?}: unknown unit {u:?} (allowed: ms, s, m, h, d)")
            })?,
        };
        rest = &rest[unit_len..];
        total = total.saturating_add(n.saturating_mul(ms_per));
    }
    if total > MAX.as_millis() {
        return Err(format!(
            "bad duration {s:?}: too long (at most {}, ten years)",
            format(MAX)
        ));
    }
    let ms = u64::try_from(total).map_err(|_| format!("bad duration {s:?}: too long"))?;
    Ok(Duration::from_millis(ms))
}

/// Milliseconds in one of a unit.
fn unit_ms(unit: &str) -> Option<u128> {
    match unit {
        "ms" => Some(1),
        "s" => Some(1_000),
        "m" | "min" => Some(60_000),
        "h" => Some(3_600_000),
        "d" => Some(86_400_000),
        _ => None,
    }
}

/// The message for a fraction (`"0.5s"`): durations are whole numbers of a unit, and the
/// same length in a smaller unit is suggested when there is one.
fn fraction(s: &str, whole: u128, frac: &str) -> String {
    let digits = frac
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(frac.len());
    let unit = &frac[digits..];
    let exact = unit_ms(unit).and_then(|per| {
        let f = &frac[..digits];
        let scale = 10u128.checked_pow(u32::try_from(f.len()).ok()?)?;
        let num = whole
            .checked_mul(scale)?
            .checked_add(f.parse::<u128>().ok()?)?;
        let ms = num.checked_mul(per)?;
        (ms % scale == 0).then(|| ms / scale)
    });
    match exact.and_then(|ms| u64::try_from(ms).ok()) {
        Some(ms) if ms > 0 => format!(
            "bad duration {s:?}: no fractions; write {:?}",
            format(Duration::from_millis(ms))
        ),
        _ => format!("bad duration {s:?}: no fractions; use a smaller unit (ms, s, m, h, d)"),
    }
}

/// A duration written as a bare number of seconds (`timeout = 0.5`), as it should be written.
pub fn suggest_ms(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms.is_finite() && ms >= 1.0 && ms <= u64::MAX as f64 && ms.fract() == 0.0 {
        format(Duration::from_millis(ms as u64))
    } else {
        "10s".to_owned()
    }
}

/// Formats a duration in the largest exact unit: `10s`, `1500ms`, `2m`.
pub fn format(d: Duration) -> String {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0".to_owned();
    }
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms % per == 0 {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_operators_write() {
        let ok = [
            ("0", 0),
            ("500ms", 500),
            ("10s", 10_000),
            ("2m", 120_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            (" 3s ", 3_000),
        ];
        for (s, ms) in ok {
            assert_eq!(parse(s), Ok(Duration::from_millis(ms)), "{s}");
        }
        for bad in ["", "10", "s", "10 s", "5x", "-1s", "1.5s"] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse("10").expect_err("no unit").contains("add a unit"));
        assert_eq!(
            parse("0.5s").expect_err("fraction"),
            "bad duration \"0.5s\": no fractions; write \"500ms\""
        );
        assert!(
            parse("1.5m")
                .expect_err("fraction")
                .ends_with("write \"90s\"")
        );
        assert!(
            parse("0.0001s")
                .expect_err("fraction")
                .contains("use a smaller unit")
        );
        assert_eq!(suggest_ms(0.25), "250ms");
        assert_eq!(parse("3650d"), Ok(MAX));
        assert_eq!(
            parse("99999999h").expect_err("too long"),
            "bad duration \"99999999h\": too long (at most 3650d, ten years)"
        );
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        for (ms, s) in [
            (0, "0"),
            (500, "500ms"),
            (10_000, "10s"),
            (90_000, "90s"),
            (120_000, "2m"),
        ] {
            assert_eq!(format(Duration::from_millis(ms)), s);
        }
    }
}
