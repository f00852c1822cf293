//! Recurring posts (issue 17): a post with a recurrence rule (an RFC 5545 RRULE subset: daily,
//! weekly and monthly, with an interval, by-day, by-month-day, a count and an until) in a time
//! zone. Each occurrence becomes a normal post, created ahead within a horizon, under an id
//! derived from the series and the occurrence's number: creating it twice (two nodes, a
//! retry) adds nothing.
//!
//! **No catch-up bursts**: occurrences whose time passed while nothing ran are skipped, or the
//! latest of them is published once, by the series' [`MissedPolicy`] — never all at once.
//! Texts vary per occurrence (platforms refuse identical repeated text): a list of variants
//! cycled, and `{n}` (the occurrence's number, from 1) and `{date}` (its local date) in the text.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jiff::civil::{Date, DateTime as CivilDateTime};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::engine::Konektly;
use crate::error::{Error, Result};
use crate::id::{OwnerId, PostId};
use crate::model::{Content, Post, Target};
use crate::queue::Day;

fn bad(msg: impl Into<String>) -> Error {
    Error::Config(msg.into())
}

/// How often.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    /// Every `interval` days.
    Daily,
    /// Every `interval` weeks, on `by_day` (default: the start's weekday).
    Weekly,
    /// Every `interval` months, on `by_month_day` (default: the start's day; a month without
    /// that day has no occurrence, as RFC 5545 says).
    Monthly,
}

/// A recurrence rule: the RFC 5545 subset konektly reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    /// How often.
    pub frequency: Frequency,
    /// Every how many days, weeks or months (≥ 1).
    pub interval: u32,
    /// Weekly: the days.
    #[serde(default)]
    pub by_day: Vec<Day>,
    /// Monthly: the days of the month (1–31).
    #[serde(default)]
    pub by_month_day: Vec<u8>,
    /// At most this many occurrences, the first included.
    #[serde(default)]
    pub count: Option<u32>,
    /// No occurrence after this instant.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

impl Recurrence {
    /// Parses `FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;COUNT=10` (also `BYMONTHDAY=1,15`,
    /// `UNTIL=20270101T000000Z`; an `RRULE:` prefix is allowed). Other parts are refused by name.
    pub fn parse(rule: &str) -> Result<Self> {
        let rule = rule.trim().strip_prefix("RRULE:").unwrap_or(rule.trim());
        let mut r = Recurrence {
            frequency: Frequency::Daily,
            interval: 1,
            by_day: vec![],
            by_month_day: vec![],
            count: None,
            until: None,
        };
        let mut freq = None;
        for part in rule.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or_else(|| bad(format!("`{part}` in the rule: write KEY=VALUE")))?;
            match k.to_ascii_uppercase().as_str() {
                "FREQ" => {
                    freq = Some(match v.to_ascii_uppercase().as_str() {
                        "DAILY" => Frequency::Daily,
                        "WEEKLY" => Frequency::Weekly,
                        "MONTHLY" => Frequency::Monthly,
                        other => return Err(bad(format!("FREQ={other} is not supported: DAILY, WEEKLY or MONTHLY"))),
                    })
                }
                "INTERVAL" => {
                    r.interval = v
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| bad(format!("INTERVAL={v}: a whole number ≥ 1")))?
                }
                "COUNT" => {
                    r.count = Some(
                        v.parse()
                            .ok()
                            .filter(|n| *n >= 1)
                            .ok_or_else(|| bad(format!("COUNT={v}: a whole number ≥ 1")))?,
                    )
                }
                "UNTIL" => r.until = Some(parse_until(v)?),
                "BYDAY" => {
                    for d in v.split(',') {
                        r.by_day.push(
                            day_of(d)
                                .ok_or_else(|| bad(format!("BYDAY: `{d}` is not MO, TU, WE, TH, FR, SA or SU")))?,
                        );
                    }
                }
                "BYMONTHDAY" => {
                    for d in v.split(',') {
                        r.by_month_day.push(
                            d.parse()
                                .ok()
                                .filter(|n| (1..=31).contains(n))
                                .ok_or_else(|| bad(format!("BYMONTHDAY: `{d}` is not 1 to 31")))?,
                        );
                    }
                }
                other => {
                    return Err(bad(format!(
                        "{other} is not supported in a rule (FREQ, INTERVAL, BYDAY, BYMONTHDAY, COUNT, UNTIL)"
                    )));
                }
            }
        }
        r.frequency = freq.ok_or_else(|| bad("a rule needs FREQ=DAILY, WEEKLY or MONTHLY"))?;
        if r.count.is_some() && r.until.is_some() {
            return Err(bad("a rule has COUNT or UNTIL, not both (RFC 5545)"));
        }
        r.by_day.sort();
        r.by_day.dedup();
        r.by_month_day.sort();
        r.by_month_day.dedup();
        Ok(r)
    }

    /// The occurrences from `start` (a local date and time in `zone`), numbered from 0, in
    /// order: each local time is turned into an instant like a queue's slots (a skipped hour
    /// moves past the gap; a repeated one is its first).
    pub fn occurrences(&self, zone: &str, start: &str) -> Result<Occurrences> {
        let tz = TimeZone::get(zone).map_err(|e| bad(format!("`{zone}` is not an IANA time zone: {e}")))?;
        let start: CivilDateTime = start
            .parse()
            .map_err(|e| bad(format!("`{start}` is not a local date and time (2026-12-07T09:00): {e}")))?;
        Ok(Occurrences { rule: self.clone(), tz, start, period: 0, pending: Vec::new(), index: 0 })
    }
}

