//! First comments and follow-ups: what happens to a target's [`Content::comments`] once its
//! post is published.
//!
//! The post's create stays exactly-once as before; the comments come after it, each with its own
//! step in the target's checkpoint ([`CommentPhase`], under [`COMMENTS_KEY`] beside the
//! adapter's fields). Once the phase is saved the post is never published or reconciled again:
//! every later claim of the target (a poll, a reconciliation after a crash) continues with the
//! comments only.
//!
//! - Before a comment is sent it is marked sent (with the lease renewed, as before any create);
//!   its id is saved once the answer is read.
//! - A comment marked sent without an id (a crash, a lost answer) is looked up first
//!   ([`Platform::find_comment`]): found, it is adopted; not found, it is sent again; the
//!   platform cannot say, it is recorded as unknown — never two first comments.
//! - A transient failure or a rate limit keeps the target `processing` and retries that comment
//!   later, on its own, at most [`EngineConfig::max_attempts`](super::EngineConfig) times; any
//!   other failure ends that comment. Either way the target ends `published`, each comment's id
//!   or failure in [`RemotePost::comments`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Konektly;
use super::attempt::EngineHooks;
use crate::error::{Error, ErrorKind, Result};
use crate::lifecycle::after;
use crate::model::{Account, Checkpoint, CommentFailure, FailureRecord, RemoteComment, RemotePost, TargetRecord};
use crate::platform::{AttemptHooks, Platform, PublishContext};
use crate::scheduler::Completion;

/// The key of the engine's comment phase in a target's checkpoint.
pub const COMMENTS_KEY: &str = "konektly_comments";

/// The engine's progress on a target's comments, saved in its checkpoint under
/// [`COMMENTS_KEY`]: the published post, and one entry per comment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommentPhase {
    /// The post as published (its `comments` are filled in when the phase ends).
    pub post: Option<RemotePost>,
    /// One per comment of the target, in order.
    pub comments: Vec<CommentProgress>,
}

/// One comment's progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CommentProgress {
    /// Its id at the platform, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Set right before its create is sent, cleared when the answer is read: set on a later
    /// attempt, the comment may have landed and is looked up first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// When its first create was sent (the lookup searches from there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_sent_at: Option<DateTime<Utc>>,
    /// How many times it was tried.
    pub tries: u32,
    /// Why it ended without being published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<CommentFailure>,
}

impl CommentProgress {
    fn settled(&self) -> bool {
        self.id.is_some() || self.error.is_some()
    }
}

impl CommentPhase {
    /// A phase for `post` with `n` comments, none sent.
    pub fn new(post: RemotePost, n: usize) -> Self {
        Self { post: Some(post), comments: vec![CommentProgress::default(); n] }
    }

    /// The phase saved in `checkpoint`: `Ok(None)` when there is none (the post is not
    /// published yet), an error when one is there but cannot be read.
    pub fn of(checkpoint: &Checkpoint) -> Result<Option<Self>> {
        let Some(v) = checkpoint.as_json().get(COMMENTS_KEY) else { return Ok(None) };
        serde_json::from_value(v.clone()).map(Some).map_err(|e| Error::CheckpointUnreadable {
            message: format!("the comments' progress does not parse: {e}; check the post's comments"),
            source: Some(Box::new(e)),
        })
    }

    /// `checkpoint` with this phase stored in it (the adapter's fields kept).
    pub fn saved_in(&self, checkpoint: &Checkpoint) -> Result<Checkpoint> {
        let mut v = checkpoint.as_json().clone();
        if !v.is_object() {
            v = serde_json::Value::Object(Default::default());
        }
        let phase = serde_json::to_value(self).map_err(|e| Error::storage("the comments' progress", e))?;
        v.as_object_mut().expect("an object").insert(COMMENTS_KEY.into(), phase);
        Ok(Checkpoint::from_json(v))
    }

    /// The post with each comment's id or failure.
    fn finished(&self) -> Option<RemotePost> {
        let mut post = self.post.clone()?;
        post.comments = self
            .comments
            .iter()
            .map(|c| RemoteComment {
                id: c.id.clone(),
                error: match (&c.id, &c.error) {
                    (Some(_), _) => None,
                    (None, Some(e)) => Some(e.clone()),
                    (None, None) => {
                        Some(CommentFailure { kind: ErrorKind::Transient, code: None, message: "not published".into() })
                    }
                },
            })
            .collect();
        Some(post)
    }
}

/// What to do with a comment's error.
enum Next {
    /// Nothing landed, or it cannot land: the comment ends with this failure.
    End,
    /// Try again later, at this time (or after a backoff); `unknown`: it may have landed.
    Later { at: Option<DateTime<Utc>>, unknown: bool },
}

