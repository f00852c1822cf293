//! Posting queues (issue 17): a weekly plan of time slots in an IANA time zone, and the
//! [`QueueStore`] port that hands out each slot once, across processes.
//!
//! Slot times are local times of the queue's zone, turned into instants with the tz database
//! bundled in `jiff` (no hand-written offsets): a slot in an hour that a daylight-saving change
//! skips moves to the first valid instant after the gap; a slot in an hour that repeats posts
//! once, at its first occurrence; two slots that land on one instant are one slot.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::engine::{CancelReport, Konektly};
use crate::error::{Error, Result};
use crate::id::{AccountId, OwnerId, PostId};
use crate::model::{Content, Post, Target};

/// A day of the week.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Day {
    /// Monday to Sunday.
    pub const ALL: [Day; 7] = [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri, Day::Sat, Day::Sun];

    fn parse(s: &str) -> Option<Day> {
        let s = s.trim().to_ascii_lowercase();
        Day::ALL.into_iter().find(|d| s.len() >= 2 && d.name().to_ascii_lowercase().starts_with(&s))
    }

    fn name(self) -> &'static str {
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][self as usize]
    }

    fn of(w: Weekday) -> Day {
        Day::ALL[w.to_monday_zero_offset() as usize]
    }
}

/// One line of a plan: times on some days.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRule {
    /// The days (Monday first).
    pub days: Vec<Day>,
    /// Local times, `HH:MM`.
    pub times: Vec<String>,
}

/// A weekly plan of posting slots in a time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotPlan {
    /// An IANA time zone (`Europe/Paris`, `America/New_York`, `UTC`).
    pub time_zone: String,
    /// The rules; their slots together make the plan.
    pub rules: Vec<SlotRule>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Config(msg.into())
}

fn parse_time(s: &str) -> Result<Time> {
    let (h, m) = s.trim().split_once(':').ok_or_else(|| bad(format!("`{s}` is not a time: write HH:MM")))?;
    let (h, m): (i8, i8) = match (h.parse(), m.parse()) {
        (Ok(h), Ok(m)) if (0..24).contains(&h) && (0..60).contains(&m) && m_len_ok(s) => (h, m),
        _ => return Err(bad(format!("`{s}` is not a time of day: write HH:MM, 00:00 to 23:59"))),
    };
    Time::new(h, m, 0, 0).map_err(|e| bad(format!("`{s}`: {e}")))
}

fn m_len_ok(s: &str) -> bool {
    s.trim().split_once(':').is_some_and(|(_, m)| m.len() == 2)
}

fn parse_days(s: &str) -> Result<Vec<Day>> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("daily") || s.eq_ignore_ascii_case("every day") {
        return Ok(Day::ALL.to_vec());
    }
    let mut days = Vec::new();
    for part in s.split(',') {
        let unknown = || bad(format!("`{part}` is not a day or a range of days (Mon, Tue-Fri, daily)"));
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (Day::parse(a).ok_or_else(unknown)?, Day::parse(b).ok_or_else(unknown)?);
                let mut d = a as usize;
                loop {
                    days.push(Day::ALL[d]);
                    if d == b as usize {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days.push(Day::parse(part).ok_or_else(unknown)?),
        }
    }
    days.sort();
    days.dedup();
    Ok(days)
}