fn parse_until(v: &str) -> Result<DateTime<Utc>> {
    let t = v.trim_end_matches('Z');
    let dt = chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%S")
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(t, "%Y%m%d").map(|d| d.and_hms_opt(23, 59, 59).unwrap_or_default())
        })
        .map_err(|_| bad(format!("UNTIL={v}: write YYYYMMDDTHHMMSSZ")))?;
    Ok(dt.and_utc())
}

fn day_of(s: &str) -> Option<Day> {
    Some(match s.trim().to_ascii_uppercase().as_str() {
        "MO" => Day::Mon,
        "TU" => Day::Tue,
        "WE" => Day::Wed,
        "TH" => Day::Thu,
        "FR" => Day::Fri,
        "SA" => Day::Sat,
        "SU" => Day::Sun,
        _ => return None,
    })
}

/// The occurrences of a rule, numbered, in order (see [`Recurrence::occurrences`]).
#[derive(Debug)]
pub struct Occurrences {
    rule: Recurrence,
    tz: TimeZone,
    start: CivilDateTime,
    period: i64,
    pending: Vec<CivilDateTime>,
    index: u32,
}

impl Occurrences {
    /// The local dates of one period (a day, a week, a month) from the start, in order.
    fn period_dates(&self, k: i64) -> Option<Vec<Date>> {
        let start = self.start.date();
        let step = k.checked_mul(i64::from(self.rule.interval))?;
        Some(match self.rule.frequency {
            Frequency::Daily => vec![start.checked_add(jiff::Span::new().days(step)).ok()?],
            Frequency::Weekly => {
                let monday = start
                    .checked_sub(jiff::Span::new().days(i64::from(start.weekday().to_monday_zero_offset())))
                    .ok()?;
                let week = monday.checked_add(jiff::Span::new().weeks(step)).ok()?;
                let days = if self.rule.by_day.is_empty() {
                    vec![Day::ALL[start.weekday().to_monday_zero_offset() as usize]]
                } else {
                    self.rule.by_day.clone()
                };
                days.iter()
                    .filter_map(|d| week.checked_add(jiff::Span::new().days(*d as i64)).ok())
                    .filter(|d| *d >= start)
                    .collect()
            }
            Frequency::Monthly => {
                let first = start.first_of_month().checked_add(jiff::Span::new().months(step)).ok()?;
                let days = if self.rule.by_month_day.is_empty() {
                    vec![start.day() as u8]
                } else {
                    self.rule.by_month_day.clone()
                };
                days.iter()
                    .filter_map(|d| Date::new(first.year(), first.month(), *d as i8).ok())
                    .filter(|d| *d >= start)
                    .collect()
            }
        })
    }
}