fn next_for(e: &Error) -> Next {
    match e {
        Error::RateLimited { retry_at, .. } => Next::Later { at: *retry_at, unknown: false },
        Error::Transient { .. } | Error::Storage { .. } => Next::Later { at: None, unknown: false },
        Error::UnknownOutcome { .. } => Next::Later { at: None, unknown: true },
        _ => Next::End,
    }
}

impl Konektly {
    /// Whether the target's post is published and only its comments remain (or must start).
    #[allow(clippy::result_large_err)] // the completion that ends the attempt at once
    pub(super) fn comment_phase_of(record: &TargetRecord) -> std::result::Result<Option<CommentPhase>, Completion> {
        CommentPhase::of(&record.checkpoint).map_err(|e| Completion::Failed(FailureRecord::from(&e)))
    }

    /// Publishes the target's comments under its published post, from `phase`; `None` when the
    /// lease was lost (nothing may be written). `fresh`: the post was published in this
    /// attempt and the phase is not saved yet.
    pub(super) async fn comment_phase(
        &self,
        record: &TargetRecord,
        platform: &dyn Platform,
        mut account: Account,
        mut phase: CommentPhase,
        hooks: &EngineHooks<'_>,
        checkpoint: Checkpoint,
    ) -> Option<Completion> {
        let texts = &record.content.comments;
        phase.comments.resize_with(texts.len(), Default::default);
        let Some(post) = phase.post.clone() else {
            return Some(Completion::Failed(FailureRecord {
                kind: ErrorKind::OutcomeUnknown,
                code: Some("checkpoint_unreadable".into()),
                message: "the comments' progress names no published post; check the account".into(),
                violations: Vec::new(),
            }));
        };
        let mut checkpoint = checkpoint;
        if platform.capabilities().comments.is_none() {
            for c in phase.comments.iter_mut().filter(|c| !c.settled()) {
                c.error = Some(CommentFailure::from(&Error::NotSupported(format!(
                    "{} does not publish comments through konektly",
                    record.platform
                ))));
            }
        }
        // The post is published: from here on only the comments remain, whatever happens.
        match Self::save_phase(hooks, &phase, &mut checkpoint).await {
            Ok(()) => {}
            Err(Error::LeaseLost(_)) => return None,
            Err(e) => {
                // Nothing was sent and nothing can be recorded: the post stands without them.
                for c in phase.comments.iter_mut().filter(|c| !c.settled()) {
                    c.error = Some(CommentFailure::from(&e));
                }
                return phase.finished().map(Completion::Published);
            }
        }
        let max = self.inner.config.max_attempts.max(1);
        let mut refreshed = false;
        let mut i = 0;
        while i < texts.len() {
            if phase.comments[i].settled() {
                i += 1;
                continue;
            }
            let text = texts[i].as_str();
            let result = match phase.comments[i].sent_at {
                // Sent before without an answer: look before sending again.
                Some(sent) => {
                    let from = phase.comments[i].first_sent_at.unwrap_or(sent);
                    let mut ctx = PublishContext::builder(record.id, &account, &record.content, &record.options)
                        .started_at(record.attempt_started_at.unwrap_or_else(Utc::now))
                        .checkpoint(checkpoint.clone())
                        .hooks(hooks)
                        .build();
                    let found = platform.find_comment(&mut ctx, &post, text, from).await;
                    drop(ctx);
                    match found {
                        Ok(Some(id)) => {
                            tracing::info!(target: "konektly::worker", target = %record.id, comment = i, %id, "the comment had landed");
                            Ok(Some(id))
                        }
                        Ok(None) => Ok(None),
                        Err(Error::NotSupported(why)) => Err(Error::UnknownOutcome {
                            message: format!(
                                "this comment may have been published (its answer was lost) and it cannot be looked                                  up ({why}): it is not sent again"
                            ),
                            source: None,
                        }),
                        Err(Error::LeaseLost(t)) => Err(Error::LeaseLost(t)),
                        Err(e) => {
                            let c = &mut phase.comments[i];
                            c.tries += 1;
                            if c.tries < max && matches!(next_for(&e), Next::Later { .. }) {
                                let at = match next_for(&e) {
                                    Next::Later { at, .. } => at,
                                    Next::End => None,
                                };
                                return self.comments_later(record, &phase, at, &e, hooks, &mut checkpoint).await;
                            }
                            Err(Error::UnknownOutcome {
                                message: format!(
                                    "this comment may have been published and could not be looked up: {e}"
                                ),
                                source: None,
                            })
                        }
                    }
                }
                None => Ok(None),
            };
            let mut ctx = PublishContext::builder(record.id, &account, &record.content, &record.options)
                .started_at(record.attempt_started_at.unwrap_or_else(Utc::now))
                .checkpoint(checkpoint.clone())
                .hooks(hooks)
                .build();
            let result = match result {
                Ok(Some(id)) => Ok(id),
                Ok(None) => {
                    let c = &mut phase.comments[i];
                    let now = Utc::now();
                    c.tries += 1;
                    c.sent_at = Some(now);
                    c.first_sent_at.get_or_insert(now);
                    let cp = match phase.saved_in(&checkpoint) {
                        Ok(cp) => cp,
                        Err(e) => return Some(Completion::Failed(FailureRecord::from(&e))),
                    };
                    // Marked sent, with the lease renewed to outlive the call.
                    match hooks.save_before_create(&cp).await {
                        Ok(()) => checkpoint = cp,
                        Err(Error::LeaseLost(_)) => return None,
                        Err(e) => {
                            phase.comments[i].sent_at = None;
                            drop(ctx);
                            return self.comments_later(record, &phase, None, &e, hooks, &mut checkpoint).await;
                        }
                    }
                    platform.publish_comment(&mut ctx, &post, i, text).await
                }
                Err(e) => Err(e),
            };
            drop(ctx);
            let c = &mut phase.comments[i];
            match result {
                Ok(id) => {
                    c.id = Some(id);
                    c.sent_at = None;
                    c.error = None;
                }
                Err(Error::LeaseLost(_)) => return None,
                Err(Error::AccessTokenRejected { .. }) if !refreshed => {
                    refreshed = true;
                    // Refused: nothing landed.
                    c.sent_at = None;
                    c.tries = c.tries.saturating_sub(1);
                    match self.inner.tokens.force_refresh(&account).await {
                        Ok(a) => {
                            account = a;
                            continue;
                        }
                        Err(e) => c.error = Some(CommentFailure::from(&e)),
                    }
                }
                Err(e) => {
                    if let Error::ReauthRequired { reason, .. } = &e
                        && let Err(err) = self.inner.tokens.mark_reauth(account.id, reason).await
                    {
                        tracing::warn!(target: "konektly::worker", error = %err, "could not mark the account");
                    }
                    tracing::info!(target: "konektly::worker", target = %record.id, comment = i, error = %e, "comment failed");
                    match next_for(&e) {
                        Next::Later { at, unknown } if c.tries < max => {
                            if !unknown {
                                c.sent_at = None;
                            }
                            return self.comments_later(record, &phase, at, &e, hooks, &mut checkpoint).await;
                        }
                        Next::Later { unknown: true, .. } => {
                            c.error = Some(CommentFailure {
                                kind: ErrorKind::OutcomeUnknown,
                                code: e.code().map(str::to_owned),
                                message: format!("{e}; check the post before commenting again"),
                            });
                        }
                        _ => c.error = Some(CommentFailure::from(&e)),
                    }
                    c.sent_at = None;
                }
            }
            // The comment's outcome is saved before the next one is sent.
            match Self::save_phase(hooks, &phase, &mut checkpoint).await {
                Ok(()) => {}
                Err(Error::LeaseLost(_)) => return None,
                Err(e) => return self.comments_later(record, &phase, None, &e, hooks, &mut checkpoint).await,
            }
            i += 1;
        }
        phase.finished().map(Completion::Published)
    }

