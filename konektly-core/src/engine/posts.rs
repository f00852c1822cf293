//! Posts: validation, scheduling, publishing at once, status, cancel and reschedule (with the
//! media store's copies).

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use super::{CancelReport, Konektly};
use crate::error::{Error, Result};
use crate::id::{PlatformId, PostId, TargetId, WorkerId};
use crate::model::{Post, TargetRecord, TargetState, Violation};
use crate::scheduler::{ClaimRequest, TargetFilter};
use crate::violation_code::ViolationCode;

impl Konektly {
    // ---- posts ---------------------------------------------------------------------------

    /// Checks a post against every target platform's rules, offline. Returns every violation
    /// (each naming its platform and target); empty means it can be published.
    pub async fn validate(&self, post: &Post) -> Result<Vec<Violation>> {
        Ok(self.validate_inner(post).await?.1)
    }

    async fn validate_inner(&self, post: &Post) -> Result<(Vec<TargetRecord>, Vec<Violation>)> {
        let mut violations = Vec::new();
        let mut records = Vec::new();
        if post.targets.is_empty() {
            violations.push(Violation::new(ViolationCode::NoTargets, "targets", "the post has no target account"));
        }
        let due = post.publish_at.unwrap_or_else(Utc::now);
        for (i, target) in post.targets.iter().enumerate() {
            let target_id = TargetId::for_post(post.id, target.account);
            let mut push = |mut v: Violation, platform: Option<&PlatformId>| {
                v.target = Some(target_id);
                if v.platform.is_none() {
                    v.platform = platform.cloned();
                }
                violations.push(v);
            };
            // Another owner's account is reported exactly as a missing one: no hint that it exists.
            let account = match self.inner.store.get_account(target.account).await? {
                Some(a) if a.owner == post.owner => a,
                _ => {
                    push(
                        Violation::new(
                            ViolationCode::UnknownAccount,
                            format!("targets[{i}].account"),
                            "no such account",
                        ),
                        None,
                    );
                    continue;
                }
            };
            let Some(platform) = self.inner.platforms.get(&account.platform) else {
                push(
                    Violation::new(
                        ViolationCode::UnknownPlatform,
                        format!("targets[{i}]"),
                        format!("no platform `{}` is registered", account.platform),
                    ),
                    Some(&account.platform),
                );
                continue;
            };
            let content = post.content_for(target);
            // The platform says whether this post needs a host (TikTok photos do, its uploaded
            // videos do not; media already at a URL never do).
            if self.inner.media_host.is_none() && platform.needs_media_host_for(&account, content, &target.options) {
                push(
                    Violation::new(
                        ViolationCode::MediaHostRequired,
                        format!("targets[{i}]"),
                        "this platform fetches media by URL: configure a MediaHost or give public URLs",
                    ),
                    Some(&account.platform),
                );
            }
            for v in platform.validate(content, &target.options) {
                push(v, Some(&account.platform));
            }
            let mut record = TargetRecord::new_unchecked(post, target, account.platform.clone(), due);
            record.id = target_id;
            records.push(record);
        }
        Ok((records, violations))
    }

    /// Validates and stores a post for publishing at its `publish_at` (or now); workers publish
    /// it. Submitting a post with the same idempotency key again adds nothing. With a media
    /// store, local media are copied into it first and the stored post refers to them by hash.
    pub async fn schedule(&self, post: &Post) -> Result<PostId> {
        let (mut records, violations) = self.validate_inner(post).await?;
        if !violations.is_empty() {
            return Err(Error::InvalidPost(violations));
        }
        let copied = self.store_media(&mut records).await?;
        self.inner.scheduler.enqueue(&records).await?;
        self.confirm_media(&copied).await?;
        Ok(post.id)
    }

    /// Validates, stores and publishes a post now, in this process, and returns its targets as
    /// they stand afterwards (published, processing, retrying, failed…). The post is stored
    /// first, so if this process dies a worker finishes the job.
    pub async fn publish_now(&self, post: &Post) -> Result<Vec<TargetRecord>> {
        let mut post = post.clone();
        post.publish_at = None;
        let (mut records, violations) = self.validate_inner(&post).await?;
        if !violations.is_empty() {
            return Err(Error::InvalidPost(violations));
        }
        let copied = self.store_media(&mut records).await?;
        self.inner.scheduler.enqueue(&records).await?;
        self.confirm_media(&copied).await?;
        let ids: Vec<TargetId> = records.iter().map(|r| r.id).collect();
        let mut req = ClaimRequest::new(
            WorkerId::new(format!("publish-now-{}", uuid::Uuid::new_v4())),
            ids.len(),
            self.inner.config.lease,
        );
        req.only = Some(ids);
        let claims = self.inner.scheduler.claim(&req).await?;
        let mut set = JoinSet::new();
        for c in claims {
            let engine = self.clone();
            set.spawn(async move { Box::pin(engine.process(c)).await });
        }
        while set.join_next().await.is_some() {}
        self.status(post.id).await
    }

    /// The targets of a post, as they stand.
    pub async fn status(&self, post: PostId) -> Result<Vec<TargetRecord>> {
        self.inner.scheduler.list(&TargetFilter::post(post)).await
    }

    /// Cancels every target of a post that has not ended. Scheduled and blocked targets are
    /// cancelled at once; those the platform may be publishing already (in flight, processing,
    /// unknown) are marked and end `Cancelled` if nothing lands, or `Published` — with their
    /// remote id — if the platform published them before the cancel could stop it (see
    /// [`TargetRecord::published_despite_cancel`]). Nothing is ever reported cancelled while
    /// it may be live.
    pub async fn cancel(&self, post: PostId) -> Result<CancelReport> {
        let records = self.status(post).await?;
        self.cancel_records(records).await
    }

    pub(crate) async fn cancel_records(&self, records: Vec<TargetRecord>) -> Result<CancelReport> {
        let mut report = CancelReport::default();
        for t in records {
            if !t.state.is_final() {
                match self.inner.scheduler.cancel(t.id).await {
                    Ok(r) if r.state == TargetState::Cancelled => report.cancelled += 1,
                    Ok(_) => report.requested += 1,
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(report)
    }

    /// Moves every scheduled (or failed, blocked, cancelled) target of a post to `at`.
    pub async fn reschedule(&self, post: PostId, at: DateTime<Utc>) -> Result<usize> {
        let records = self.status(post).await?;
        self.reschedule_records(records, at).await
    }

    pub(crate) async fn reschedule_records(&self, records: Vec<TargetRecord>, at: DateTime<Utc>) -> Result<usize> {
        let mut n = 0;
        for t in records {
            if matches!(
                t.state,
                TargetState::Scheduled
                    | TargetState::Failed { .. }
                    | TargetState::Blocked { .. }
                    | TargetState::Cancelled
            ) {
                // A platform's rate-limit wait outlives a reschedule: a target refused with a
                // wait is not sent before it ends, whatever time it is moved to.
                let waiting = t.last_error.as_ref().is_some_and(|f| f.kind == crate::error::ErrorKind::RateLimited);
                let at = if waiting && t.due_at > at { t.due_at } else { at };
                match self.inner.scheduler.reschedule(t.id, at).await {
                    Ok(_) => n += 1,
                    // Claimed by a worker between the listing and now: it is being published.
                    Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }
}