impl Iterator for Occurrences {
    type Item = (u32, DateTime<Utc>);

    fn next(&mut self) -> Option<(u32, DateTime<Utc>)> {
        if self.rule.count.is_some_and(|c| self.index >= c) {
            return None;
        }
        let mut empty = 0;
        while self.pending.is_empty() {
            // A monthly rule on the 31st skips short months; a year of empty periods ends it.
            if empty > 400 {
                return None;
            }
            let dates = self.period_dates(self.period)?;
            self.period += 1;
            empty += 1;
            self.pending = dates.into_iter().rev().map(|d| d.to_datetime(self.start.time())).collect();
        }
        let local = self.pending.pop()?;
        let z = self.tz.to_ambiguous_zoned(local).compatible().ok()?;
        let at = DateTime::from_timestamp(z.timestamp().as_second(), z.timestamp().subsec_nanosecond().max(0) as u32)?;
        if self.rule.until.is_some_and(|u| at > u) {
            return None;
        }
        let n = self.index;
        self.index += 1;
        Some((n, at))
    }
}

/// What happens to occurrences whose time passed while nothing ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// They are skipped.
    #[default]
    Skip,
    /// The latest of them is published once, now; the others are skipped.
    PublishLatestOnce,
}

/// One occurrence changed by hand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Override {
    /// Not published.
    Skip,
    /// Published with this content.
    Content(Content),
}

pub use crate::id::SeriesId;

/// A recurring post.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Its id.
    pub id: SeriesId,
    /// Whose.
    pub owner: OwnerId,
    /// The rule.
    pub rule: Recurrence,
    /// The IANA zone of `start`.
    pub time_zone: String,
    /// The first occurrence's local date and time (`2026-12-07T09:00`).
    pub start: String,
    /// What each occurrence publishes (its targets; its text is the template).
    pub template: Post,
    /// Texts cycled over the occurrences (empty: the template's text). `{n}` and `{date}` are
    /// replaced in either.
    #[serde(default)]
    pub variants: Vec<String>,
    /// Missed occurrences.
    #[serde(default)]
    pub missed: MissedPolicy,
    /// How far ahead occurrences are created, in seconds.
    pub horizon_secs: u64,
    /// How late an occurrence may still be published on time, in seconds (later: missed).
    pub grace_secs: u64,
    /// While paused, nothing is created; on resume the missed policy applies.
    #[serde(default)]
    pub paused: bool,
    /// The first occurrence not handled yet.
    #[serde(default)]
    pub next: u32,
    /// No occurrence from this number on (the series was cut by "edit this and following").
    #[serde(default)]
    pub end_before: Option<u32>,
    /// Occurrences changed by hand.
    #[serde(default)]
    pub overrides: BTreeMap<u32, Override>,
    /// Compare-and-swap version.
    #[serde(default)]
    pub version: u64,
}

impl Series {
    /// The post id of occurrence `n`: the same whichever process creates it.
    pub fn post_id(&self, n: u32) -> PostId {
        PostId::from_idempotency_key(&self.owner, &format!("konektly-series:{}:{n}", self.id))
    }

    /// The content of occurrence `n` at local date `date`.
    pub fn content_of(&self, n: u32, date: &str) -> Content {
        if let Some(Override::Content(c)) = self.overrides.get(&n) {
            return c.clone();
        }
        let mut c = self.template.content.clone();
        if !self.variants.is_empty() {
            c.text = self.variants[n as usize % self.variants.len()].clone();
        }
        c.text = c.text.replace("{n}", &(n + 1).to_string()).replace("{date}", date);
        c
    }

