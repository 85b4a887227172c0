//! `$__interval`: how Grafana picks it and writes it.

use std::time::Duration;

/// Grafana's interval for a time range shown over `max_data_points` points:
/// the range divided by the points, rounded to one of Grafana's steps, and
/// never below the data source's minimum interval (`timeInterval`).
pub fn calculate(range: Duration, max_data_points: u32, min_interval: Duration) -> Duration {
    let raw_ms = range.as_millis() as f64 / f64::from(max_data_points.max(1));
    let rounded = Duration::from_millis(round_ms(raw_ms));
    rounded.max(min_interval)
}

/// Grafana's rounding of a raw interval (milliseconds) to a readable step:
/// each step is chosen when the raw value lies below the midpoint to the
/// next one.
fn round_ms(raw: f64) -> u64 {
    const STEPS: &[(f64, u64)] = &[
        (15.0, 10),
        (35.0, 20),
        (75.0, 50),
        (150.0, 100),
        (350.0, 200),
        (750.0, 500),
        (1_500.0, 1_000),
        (3_500.0, 2_000),
        (7_500.0, 5_000),
        (12_500.0, 10_000),
        (17_500.0, 15_000),
        (25_000.0, 20_000),
        (45_000.0, 30_000),
        (90_000.0, 60_000),
        (210_000.0, 120_000),
        (450_000.0, 300_000),
        (750_000.0, 600_000),
        (1_050_000.0, 900_000),
        (1_500_000.0, 1_200_000),
        (2_700_000.0, 1_800_000),
        (5_400_000.0, 3_600_000),
        (9_000_000.0, 7_200_000),
        (16_200_000.0, 10_800_000),
        (32_400_000.0, 21_600_000),
        (86_400_000.0, 43_200_000),
        (604_800_000.0, 86_400_000),
        (1_814_400_000.0, 604_800_000),
        (3_628_800_000.0, 2_592_000_000),
    ];
    STEPS
        .iter()
        .find(|(below, _)| raw < *below)
        .map_or(31_536_000_000, |(_, step)| *step)
}

/// An interval as Grafana writes `$__interval`: the largest whole unit
/// (`500ms`, `5s`, `2m`, `1h`, `1d`, `1y`).
pub fn format(d: Duration) -> String {
    const UNITS: &[(u128, &str)] = &[
        (31_536_000_000, "y"),
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    let ms = d.as_millis();
    for (size, unit) in UNITS {
        if ms >= *size {
            return format!("{}{unit}", ms / size);
        }
    }
    if ms >= 1 {
        format!("{ms}ms")
    } else {
        "1ms".to_string()
    }
}

/// Parses an interval as Grafana's back end does for `$__timeGroup`: a
/// number with one of ms, s, m, h, d, w, M (30 days), y (365 days), or a
/// sequence of them (`1h30m`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty interval".into());
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("interval {text:?} has a number without a unit"))?;
        if digits == 0 {
            return Err(format!("interval {text:?} does not start with a number"));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("bad number in interval {text:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "M" => 2_592_000.0,
            "y" => 31_536_000.0,
            other => return Err(format!("unknown unit {other:?} in interval {text:?}")),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hour_on_a_wide_panel_is_five_seconds() {
        let d = calculate(Duration::from_secs(3600), 1000, Duration::from_secs(1));
        assert_eq!(d, Duration::from_secs(5));
        assert_eq!(format(d), "5s");
    }

    #[test]
    fn the_minimum_interval_wins_over_short_ranges() {
        let d = calculate(Duration::from_secs(300), 1000, Duration::from_secs(1));
        assert_eq!(d, Duration::from_secs(1));
    }

    #[test]
    fn a_day_rounds_to_a_minute_and_a_half_hour_steps() {
        assert_eq!(
            calculate(Duration::from_secs(86_400), 1000, Duration::from_secs(1)),
            Duration::from_secs(60)
        );
        assert_eq!(
            calculate(Duration::from_secs(86_400), 500, Duration::from_secs(1)),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn formats_in_the_largest_whole_unit() {
        assert_eq!(format(Duration::from_millis(200)), "200ms");
        assert_eq!(format(Duration::from_secs(120)), "2m");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
    }

    #[test]
    fn parses_grafana_units() {
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse("5").is_err());
        assert!(parse("m").is_err());
        assert!(parse("5x").is_err());
    }
}
