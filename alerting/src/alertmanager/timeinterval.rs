//! Alertmanager's time intervals: the entries of `time_intervals:` (and of the deprecated
//! `mute_time_intervals:`, which has the same shape) that routes name in
//! `mute_time_intervals` and `active_time_intervals`. This module owns their parsing, the
//! checks Alertmanager makes on each field (with its wording, prefixed by the field), and
//! the answer to whether an instant falls inside an interval, in the interval's time zone.
//! Which routes use which interval, and that names are present and unique, are the
//! configuration's to check.
//!
//! ```yaml
//! time_intervals:
//!   - name: business-hours
//!     time_intervals:
//!       - times: [{start_time: "09:00", end_time: "17:00"}]   # end exclusive; 24:00 allowed
//!         weekdays: ["monday:friday"]                         # sunday starts the week
//!         days_of_month: ["1:5", "-3:-1"]                     # -1 is the last day
//!         months: ["january:march", "12"]
//!         years: ["2020:2022", "2030"]
//!         location: Europe/Berlin                             # IANA name, Local or UTC
//! ```
//!
//! Where Sightline differs from Alertmanager 0.34: an empty list matches anything, as the
//! documentation says (Alertmanager matches nothing on `weekdays: []`); a numeric month
//! outside 1–12 is refused (Alertmanager accepts it and never matches); a month's length
//! is counted in calendar days (Alertmanager counts hours, which makes the month where
//! daylight saving starts a day short in zones that have it).

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc, Weekday};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Why a time interval was refused: the field it was in and the reason, worded as
/// Alertmanager words it where it has words for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct TimeIntervalError {
    /// The configuration field: `times`, `weekdays`, `days_of_month`, `months`, `years`
    /// or `location`.
    pub field: &'static str,
    /// What is wrong with the value, naming it.
    pub reason: String,
}

fn error(field: &'static str, reason: impl Into<String>) -> TimeIntervalError {
    TimeIntervalError {
        field,
        reason: reason.into(),
    }
}

/// One entry of `time_intervals:` or `mute_time_intervals:`: a name routes refer to and
/// the intervals it stands for (any one of them matching is enough).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    /// The name routes refer to; required here, while that it is non-empty and unique
    /// is the configuration's check, whose message names the list.
    pub name: String,
    #[serde(default, deserialize_with = "list")]
    pub time_intervals: Vec<TimeInterval>,
}

impl NamedTimeInterval {
    /// Tells whether `t` falls inside any of the named intervals.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        any_contains(&self.time_intervals, t)
    }
}

/// Tells whether `t` falls inside any of `intervals`; none do when the list is empty.
pub fn any_contains(intervals: &[TimeInterval], t: DateTime<Utc>) -> bool {
    intervals.iter().any(|interval| interval.contains(t))
}

/// A `<time_interval_spec>`: an instant is inside when every field that lists something
/// has an entry matching it; a field left out or empty matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    /// Times of day, any of which may match.
    #[serde(default, deserialize_with = "list")]
    pub times: Vec<TimeRange>,
    /// Days of the week, any of which may match.
    #[serde(default, deserialize_with = "list")]
    pub weekdays: Vec<WeekdayRange>,
    /// Days of the month, any of which may match.
    #[serde(default, deserialize_with = "list")]
    pub days_of_month: Vec<DayOfMonthRange>,
    /// Months, any of which may match.
    #[serde(default, deserialize_with = "list")]
    pub months: Vec<MonthRange>,
    /// Years, any of which may match.
    #[serde(default, deserialize_with = "list")]
    pub years: Vec<YearRange>,
    /// The time zone every other field is read in; UTC when left out.
    #[serde(default)]
    pub location: Location,
}

impl TimeInterval {
    /// Tells whether `t`, seen on the calendar and clock of the interval's location, is
    /// inside the interval.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let civil = match self.location {
            Location::Utc => Civil::of(&t),
            Location::Local => Civil::of(&t.with_timezone(&chrono::Local)),
            Location::Zone(tz) => Civil::of(&t.with_timezone(&tz)),
        };
        matches(&self.times, |r| r.contains_minute(civil.minute_of_day))
            && matches(&self.weekdays, |r| r.contains(civil.weekday))
            && matches(&self.days_of_month, |r| {
                r.contains_day(civil.day, civil.days_in_month)
            })
            && matches(&self.months, |r| r.contains(civil.month))
            && matches(&self.years, |r| r.contains(civil.year))
    }
}

/// An empty list puts no condition on its field.
fn matches<T>(list: &[T], hit: impl Fn(&T) -> bool) -> bool {
    list.is_empty() || list.iter().any(hit)
}

/// The calendar and clock fields of an instant in one time zone.
struct Civil {
    year: i64,
    month: u32,
    day: i64,
    days_in_month: i64,
    weekday: Weekday,
    minute_of_day: u32,
}

impl Civil {
    fn of<Tz: TimeZone>(t: &DateTime<Tz>) -> Civil {
        // `Datelike` on a `DateTime` does not panic even at the ends of chrono's range,
        // where `naive_local` would.
        Civil {
            year: i64::from(t.year()),
            month: t.month(),
            day: i64::from(t.day()),
            days_in_month: days_in_month(t.year(), t.month()),
            weekday: t.weekday(),
            minute_of_day: t.hour() * 60 + t.minute(),
        }
    }
}

fn days_in_month(year: i32, month: u32) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// `start_time`/`end_time`: minutes of the day from the start (included) to the end
/// (excluded), so `17:00`–`24:00` runs to the last minute of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    start_minute: u32,
    end_minute: u32,
}