    /// Checks the rule, zone and start.
    pub fn check(&self) -> Result<()> {
        self.rule.occurrences(&self.time_zone, &self.start)?;
        if self.template.targets.is_empty() {
            return Err(bad("a series needs at least one target"));
        }
        Ok(())
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "series {} from {} ({})", self.id, self.start, self.time_zone)
    }
}

/// Persistence of series. An update is a compare-and-swap on `version`.
#[async_trait]
pub trait SeriesStore: Send + Sync {
    /// Stores a new series.
    async fn create_series(&self, series: &Series) -> Result<()>;
    /// A series of `owner`.
    async fn get_series(&self, owner: &OwnerId, id: SeriesId) -> Result<Option<Series>>;
    /// The owner's series, or everyone's (`None`: what the materializer walks).
    async fn list_series(&self, owner: Option<&OwnerId>) -> Result<Vec<Series>>;
    /// Replaces a series if its stored version is `series.version`; returns it with the next
    /// version. `Conflict` otherwise.
    async fn update_series(&self, series: &Series) -> Result<Series>;
    /// Removes a series (its created posts stay); `false` if there was none.
    async fn delete_series(&self, id: SeriesId) -> Result<bool>;
}

/// Series over an engine: creates their occurrences as posts ahead of time.
#[derive(Clone)]
pub struct SeriesRunner {
    engine: Konektly,
    store: std::sync::Arc<dyn SeriesStore>,
}

impl fmt::Debug for SeriesRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesRunner").finish_non_exhaustive()
    }
}

/// What one pass over a series did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Materialized {
    /// Posts created (or found created), with their occurrence numbers.
    pub created: Vec<(u32, PostId)>,
    /// Occurrences skipped (missed, or skipped by hand).
    pub skipped: Vec<u32>,
}

impl SeriesRunner {
    /// Series of `engine`'s owners, kept in `store`.
    pub fn new(engine: Konektly, store: std::sync::Arc<dyn SeriesStore>) -> Self {
        Self { engine, store }
    }

    /// Makes a series of `template` (its targets must be the owner's; it is validated like a
    /// post) and creates what falls within the horizon.
    pub async fn create(&self, mut series: Series) -> Result<Series> {
        series.check()?;
        series.template.owner = series.owner.clone();
        let violations = self.engine.owner(&series.owner).validate(&series.template).await?;
        if !violations.is_empty() {
            return Err(Error::InvalidPost(violations));
        }
        series.version = 1;
        self.store.create_series(&series).await?;
        self.materialize(&series.owner, series.id, Utc::now()).await?;
        self.get(&series.owner, series.id).await
    }

    /// A series of `owner`.
    pub async fn get(&self, owner: &OwnerId, id: SeriesId) -> Result<Series> {
        self.store.get_series(owner, id).await?.ok_or_else(|| Error::NotFound(format!("series {id}")))
    }

    /// Every active series' pass (run it from the worker every minute or so).
    pub async fn materialize_all(&self, now: DateTime<Utc>) -> Result<usize> {
        let mut n = 0;
        for s in self.store.list_series(None).await? {
            if !s.paused {
                n += self.materialize(&s.owner, s.id, now).await?.created.len();
            }
        }
        Ok(n)
    }

