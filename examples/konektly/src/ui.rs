//! Output: plain lines and tables for people, JSON for scripts (`--json`), and progress bars
//! (indicatif) when standard error is a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use konektly_core::{ErrorKind, TargetId, TargetRecord, TargetState, Violation};

/// How to talk to the user.
///
/// Results (lines, tables) go to standard output, notes and warnings to standard error; with
/// `--json`, standard output carries only JSON and people's lines go to standard error.
/// Progress bars and spinners are drawn on standard error only when it is a terminal; lines
/// printed meanwhile are written with the bars cleared, then the bars are drawn again, so a
/// terminal shows no torn lines. When standard error is not a terminal, progress is plain lines
/// and nothing is drawn.
#[derive(Clone, Debug)]
pub struct Ui {
    /// JSON on standard output; people's lines go to standard error.
    pub json: bool,
    /// Standard error is a terminal: draw progress bars.
    pub term: bool,
    multi: MultiProgress,
}

impl Ui {
    /// A UI; progress bars only on a terminal.
    pub fn new(json: bool) -> Self {
        let term = std::io::stderr().is_terminal();
        let target = if term { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        Self { json, term, multi: MultiProgress::with_draw_target(target) }
    }

    /// Runs `f` with the progress bars cleared (drawn again afterwards).
    fn clear_bars(&self, f: impl FnOnce()) {
        if self.term { self.multi.suspend(f) } else { f() }
    }

    /// A line for people: on standard output, or standard error with `--json`.
    pub fn say(&self, line: impl AsRef<str>) {
        if self.json {
            self.note(line);
        } else {
            let line = line.as_ref();
            self.clear_bars(|| println!("{line}"));
        }
    }

    /// A note or warning for people, always on standard error.
    pub fn note(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        self.clear_bars(|| eprintln!("{line}"));
    }

    /// A spinner with a message (a terminal only); finish it with [`Ui::done`].
    pub fn spinner(&self, message: impl Into<String>) -> Option<ProgressBar> {
        if !self.term {
            return None;
        }
        let pb = self.multi.add(ProgressBar::new_spinner());
        pb.set_style(ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}").expect("a valid template"));
        pb.set_message(message.into());
        pb.enable_steady_tick(Duration::from_millis(100));
        Some(pb)
    }

    /// Ends a spinner with a final line.
    pub fn done(&self, pb: Option<ProgressBar>, line: impl AsRef<str>) {
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        if !line.as_ref().is_empty() {
            self.say(line);
        }
    }

    /// Shows upload progress until the returned task is aborted: a byte bar per target on a
    /// terminal, a plain line at each quarter otherwise (nothing with `--json`).
    pub fn upload_progress(&self, engine: &konektly_core::Konektly) -> tokio::task::JoinHandle<()> {
        let mut events = engine.subscribe();
        let engine = engine.clone();
        let ui = self.clone();
        tokio::spawn(async move {
            let mut bars: HashMap<TargetId, ProgressBar> = HashMap::new();
            let mut quarters: HashMap<TargetId, u64> = HashMap::new();
            let mut labels: HashMap<TargetId, String> = HashMap::new();
            loop {
                let ev = match events.recv().await {
                    Ok(ev) => ev,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let konektly_core::Event::UploadProgress { target, sent, total } = ev else { continue };
                if ui.json || total == 0 {
                    continue;
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = labels.entry(target) {
                    let label = match engine.scheduler().get(target).await {
                        Ok(Some(r)) => format!("{} upload", r.platform),
                        _ => "upload".to_owned(),
                    };
                    slot.insert(label);
                }
                let label = &labels[&target];
                if ui.term {
                    let pb = bars.entry(target).or_insert_with(|| {
                        let pb = ui.multi.add(ProgressBar::new(total));
                        pb.set_style(
                            ProgressStyle::with_template(
                                "  {msg:18} [{bar:30.cyan/blue}] {bytes}/{total_bytes} {bytes_per_sec}",
                            )
                            .expect("a valid template")
                            .progress_chars("=> "),
                        );
                        pb.set_message(label.clone());
                        pb
                    });
                    pb.set_position(sent.min(total));
                    if sent >= total
                        && let Some(pb) = bars.remove(&target)
                    {
                        pb.finish_and_clear();
                    }
                } else {
                    // In u128: `sent * 4` cannot overflow; the quotient is 0 to 4.
                    let q = u64::try_from(u128::from(sent.min(total)) * 4 / u128::from(total)).unwrap_or(4);
                    if quarters.get(&target).is_none_or(|last| q > *last) {
                        quarters.insert(target, q);
                        ui.say(format!("  {label}: {}% ({sent} of {total} bytes)", q * 25));
                    }
                }
            }
        })
    }

    /// Prints JSON on standard output.
    pub fn json_out(&self, v: &serde_json::Value) {
        let text = serde_json::to_string_pretty(v).unwrap_or_default();
        self.clear_bars(|| println!("{text}"));
    }

    /// Prints one JSON value on one line of standard output (a stream of events).
    pub fn json_line(&self, v: &serde_json::Value) {
        let text = serde_json::to_string(v).unwrap_or_default();
        self.clear_bars(|| println!("{text}"));
    }

    /// Prints violations, one a line.
    pub fn violations(&self, vs: &[Violation]) {
        for v in vs {
            self.say(format!("  ✗ {}", violation_line(v)));
        }
    }
}

/// A violation in plain words: `x: text — the text is 312 characters; the limit is 280`.
pub fn violation_line(v: &Violation) -> String {
    let platform = v.platform.as_ref().map(|p| format!("{p}: ")).unwrap_or_default();
    let values = match (&v.limit, &v.actual) {
        (Some(l), Some(a)) => format!(" (limit {l}, actual {a})"),
        (Some(l), None) => format!(" (limit {l})"),
        _ => String::new(),
    };
    format!("{platform}{} — {}{values} [{}]", v.field, v.message, v.code)
}

/// An aligned table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| if i + 1 == cells.len() { c.clone() } else { format!("{c:<w$}", w = widths[i]) })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = vec![line(headers.iter().map(|h| (*h).to_owned()).collect())];
    out.push(line(widths.iter().map(|w| "─".repeat(*w)).collect()));
    for r in rows {
        out.push(line(r.clone()));
    }
    out.join("\n")
}

/// Where a target stands, as the program reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Standing {
    /// Published (maybe despite a cancel that came too late).
    Published,
    /// Waiting for its time, as asked.
    Scheduled,
    /// Being published: in flight, processing at the platform, its outcome being checked, or
    /// waiting to be tried again.
    InProgress,
    /// Waiting for its account to be reconnected.
    Blocked,
    /// Ended without publishing.
    Failed,
    /// Ended without its outcome being known: it may or may not be live.
    OutcomeUnknown,
    /// Cancelled: nothing was published.
    Cancelled,
}

impl Standing {
    /// Where `r` stands.
    pub fn of(r: &TargetRecord) -> Self {
        match &r.state {
            TargetState::Published { .. } => Standing::Published,
            TargetState::Failed { failure } if failure.kind == ErrorKind::OutcomeUnknown => Standing::OutcomeUnknown,
            TargetState::Failed { .. } => Standing::Failed,
            TargetState::Blocked { .. } => Standing::Blocked,
            TargetState::Cancelled => Standing::Cancelled,
            TargetState::Scheduled if r.attempts == 0 && r.last_error.is_none() && r.cancel_requested_at.is_none() => {
                Standing::Scheduled
            }
            TargetState::Scheduled | TargetState::InFlight | TargetState::Processing | TargetState::Unknown => {
                Standing::InProgress
            }
        }
    }

