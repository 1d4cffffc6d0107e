//! Timestamps and derived columns: RFC 3339 with any offset -> UTC microseconds, event_date, event_hour.

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// Why a timestamp was refused (the message of a "timestamp" violation).
pub type TimestampError = &'static str;

/// The first instant the table holds: 0001-01-01T00:00:00Z (UTC microseconds since the epoch).
///
/// The range is the intersection of what every writer and reader of the table handles (docs/iceberg.md):
/// Python's `datetime` (pyiceberg turns partition values and column bounds into it) holds years 1..9999;
/// Snowflake's timestamps hold years 0..9999; DuckDB, Parquet INT64 micros, Iceberg and Arrow hold far more.
pub const MIN_EVENT_TS_MICROS: i64 = -62_135_596_800 * MICROS_PER_SECOND;
/// The last instant the table holds: 9999-12-31T23:59:59.999999Z.
pub const MAX_EVENT_TS_MICROS: i64 = 253_402_300_800 * MICROS_PER_SECOND - 1;
/// The message of a timestamp whose UTC instant is outside [`MIN_EVENT_TS_MICROS`]..=[`MAX_EVENT_TS_MICROS`].
pub const OUT_OF_RANGE: TimestampError = "the UTC instant is outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z, \
     the range every reader of the table supports";

fn digits(b: &[u8], from: usize, n: usize) -> Option<i64> {
    let slice = b.get(from..from + n)?;
    let mut v = 0i64;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parse an RFC 3339 timestamp with a mandatory offset (`Z` or `±hh:mm`) into UTC microseconds since the epoch.
/// 0 to 9 fractional digits; digits past the sixth are truncated. Impossible dates and times are refused, and so
/// is an instant (after the offset is applied) outside the table's range ([`MIN_EVENT_TS_MICROS`]).
pub fn parse_rfc3339_micros(s: &str) -> Result<i64, TimestampError> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return Err("not an RFC 3339 timestamp (expected YYYY-MM-DDTHH:MM:SS and an offset)");
    }
    let (Some(year), Some(month), Some(day)) = (digits(b, 0, 4), digits(b, 5, 2), digits(b, 8, 2)) else {
        return Err("not an RFC 3339 date (expected YYYY-MM-DD)");
    };
    if b[4] != b'-' || b[7] != b'-' {
        return Err("not an RFC 3339 date (expected YYYY-MM-DD)");
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return Err("not an RFC 3339 timestamp (expected 'T' between date and time)");
    }
    let (Some(hour), Some(minute), Some(second)) = (digits(b, 11, 2), digits(b, 14, 2), digits(b, 17, 2)) else {
        return Err("not an RFC 3339 time (expected HH:MM:SS)");
    };
    if b[13] != b':' || b[16] != b':' {
        return Err("not an RFC 3339 time (expected HH:MM:SS)");
    }
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("day out of range for the month");
    }
    if hour > 23 {
        return Err("hour out of range");
    }
    if minute > 59 {
        return Err("minute out of range");
    }
    if second > 59 {
        return Err("second out of range");
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return Err("no digits after the decimal point");
        }
        if n > 9 {
            return Err("more than 9 fractional digits");
        }
        for k in 0..6 {
            micros = micros * 10 + if k < n { i64::from(b[start + k] - b'0') } else { 0 };
        }
    }
    let offset_seconds = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (Some(oh), Some(om)) = (digits(b, i + 1, 2), digits(b, i + 4, 2)) else {
                return Err("offset is not ±hh:mm");
            };
            if oh > 23 || om > 59 {
                return Err("offset out of range");
            }
            let o = oh * 3600 + om * 60;
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        None => return Err("no UTC offset (Z or ±hh:mm): the instant is unknown"),
        _ => return Err("offset is not Z or ±hh:mm"),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    let us = seconds * MICROS_PER_SECOND + micros;
    if !(MIN_EVENT_TS_MICROS..=MAX_EVENT_TS_MICROS).contains(&us) {
        return Err(OUT_OF_RANGE);
    }
    Ok(us)
}

