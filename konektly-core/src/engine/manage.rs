//! Published posts: deleting and editing them at the platform, recorded in the target's state.

use chrono::Utc;

use super::Konektly;
use crate::error::{Error, Result};
use crate::id::{PostId, TargetId};
use crate::model::{Content, RemotePost, TargetRecord, TargetState};
use crate::platform::{EditRequest, Platform};

impl Konektly {
    // ---- published posts ---------------------------------------------------------------------

    /// Deletes a published target's post at its platform (and, where the platform keeps them
    /// apart, its comments: X's replies), and records it: the target stays `published`, its
    /// [`RemotePost::deleted_at`] set. Deleting again is a no-op. `Conflict` if the target is not
    /// published, `NotSupported` where the platform cannot delete (see
    /// [`Capabilities::delete`](crate::Capabilities::delete)).
    pub async fn delete_target(&self, target: TargetId) -> Result<TargetRecord> {
        let record =
            self.inner.scheduler.get(target).await?.ok_or_else(|| Error::NotFound(format!("target {target}")))?;
        self.delete_record(record).await
    }

    /// Deletes every published target of a post (see [`delete_target`](Self::delete_target));
    /// one result per published target.
    pub async fn delete_post(&self, post: PostId) -> Result<Vec<(TargetId, Result<TargetRecord>)>> {
        let records = self.status(post).await?;
        Ok(self.delete_records(records).await)
    }

    pub(crate) async fn delete_records(&self, records: Vec<TargetRecord>) -> Vec<(TargetId, Result<TargetRecord>)> {
        let mut out = Vec::new();
        for r in records.into_iter().filter(|r| matches!(r.state, TargetState::Published { .. })) {
            let id = r.id;
            out.push((id, self.delete_record(r).await));
        }
        out
    }

    pub(crate) async fn delete_record(&self, record: TargetRecord) -> Result<TargetRecord> {
        let (platform, mut remote) = self.published(&record)?;
        if remote.deleted_at.is_some() {
            return Ok(record);
        }
        if !platform.capabilities().delete {
            return Err(Error::NotSupported(format!("{} posts cannot be deleted through its API", record.platform)));
        }
        let account = self.inner.tokens.fresh_account(record.account_id).await?;
        match platform.delete(&account, &remote).await {
            Err(Error::AccessTokenRejected { .. }) => {
                let fresh = self.inner.tokens.force_refresh(&account).await?;
                platform.delete(&fresh, &remote).await?;
            }
            other => other?,
        }
        remote.deleted_at = Some(Utc::now());
        self.inner.scheduler.update_published(record.id, &remote).await
    }

    /// Edits a published target's post at its platform, as its
    /// [`Capabilities::edit`](crate::Capabilities::edit) allows, and records it
    /// ([`RemotePost::edited_at`]). New text is validated against the platform's rules first
    /// (`InvalidPost`); a field the platform cannot change is `NotSupported`, with the
    /// platform's reason (X: editing is not offered by its API).
    pub async fn edit_target(&self, target: TargetId, edit: &EditRequest) -> Result<TargetRecord> {
        let record =
            self.inner.scheduler.get(target).await?.ok_or_else(|| Error::NotFound(format!("target {target}")))?;
        self.edit_record(record, edit).await
    }

    pub(crate) async fn edit_record(&self, record: TargetRecord, edit: &EditRequest) -> Result<TargetRecord> {
        let (platform, mut remote) = self.published(&record)?;
        if remote.deleted_at.is_some() {
            return Err(Error::Conflict(format!("target {} was deleted", record.id)));
        }
        if edit.is_empty() {
            return Ok(record);
        }
        let support = &platform.capabilities().edit;
        let refused = edit.unsupported(support);
        if !refused.is_empty() {
            let why = support.note.clone().unwrap_or_else(|| "the platform does not allow it".into());
            return Err(Error::NotSupported(format!(
                "{} cannot edit the {} of a published post: {why}",
                record.platform,
                refused.join(", ")
            )));
        }
        if let Some(text) = &edit.text {
            let content = Content { text: text.clone(), comments: Vec::new(), ..record.content.clone() };
            let violations: Vec<_> = platform
                .validate(&content, &record.options)
                .into_iter()
                .filter(|v| v.field == "text" || v.field.starts_with("text."))
                .collect();
            if !violations.is_empty() {
                return Err(Error::InvalidPost(violations));
            }
        }
        let account = self.inner.tokens.fresh_account(record.account_id).await?;
        match platform.edit(&account, &remote, edit).await {
            Err(Error::AccessTokenRejected { .. }) => {
                let fresh = self.inner.tokens.force_refresh(&account).await?;
                platform.edit(&fresh, &remote, edit).await?;
            }
            other => other?,
        }
        remote.edited_at = Some(Utc::now());
        self.inner.scheduler.update_published(record.id, &remote).await
    }

    fn published(&self, record: &TargetRecord) -> Result<(std::sync::Arc<dyn Platform>, RemotePost)> {
        let TargetState::Published { remote } = &record.state else {
            return Err(Error::Conflict(format!("target {} is not published ({})", record.id, record.state.name())));
        };
        Ok((self.platform(&record.platform)?.clone(), remote.clone()))
    }
}