impl TimeRange {
    /// Checks and builds the range from `HH:MM` texts (`00:00` to `24:00`, the start
    /// strictly before the end).
    pub fn new(start_time: &str, end_time: &str) -> Result<TimeRange, TimeIntervalError> {
        if start_time.is_empty() || end_time.is_empty() {
            return Err(error("times", "both start and end times must be provided"));
        }
        let start_minute = parse_clock(start_time)?;
        let end_minute = parse_clock(end_time)?;
        if start_minute >= end_minute {
            return Err(error(
                "times",
                format!(
                    "start time {start_time} cannot be equal or greater than end time {end_time}"
                ),
            ));
        }
        Ok(TimeRange {
            start_minute,
            end_minute,
        })
    }

    /// Returns the first minute of the day inside the range.
    pub fn start_minute(&self) -> u32 {
        self.start_minute
    }

    /// Returns the first minute of the day past the range (1440 for `24:00`).
    pub fn end_minute(&self) -> u32 {
        self.end_minute
    }

    fn contains_minute(&self, minute: u32) -> bool {
        self.start_minute <= minute && minute < self.end_minute
    }
}

/// Reads `HH:MM` with two-digit hours and minutes, as Alertmanager's pattern does; `24:00`
/// is the only time past 23:59.
fn parse_clock(text: &str) -> Result<u32, TimeIntervalError> {
    let invalid = || {
        error(
            "times",
            format!("couldn't parse timestamp {text}, invalid format"),
        )
    };
    if text == "24:00" {
        return Ok(24 * 60);
    }
    let [h1, h2, b':', m1, m2] = *text.as_bytes() else {
        return Err(invalid());
    };
    let digit = |b: u8| b.is_ascii_digit().then(|| u32::from(b - b'0'));
    let (Some(h1), Some(h2), Some(m1), Some(m2)) = (digit(h1), digit(h2), digit(m1), digit(m2))
    else {
        return Err(invalid());
    };
    let (hour, minute) = (h1 * 10 + h2, m1 * 10 + m2);
    if hour > 23 || minute > 59 {
        return Err(invalid());
    }
    Ok(hour * 60 + minute)
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TimeRange, D::Error> {
        d.deserialize_map(TimeRangeVisitor)
    }
}

/// Reads `{start_time, end_time}` and checks the pair inside the visitor, so that a YAML
/// error points at the range itself (`times[1]`, its line and column).
struct TimeRangeVisitor;

impl<'de> Visitor<'de> for TimeRangeVisitor {
    type Value = TimeRange;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map with start_time and end_time in `times`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TimeRange, A::Error> {
        const FIELDS: &[&str] = &["start_time", "end_time"];
        let (mut start, mut end) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            let (slot, name) = match key.as_str() {
                "start_time" => (&mut start, "start_time"),
                "end_time" => (&mut end, "end_time"),
                other => return Err(de::Error::unknown_field(other, FIELDS)),
            };
            if slot.is_some() {
                return Err(de::Error::duplicate_field(name));
            }
            *slot = Some(map.next_value_seed(EntryVisitor {
                what: "a time of day (HH:MM) in `times`",
                parse: |text| Ok(Some(text.to_owned())),
                on_null: Some(|| None),
            })?);
        }
        TimeRange::new(
            start.flatten().as_deref().unwrap_or_default(),
            end.flatten().as_deref().unwrap_or_default(),
        )
        .map_err(de::Error::custom)
    }
}

/// Days of the week by name, `monday` or `monday:friday`, inclusive; the week starts on
/// Sunday, so `saturday:sunday` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayRange {
    begin: Weekday,
    end: Weekday,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

impl WeekdayRange {
    /// Returns the first day of the range.
    pub fn begin(&self) -> Weekday {
        self.begin
    }

    /// Returns the last day of the range.
    pub fn end(&self) -> Weekday {
        self.end
    }

    fn contains(&self, day: Weekday) -> bool {
        let n = day.num_days_from_sunday();
        self.begin.num_days_from_sunday() <= n && n <= self.end.num_days_from_sunday()
    }
}

impl FromStr for WeekdayRange {
    type Err = TimeIntervalError;

    fn from_str(text: &str) -> Result<WeekdayRange, TimeIntervalError> {
        let (begin, end) = parse_range("weekdays", text, |name| {
            WEEKDAYS
                .iter()
                .position(|day| *day == name)
                .ok_or_else(|| error("weekdays", format!("{name} is not a valid weekday")))
        })?;
        if begin > end {
            // Alertmanager says "start day cannot be before end day", the wrong way round.
            return Err(error(
                "weekdays",
                format!(
                    "start day {} cannot be after end day {}",
                    WEEKDAYS[begin], WEEKDAYS[end]
                ),
            ));
        }
        Ok(WeekdayRange {
            begin: weekday_from_sunday(begin),
            end: weekday_from_sunday(end),
        })
    }
}

fn weekday_from_sunday(n: usize) -> Weekday {
    match n {
        0 => Weekday::Sun,
        1 => Weekday::Mon,
        2 => Weekday::Tue,
        3 => Weekday::Wed,
        4 => Weekday::Thu,
        5 => Weekday::Fri,
        _ => Weekday::Sat,
    }
}

/// Days of the month, `1`, `1:5` or `-3:-1`, inclusive; a negative day counts from the
/// end of the month (-1 is the last day). A range reaching past the month's ends is cut
/// to the month, and one starting past its last day (`30:31` in February) matches
/// nothing there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayOfMonthRange {
    begin: i64,
    end: i64,
}

impl DayOfMonthRange {
    /// Returns the first day as written: 1 to 31, or -31 to -1 from the month's end.
    pub fn begin(&self) -> i64 {
        self.begin
    }

    /// Returns the last day as written: 1 to 31, or -31 to -1 from the month's end.
    pub fn end(&self) -> i64 {
        self.end
    }