    /// Whether a person must act: blocked, failed, or its outcome unknown.
    pub fn needs_attention(self) -> bool {
        matches!(self, Standing::Blocked | Standing::Failed | Standing::OutcomeUnknown)
    }

    /// Whether nothing more happens to it without a person (ended, or blocked).
    pub fn settled(self) -> bool {
        !matches!(self, Standing::Scheduled | Standing::InProgress)
    }

    /// Its name in JSON and in the tally.
    pub fn name(self) -> &'static str {
        match self {
            Standing::Published => "published",
            Standing::Scheduled => "scheduled",
            Standing::InProgress => "in_progress",
            Standing::Blocked => "blocked",
            Standing::Failed => "failed",
            Standing::OutcomeUnknown => "outcome_unknown",
            Standing::Cancelled => "cancelled",
        }
    }

    /// Its name for people.
    pub fn words(self) -> &'static str {
        match self {
            Standing::Published => "published",
            Standing::Scheduled => "scheduled",
            Standing::InProgress => "in progress",
            Standing::Blocked => "blocked",
            Standing::Failed => "failed",
            Standing::OutcomeUnknown => "outcome unknown",
            Standing::Cancelled => "cancelled",
        }
    }
}

/// How many targets stand where.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Targets counted.
    pub total: usize,
    counts: Vec<(Standing, usize)>,
}