    /// One series' pass: the occurrences from `next` up to `now + horizon` become posts; those
    /// whose time is more than the grace before `now` were missed and follow the missed policy.
    pub async fn materialize(&self, owner: &OwnerId, id: SeriesId, now: DateTime<Utc>) -> Result<Materialized> {
        for _ in 0..5 {
            let s = self.get(owner, id).await?;
            if s.paused {
                return Ok(Materialized::default());
            }
            let (plan, next) = self.plan(&s, now)?;
            for (n, at, content) in &plan.posts {
                self.publish(&s, *n, *at, content.clone()).await?;
            }
            let mut updated = s.clone();
            updated.next = next;
            match self.store.update_series(&updated).await {
                Ok(_) => {
                    return Ok(Materialized {
                        created: plan.posts.iter().map(|(n, ..)| (*n, s.post_id(*n))).collect(),
                        skipped: plan.skipped,
                    });
                }
                // Another process moved it on: its posts have the same ids; look again.
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(format!("series {id} keeps changing")))
    }

    fn plan(&self, s: &Series, now: DateTime<Utc>) -> Result<(Plan, u32)> {
        let horizon = now + chrono::Duration::seconds(s.horizon_secs.min(i64::MAX as u64) as i64);
        let late = now - chrono::Duration::seconds(s.grace_secs.min(i64::MAX as u64) as i64);
        let tz = TimeZone::get(&s.time_zone).map_err(|e| bad(e.to_string()))?;
        let mut plan = Plan::default();
        let mut missed: Vec<(u32, DateTime<Utc>)> = Vec::new();
        let mut next = s.next;
        for (n, at) in s.rule.occurrences(&s.time_zone, &s.start)?.skip(s.next as usize) {
            if s.end_before.is_some_and(|e| n >= e) || at > horizon {
                break;
            }
            next = n + 1;
            if matches!(s.overrides.get(&n), Some(Override::Skip)) {
                plan.skipped.push(n);
            } else if at < late {
                missed.push((n, at));
            } else {
                let date = jiff::Timestamp::from_second(at.timestamp())
                    .map(|t| t.to_zoned(tz.clone()).date().to_string())
                    .unwrap_or_default();
                plan.posts.push((n, at, s.content_of(n, &date)));
            }
        }
        let latest = match s.missed {
            MissedPolicy::PublishLatestOnce => missed.pop(),
            MissedPolicy::Skip => None,
        };
        plan.skipped.extend(missed.iter().map(|(n, _)| *n));
        if let Some((n, at)) = latest {
            let date = jiff::Timestamp::from_second(at.timestamp())
                .map(|t| t.to_zoned(tz.clone()).date().to_string())
                .unwrap_or_default();
            plan.posts.insert(0, (n, now, s.content_of(n, &date)));
        }
        Ok((plan, next))
    }

    async fn publish(&self, s: &Series, n: u32, at: DateTime<Utc>, content: Content) -> Result<()> {
        let mut post = Post::new(s.owner.clone(), content);
        post.id = s.post_id(n);
        post.targets = s
            .template
            .targets
            .iter()
            .map(|t| Target { account: t.account, content: t.content.clone(), options: t.options.clone() })
            .collect();
        post.publish_at = Some(at);
        // The same id again is a no-op (the targets' ids derive from it).
        self.engine.owner(&s.owner).schedule(&post).await.map(drop)
    }

    async fn change(&self, owner: &OwnerId, id: SeriesId, f: impl Fn(&mut Series) -> Result<()>) -> Result<Series> {
        for _ in 0..5 {
            let mut s = self.get(owner, id).await?;
            f(&mut s)?;
            match self.store.update_series(&s).await {
                Err(Error::Conflict(_)) => continue,
                other => return other,
            }
        }
        Err(Error::Conflict(format!("series {id} keeps changing")))
    }

    /// Pauses a series: nothing more is created.
    pub async fn pause(&self, owner: &OwnerId, id: SeriesId) -> Result<Series> {
        self.change(owner, id, |s| {
            s.paused = true;
            Ok(())
        })
        .await
    }

    /// Resumes it; what it missed meanwhile follows its missed policy (no burst).
    pub async fn resume(&self, owner: &OwnerId, id: SeriesId) -> Result<Materialized> {
        self.change(owner, id, |s| {
            s.paused = false;
            Ok(())
        })
        .await?;
        self.materialize(owner, id, Utc::now()).await
    }

    /// Skips occurrence `n` (cancelling its post if it was created).
    pub async fn skip(&self, owner: &OwnerId, id: SeriesId, n: u32) -> Result<()> {
        let s = self
            .change(owner, id, |s| {
                s.overrides.insert(n, Override::Skip);
                Ok(())
            })
            .await?;
        if n < s.next {
            match self.engine.owner(owner).cancel(s.post_id(n)).await {
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Publishes occurrence `n` with `content` instead (refused if it was created already).
    pub async fn edit(&self, owner: &OwnerId, id: SeriesId, n: u32, content: Content) -> Result<()> {
        self.change(owner, id, |s| {
            if n < s.next {
                return Err(Error::Conflict(format!("occurrence {} was created already: edit its post", n + 1)));
            }
            s.overrides.insert(n, Override::Content(content.clone()));
            Ok(())
        })
        .await
        .map(drop)
    }

    /// "This and following": the series ends before occurrence `n`, and a new series with
    /// `template` takes over from it (same rule, zone and times). Returns the new series.
    pub async fn edit_following(&self, owner: &OwnerId, id: SeriesId, n: u32, template: Post) -> Result<Series> {
        let old = self.get(owner, id).await?;
        if n < old.next {
            return Err(Error::Conflict(format!("occurrence {} was created already", n + 1)));
        }
        let tz = TimeZone::get(&old.time_zone).map_err(|e| bad(e.to_string()))?;
        let (_, at) = old
            .rule
            .occurrences(&old.time_zone, &old.start)?
            .nth(n as usize)
            .ok_or_else(|| Error::NotFound(format!("occurrence {}", n + 1)))?;
        let local =
            jiff::Timestamp::from_second(at.timestamp()).map_err(|e| bad(e.to_string()))?.to_zoned(tz).datetime();
        self.change(owner, id, |s| {
            s.end_before = Some(n);
            Ok(())
        })
        .await?;
        let mut rule = old.rule.clone();
        rule.count = rule.count.map(|c| c.saturating_sub(n));
        let new = Series {
            id: SeriesId::new(),
            start: local.to_string(),
            template,
            rule,
            next: 0,
            end_before: None,
            overrides: BTreeMap::new(),
            version: 1,
            ..old
        };
        self.create(new).await
    }

    /// Removes a series; its created posts stay scheduled.
    pub async fn delete(&self, owner: &OwnerId, id: SeriesId) -> Result<bool> {
        self.get(owner, id).await?;
        self.store.delete_series(id).await
    }
}

#[derive(Debug, Default)]
struct Plan {
    posts: Vec<(u32, DateTime<Utc>, Content)>,
    skipped: Vec<u32>,
}

/// Series in memory.
#[derive(Debug, Default)]
pub struct MemorySeriesStore(std::sync::Mutex<BTreeMap<SeriesId, Series>>);

#[async_trait]
impl SeriesStore for MemorySeriesStore {
    async fn create_series(&self, series: &Series) -> Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(series.id, series.clone());
        Ok(())
    }
    async fn get_series(&self, owner: &OwnerId, id: SeriesId) -> Result<Option<Series>> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).get(&id).filter(|s| &s.owner == owner).cloned())
    }
    async fn list_series(&self, owner: Option<&OwnerId>) -> Result<Vec<Series>> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| owner.is_none_or(|o| &s.owner == o))
            .cloned()
            .collect())
    }
    async fn update_series(&self, series: &Series) -> Result<Series> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let stored = m.get_mut(&series.id).ok_or_else(|| Error::NotFound(format!("series {}", series.id)))?;
        if stored.version != series.version {
            return Err(Error::Conflict(format!("series {} is at version {}", series.id, stored.version)));
        }
        let mut next = series.clone();
        next.version += 1;
        *stored = next.clone();
        Ok(next)
    }
    async fn delete_series(&self, id: SeriesId) -> Result<bool> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&id).is_some())
    }
}