    fn contains_day(&self, day: i64, days_in_month: i64) -> bool {
        let resolve = |d: i64| if d < 0 { days_in_month + d + 1 } else { d };
        let (begin, end) = (resolve(self.begin), resolve(self.end));
        // Alertmanager skips rather than clamps a start past the month's end, so that
        // `31` does not become the 30th in April.
        if begin > days_in_month {
            return false;
        }
        begin.max(1) <= day && day <= end.min(days_in_month)
    }
}

impl FromStr for DayOfMonthRange {
    type Err = TimeIntervalError;

    fn from_str(text: &str) -> Result<DayOfMonthRange, TimeIntervalError> {
        const FIELD: &str = "days_of_month";
        let (begin, end) = parse_range(FIELD, text, |n| {
            n.parse::<i64>().map_err(|_| {
                error(
                    FIELD,
                    format!("{n} is not a valid day of the month: not an integer"),
                )
            })
        })?;
        for day in [begin, end] {
            if day == 0 || !(-31..=31).contains(&day) {
                return Err(error(
                    FIELD,
                    format!("{day} is not a valid day of the month: out of range"),
                ));
            }
        }
        // A negative start with a positive end would be empty in short months only.
        if begin < 0 && end > 0 {
            return Err(error(
                FIELD,
                "end day must be negative if start day is negative",
            ));
        }
        // Which of two days of mixed signs comes first depends on the month; refuse the
        // pairs that are backwards even in the shortest month, as Alertmanager does.
        let in_shortest = |d: i64| if d < 0 { 28 + d } else { d };
        if in_shortest(begin) > in_shortest(end) {
            return Err(error(
                FIELD,
                format!("end day {end} is always before start day {begin}"),
            ));
        }
        Ok(DayOfMonthRange { begin, end })
    }
}

/// Months by case-insensitive name or number (January = 1), `march` or `1:3`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRange {
    begin: u32,
    end: u32,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

impl MonthRange {
    /// Returns the first month of the range, 1 to 12.
    pub fn begin(&self) -> u32 {
        self.begin
    }

    /// Returns the last month of the range, 1 to 12.
    pub fn end(&self) -> u32 {
        self.end
    }

    fn contains(&self, month: u32) -> bool {
        self.begin <= month && month <= self.end
    }
}

impl FromStr for MonthRange {
    type Err = TimeIntervalError;

    fn from_str(text: &str) -> Result<MonthRange, TimeIntervalError> {
        let (begin, end) = parse_range("months", text, |m| {
            let number = match MONTHS.iter().position(|name| *name == m) {
                Some(index) => index as i64 + 1,
                None => m
                    .parse::<i64>()
                    .map_err(|_| error("months", format!("{m} is not a valid month")))?,
            };
            // Alertmanager accepts any number here; a 13th month would never match.
            u32::try_from(number)
                .ok()
                .filter(|n| (1..=12).contains(n))
                .ok_or_else(|| error("months", format!("{m} is not a valid month: out of range")))
        })?;
        if begin > end {
            let name = |n: u32| {
                let index = (n as usize).checked_sub(1);
                index.and_then(|i| MONTHS.get(i)).copied().unwrap_or("?")
            };
            return Err(error(
                "months",
                format!(
                    "end month {} is before start month {}",
                    name(end),
                    name(begin)
                ),
            ));
        }
        Ok(MonthRange { begin, end })
    }
}

/// Years, `2020` or `2020:2022`, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearRange {
    begin: i64,
    end: i64,
}

impl YearRange {
    /// Returns the first year of the range.
    pub fn begin(&self) -> i64 {
        self.begin
    }

    /// Returns the last year of the range.
    pub fn end(&self) -> i64 {
        self.end
    }

    fn contains(&self, year: i64) -> bool {
        self.begin <= year && year <= self.end
    }
}

impl FromStr for YearRange {
    type Err = TimeIntervalError;

    fn from_str(text: &str) -> Result<YearRange, TimeIntervalError> {
        let (begin, end) = parse_range("years", text, |y| {
            y.parse::<i64>()
                .map_err(|_| error("years", format!("{y} is not a valid year")))
        })?;
        if begin > end {
            return Err(error(
                "years",
                format!("end year {end} is before start year {begin}"),
            ));
        }
        Ok(YearRange { begin, end })
    }
}

/// Splits `a` or `a:b` (lowercased first, as Alertmanager does, so names are
/// case-insensitive and error messages show them lowercased) and reads both ends.
fn parse_range<T: Copy>(
    field: &'static str,
    text: &str,
    member: impl Fn(&str) -> Result<T, TimeIntervalError>,
) -> Result<(T, T), TimeIntervalError> {
    let text = text.to_lowercase();
    match text.split_once(':') {
        None => {
            let value = member(&text)?;
            Ok((value, value))
        }
        Some((begin, end)) if !end.contains(':') => Ok((member(begin)?, member(end)?)),
        Some(_) => Err(error(
            field,
            format!("couldn't parse range {text}, invalid format"),
        )),
    }
}

/// The time zone an interval is read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Location {
    /// `UTC`, an empty name, or no `location` at all.
    #[default]
    Utc,
    /// `Local`: the zone of the machine Sightline runs on.
    Local,
    /// A zone of the IANA database, such as `Australia/Sydney`.
    Zone(chrono_tz::Tz),
}

impl Location {
    /// Returns the name the location is written with.
    pub fn name(&self) -> &'static str {
        match self {
            Location::Utc => "UTC",
            Location::Local => "Local",
            Location::Zone(tz) => tz.name(),
        }
    }
}

impl FromStr for Location {
    type Err = TimeIntervalError;