impl SlotPlan {
    /// Parses `"09:00,12:30 Mon-Fri; 10:00 Sat"` in `time_zone`: rules separated by `;`, each
    /// its times (comma-separated `HH:MM`) then its days (`Mon`, `Tue-Fri`, `Sat,Sun`, `daily`;
    /// none: every day).
    pub fn parse(time_zone: &str, spec: &str) -> Result<Self> {
        let mut rules = Vec::new();
        for rule in spec.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let (times, days) = match rule.split_once(char::is_whitespace) {
                Some((t, d)) => (t, d),
                None => (rule, ""),
            };
            let times: Vec<String> = times.split(',').map(|t| t.trim().to_owned()).collect();
            rules.push(SlotRule { days: parse_days(days)?, times });
        }
        let plan = Self { time_zone: time_zone.to_owned(), rules };
        plan.check()?;
        Ok(plan)
    }

    /// Checks the zone, the times and that there is at least one slot a week.
    pub fn check(&self) -> Result<()> {
        self.zone()?;
        if self.rules.iter().all(|r| r.days.is_empty() || r.times.is_empty()) {
            return Err(bad("a queue's plan needs at least one slot a week"));
        }
        for r in &self.rules {
            for t in &r.times {
                parse_time(t)?;
            }
        }
        Ok(())
    }

    fn zone(&self) -> Result<TimeZone> {
        TimeZone::get(&self.time_zone).map_err(|e| {
            bad(format!("`{}` is not an IANA time zone (Europe/Paris, America/New_York, UTC): {e}", self.time_zone))
        })
    }

    /// The slots strictly after `after`, in order, for ever (take what you need).
    pub fn slots_after(&self, after: DateTime<Utc>) -> Result<Slots> {
        self.check()?;
        let zone = self.zone()?;
        let start = to_jiff(after)?.to_zoned(zone.clone()).date();
        let mut by_day: [Vec<Time>; 7] = Default::default();
        for r in &self.rules {
            for d in &r.days {
                for t in &r.times {
                    by_day[*d as usize].push(parse_time(t)?);
                }
            }
        }
        for times in &mut by_day {
            times.sort();
            times.dedup();
        }
        Ok(Slots { zone, by_day, day: start, after, pending: Vec::new(), last: None })
    }
}

impl fmt::Display for SlotPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| {
                let days: Vec<&str> = r.days.iter().map(|d| &d.name()[..3]).collect();
                format!("{} {}", r.times.join(","), days.join(","))
            })
            .collect();
        write!(f, "{} ({})", rules.join("; "), self.time_zone)
    }
}

fn to_jiff(t: DateTime<Utc>) -> Result<jiff::Timestamp> {
    jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .map_err(|e| bad(format!("a time out of range: {e}")))
}

fn from_jiff(t: jiff::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
}

/// The slots of a plan after an instant, in order (see [`SlotPlan::slots_after`]).
#[derive(Debug)]
pub struct Slots {
    zone: TimeZone,
    by_day: [Vec<Time>; 7],
    day: Date,
    after: DateTime<Utc>,
    pending: Vec<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

impl Iterator for Slots {
    type Item = DateTime<Utc>;

    fn next(&mut self) -> Option<DateTime<Utc>> {
        // At most a week of empty days in a row: a plan has a slot a week (checked).
        let mut empty_days = 0;
        while self.pending.is_empty() {
            if empty_days > 8 {
                return None;
            }
            let times = &self.by_day[Day::of(self.day.weekday()) as usize];
            let mut instants: Vec<DateTime<Utc>> = times
                .iter()
                .filter_map(|t| {
                    // `compatible`: a time in a gap moves past it; a repeated time is its first.
                    let z = self.zone.to_ambiguous_zoned(self.day.to_datetime(*t)).compatible().ok()?;
                    from_jiff(z.timestamp())
                })
                .filter(|i| *i > self.after && self.last.is_none_or(|l| *i > l))
                .collect();
            instants.sort();
            instants.dedup();
            instants.reverse();
            self.pending = instants;
            self.day = self.day.tomorrow().ok()?;
            empty_days += 1;
        }
        let next = self.pending.pop()?;
        self.last = Some(next);
        Some(next)
    }
}

pub use crate::id::QueueId;

/// A posting queue: an owner's accounts and the weekly slots their posts go out at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Queue {
    /// Its id.
    pub id: QueueId,
    /// Whose.
    pub owner: OwnerId,
    /// A name for people (unique per owner).
    pub name: String,
    /// The accounts a queued post goes to (one: a per-account queue).
    pub accounts: Vec<AccountId>,
    /// The slots.
    pub plan: SlotPlan,
    /// While paused, its posts wait and nothing is published from it.
    pub paused: bool,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// A post holding a queue's slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedPost {
    /// The slot.
    pub slot_at: DateTime<Utc>,
    /// The post.
    pub post: PostId,
}