impl Tally {
    /// The tally of `records`.
    pub fn of(records: &[TargetRecord]) -> Self {
        let mut t = Tally::default();
        for r in records {
            t.add(Standing::of(r));
        }
        t
    }

    fn add(&mut self, s: Standing) {
        self.total += 1;
        match self.counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((s, 1)),
        }
    }

    /// How many stand at `s`.
    pub fn count(&self, s: Standing) -> usize {
        self.counts.iter().find(|(k, _)| *k == s).map(|(_, n)| *n).unwrap_or(0)
    }

    /// Whether every target stands at `s` (and there is at least one).
    pub fn all(&self, s: Standing) -> bool {
        self.total > 0 && self.count(s) == self.total
    }

    /// Whether some target needs a person.
    pub fn needs_attention(&self) -> bool {
        self.counts.iter().any(|(s, n)| *n > 0 && s.needs_attention())
    }

    /// `1 published, 1 blocked, 2 in progress`, in a fixed order.
    pub fn words(&self) -> String {
        ORDER
            .iter()
            .filter(|s| self.count(**s) > 0)
            .map(|s| format!("{} {}", self.count(*s), s.words()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The counts as JSON: `{"published": 1, "blocked": 1, …}` (every standing, zeros too).
    pub fn json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for s in ORDER {
            m.insert(s.name().to_owned(), self.count(s).into());
        }
        m.insert("total".to_owned(), self.total.into());
        serde_json::Value::Object(m)
    }
}

/// The order standings are listed in.
const ORDER: [Standing; 7] = [
    Standing::Published,
    Standing::Scheduled,
    Standing::InProgress,
    Standing::Blocked,
    Standing::Failed,
    Standing::OutcomeUnknown,
    Standing::Cancelled,
];

/// What a target's state says, in a word and a detail: the URL of a published target, why one
/// is blocked or failed, when one is due.
pub fn state_detail(r: &TargetRecord) -> (String, String) {
    let cancel_requested = r.cancel_requested_at.is_some() && !r.state.is_final();
    let (word, detail): (String, String) = match &r.state {
        TargetState::Published { remote } => {
            let mut url = remote.url.as_ref().map(|u| u.to_string()).unwrap_or_default();
            if let Some(at) = remote.scheduled_for {
                // Natively scheduled (YouTube, Facebook): at the platform, public from then.
                url = format!("{url} (the platform makes it public at {} UTC)", at.format("%Y-%m-%d %H:%M:%S"))
                    .trim_start()
                    .to_owned();
            }
            if r.published_despite_cancel() {
                ("published".into(), format!("{url} (published before the cancel could stop it)").trim().to_owned())
            } else {
                ("published".into(), url)
            }
        }
        TargetState::Failed { failure } if failure.kind == ErrorKind::OutcomeUnknown => {
            ("outcome unknown".into(), format!("{} — check the account: it may or may not be live", failure.message))
        }
        TargetState::Failed { failure } => ("failed".into(), failure.message.clone()),
        TargetState::Blocked { reason } => ("blocked".into(), format!("reconnect the account: {reason}")),
        TargetState::Cancelled => ("cancelled".into(), "nothing went out".into()),
        TargetState::Scheduled => match (&r.last_error, r.attempts) {
            (Some(e), _) => {
                ("retrying".into(), format!("next try at {} UTC: {}", r.due_at.format("%H:%M:%S"), e.message))
            }
            (None, n) if n > 0 => ("retrying".into(), format!("next try at {} UTC", r.due_at.format("%H:%M:%S"))),
            _ => ("scheduled".into(), format!("for {} UTC", r.due_at.format("%Y-%m-%d %H:%M:%S"))),
        },
        TargetState::InFlight => ("publishing".into(), "being sent to the platform".into()),
        TargetState::Processing => ("processing".into(), "the platform is still processing it".into()),
        TargetState::Unknown => {
            ("checking".into(), "its answer was lost: checking with the platform what landed".into())
        }
    };
    if cancel_requested {
        return (format!("{word}, cancel requested"), detail);
    }
    (word, detail)
}

/// The remote id of a published target.
pub fn remote_id(r: &TargetRecord) -> String {
    match &r.state {
        TargetState::Published { remote } => remote.id.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use konektly_core::{
        AccountId, Content, ErrorKind, FailureRecord, OwnerId, Post, Target, TargetRecord, TargetState,
    };

    use super::*;

    fn record(state: TargetState) -> TargetRecord {
        let post = Post::new(OwnerId::new("o"), Content::text("hi")).to(Target::new(AccountId::new()));
        let mut r = TargetRecord::new(&post, &post.targets[0], "x".into(), Utc::now());
        r.state = state;
        r
    }

    fn failure(kind: ErrorKind) -> FailureRecord {
        FailureRecord { kind, code: None, message: "why".into(), violations: Vec::new() }
    }

    #[test]
    fn where_a_target_stands_and_what_needs_a_person() {
        let published =
            record(TargetState::Published { remote: konektly_core::RemotePost::new("x".into(), "1", None) });
        let blocked = record(TargetState::Blocked { reason: "token revoked".into() });
        let failed = record(TargetState::Failed { failure: failure(ErrorKind::Rejected) });
        let unknown = record(TargetState::Failed { failure: failure(ErrorKind::OutcomeUnknown) });
        let scheduled = record(TargetState::Scheduled);
        let mut retrying = record(TargetState::Scheduled);
        retrying.attempts = 1;
        let processing = record(TargetState::Processing);
        let cancelled = record(TargetState::Cancelled);
        let all = [&published, &blocked, &failed, &unknown, &scheduled, &retrying, &processing, &cancelled];
        let standings: Vec<Standing> = all.iter().map(|r| Standing::of(r)).collect();
        assert_eq!(
            standings,
            [
                Standing::Published,
                Standing::Blocked,
                Standing::Failed,
                Standing::OutcomeUnknown,
                Standing::Scheduled,
                Standing::InProgress,
                Standing::InProgress,
                Standing::Cancelled
            ]
        );
        let attention: Vec<bool> = standings.iter().map(|s| s.needs_attention()).collect();
        assert_eq!(attention, [false, true, true, true, false, false, false, false]);
        let records: Vec<TargetRecord> = all.iter().map(|r| (*r).clone()).collect();
        let tally = Tally::of(&records);
        assert_eq!(tally.total, 8);
        assert_eq!(
            tally.words(),
            "1 published, 1 scheduled, 2 in progress, 1 blocked, 1 failed, 1 outcome unknown, 1 cancelled"
        );
        assert!(tally.needs_attention() && !tally.all(Standing::Published));
        assert_eq!(tally.json()["in_progress"], 2);
        assert!(Tally::of(std::slice::from_ref(&published)).all(Standing::Published));
        assert!(!Tally::of(&[]).all(Standing::Published), "nothing is not everything");

        // What each says: never "published" unless it is.
        for r in [&blocked, &failed, &unknown, &scheduled, &retrying, &processing, &cancelled] {
            let (word, detail) = state_detail(r);
            assert!(!word.contains("published") && !detail.contains("published"), "{word}: {detail}");
        }
        assert_eq!(state_detail(&blocked), ("blocked".into(), "reconnect the account: token revoked".into()));
        assert!(state_detail(&unknown).1.contains("may or may not be live"));
        assert_eq!(state_detail(&retrying).0, "retrying");
        let mut late = published.clone();
        late.cancel_requested_at = Some(Utc::now());
        assert_eq!(state_detail(&late).1, "(published before the cancel could stop it)");
        let mut native = published.clone();
        if let TargetState::Published { remote } = &mut native.state {
            remote.scheduled_for = Some(chrono::DateTime::parse_from_rfc3339("2030-01-01T09:00:00Z").unwrap().into());
        }
        assert_eq!(state_detail(&native).1, "(the platform makes it public at 2030-01-01 09:00:00 UTC)");
    }
}
