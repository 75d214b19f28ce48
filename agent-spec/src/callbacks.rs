//! Scheduled callbacks: when a callback the caller asked for is due.
//!
//! A speech model gives the time as an RFC 3339 timestamp (`at`, with the offset the
//! caller meant) when it can, and always in the caller's words (`requested_time`).
//! [`resolve`] takes the timestamp when there is one, and otherwise reads the words:
//! "as soon as possible", "in 20 minutes", "in two hours", "tomorrow at three pm",
//! "on monday morning", "later today", "at 4:30", … Words name times in UTC, the
//! only zone an agent knows; the agent reads the resolved time back to the caller
//! (the tool result says it), so a misunderstanding is heard and corrected on the call.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, Time, UtcOffset, Weekday};

/// The furthest ahead a callback may be scheduled.
pub const MAX_AHEAD: Duration = Duration::days(30);

/// When the callback asked for is due, or why it cannot be told. `asap` is the
/// delay of "as soon as possible" (the call asking for it is still going on).
pub fn resolve(at: Option<&str>, words: &str, now: OffsetDateTime, asap: Duration) -> Result<OffsetDateTime, String> {
    let due = match at.map(str::trim).filter(|a| !a.is_empty()) {
        Some(at) => OffsetDateTime::parse(at, &Rfc3339)
            .map_err(|_| format!("`at` {at:?} is not an RFC 3339 timestamp such as 2026-12-01T15:00:00-05:00"))?,
        None => from_words(words, now.to_offset(UtcOffset::UTC), asap)?,
    };
    if due < now - Duration::minutes(1) {
        return Err(format!("{} has already passed", describe(due)));
    }
    if due > now + MAX_AHEAD {
        return Err(format!("{} is more than 30 days ahead", describe(due)));
    }
    Ok(due.max(now))
}

/// "Tuesday 1 December at 15:00 UTC": how the agent reads a time back.
pub fn describe(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!("{} {} {} at {:02}:{:02} UTC", t.weekday(), t.day(), t.month(), t.hour(), t.minute())
}

fn number(word: &str) -> Option<i64> {
    if let Ok(n) = word.parse::<i64>() {
        return Some(n);
    }
    const WORDS: [&str; 21] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    if let Some(n) = WORDS.iter().position(|w| *w == word) {
        return Some(n as i64);
    }
    match word {
        "a" | "an" => Some(1),
        "couple" => Some(2),
        "thirty" => Some(30),
        "forty" => Some(40),
        "fifty" => Some(50),
        _ => None,
    }
}