/// Persistence of queues and their slots. Taking a slot is atomic across processes: two nodes
/// queueing at once never get the same slot.
#[async_trait]
pub trait QueueStore: Send + Sync {
    /// Stores a new queue; `Conflict` if the owner has one of that name.
    async fn create_queue(&self, queue: &Queue) -> Result<()>;
    /// A queue of `owner` by id or name.
    async fn find_queue(&self, owner: &OwnerId, id_or_name: &str) -> Result<Option<Queue>>;
    /// The owner's queues.
    async fn list_queues(&self, owner: &OwnerId) -> Result<Vec<Queue>>;
    /// Replaces a queue's plan, accounts and paused flag.
    async fn update_queue(&self, queue: &Queue) -> Result<()>;
    /// Removes a queue and its slots; `false` if there was none.
    async fn delete_queue(&self, queue: QueueId) -> Result<bool>;
    /// Gives `post` the first of `candidates` (in order) that no post holds, and returns it;
    /// `None` if every candidate is held.
    async fn take_slot(
        &self,
        queue: QueueId,
        post: PostId,
        candidates: &[DateTime<Utc>],
    ) -> Result<Option<DateTime<Utc>>>;
    /// Frees the slot `post` holds; `false` if it held none.
    async fn release_slot(&self, queue: QueueId, post: PostId) -> Result<bool>;
    /// The queue's posts by slot, from `from` on.
    async fn queued(&self, queue: QueueId, from: DateTime<Utc>) -> Result<Vec<QueuedPost>>;
    /// Moves posts to new slots in one transaction (each post's old slot is freed first).
    async fn reassign(&self, queue: QueueId, moves: &[QueuedPost]) -> Result<()>;
}

/// When a paused queue's posts are due: not before it is resumed (they are moved back to slots).
fn hold_time() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::days(365 * 100)
}

/// Queues over an engine: adding a post takes the queue's next free slot and schedules the post
/// there; removing, reordering, pausing and changing the plan move what is not published yet.
#[derive(Clone)]
pub struct Queues {
    engine: Konektly,
    store: std::sync::Arc<dyn QueueStore>,
}

impl fmt::Debug for Queues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queues").finish_non_exhaustive()
    }
}

impl Queues {
    /// Queues of `engine`'s owners, kept in `store`.
    pub fn new(engine: Konektly, store: std::sync::Arc<dyn QueueStore>) -> Self {
        Self { engine, store }
    }

    /// Makes a queue of `owner`'s `accounts` (each must be the owner's).
    pub async fn create(&self, owner: &OwnerId, name: &str, accounts: &[AccountId], plan: SlotPlan) -> Result<Queue> {
        plan.check()?;
        if name.trim().is_empty() || accounts.is_empty() {
            return Err(bad("a queue needs a name and at least one account"));
        }
        for a in accounts {
            self.engine.owner(owner).account(*a).await?;
        }
        let q = Queue {
            id: QueueId::new(),
            owner: owner.clone(),
            name: name.trim().to_owned(),
            accounts: accounts.to_vec(),
            plan,
            paused: false,
            created_at: Utc::now(),
        };
        self.store.create_queue(&q).await?;
        Ok(q)
    }

    /// A queue of `owner`, by id or name.
    pub async fn get(&self, owner: &OwnerId, queue: &str) -> Result<Queue> {
        self.store.find_queue(owner, queue).await?.ok_or_else(|| Error::NotFound(format!("queue {queue}")))
    }

    /// The owner's queues.
    pub async fn list(&self, owner: &OwnerId) -> Result<Vec<Queue>> {
        self.store.list_queues(owner).await
    }