    async fn save_phase(hooks: &EngineHooks<'_>, phase: &CommentPhase, checkpoint: &mut Checkpoint) -> Result<()> {
        let cp = phase.saved_in(checkpoint)?;
        hooks.save_checkpoint(&cp).await?;
        *checkpoint = cp;
        Ok(())
    }

    /// The comments go on later: the phase is saved (best effort: a stale one only costs a
    /// lookup), the target stays `processing` (its post is published), and the next claim
    /// continues from the checkpoint.
    async fn comments_later(
        &self,
        record: &TargetRecord,
        phase: &CommentPhase,
        at: Option<DateTime<Utc>>,
        e: &Error,
        hooks: &EngineHooks<'_>,
        checkpoint: &mut Checkpoint,
    ) -> Option<Completion> {
        if let Err(Error::LeaseLost(_)) = Self::save_phase(hooks, phase, checkpoint).await {
            return None;
        }
        let tries = phase.comments.iter().map(|c| c.tries).max().unwrap_or(1).max(1);
        let now = Utc::now();
        let at = at.unwrap_or_else(|| after(now, self.inner.rules.backoff(tries)));
        tracing::info!(target: "konektly::worker", target = %record.id, %at, error = %e, "a comment will be retried on its own");
        Some(Completion::Processing { poll_at: at })
    }
}
