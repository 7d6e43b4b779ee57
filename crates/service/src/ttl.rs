//! Lifetimes as people write them (`8h`, `30m`): from one second up to the policy's
//! `limits.max_ttl`. Nothing lives forever.

use std::time::Duration;

use crate::ServiceError;

/// The lifetime of a placeholder or sandbox identity when none is asked for.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// `text` when given (refused beyond `max`, with the maximum named), else `default` (or
/// `max`, when that is shorter).
pub(crate) fn ttl_or(
    text: Option<&str>,
    default: Duration,
    max: Duration,
) -> Result<Duration, ServiceError> {
    match text {
        Some(t) => parse_ttl(t, max),
        None => Ok(default.min(max)),
    }
}

pub(crate) fn parse_ttl(text: &str, max: Duration) -> Result<Duration, ServiceError> {
    let ttl = humantime::parse_duration(text).map_err(|_| {
        ServiceError::invalid(
            "ttl",
            format!("`{text}` is not a duration; expected e.g. `8h` or `30m`"),
        )
    })?;
    if ttl.as_secs() == 0 {
        return Err(ServiceError::invalid(
            "ttl",
            "ttl must be at least one second",
        ));
    }
    if ttl > max {
        return Err(ServiceError::invalid(
            "ttl",
            format!(
                "ttl `{text}` is longer than the longest lifetime allowed, {} (limits.max_ttl); ask for at most that",
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(ttl)
}