    /// Adds `post` at the queue's next free slot: its targets must be accounts of the queue
    /// (none: every account of the queue, with no options); its `publish_at` is the slot's.
    /// Refused before a slot is taken if the post breaks a rule.
    pub async fn add(&self, owner: &OwnerId, queue: &str, mut post: Post) -> Result<QueuedPost> {
        let q = self.get(owner, queue).await?;
        if post.targets.is_empty() {
            post.targets = q.accounts.iter().map(|a| Target::new(*a)).collect();
        }
        if let Some(t) = post.targets.iter().find(|t| !q.accounts.contains(&t.account)) {
            return Err(bad(format!("account {} is not in queue {}", t.account, q.name)));
        }
        post.owner = owner.clone();
        let mine = self.engine.owner(owner);
        let violations = mine.validate(&post).await?;
        if !violations.is_empty() {
            return Err(Error::InvalidPost(violations));
        }
        let slot = self.take_next(&q, post.id, Utc::now()).await?;
        post.publish_at = Some(if q.paused { hold_time() } else { slot });
        if let Err(e) = mine.schedule(&post).await {
            self.store.release_slot(q.id, post.id).await?;
            return Err(e);
        }
        Ok(QueuedPost { slot_at: slot, post: post.id })
    }

    /// [`add`](Self::add) of `content` to every account of the queue.
    pub async fn add_content(&self, owner: &OwnerId, queue: &str, content: Content) -> Result<QueuedPost> {
        self.add(owner, queue, Post::new(owner.clone(), content)).await
    }

    /// Takes the first free slot after `after`, looking a few weeks at a time.
    async fn take_next(&self, q: &Queue, post: PostId, after: DateTime<Utc>) -> Result<DateTime<Utc>> {
        let mut slots = q.plan.slots_after(after)?;
        for _ in 0..200 {
            let batch: Vec<DateTime<Utc>> = slots.by_ref().take(64).collect();
            if batch.is_empty() {
                break;
            }
            if let Some(at) = self.store.take_slot(q.id, post, &batch).await? {
                return Ok(at);
            }
        }
        Err(Error::Conflict(format!("queue {} has no free slot in the next years", q.name)))
    }

    /// The queue's posts not finished yet, in slot order.
    pub async fn pending(&self, owner: &OwnerId, queue: &str) -> Result<Vec<QueuedPost>> {
        let q = self.get(owner, queue).await?;
        self.pending_of(&q).await
    }

    async fn pending_of(&self, q: &Queue) -> Result<Vec<QueuedPost>> {
        let mut out = Vec::new();
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        for qp in self.store.queued(q.id, epoch).await? {
            let targets = self.engine.owner(&q.owner).status(qp.post).await.unwrap_or_default();
            if targets.iter().any(|t| !t.state.is_final()) {
                out.push(qp);
            }
        }
        Ok(out)
    }

    /// Cancels a queued post and frees its slot.
    pub async fn remove(&self, owner: &OwnerId, queue: &str, post: PostId) -> Result<CancelReport> {
        let q = self.get(owner, queue).await?;
        let report = self.engine.owner(owner).cancel(post).await?;
        self.store.release_slot(q.id, post).await?;
        Ok(report)
    }

    /// Publishes a queued post now ("skip the line") and frees its slot.
    pub async fn post_now(&self, owner: &OwnerId, queue: &str, post: PostId) -> Result<()> {
        let q = self.get(owner, queue).await?;
        if !self.store.release_slot(q.id, post).await? {
            return Err(Error::NotFound(format!("post {post} in queue {}", q.name)));
        }
        self.engine.owner(owner).reschedule(post, Utc::now()).await?;
        Ok(())
    }

    /// Puts the queue's pending posts in `order` (every pending post once), on the same
    /// slots, earliest first.
    pub async fn reorder(&self, owner: &OwnerId, queue: &str, order: &[PostId]) -> Result<Vec<QueuedPost>> {
        let q = self.get(owner, queue).await?;
        let pending = self.pending_of(&q).await?;
        let mut want: Vec<PostId> = order.to_vec();
        let mut have: Vec<PostId> = pending.iter().map(|p| p.post).collect();
        want.sort();
        have.sort();
        if want != have {
            return Err(bad("a new order must name every pending post of the queue once"));
        }
        let moves: Vec<QueuedPost> =
            order.iter().zip(&pending).map(|(post, slot)| QueuedPost { slot_at: slot.slot_at, post: *post }).collect();
        self.apply(&q, &moves).await?;
        Ok(moves)
    }