fn weekday(word: &str) -> Option<Weekday> {
    Some(match word.trim_end_matches('s') {
        "monday" => Weekday::Monday,
        "tuesday" => Weekday::Tuesday,
        "wednesday" => Weekday::Wednesday,
        "thursday" => Weekday::Thursday,
        "friday" => Weekday::Friday,
        "saturday" => Weekday::Saturday,
        "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

/// A clock time in `w` from index `i`: `3`, `3pm`, `3:30`, `15:00`, `three thirty pm`,
/// `noon`. Returns the time and the index after it. Without am/pm, 1 to 7 o'clock
/// are afternoon hours (a callback at "three" is not at 03:00).
fn clock(w: &[String], mut i: usize) -> Option<(Time, usize)> {
    let word = w.get(i)?;
    if word == "noon" || word == "midday" {
        return Some((Time::from_hms(12, 0, 0).ok()?, i + 1));
    }
    let (mut hour, mut minute, mut meridiem) = (None, 0i64, None);
    let (head, tail) = match word.find(|c: char| c.is_ascii_alphabetic()) {
        Some(p) if p > 0 && word[..p].bytes().all(|b| b.is_ascii_digit() || b == b':') => word.split_at(p),
        _ => (word.as_str(), ""),
    };
    if let Some((h, m)) = head.split_once(':') {
        hour = h.parse::<i64>().ok();
        minute = m.parse::<i64>().ok()?;
    } else if let Some(n) = number(head).filter(|_| !matches!(head, "a" | "an" | "couple")) {
        hour = Some(n);
    }
    let mut hour = hour?;
    i += 1;
    if !tail.is_empty() {
        meridiem = Some(tail.to_owned());
    } else if head.contains(':') {
    } else if let Some(m) = w.get(i).and_then(|m| number(m)).filter(|m| (10..60).contains(m)) {
        // "three thirty", "three forty five"
        minute = m;
        i += 1;
        if let Some(extra) = w.get(i).and_then(|m| number(m)).filter(|e| (1..10).contains(e)) {
            minute += extra;
            i += 1;
        }
    }
    if meridiem.is_none() {
        match w.get(i).map(String::as_str) {
            Some(m @ ("am" | "pm" | "a.m." | "p.m.")) => {
                meridiem = Some(m.replace('.', ""));
                i += 1;
            }
            Some("o'clock" | "oclock") => i += 1,
            _ => {}
        }
    }
    match meridiem.as_deref() {
        Some("pm") if hour < 12 => hour += 12,
        Some("am") if hour == 12 => hour = 0,
        Some("am" | "pm") => {}
        Some(_) => return None,
        None if (1..=7).contains(&hour) => hour += 12,
        None => {}
    }
    Some((Time::from_hms(u8::try_from(hour).ok()?, u8::try_from(minute).ok()?, 0).ok()?, i))
}

/// "in 20 minutes", "in two hours", "in half an hour", "in a couple of days".
fn relative(w: &[String]) -> Option<Duration> {
    let p = w.iter().position(|x| x == "in")?;
    let mut rest = &w[p + 1..];
    if rest.len() > 1 && rest[0] == "a" && rest[1] == "couple" {
        rest = &rest[1..];
    }
    let half = rest.first().is_some_and(|h| h == "half");
    let (n, unit) = match rest {
        [h, a, unit, ..] if h == "half" && (a == "an" || a == "a") => (0, unit.as_str()),
        [n, of, unit, ..] if of == "of" => (number(n)?, unit.as_str()),
        [n, unit, ..] => (number(n)?, unit.as_str()),
        _ => return None,
    };
    Some(match unit.trim_end_matches('s') {
        "minute" | "min" => Duration::minutes(n),
        "hour" | "hr" if half => Duration::minutes(30),
        "hour" | "hr" => Duration::hours(n),
        "day" => Duration::days(n),
        "week" => Duration::weeks(n),
        _ => return None,
    })
}

fn from_words(words: &str, now: OffsetDateTime, asap: Duration) -> Result<OffsetDateTime, String> {
    let w: Vec<String> = words
        .to_lowercase()
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | '!' | '?'))
        .map(|s| s.trim_end_matches('.').to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    let joined = w.join(" ");
    let unclear = || {
        format!(
            "could not tell when {words:?} is: ask for a time such as \"tomorrow at 3 pm\", \"in 2 hours\" or \
             \"as soon as possible\""
        )
    };
    if w.is_empty() {
        return Ok(now + asap);
    }
    if let Some(span) = relative(&w) {
        return Ok(now + span);
    }
    // Only when no time is named: "as soon as possible", "now", … (and what a
    // recognizer makes of them: "… possible").
    let asap_words = ["right away", "straight away"].iter().any(|p| joined.contains(p))
        || w.iter().any(|x| matches!(x.as_str(), "asap" | "now" | "soon" | "possible" | "whenever" | "anytime"));
    // A day, then a clock time or a part of the day.
    let today = now.date();
    let mut day = None;
    let mut explicit_today = false;
    let mut time = None;
    let mut part = None;
    let mut i = 0;
    while i < w.len() {
        let word = w[i].as_str();
        match word {
            "today" => {
                day = Some(today);
                explicit_today = true;
            }
            "tonight" => {
                day = Some(today);
                explicit_today = true;
                part.get_or_insert(Time::from_hms(19, 0, 0).expect("valid"));
            }
            "tomorrow" => day = Some(today.next_day().ok_or_else(unclear)?),
            "morning" => part = Some(Time::from_hms(9, 0, 0).expect("valid")),
            "afternoon" => part = Some(Time::from_hms(14, 0, 0).expect("valid")),
            "evening" => part = Some(Time::from_hms(18, 0, 0).expect("valid")),
            "later" if w.get(i + 1).is_some_and(|t| t == "today") => {
                day = Some(today);
                explicit_today = true;
                part.get_or_insert((now + Duration::hours(2)).time());
                i += 1;
            }
            _ => {
                if let Some(wd) = weekday(word) {
                    // The next such day, not today.
                    let mut d = today.next_day().ok_or_else(unclear)?;
                    while d.weekday() != wd {
                        d = d.next_day().ok_or_else(unclear)?;
                    }
                    day = Some(d);
                } else if time.is_none()
                    && let Some((t, next)) = clock(&w, i)
                {
                    let after_at = i > 0 && matches!(w[i - 1].as_str(), "at" | "around" | "about" | "by");
                    let marked = next > i + 1 || word.contains(':') || word.ends_with('m');
                    if after_at || marked {
                        time = Some(t);
                        i = next;
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
    if day.is_none() && time.is_none() && part.is_none() {
        return if asap_words { Ok(now + asap) } else { Err(unclear()) };
    }
    let at_time = time.or(part).unwrap_or(Time::from_hms(10, 0, 0).expect("valid"));
    let mut due = day.unwrap_or(today).with_time(at_time).assume_utc();
    if due <= now && day.is_none() {
        due += Duration::days(1);
    } else if due <= now && explicit_today {
        return Err(format!("{} has already passed", describe(due)));
    }
    Ok(due)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    // A Saturday, 12:34 UTC.
    const NOW: OffsetDateTime = datetime!(2026-11-28 12:34 UTC);
    const ASAP: Duration = Duration::minutes(2);

    fn at(words: &str) -> Result<OffsetDateTime, String> {
        resolve(None, words, NOW, ASAP)
    }

    #[test]
    fn words_name_times() {
        assert_eq!(at("as soon as possible").unwrap(), NOW + ASAP);
        assert_eq!(at("").unwrap(), NOW + ASAP);
        assert_eq!(at("right away please").unwrap(), NOW + ASAP);
        assert_eq!(at("at to an possible").unwrap(), NOW + ASAP, "as a recognizer may hear it");
        assert_eq!(at("in 20 minutes").unwrap(), NOW + Duration::minutes(20));
        assert_eq!(at("in two hours").unwrap(), NOW + Duration::hours(2));
        assert_eq!(at("in half an hour").unwrap(), NOW + Duration::minutes(30));
        assert_eq!(at("in a couple of days").unwrap(), NOW + Duration::days(2));
        assert_eq!(at("tomorrow at three pm").unwrap(), datetime!(2026-11-29 15:00 UTC));
        assert_eq!(at("tomorrow at 3pm").unwrap(), datetime!(2026-11-29 15:00 UTC));
        assert_eq!(at("tomorrow at 9:15 am").unwrap(), datetime!(2026-11-29 09:15 UTC));
        assert_eq!(at("Tomorrow at three thirty.").unwrap(), datetime!(2026-11-29 15:30 UTC));
        assert_eq!(at("tomorrow").unwrap(), datetime!(2026-11-29 10:00 UTC));
        assert_eq!(at("on monday morning").unwrap(), datetime!(2026-11-30 09:00 UTC));
        assert_eq!(at("saturday afternoon").unwrap(), datetime!(2026-12-05 14:00 UTC), "the next one");
        assert_eq!(at("later today").unwrap(), NOW + Duration::hours(2));
        assert_eq!(at("this evening").unwrap(), datetime!(2026-11-28 18:00 UTC));
        assert_eq!(at("at 4:30").unwrap(), datetime!(2026-11-28 16:30 UTC));
        assert_eq!(at("at noon").unwrap(), datetime!(2026-11-29 12:00 UTC), "today's noon has passed");
        assert_eq!(at("at 10 am").unwrap(), datetime!(2026-11-29 10:00 UTC));
        assert_eq!(at("at 15:00").unwrap(), datetime!(2026-11-28 15:00 UTC));
    }

    #[test]
    fn a_timestamp_wins_over_words() {
        let due = resolve(Some("2026-12-01T15:00:00-05:00"), "tuesday at three", NOW, ASAP).unwrap();
        assert_eq!(due, datetime!(2026-12-01 20:00 UTC));
    }

    #[test]
    fn refusals_say_why() {
        assert!(at("when the moon is blue").unwrap_err().contains("could not tell when"));
        assert!(at("in a while").unwrap_err().contains("could not tell when"));
        assert!(at("today at 9 am").unwrap_err().contains("has already passed"));
        assert!(at("in 6 weeks").unwrap_err().contains("more than 30 days ahead"));
        let e = resolve(Some("tomorrow"), "", NOW, ASAP).unwrap_err();
        assert!(e.contains("RFC 3339"), "{e}");
        let e = resolve(Some("2026-11-01T10:00:00Z"), "", NOW, ASAP).unwrap_err();
        assert!(e.contains("has already passed"), "{e}");
    }

    #[test]
    fn describes_in_utc() {
        assert_eq!(describe(datetime!(2026-12-01 15:00 -5)), "Tuesday 1 December at 20:00 UTC");
    }
}