    /// Reads a location as Go's `time.LoadLocation` does: `""` and `UTC` are UTC, `Local`
    /// is the machine's zone, anything else must be an IANA name (case matters).
    fn from_str(name: &str) -> Result<Location, TimeIntervalError> {
        match name {
            "" | "UTC" => Ok(Location::Utc),
            "Local" => Ok(Location::Local),
            _ => name
                .parse::<chrono_tz::Tz>()
                .map(Location::Zone)
                .map_err(|_| error("location", format!("unknown time zone {name}"))),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Location, D::Error> {
        d.deserialize_any(EntryVisitor {
            what: "a time zone name in `location`",
            parse: Location::from_str,
            on_null: Some(|| Location::Utc),
        })
    }
}

/// A list field's entries, named for error messages.
trait Entry {
    const FIELD: &'static str;
}

impl Entry for TimeInterval {
    const FIELD: &'static str = "time_intervals";
}
impl Entry for TimeRange {
    const FIELD: &'static str = "times";
}
impl Entry for WeekdayRange {
    const FIELD: &'static str = "weekdays";
}
impl Entry for DayOfMonthRange {
    const FIELD: &'static str = "days_of_month";
}
impl Entry for MonthRange {
    const FIELD: &'static str = "months";
}
impl Entry for YearRange {
    const FIELD: &'static str = "years";
}

/// Reads a list field, taking `null` (`weekdays:` with nothing after it) as empty, as
/// Go's YAML decoder does.
fn list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Entry,
{
    d.deserialize_any(ListVisitor(PhantomData))
}

struct ListVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Entry> Visitor<'de> for ListVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list in `{}`", T::FIELD)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }

    fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(entry) = seq.next_element()? {
            out.push(entry);
        }
        Ok(out)
    }
}

macro_rules! deserialize_from_str {
    ($type:ty, $what:literal) => {
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$type, D::Error> {
                d.deserialize_any(EntryVisitor {
                    what: $what,
                    parse: <$type>::from_str,
                    on_null: None,
                })
            }
        }
    };
}

deserialize_from_str!(
    WeekdayRange,
    "a weekday or a range of them (monday:friday) in `weekdays`"
);
deserialize_from_str!(
    DayOfMonthRange,
    "a day of the month or a range of them (1:5, -3:-1) in `days_of_month`"
);
deserialize_from_str!(
    MonthRange,
    "a month or a range of them (january:march, 1:3) in `months`"
);
deserialize_from_str!(
    YearRange,
    "a year or a range of them (2020:2022) in `years`"
);

/// Reads one scalar and checks it with `parse` inside the visitor, so that a YAML error
/// points at the entry itself (`weekdays[2]`, its line and column). Numbers are read as
/// their text, because Go's YAML decoder hands an unquoted `days_of_month: [1, 15]` or
/// `years: [2024]` to Alertmanager as strings and configurations rely on it.
struct EntryVisitor<T> {
    what: &'static str,
    parse: fn(&str) -> Result<T, TimeIntervalError>,
    /// What `null` stands for, if it is allowed.
    on_null: Option<fn() -> T>,
}