    /// Shuffles the pending posts over their slots.
    pub async fn shuffle(&self, owner: &OwnerId, queue: &str) -> Result<Vec<QueuedPost>> {
        let q = self.get(owner, queue).await?;
        let mut order: Vec<PostId> = self.pending_of(&q).await?.iter().map(|p| p.post).collect();
        use rand::seq::SliceRandom;
        order.shuffle(&mut rand::rng());
        self.reorder(owner, queue, &order).await
    }

    /// Pauses the queue: its pending posts wait until it is resumed.
    pub async fn pause(&self, owner: &OwnerId, queue: &str) -> Result<()> {
        let mut q = self.get(owner, queue).await?;
        q.paused = true;
        self.store.update_queue(&q).await?;
        let hold = hold_time();
        for p in self.pending_of(&q).await? {
            self.engine.owner(owner).reschedule(p.post, hold).await?;
        }
        Ok(())
    }

    /// Resumes the queue: its pending posts, in their order, take the next slots from now.
    pub async fn resume(&self, owner: &OwnerId, queue: &str) -> Result<Vec<QueuedPost>> {
        let mut q = self.get(owner, queue).await?;
        q.paused = false;
        self.store.update_queue(&q).await?;
        self.reslot(&q).await
    }

    /// Replaces the plan; the pending posts, in their order, take the new plan's first slots
    /// from now (documented: what is published keeps its time).
    pub async fn set_plan(&self, owner: &OwnerId, queue: &str, plan: SlotPlan) -> Result<Vec<QueuedPost>> {
        plan.check()?;
        let mut q = self.get(owner, queue).await?;
        q.plan = plan;
        self.store.update_queue(&q).await?;
        self.reslot(&q).await
    }

    /// Gives the pending posts, in order, the first slots after now.
    async fn reslot(&self, q: &Queue) -> Result<Vec<QueuedPost>> {
        let pending = self.pending_of(q).await?;
        let slots: Vec<DateTime<Utc>> = q.plan.slots_after(Utc::now())?.take(pending.len()).collect();
        if slots.len() < pending.len() {
            return Err(Error::Conflict(format!("queue {} has too few slots for its posts", q.name)));
        }
        let moves: Vec<QueuedPost> =
            pending.iter().zip(slots).map(|(p, at)| QueuedPost { slot_at: at, post: p.post }).collect();
        self.apply(q, &moves).await?;
        Ok(moves)
    }

    async fn apply(&self, q: &Queue, moves: &[QueuedPost]) -> Result<()> {
        self.store.reassign(q.id, moves).await?;
        let hold = hold_time();
        for m in moves {
            let at = if q.paused { hold } else { m.slot_at };
            self.engine.owner(&q.owner).reschedule(m.post, at).await?;
        }
        Ok(())
    }

    /// Removes a queue (its posts stay scheduled where they are).
    pub async fn delete(&self, owner: &OwnerId, queue: &str) -> Result<bool> {
        let q = self.get(owner, queue).await?;
        self.store.delete_queue(q.id).await
    }
}

/// Queues in memory (tests, single-process tools).
#[derive(Debug, Default)]
pub struct MemoryQueueStore {
    inner: std::sync::Mutex<MemoryQueues>,
}

#[derive(Debug, Default)]
struct MemoryQueues {
    queues: std::collections::HashMap<QueueId, Queue>,
    slots: std::collections::BTreeMap<(QueueId, DateTime<Utc>), PostId>,
}

