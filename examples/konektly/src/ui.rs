//! Output: plain lines and tables for people, JSON for scripts (`--json`), and progress bars
//! (indicatif) when standard error is a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use konektly_core::{TargetId, TargetRecord, TargetState, Violation};

/// How to talk to the user.
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
        Self { json, term: std::io::stderr().is_terminal(), multi: MultiProgress::new() }
    }

    /// A line for people.
    pub fn say(&self, line: impl AsRef<str>) {
        let line = line.as_ref();
        if self.json {
            let _ = self.multi.println(line);
            if !self.term {
                eprintln!("{line}");
            }
        } else if self.term {
            let _ = self.multi.println(line);
        } else {
            println!("{line}");
        }
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
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
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

/// What a target's state says, in a word and a detail.
pub fn state_detail(r: &TargetRecord) -> (String, String) {
    let (word, detail): (String, String) = match &r.state {
        TargetState::Published { remote } => {
            ("published".into(), remote.url.as_ref().map(|u| u.to_string()).unwrap_or_default())
        }
        TargetState::Failed { failure } => ("failed".into(), failure.message.clone()),
        TargetState::Blocked { reason } => ("blocked".into(), reason.clone()),
        other => (other.name().into(), String::new()),
    };
    if r.published_despite_cancel() {
        return (word, format!("{detail} (published before the cancel could stop it)").trim_start().to_owned());
    }
    if r.cancel_requested_at.is_some() && !r.state.is_final() {
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
