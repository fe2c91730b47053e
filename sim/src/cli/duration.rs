//! `--duration`: a time as people write it, a number and a unit (`60s`, `10m`, `1h`), or several
//! (`1h30m`). A bare number is refused rather than guessed at.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A positive duration from the command line, kept with the text it was written as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationArgument {
    pub duration: Duration,
    text: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error(
        "`{0}` is not a duration: expected a number and a unit, s, m or h (`60s`, `10m`, `1h`, \
         `1h30m`)"
    )]
    Syntax(String),
    #[error("duration `{0}` is zero")]
    Zero(String),
    #[error("duration `{0}` is too long")]
    TooLong(String),
}

impl FromStr for DurationArgument {
    type Err = DurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || DurationError::Syntax(text.to_string());
        let mut seconds: u64 = 0;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(syntax());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|character: char| !character.is_ascii_digit())
                .ok_or_else(syntax)?;
            let number: u64 = rest[..digits].parse().map_err(|_| syntax())?;
            let unit = rest[digits..].chars().next().ok_or_else(syntax)?;
            let scale = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => return Err(syntax()),
            };
            seconds = number
                .checked_mul(scale)
                .and_then(|part| seconds.checked_add(part))
                .ok_or_else(|| DurationError::TooLong(text.to_string()))?;
            rest = &rest[digits + 1..];
        }
        if seconds == 0 {
            return Err(DurationError::Zero(text.to_string()));
        }
        Ok(Self {
            duration: Duration::from_secs(seconds),
            text: text.trim().to_string(),
        })
    }
}

impl fmt::Display for DurationArgument {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(text: &str) -> Result<u64, DurationError> {
        text.parse::<DurationArgument>()
            .map(|argument| argument.duration.as_secs())
    }

    // Seconds, minutes and hours, alone or combined, parse; bare numbers, other units, zero and
    // overflow are refused.
    #[test]
    fn durations_parse_as_people_write_them() {
        assert_eq!(seconds("60s"), Ok(60));
        assert_eq!(seconds("10m"), Ok(600));
        assert_eq!(seconds("1h"), Ok(3600));
        assert_eq!(seconds("1h30m"), Ok(5400));
        assert_eq!(seconds(" 2m5s "), Ok(125));
        for bad in ["60", "", "s", "1d", "1.5h", "-1s", "1 h", "h1"] {
            assert!(
                matches!(seconds(bad), Err(DurationError::Syntax(_))),
                "{bad:?}"
            );
        }
        assert_eq!(seconds("0s"), Err(DurationError::Zero("0s".to_string())));
        assert!(matches!(
            seconds("18446744073709551615h"),
            Err(DurationError::TooLong(_))
        ));
        assert_eq!(
            "10m".parse::<DurationArgument>().unwrap().to_string(),
            "10m"
        );
    }
}