impl MemoryQueueStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryQueues> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl QueueStore for MemoryQueueStore {
    async fn create_queue(&self, queue: &Queue) -> Result<()> {
        let mut m = self.lock();
        if m.queues.values().any(|q| q.owner == queue.owner && q.name == queue.name) {
            return Err(Error::Conflict(format!("a queue named {} exists", queue.name)));
        }
        m.queues.insert(queue.id, queue.clone());
        Ok(())
    }
    async fn find_queue(&self, owner: &OwnerId, id_or_name: &str) -> Result<Option<Queue>> {
        let m = self.lock();
        Ok(m.queues
            .values()
            .find(|q| &q.owner == owner && (q.name == id_or_name || q.id.to_string() == id_or_name))
            .cloned())
    }
    async fn list_queues(&self, owner: &OwnerId) -> Result<Vec<Queue>> {
        let mut v: Vec<Queue> = self.lock().queues.values().filter(|q| &q.owner == owner).cloned().collect();
        v.sort_by_key(|q| (q.created_at, q.id));
        Ok(v)
    }
    async fn update_queue(&self, queue: &Queue) -> Result<()> {
        let mut m = self.lock();
        match m.queues.get_mut(&queue.id) {
            Some(q) => {
                *q = queue.clone();
                Ok(())
            }
            None => Err(Error::NotFound(format!("queue {}", queue.id))),
        }
    }
    async fn delete_queue(&self, queue: QueueId) -> Result<bool> {
        let mut m = self.lock();
        m.slots.retain(|(q, _), _| *q != queue);
        Ok(m.queues.remove(&queue).is_some())
    }
    async fn take_slot(
        &self,
        queue: QueueId,
        post: PostId,
        candidates: &[DateTime<Utc>],
    ) -> Result<Option<DateTime<Utc>>> {
        let mut m = self.lock();
        if m.slots.iter().any(|((q, _), p)| *q == queue && *p == post) {
            return Err(Error::Conflict(format!("post {post} holds a slot of this queue already")));
        }
        for at in candidates {
            if let std::collections::btree_map::Entry::Vacant(e) = m.slots.entry((queue, *at)) {
                e.insert(post);
                return Ok(Some(*at));
            }
        }
        Ok(None)
    }
    async fn release_slot(&self, queue: QueueId, post: PostId) -> Result<bool> {
        let mut m = self.lock();
        let before = m.slots.len();
        m.slots.retain(|(q, _), p| !(*q == queue && *p == post));
        Ok(m.slots.len() < before)
    }
    async fn queued(&self, queue: QueueId, from: DateTime<Utc>) -> Result<Vec<QueuedPost>> {
        let m = self.lock();
        Ok(m.slots
            .iter()
            .filter(|((q, at), _)| *q == queue && *at >= from)
            .map(|((_, at), p)| QueuedPost { slot_at: *at, post: *p })
            .collect())
    }
    async fn reassign(&self, queue: QueueId, moves: &[QueuedPost]) -> Result<()> {
        let mut m = self.lock();
        let moving: std::collections::HashSet<PostId> = moves.iter().map(|x| x.post).collect();
        let kept: std::collections::BTreeMap<_, _> =
            m.slots.iter().filter(|((q, _), p)| !(*q == queue && moving.contains(p))).map(|(k, v)| (*k, *v)).collect();
        let mut next = kept;
        for mv in moves {
            if next.insert((queue, mv.slot_at), mv.post).is_some() {
                return Err(Error::Conflict(format!("the slot {} is held by another post", mv.slot_at)));
            }
        }
        m.slots = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn take(plan: &SlotPlan, after: &str, n: usize) -> Vec<String> {
        plan.slots_after(utc(after)).unwrap().take(n).map(|t| t.to_rfc3339()).collect()
    }

    #[test]
    fn a_plan_parses_and_says_what_is_wrong() {
        let p = SlotPlan::parse("Europe/Paris", "09:00,12:30 Mon-Fri; 10:00 Sat").unwrap();
        assert_eq!(p.rules[0].days, vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri]);
        assert_eq!(p.rules[1].days, vec![Day::Sat]);
        assert_eq!(p.to_string(), "09:00,12:30 Mon,Tue,Wed,Thu,Fri; 10:00 Sat (Europe/Paris)");
        assert_eq!(
            SlotPlan::parse("UTC", "08:00 Fri-Mon").unwrap().rules[0].days,
            vec![Day::Mon, Day::Fri, Day::Sat, Day::Sun]
        );
        for (tz, spec) in [
            ("Mars/Olympus", "09:00"),
            ("UTC", "25:00"),
            ("UTC", "9"),
            ("UTC", "09:00 Funday"),
            ("UTC", ""),
            ("UTC", "09:5"),
        ] {
            assert!(matches!(SlotPlan::parse(tz, spec), Err(Error::Config(_))), "{tz} {spec}");
        }
    }