/// The UTC date (days since the epoch) and hour of an instant in microseconds.
pub fn date_and_hour(micros: i64) -> (i32, i32) {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let hour = micros.rem_euclid(MICROS_PER_DAY) / (3600 * MICROS_PER_SECOND);
    (days as i32, hour as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_offsets() {
        assert_eq!(parse_rfc3339_micros("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339_micros("1970-01-01T02:00:00+02:00"), Ok(0));
        assert_eq!(parse_rfc3339_micros("1969-12-31T19:00:00-05:00"), Ok(0));
        assert_eq!(parse_rfc3339_micros("2026-11-27T13:45:12.123Z"), Ok(1_795_787_112_123_000));
    }

    #[test]
    fn offset_moves_across_midnight() {
        let us = parse_rfc3339_micros("2026-01-01T00:30:00+01:00").unwrap();
        let (date, hour) = date_and_hour(us);
        assert_eq!(date, days_from_civil(2025, 12, 31) as i32);
        assert_eq!(hour, 23);
        let us = parse_rfc3339_micros("2025-12-31T23:30:00-01:00").unwrap();
        assert_eq!(date_and_hour(us), (days_from_civil(2026, 1, 1) as i32, 0));
    }

    #[test]
    fn fractions_zero_to_nine_digits_truncate() {
        assert_eq!(parse_rfc3339_micros("1970-01-01T00:00:00.1Z"), Ok(100_000));
        assert_eq!(parse_rfc3339_micros("1970-01-01T00:00:00.123456Z"), Ok(123_456));
        assert_eq!(parse_rfc3339_micros("1970-01-01T00:00:00.123456999Z"), Ok(123_456));
        assert!(parse_rfc3339_micros("1970-01-01T00:00:00.1234567890Z").is_err());
        assert!(parse_rfc3339_micros("1970-01-01T00:00:00.Z").is_err());
    }

    #[test]
    fn impossible_dates_and_missing_offset() {
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01",
            "2026-01-01T00:00:00+2:00",
            "2026-01-01T00:00:00Zjunk",
            "yesterday",
        ] {
            assert!(parse_rfc3339_micros(bad).is_err(), "{bad}");
        }
        assert!(parse_rfc3339_micros("2024-02-29T00:00:00Z").is_ok());
        assert!(parse_rfc3339_micros("2100-02-29T00:00:00Z").is_err());
    }

    #[test]
    fn the_range_is_years_1_to_9999_utc_after_the_offset() {
        assert_eq!(parse_rfc3339_micros("0001-01-01T00:00:00Z"), Ok(MIN_EVENT_TS_MICROS));
        assert_eq!(parse_rfc3339_micros("9999-12-31T23:59:59.999999Z"), Ok(MAX_EVENT_TS_MICROS));
        assert_eq!(MIN_EVENT_TS_MICROS, days_from_civil(1, 1, 1) * MICROS_PER_DAY);
        assert_eq!(MAX_EVENT_TS_MICROS, days_from_civil(10_000, 1, 1) * MICROS_PER_DAY - 1);
        for bad in [
            "0000-12-31T23:59:59Z",
            "0001-01-01T00:00:00+00:01",
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:59:59-00:01",
            "9999-12-31T23:30:00-01:00",
        ] {
            assert_eq!(parse_rfc3339_micros(bad), Err(OUT_OF_RANGE), "{bad}");
        }
        assert!(parse_rfc3339_micros("0001-01-01T01:00:00+01:00").is_ok());
        assert!(parse_rfc3339_micros("9999-12-31T22:59:59-01:00").is_ok());
    }

    #[test]
    fn negative_instants_floor() {
        assert_eq!(date_and_hour(-1), (-1, 23));
    }
}
