//! Connecting accounts: the OAuth redirect flow, reconnection, disconnection.

use chrono::Utc;
use url::Url;

use super::{ConnectStart, Konektly};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::id::{AccountId, OwnerId, PlatformId};
use crate::model::{Account, AccountStatus};
use crate::platform::PendingAuthorization;
use crate::scheduler::TargetFilter;

impl Konektly {
    // ---- connecting accounts -------------------------------------------------------------

    /// Starts connecting an account of `owner` on `platform`: returns the URL to send the user
    /// to. The callback, on any node sharing the store, calls [`Konektly::complete_connect`].
    pub async fn connect(&self, owner: &OwnerId, platform: &PlatformId, redirect_uri: &Url) -> Result<ConnectStart> {
        self.start_connect(owner, platform, redirect_uri, None).await
    }

    /// Starts reconnecting an existing account (after `ReauthRequired`).
    pub async fn reconnect(&self, account: AccountId, redirect_uri: &Url) -> Result<ConnectStart> {
        let a = self.account(account).await?;
        self.start_connect(&a.owner, &a.platform, redirect_uri, Some(account)).await
    }

    async fn start_connect(
        &self,
        owner: &OwnerId,
        platform: &PlatformId,
        redirect_uri: &Url,
        reconnect: Option<AccountId>,
    ) -> Result<ConnectStart> {
        let p = self.platform(platform)?;
        let req = p.authorization_request(redirect_uri)?;
        let expires_at =
            Utc::now() + chrono::Duration::from_std(self.inner.config.pending_authorization_ttl).unwrap_or_default();
        let pending = PendingAuthorization {
            state: req.state.clone(),
            platform: platform.clone(),
            owner: owner.clone(),
            redirect_uri: redirect_uri.clone(),
            pkce_verifier: req.pkce_verifier,
            expires_at,
            reconnect,
        };
        self.inner.store.put_pending(&pending).await?;
        Ok(ConnectStart { url: req.url, state: req.state, expires_at })
    }

    /// Completes a connection from the callback's `state` and `code`. The state is accepted
    /// once, before it expires. Stores every account the grant reaches (Facebook Login: the
    /// user, each Page and each linked Instagram account) and returns them; the application may
    /// [`disconnect`](Konektly::disconnect) those it does not want. Reconnecting an account
    /// unblocks its waiting targets.
    pub async fn complete_connect(&self, state: &str, code: &str) -> Result<Vec<Account>> {
        let pending = self
            .inner
            .store
            .take_pending(state)
            .await?
            .ok_or_else(|| Error::Authorization("unknown or already used `state`".into()))?;
        if pending.expires_at <= Utc::now() {
            return Err(Error::Authorization("the authorization expired; start again".into()));
        }
        let platform = self.platform(&pending.platform)?.clone();
        // One meaning, one error, whatever the adapter: a code the platform refuses (replayed,
        // expired, for another redirect) is `Authorization` — never `ReauthRequired`, which is
        // about an account's grant. An answer lost or unreadable after the code was sent spent
        // the code: the user must start again, which is `Authorization` too.
        let grants = platform.exchange_code(code, &pending).await.map_err(|e| match e {
            Error::ReauthRequired { reason, .. } | Error::AccessTokenRejected { message: reason, .. } => {
                Error::Authorization(format!("the platform refused the authorization code: {reason}; connect again"))
            }
            Error::UnknownOutcome { message, .. } => Error::Authorization(format!(
                "the answer to the code exchange was lost ({message}); the code is spent: connect again"
            )),
            other => other,
        })?;
        if let Some(id) = pending.reconnect {
            // A reconnect must bring back the same remote account, or nothing is stored: signing
            // in with another login would leave the old account blocked and add a stranger.
            let old = self.account(id).await?;
            if !grants.iter().any(|g| g.platform == old.platform && g.profile.remote_id == old.remote_id) {
                let got: Vec<String> = grants
                    .iter()
                    .filter(|g| g.platform == old.platform)
                    .map(|g| g.profile.handle.clone().unwrap_or_else(|| g.profile.remote_id.clone()))
                    .collect();
                return Err(Error::Authorization(format!(
                    "reconnecting {} account {} needs a sign-in as that account, but the platform answered for {}; \
                     sign in with the account being reconnected",
                    old.platform,
                    old.handle.as_deref().unwrap_or(&old.remote_id),
                    if got.is_empty() { "no account of that platform".to_owned() } else { got.join(", ") }
                )));
            }
        }
        let mut out: Vec<Account> = Vec::with_capacity(grants.len());
        for grant in grants {
            let parent =
                grant.parent_remote_id.as_ref().and_then(|r| out.iter().find(|a| &a.remote_id == r).map(|a| a.id));
            // The store writes `AccountConnected` with the account (one transaction).
            let account = self.upsert_account(&pending.owner, grant, parent).await?;
            let _ = self.inner.events.send(Event::AccountConnected { account: account.id });
            out.push(account);
        }
        Ok(out)
    }