    #[test]
    fn slots_follow_the_week_in_the_zone() {
        let p = SlotPlan::parse("Europe/Paris", "09:00,12:30 Mon-Fri; 10:00 Sat").unwrap();
        // Friday 2026-12-04 12:00 in Paris (11:00 UTC): 12:30 Fri, 10:00 Sat, 09:00 Mon…
        assert_eq!(
            take(&p, "2026-12-04T11:00:00Z", 4),
            vec![
                "2026-12-04T11:30:00+00:00",
                "2026-12-05T09:00:00+00:00",
                "2026-12-07T08:00:00+00:00",
                "2026-12-07T11:30:00+00:00"
            ]
        );
        // Strictly after: a slot at the instant itself is not offered.
        assert_eq!(take(&p, "2026-12-04T11:30:00Z", 1), vec!["2026-12-05T09:00:00+00:00"]);
    }

    #[test]
    fn new_york_skipped_and_repeated_hours() {
        let p = SlotPlan::parse("America/New_York", "01:30,02:30,03:00 daily").unwrap();
        // 2026-03-08: 02:00 → 03:00 EDT. 02:30 does not exist: it moves past the gap to 03:30
        // EDT (07:30 UTC); 03:00 EDT is 07:00 UTC. 01:30 EST is 06:30 UTC.
        assert_eq!(
            take(&p, "2026-03-08T05:00:00Z", 3),
            vec!["2026-03-08T06:30:00+00:00", "2026-03-08T07:00:00+00:00", "2026-03-08T07:30:00+00:00"]
        );
        // 2026-11-01: 02:00 EDT → 01:00 EST; 01:30 happens twice: posted once, the first time
        // (05:30 UTC), not again at 06:30 UTC.
        let got = take(&p, "2026-11-01T04:00:00Z", 3);
        assert_eq!(got, vec!["2026-11-01T05:30:00+00:00", "2026-11-01T07:30:00+00:00", "2026-11-01T08:00:00+00:00"]);
    }

    #[test]
    fn paris_skipped_and_repeated_hours() {
        let p = SlotPlan::parse("Europe/Paris", "02:30,03:00 daily").unwrap();
        // 2026-03-29: 02:00 CET → 03:00 CEST: 02:30 moves to 03:30 CEST (01:30 UTC) — after
        // 03:00 CEST (01:00 UTC); both slots post, once each.
        assert_eq!(take(&p, "2026-03-28T23:00:00Z", 2), vec!["2026-03-29T01:00:00+00:00", "2026-03-29T01:30:00+00:00"]);
        // 2026-10-25: 03:00 CEST → 02:00 CET; 02:30 happens twice: once, the first time (00:30 UTC).
        assert_eq!(take(&p, "2026-10-24T23:00:00Z", 2), vec!["2026-10-25T00:30:00+00:00", "2026-10-25T02:00:00+00:00"]);
    }

    #[test]
    fn two_slots_landing_on_one_instant_are_one() {
        // In New York's skipped hour, 02:00 and 03:00 are both 03:00 EDT.
        let p = SlotPlan::parse("America/New_York", "02:00,03:00 Sun").unwrap();
        assert_eq!(take(&p, "2026-03-08T05:00:00Z", 2), vec!["2026-03-08T07:00:00+00:00", "2026-03-15T06:00:00+00:00"]);
    }
}