impl<'de, T> DeserializeSeed<'de> for EntryVisitor<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T> Visitor<'de> for EntryVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        match self.on_null {
            Some(null) => Ok(null()),
            None => Err(E::invalid_type(de::Unexpected::Unit, &self)),
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        self.visit_unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> TimeInterval {
        serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    fn parse_err(yaml: &str) -> String {
        match serde_yaml_ng::from_str::<TimeInterval>(yaml) {
            Ok(ti) => panic!("{yaml} parsed as {ti:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap_or_else(|e| panic!("{rfc3339}: {e}"))
            .with_timezone(&Utc)
    }

    /// Asserts which of `inside` and `outside` the interval contains.
    fn check(ti: &TimeInterval, inside: &[&str], outside: &[&str]) {
        for t in inside {
            assert!(ti.contains(at(t)), "{ti:?} should contain {t}");
        }
        for t in outside {
            assert!(!ti.contains(at(t)), "{ti:?} should not contain {t}");
        }
    }

    #[test]
    fn the_documentation_examples_parse_to_what_they_say() {
        let ti = parse(
            "
times:
  - start_time: '17:00'
    end_time: '24:00'
weekdays: ['monday:wednesday','saturday', 'sunday']
days_of_month: ['1:5', '-3:-1']
months: ['1:3', 'may:august', 'december']
years: ['2020:2022', '2030']
location: 'Australia/Sydney'
",
        );
        assert_eq!(ti.times, vec![TimeRange::new("17:00", "24:00").unwrap()]);
        assert_eq!(
            (ti.times[0].start_minute(), ti.times[0].end_minute()),
            (1020, 1440)
        );
        let days: Vec<_> = ti.weekdays.iter().map(|r| (r.begin(), r.end())).collect();
        assert_eq!(
            days,
            [
                (Weekday::Mon, Weekday::Wed),
                (Weekday::Sat, Weekday::Sat),
                (Weekday::Sun, Weekday::Sun)
            ]
        );
        let dom: Vec<_> = ti
            .days_of_month
            .iter()
            .map(|r| (r.begin(), r.end()))
            .collect();
        assert_eq!(dom, [(1, 5), (-3, -1)]);
        let months: Vec<_> = ti.months.iter().map(|r| (r.begin(), r.end())).collect();
        assert_eq!(months, [(1, 3), (5, 8), (12, 12)]);
        let years: Vec<_> = ti.years.iter().map(|r| (r.begin(), r.end())).collect();
        assert_eq!(years, [(2020, 2022), (2030, 2030)]);
        assert_eq!(ti.location, Location::Zone(chrono_tz::Australia::Sydney));
        assert_eq!(ti.location.name(), "Australia/Sydney");
    }

    #[test]
    fn the_documentation_sydney_example_reads_its_unquoted_times_in_sydney() {
        let ti = parse(
            "
times:
- start_time: 09:00
  end_time: 17:00
weekdays: ['monday:friday']
location: 'Australia/Sydney'
",
        );
        check(
            &ti,
            // 09:00 and 16:59 on Monday 2021-04-12 in Sydney (AEST, +10).
            &["2021-04-11T23:00:00Z", "2021-04-12T06:59:59Z"],
            // 17:00 Sydney; 09:00 UTC (19:00 Sydney); Saturday 10:00 in Sydney.
            &[
                "2021-04-12T07:00:00Z",
                "2021-04-12T09:00:00Z",
                "2021-04-17T00:00:00Z",
            ],
        );
    }

    #[test]
    fn a_named_list_parses_as_the_configuration_writes_it() {
        let named: Vec<NamedTimeInterval> = serde_yaml_ng::from_str(
            "
- name: offhours
  time_intervals:
    - weekdays: ['Saturday','Sunday']
    - times:
      - start_time: '19:00'
        end_time: '24:00'
      - start_time: '00:00'
        end_time: '09:00'
- name: last-week-of-month
  time_intervals:
    - days_of_month: ['-7:-1']
- name: never
",
        )
        .unwrap();
        assert_eq!(named.len(), 3);
        assert_eq!(named[0].name, "offhours");
        assert_eq!(named[0].time_intervals.len(), 2);
        // Saturday noon, and a Wednesday at 20:00 and 08:59, are off hours.
        for t in [
            "2026-03-07T12:00:00Z",
            "2026-03-04T20:00:00Z",
            "2026-03-04T08:59:00Z",
        ] {
            assert!(named[0].contains(at(t)), "{t}");
        }
        assert!(!named[0].contains(at("2026-03-04T09:00:00Z")));
        assert!(named[1].contains(at("2026-03-25T00:00:00Z")));
        assert!(!named[1].contains(at("2026-03-24T23:59:59Z")));
        // A name with no intervals covers no time at all.
        assert!(named[2].time_intervals.is_empty());
        assert!(!named[2].contains(at("2026-03-04T09:00:00Z")));
        let err = serde_yaml_ng::from_str::<NamedTimeInterval>("time_intervals: []")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `name`"), "{err}");
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level() {
        let err = serde_yaml_ng::from_str::<NamedTimeInterval>("name: x\nintervals: []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `intervals`"), "{err}");
        let err = parse_err("time_zone: UTC\n");
        assert!(err.contains("unknown field `time_zone`"), "{err}");
        let err = parse_err("times: [{start_time: '01:00', end_time: '02:00', end: '03:00'}]\n");
        assert!(
            err.contains("times") && err.contains("unknown field `end`"),
            "{err}"
        );
    }

    #[test]
    fn unquoted_numbers_are_read_as_the_text_alertmanager_sees() {
        let ti = parse("days_of_month: [1, -1]\nmonths: [3]\nyears: [2024]\n");
        check(
            &ti,
            &["2024-03-01T00:00:00Z", "2024-03-31T23:59:59Z"],
            &[
                "2024-03-02T00:00:00Z",
                "2025-03-01T00:00:00Z",
                "2024-04-01T00:00:00Z",
            ],
        );
    }

    #[test]
    fn names_are_case_insensitive_and_numbers_may_stand_for_months() {
        let ti = parse("weekdays: ['Saturday', 'SUNDAY']\nmonths: ['January:march', '12']\n");
        let months: Vec<_> = ti.months.iter().map(|r| (r.begin(), r.end())).collect();
        assert_eq!(months, [(1, 3), (12, 12)]);
        check(
            &ti,
            &["2026-01-03T10:00:00Z", "2026-12-06T10:00:00Z"],
            &["2026-01-05T10:00:00Z", "2026-04-04T10:00:00Z"],
        );
    }

    #[test]
    fn absent_null_and_empty_fields_match_anything() {
        let instants = [
            "0001-01-01T00:00:00Z",
            "2026-02-28T23:59:59Z",
            "9999-12-31T12:00:00Z",
        ];
        for yaml in [
            "{}",
            "times:\nweekdays:\ndays_of_month:\nmonths:\nyears:\nlocation:\n",
            "times: []\nweekdays: []\ndays_of_month: []\nmonths: []\nyears: []\n",
        ] {
            let ti = parse(yaml);
            assert_eq!(ti, TimeInterval::default(), "{yaml}");
            check(&ti, &instants, &[]);
        }
    }

    #[test]
    fn location_defaults_to_utc_and_takes_utc_local_and_iana_names() {
        assert_eq!(parse("{}").location, Location::Utc);
        assert_eq!(parse("location: UTC").location, Location::Utc);
        assert_eq!(parse("location: ''").location, Location::Utc);
        assert_eq!(parse("location: Local").location, Location::Local);
        assert_eq!(
            parse("location: Etc/GMT+5").location,
            Location::Zone(chrono_tz::Etc::GMTPlus5)
        );
        assert_eq!(Location::Local.to_string(), "Local");
    }

    #[test]
    fn local_reads_the_instant_in_the_machines_zone() {
        let t = at("2026-06-15T12:34:00Z");
        let here = t.with_timezone(&chrono::Local);
        let ti = parse(&format!(
            "location: Local\nyears: ['{}']\nmonths: ['{}']\ndays_of_month: ['{}']",
            here.year(),
            here.month(),
            here.day()
        ));
        assert!(ti.contains(t));
    }

    /// Refused intervals, one a line: the YAML, then `=>` and what the error must say.
    /// The field the error must name is the YAML's first key.
    const BAD: &str = r#"
times: [{start_time: '01:99', end_time: '23:59'}] => couldn't parse timestamp 01:99, invalid format
times: [{start_time: '00:00', end_time: '99:99'}] => couldn't parse timestamp 99:99, invalid format
times: [{start_time: '12:30', end_time: '24:01'}] => couldn't parse timestamp 24:01, invalid format
times: [{start_time: '9:00', end_time: '17:00'}] => couldn't parse timestamp 9:00, invalid format
times: [{start_time: '09:00:00', end_time: '17:00'}] => couldn't parse timestamp 09:00:00, invalid format
times: [{start_time: '17:31', end_time: '17:31'}] => start time 17:31 cannot be equal or greater than end time 17:31
times: [{start_time: '09:30', end_time: '07:41'}] => cannot be equal or greater than end time
times: [{start_time: '24:00', end_time: '17:41'}] => cannot be equal or greater than end time
times: [{start_time: '14:03'}] => both start and end times must be provided
times: [{start_time: '', end_time: '14:03'}] => both start and end times must be provided
times: [{start_time: ~, end_time: '14:03'}] => both start and end times must be provided
times: ['09:00'] => expected a map with start_time and end_time
times: '09:00' => expected a list in `times`
weekdays: ['friday:monday'] => start day friday cannot be after end day monday
weekdays: ['saturday:sunday'] => start day saturday cannot be after end day sunday
weekdays: ['blurgsday:flurgsday'] => blurgsday is not a valid weekday
weekdays: ['Blurgsday'] => blurgsday is not a valid weekday
weekdays: ['1:3'] => 1 is not a valid weekday
weekdays: ['-2:-1'] => -2 is not a valid weekday
weekdays: ['monday: friday'] =>  friday is not a valid weekday
weekdays: ['monday:tuesday:friday'] => couldn't parse range monday:tuesday:friday, invalid format
weekdays: [~] => expected a weekday
weekdays: [[monday]] => expected a weekday
weekdays: monday => expected a list in `weekdays`
days_of_month: ['0'] => 0 is not a valid day of the month: out of range
days_of_month: ['-50:-20'] => -50 is not a valid day of the month: out of range
days_of_month: ['1:50'] => 50 is not a valid day of the month: out of range
days_of_month: ['1:0'] => 0 is not a valid day of the month: out of range
days_of_month: ['-15:5'] => end day must be negative if start day is negative
days_of_month: ['10:-25'] => end day -25 is always before start day 10
days_of_month: ['5:1'] => end day 1 is always before start day 5
days_of_month: ['-1:-3'] => end day -3 is always before start day -1
days_of_month: ['first'] => first is not a valid day of the month
days_of_month: ['99999999999999999999'] => is not a valid day of the month
days_of_month: [1.5] => expected a day of the month
months: ['martius:june'] => martius is not a valid month
months: ['march:junius'] => junius is not a valid month
months: ['december:january'] => end month january is before start month december
months: ['12:1'] => end month january is before start month december
months: ['13'] => 13 is not a valid month: out of range
months: ['0:3'] => 0 is not a valid month: out of range
years: ['2022:2020'] => end year 2020 is before start year 2022
years: ['next'] => next is not a valid year
years: [true] => expected a year
location: Mars/Olympus_Mons => unknown time zone Mars/Olympus_Mons
location: australia/sydney => unknown time zone australia/sydney
location: local => unknown time zone local
location: [UTC] => expected a time zone name
"#;

    #[test]
    fn bad_intervals_are_refused_naming_the_field_and_the_reason() {
        for line in BAD.lines().filter(|l| !l.is_empty()) {
            let (yaml, reason) = line.split_once(" => ").expect("a `=>` on every line");
            let field = yaml.split(':').next().unwrap_or_default();
            let err = parse_err(yaml);
            assert!(err.contains(field), "{yaml}: {err:?} does not name {field}");
            assert!(
                err.contains(reason),
                "{yaml}: {err:?} does not say {reason:?}"
            );
        }
    }

    #[test]
    fn yaml_errors_point_at_the_entry_at_fault() {
        let err = parse_err("weekdays:\n  - monday\n  - fryday\n");
        assert_eq!(
            err,
            "weekdays[1]: weekdays: fryday is not a valid weekday at line 3 column 5"
        );
        let err = parse_err(
            "times:\n  - {start_time: '09:00', end_time: '17:00'}\n  - {start_time: '18:00'}\n",
        );
        assert_eq!(
            err,
            "times[1]: times: both start and end times must be provided at line 3 column 5"
        );
        let err = parse_err("times: [{start_time: '01:00', start_time: '02:00'}]");
        assert!(err.contains("duplicate field `start_time`"), "{err}");
    }

    #[test]
    fn errors_name_the_field_even_without_a_yaml_path() {
        // A YAML value has no positions, so only the message itself names the field.
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str("days_of_month: ['0']").unwrap();
        let err = serde_yaml_ng::from_value::<TimeInterval>(value).unwrap_err();
        assert_eq!(
            err.to_string(),
            "days_of_month: 0 is not a valid day of the month: out of range"
        );
        assert_eq!(
            "0".parse::<DayOfMonthRange>(),
            Err(error(
                "days_of_month",
                "0 is not a valid day of the month: out of range"
            ))
        );
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str("years: [2020]").unwrap();
        let ti: TimeInterval = serde_yaml_ng::from_value(value).unwrap();
        assert_eq!((ti.years[0].begin(), ti.years[0].end()), (2020, 2020));
    }

    #[test]
    fn the_start_time_is_inside_and_the_end_time_outside() {
        let ti = parse("times: [{start_time: '09:00', end_time: '17:00'}]");
        check(
            &ti,
            &["2026-03-04T09:00:00Z", "2026-03-04T16:59:59.999Z"],
            &["2026-03-04T08:59:59Z", "2026-03-04T17:00:00Z"],
        );
        let minute = parse("times: [{start_time: '09:35', end_time: '09:36'}]");
        check(
            &minute,
            &["2026-03-04T09:35:00Z", "2026-03-04T09:35:59Z"],
            &["2026-03-04T09:34:59Z", "2026-03-04T09:36:00Z"],
        );
    }

    #[test]
    fn an_end_of_24_00_takes_the_last_minute_and_not_the_next_midnight() {
        let ti = parse("times: [{start_time: '17:00', end_time: '24:00'}]");
        check(
            &ti,
            &["2026-03-04T17:00:00Z", "2026-03-04T23:59:59Z"],
            &["2026-03-04T16:59:59Z", "2026-03-05T00:00:00Z"],
        );
        let day = parse("times: [{start_time: '00:00', end_time: '24:00'}]");
        check(&day, &["2026-03-04T00:00:00Z", "2026-03-04T23:59:00Z"], &[]);
    }

    #[test]
    fn any_one_of_several_time_ranges_is_enough() {
        let ti = parse(
            "times: [{start_time: '00:00', end_time: '01:00'}, {start_time: '23:00', end_time: '24:00'}]",
        );
        check(
            &ti,
            &["2026-03-04T00:30:00Z", "2026-03-04T23:30:00Z"],
            &["2026-03-04T01:00:00Z", "2026-03-04T12:00:00Z"],
        );
    }

    #[test]
    fn weekday_ranges_are_inclusive_and_the_week_starts_on_sunday() {
        // 2026-03-01 is a Sunday.
        let workweek = parse("weekdays: ['monday:friday']");
        check(
            &workweek,
            &["2026-03-02T00:00:00Z", "2026-03-06T23:59:59Z"],
            &["2026-03-01T23:59:59Z", "2026-03-07T00:00:00Z"],
        );
        let week = parse("weekdays: ['sunday:saturday']");
        check(
            &week,
            &["2026-03-01T12:00:00Z", "2026-03-07T12:00:00Z"],
            &[],
        );
        let mixed = parse("weekdays: ['monday:wednesday', 'saturday', 'sunday']");
        check(
            &mixed,
            &[
                "2026-03-01T12:00:00Z",
                "2026-03-04T12:00:00Z",
                "2026-03-07T12:00:00Z",
            ],
            &["2026-03-05T12:00:00Z", "2026-03-06T12:00:00Z"],
        );
    }

    #[test]
    fn negative_days_count_back_from_the_end_of_february_in_a_leap_year() {
        let ti = parse("days_of_month: ['-3:-1']");
        check(
            &ti,
            &["2024-02-27T00:00:00Z", "2024-02-29T23:59:59Z"],
            &["2024-02-26T23:59:59Z", "2024-03-01T00:00:00Z"],
        );
        let last = parse("days_of_month: ['-1']");
        check(&last, &["2024-02-29T12:00:00Z"], &["2024-02-28T12:00:00Z"]);
    }

    #[test]
    fn negative_days_count_back_from_the_end_of_february_in_a_common_year() {
        let ti = parse("days_of_month: ['-3:-1']");
        check(
            &ti,
            &["2026-02-26T00:00:00Z", "2026-02-28T23:59:59Z"],
            &["2026-02-25T23:59:59Z", "2026-03-01T00:00:00Z"],
        );
        // 2100 is not a leap year, 2000 is.
        let last = parse("days_of_month: ['-1']");
        check(
            &last,
            &["2100-02-28T12:00:00Z", "2000-02-29T12:00:00Z"],
            &["2000-02-28T12:00:00Z"],
        );
    }

    #[test]
    fn days_past_the_end_of_the_month_are_cut_to_it() {
        let ti = parse("days_of_month: ['1:31']");
        check(
            &ti,
            &[
                "2026-02-01T00:00:00Z",
                "2026-02-28T23:59:59Z",
                "2026-04-30T12:00:00Z",
            ],
            &[],
        );
        // -31 is before the 1st in February, so the whole month counts.
        let back = parse("days_of_month: ['-31:-1']");
        check(
            &back,
            &["2026-02-01T00:00:00Z", "2026-02-28T00:00:00Z"],
            &[],
        );
        // `20:-1`: from the 20th to the last day, whatever the month's length.
        let tail = parse("days_of_month: ['20:-1']");
        check(
            &tail,
            &[
                "2026-02-20T00:00:00Z",
                "2026-02-28T00:00:00Z",
                "2026-01-31T00:00:00Z",
            ],
            &["2026-02-19T23:59:59Z"],
        );
    }

    #[test]
    fn a_range_starting_past_the_end_of_the_month_matches_nothing_in_it() {
        let ti = parse("days_of_month: ['30:31']\nmonths: ['february']");
        check(&ti, &[], &["2021-02-28T13:00:00Z", "2024-02-29T13:00:00Z"]);
        let april = parse("days_of_month: ['31']");
        check(&april, &["2026-03-31T12:00:00Z"], &["2026-04-30T12:00:00Z"]);
    }

    #[test]
    fn months_and_years_bound_inclusively() {
        let ti = parse("months: ['january:march', 'december']\nyears: ['2020:2022', '2030']");
        check(
            &ti,
            &[
                "2020-01-01T00:00:00Z",
                "2022-03-31T23:59:59Z",
                "2021-12-15T00:00:00Z",
                "2030-02-01T00:00:00Z",
            ],
            &[
                "2019-12-31T23:59:59Z",
                "2022-04-01T00:00:00Z",
                "2023-01-01T00:00:00Z",
                "2029-12-31T00:00:00Z",
                "2031-01-01T00:00:00Z",
            ],
        );
    }

    #[test]
    fn the_location_decides_the_date_when_utc_is_still_on_the_day_before() {
        // 2026-12-31T17:00Z is 01:00 on Friday 1 January 2027 in Shanghai (+08).
        let new_year = "
weekdays: ['friday']
days_of_month: ['1']
months: ['january']
years: ['2027']
times: [{start_time: '01:00', end_time: '02:00'}]
";
        let shanghai = parse(&format!("{new_year}location: Asia/Shanghai\n"));
        check(
            &shanghai,
            &["2026-12-31T17:00:00Z", "2026-12-31T17:59:59Z"],
            &[
                "2026-12-31T16:59:59Z",
                "2026-12-31T18:00:00Z",
                "2027-01-01T01:00:00Z",
            ],
        );
        let utc = parse(new_year);
        check(&utc, &["2027-01-01T01:00:00Z"], &["2026-12-31T17:00:00Z"]);
    }

    #[test]
    fn a_location_follows_its_daylight_saving_time() {
        // Sydney business hours in November (AEDT, +11): upstream's own cases.
        let ti = parse(
            "
times: [{start_time: '09:00', end_time: '17:00'}]
weekdays: ['monday:friday']
months: ['november']
location: Australia/Sydney
",
        );
        check(
            &ti,
            &["2021-10-31T22:00:00Z"],
            &["2021-10-31T21:00:00Z", "2021-11-01T06:00:00Z"],
        );
        // In April (AEST, +10) 13:00 Sydney is 03:00 UTC.
        let april =
            parse("times: [{start_time: '13:00', end_time: '14:00'}]\nlocation: Australia/Sydney");
        check(&april, &["2021-04-06T03:00:00Z"], &["2021-04-06T13:00:00Z"]);
    }

    #[test]
    fn the_last_days_of_march_count_by_the_calendar_where_daylight_saving_starts() {
        // March in Berlin loses an hour to daylight saving; -1 is still the 31st.
        let ti = parse("days_of_month: ['-1']\nlocation: Europe/Berlin");
        check(&ti, &["2026-03-31T10:00:00Z"], &["2026-03-30T10:00:00Z"]);
    }

    #[test]
    fn upstreams_combined_examples_hold() {
        let ti = parse(
            "
weekdays: ['monday:wednesday', 'saturday', 'sunday']
times:
  - start_time: '13:00'
    end_time: '15:00'
days_of_month: ['1', '10', '20:-1']
years: ['2020:2023']
months: ['january:march']
",
        );
        check(
            &ti,
            &["2021-01-10T13:00:00Z", "2021-01-30T14:24:00Z"],
            &[
                "2021-01-09T13:00:00Z",
                "2021-01-20T12:59:00Z",
                "2021-02-02T13:00:00Z",
            ],
        );
        // The last week, Saturday excepted, of each first quarter in business hours.
        let quarter = parse(
            "
weekdays: ['monday:friday', 'sunday']
months: ['january:march']
days_of_month: ['-7:-1']
years: ['2020:2025', '2030:2035']
times:
  - start_time: '09:00'
    end_time: '17:00'
",
        );
        check(
            &quarter,
            &[
                "2021-01-27T09:00:00Z",
                "2021-01-28T16:59:00Z",
                "2021-01-29T13:00:00Z",
                "2025-03-31T13:00:00Z",
                "2035-01-31T13:00:00Z",
            ],
            &[
                "2021-01-30T13:00:00Z",
                "2021-04-01T13:00:00Z",
                "2026-01-30T13:00:00Z",
                "2035-01-31T17:01:00Z",
            ],
        );
    }

    #[test]
    fn any_contains_needs_one_matching_interval_and_none_match_from_an_empty_list() {
        let intervals: Vec<TimeInterval> = serde_yaml_ng::from_str(
            "
- weekdays: ['saturday', 'sunday']
- times: [{start_time: '00:00', end_time: '06:00'}]
",
        )
        .unwrap();
        assert!(any_contains(&intervals, at("2026-03-07T12:00:00Z")));
        assert!(any_contains(&intervals, at("2026-03-04T05:00:00Z")));
        assert!(!any_contains(&intervals, at("2026-03-04T12:00:00Z")));
        assert!(!any_contains(&[], at("2026-03-04T12:00:00Z")));
    }

    #[test]
    fn nothing_it_is_given_makes_it_panic() {
        let texts = [
            "",
            ":",
            "::",
            "-",
            "+",
            "0",
            "-0",
            "+1",
            "-32",
            "32",
            "31:-31",
            "-31:31",
            "a:b",
            "24:00",
            "23:60",
            "ab:cd",
            "٣:٤",
            "Ⅻ",
            "ǅ",
            "é:é",
            "9223372036854775808",
            "-9223372036854775809",
        ];
        for text in texts {
            let _ = text.parse::<WeekdayRange>();
            let _ = text.parse::<DayOfMonthRange>();
            let _ = text.parse::<MonthRange>();
            let _ = text.parse::<YearRange>();
            let _ = text.parse::<Location>();
            for other in texts {
                let _ = TimeRange::new(text, other);
            }
        }
        let everything = parse(
            "
times: [{start_time: '00:00', end_time: '24:00'}]
weekdays: ['sunday:saturday']
days_of_month: ['-31:-1', '1:31']
months: ['1:12']
years: ['-300000:300000']
",
        );
        for location in [
            Location::Utc,
            Location::Local,
            Location::Zone(chrono_tz::Asia::Shanghai),
            Location::Zone(chrono_tz::America::Los_Angeles),
        ] {
            let ti = TimeInterval {
                location,
                ..everything.clone()
            };
            for t in [
                DateTime::<Utc>::MIN_UTC,
                DateTime::<Utc>::MAX_UTC,
                DateTime::UNIX_EPOCH,
            ] {
                let _ = ti.contains(t);
            }
            assert!(ti.contains(DateTime::UNIX_EPOCH));
        }
    }
}