    /// Stores a grant's account: updates the owner's account for the same remote account if
    /// there is one (reconnect), else inserts it. Accounts are unique per owner, platform and
    /// remote id: an insert that loses a race with a parallel connect of the same login
    /// updates the winner's row instead.
    async fn upsert_account(
        &self,
        owner: &OwnerId,
        grant: crate::model::AccountGrant,
        parent: Option<AccountId>,
    ) -> Result<Account> {
        for _ in 0..5 {
            let now = Utc::now();
            match self.inner.store.find_account(owner, &grant.platform, &grant.profile.remote_id).await? {
                Some(mut a) => {
                    a.tokens = a.tokens.merged_with(grant.tokens.clone());
                    a.status = AccountStatus::Active;
                    a.handle = grant.profile.handle.clone();
                    a.display_name = grant.profile.display_name.clone();
                    a.avatar_url = grant.profile.avatar_url.clone();
                    a.parent = parent.or(a.parent);
                    a.metadata.extend(grant.metadata.clone());
                    a.metadata.remove(crate::token::REFRESH_CLAIM_KEY);
                    let connected = [Event::AccountConnected { account: a.id }];
                    let a = match self.inner.store.update_account_raising(&a, &connected).await {
                        Ok(a) => a,
                        Err(Error::Conflict(_)) => continue,
                        Err(e) => return Err(e),
                    };
                    self.inner.tokens.forget(a.id);
                    self.inner.scheduler.unblock_account(a.id, now).await?;
                    return Ok(a);
                }
                None => {
                    let a = Account {
                        id: AccountId::new(),
                        owner: owner.clone(),
                        platform: grant.platform.clone(),
                        remote_id: grant.profile.remote_id.clone(),
                        handle: grant.profile.handle.clone(),
                        display_name: grant.profile.display_name.clone(),
                        avatar_url: grant.profile.avatar_url.clone(),
                        tokens: grant.tokens.clone(),
                        status: AccountStatus::Active,
                        parent,
                        metadata: grant.metadata.clone(),
                        version: 1,
                        created_at: now,
                        updated_at: now,
                    };
                    match self
                        .inner
                        .store
                        .insert_account_raising(&a, &[Event::AccountConnected { account: a.id }])
                        .await
                    {
                        Ok(()) => return Ok(a),
                        // A parallel connect of the same login stored it first: update that one.
                        Err(Error::Conflict(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(Error::Conflict(format!(
            "{} account {} keeps changing while it is being connected",
            grant.platform, grant.profile.remote_id
        )))
    }

    /// Disconnects an account: revokes the grant at the platform, cancels its pending targets,
    /// then erases it. A temporary failure to revoke leaves everything as it was (try again); a
    /// grant the platform says is already dead is erased anyway.
    pub async fn disconnect(&self, account: AccountId) -> Result<()> {
        let a = self.account(account).await?;
        if let Ok(platform) = self.platform(&a.platform) {
            match platform.revoke(&a).await {
                Ok(())
                | Err(Error::ReauthRequired { .. } | Error::AccessTokenRejected { .. } | Error::NotSupported(_)) => {}
                Err(Error::Rejected { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for t in self.inner.scheduler.list(&TargetFilter::account(account)).await? {
            if !t.state.is_final() {
                let _ = self.inner.scheduler.cancel(t.id).await;
            }
        }
        let event = Event::AccountDisconnected { account };
        if self.inner.store.delete_account_raising(account, std::slice::from_ref(&event)).await? {
            let _ = self.inner.events.send(event);
        }
        self.inner.tokens.forget(account);
        Ok(())
    }

    /// An account.
    pub async fn account(&self, id: AccountId) -> Result<Account> {
        self.inner.store.get_account(id).await?.ok_or_else(|| Error::NotFound(format!("account {id}")))
    }

    /// An owner's accounts.
    pub async fn accounts(&self, owner: &OwnerId) -> Result<Vec<Account>> {
        self.inner.store.list_accounts(owner).await
    }
}
