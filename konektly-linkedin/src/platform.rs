//! [`LinkedInPlatform`]: konektly's `Platform` for LinkedIn members.

use std::fmt;

use chrono::{TimeZone, Utc};
use konektly_core::{
    Account, AccountGrant, AuthorizationRequest, Capabilities, Error, HttpClient, PendingAuthorization, Platform,
    PlatformId, Profile, PublishContext, PublishOutcome, Reconciliation, RemotePost, Result, TargetOptions, TokenSet,
    Violation, async_trait,
};
use serde_json::{Value, json};
use url::Url;

use crate::client::LinkedInClient;
use crate::config::Config;
use crate::error::LinkedInApiError;
use crate::model::{LinkedInOptions, State, UserInfo};
use crate::text::{escape, unescape};
use crate::upload::upload_images;
use crate::validate::{capabilities, validate};

/// The platform id.
pub const PLATFORM_ID: &str = "linkedin";

/// LinkedIn: 3-legged OAuth, OpenID `userinfo`, and the versioned Posts and Images APIs. Build
/// it with [`LinkedInBuilder`](crate::LinkedInBuilder).
pub struct LinkedInPlatform {
    pub(crate) client: LinkedInClient,
    caps: Capabilities,
}

impl fmt::Debug for LinkedInPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkedInPlatform").field("config", &self.client.config).finish_non_exhaustive()
    }
}

/// The author URN of an account: its remote id when it is a URN already, else a member's.
pub fn author_urn(remote_id: &str) -> String {
    if remote_id.starts_with("urn:li:") { remote_id.to_owned() } else { format!("urn:li:person:{remote_id}") }
}

/// The public URL of a post.
pub fn post_url(urn: &str) -> Option<Url> {
    Url::parse(&format!("https://www.linkedin.com/feed/update/{urn}/")).ok()
}

/// The URN of a `DUPLICATE_POST` refusal, when the error is one.
fn duplicate_of(e: &Error) -> Option<String> {
    let Error::UnknownOutcome { source: Some(s), .. } = e else { return None };
    s.downcast_ref::<LinkedInApiError>().and_then(LinkedInApiError::duplicate_of)
}

impl LinkedInPlatform {
    pub(crate) fn new(config: Config, http: HttpClient) -> Self {
        let caps = capabilities(config.max_image_bytes, Vec::new());
        Self { client: LinkedInClient { config, http }, caps }
    }

    fn id_() -> PlatformId {
        PlatformId::new(PLATFORM_ID)
    }

    fn cfg(&self) -> &Config {
        &self.client.config
    }

    fn remote(urn: &str) -> RemotePost {
        RemotePost::new(Self::id_(), urn.to_owned(), post_url(urn))
    }

    fn profile_of(user: UserInfo) -> Result<Profile> {
        if user.sub.is_empty() {
            return Err(Error::transient("LinkedIn's userinfo did not say who connected (no `sub`)"));
        }
        Ok(Profile {
            remote_id: user.sub,
            handle: user.email,
            display_name: user.name,
            avatar_url: user.picture.as_deref().and_then(|u| Url::parse(u).ok()),
        })
    }

    /// The body of `POST /rest/posts`.
    fn post_body(author: &str, commentary: &str, opts: &LinkedInOptions, images: &[(String, Option<String>)]) -> Value {
        let mut body = json!({
            "author": author,
            "commentary": commentary,
            "visibility": opts.visibility.as_str(),
            "distribution": {
                "feedDistribution": if opts.hide_from_feed { "NONE" } else { "MAIN_FEED" },
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": opts.disable_reshare,
        });
        let item = |(id, alt): &(String, Option<String>)| {
            let mut v = json!({"id": id});
            if let Some(a) = alt.as_deref().filter(|a| !a.is_empty()) {
                v["altText"] = json!(a);
            }
            v
        };
        match images {
            [] => {}
            [one] => body["content"] = json!({"media": item(one)}),
            many => body["content"] = json!({"multiImage": {"images": many.iter().map(item).collect::<Vec<_>>()}}),
        }
        body
    }
}

#[async_trait]
impl Platform for LinkedInPlatform {
    fn id(&self) -> PlatformId {
        Self::id_()
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn validate(&self, content: &konektly_core::Content, options: &TargetOptions) -> Vec<Violation> {
        validate(&self.caps, content, options)
    }

    fn authorization_request(&self, redirect_uri: &Url) -> Result<AuthorizationRequest> {
        self.client.authorization_request(redirect_uri)
    }

    async fn exchange_code(&self, code: &str, pending: &PendingAuthorization) -> Result<Vec<AccountGrant>> {
        let tokens = self.client.exchange_code(code, &pending.redirect_uri, pending.pkce_verifier.as_ref()).await?;
        if !tokens.scopes.is_empty() && !tokens.scopes.iter().any(|s| s == "w_member_social") {
            return Err(Error::Authorization(
                "the member did not grant `w_member_social`: nothing could be posted; connect again and allow posting"
                    .into(),
            ));
        }
        let profile = Self::profile_of(self.client.userinfo(&tokens.access_token).await?)?;
        let mut grant = AccountGrant::new(Self::id_(), profile, tokens);
        grant.metadata.insert("author".into(), json!(author_urn(&grant.profile.remote_id)));
        Ok(vec![grant])
    }

    /// Refreshes with the refresh token, for apps approved for them; otherwise the member must
    /// reconnect when the 60-day token ends.
    async fn refresh(&self, account: &Account) -> Result<TokenSet> {
        let rt = match &account.tokens.refresh_token {
            Some(rt) if self.cfg().refresh_tokens => rt,
            _ => {
                return Err(Error::reauth(
                    "LinkedIn gives refresh tokens only to approved apps: reconnect the LinkedIn account (its \
                     token lasts 60 days)",
                ));
            }
        };
        if account.tokens.refresh_expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(Error::reauth(
                "the LinkedIn refresh token expired (a year after consent); reconnect the account",
            ));
        }
        let mut tokens = self.client.refresh(rt).await?;
        // Never overwrite a good refresh token with none.
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(rt.clone());
            tokens.refresh_expires_at = account.tokens.refresh_expires_at;
        }
        Ok(tokens)
    }

    /// LinkedIn documents no revocation endpoint for these tokens: nothing is sent. The member
    /// removes the app under Settings → Data privacy → Permitted services.
    async fn revoke(&self, _account: &Account) -> Result<()> {
        Ok(())
    }

    async fn profile(&self, account: &Account) -> Result<Profile> {
        Self::profile_of(self.client.userinfo(&account.tokens.access_token).await?)
    }

    async fn publish(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let violations = validate(&self.caps, ctx.content, ctx.options);
        if !violations.is_empty() {
            return Err(Error::InvalidPost(violations));
        }
        let opts: LinkedInOptions = ctx.typed_options()?;
        let mut state: State = ctx.state()?;
        if let Some(urn) = &state.urn {
            return Ok(PublishOutcome::Published(Self::remote(urn)));
        }
        let author = state.author.clone().unwrap_or_else(|| author_urn(&ctx.account.remote_id));
        if state.author.is_none() {
            state.author = Some(author.clone());
        }
        upload_images(&self.client, ctx, &mut state, &author, self.cfg().max_image_bytes).await?;
        let images: Vec<(String, Option<String>)> =
            state.images.iter().cloned().zip(ctx.content.media.iter().map(|m| m.alt_text.clone())).collect();
        let commentary = escape(&ctx.content.text);
        let body = Self::post_body(&author, &commentary, &opts, &images);

        // An earlier attempt's create may have landed (its answer was lost, and reconcile did
        // not find it): LinkedIn refuses the same body again as DUPLICATE_POST, naming the post.
        let sent_before = state.create_sent.is_sent() && state.commentary.as_deref() == Some(commentary.as_str());
        state.commentary = Some(commentary);
        state.create_sent.mark();
        ctx.before_create(&state).await?;
        let token = ctx.access_token().clone();
        let urn = match self.client.create_post(ctx, &token, &body).await {
            Ok(urn) => urn,
            Err(e) => match duplicate_of(&e) {
                Some(urn) if sent_before => {
                    tracing::info!(target: "konektly::linkedin", %urn, "the earlier create had landed: adopted");
                    urn
                }
                _ => return Err(e),
            },
        };
        state.urn = Some(urn.clone());
        state.create_sent.clear();
        ctx.save_state(&state).await?;
        Ok(PublishOutcome::Published(Self::remote(&urn)))
    }

    async fn poll(&self, ctx: &mut PublishContext<'_>) -> Result<PublishOutcome> {
        let state: State = ctx.state()?;
        match &state.urn {
            Some(urn) => Ok(PublishOutcome::Published(Self::remote(urn))),
            None => Err(Error::transient("LinkedIn posts need no polling: nothing was published yet")),
        }
    }

    async fn delete(&self, account: &Account, post: &RemotePost) -> Result<()> {
        if !post.id.starts_with("urn:li:") {
            return Err(Error::rejected(Some("invalid_id".into()), format!("`{}` is not a LinkedIn URN", post.id)));
        }
        self.client.delete_post(&account.tokens.access_token, &post.id).await
    }

    /// Lists the author's recent posts (`q=author`, newest first) and looks for the commentary
    /// sent, created after the create was sent (less the configured skew). Reading a member's
    /// posts needs `r_member_social`, which LinkedIn grants only to approved partners: without
    /// it the outcome cannot be known.
    async fn reconcile(&self, ctx: &mut PublishContext<'_>) -> Result<Reconciliation> {
        let mut state: State = ctx.state()?;
        if let Some(urn) = &state.urn {
            return Ok(Reconciliation::Published(Self::remote(urn)));
        }
        let Some(commentary) = state.commentary.clone().filter(|_| state.create_sent.is_sent()) else {
            return Ok(Reconciliation::NotFound);
        };
        let author = state.author.clone().unwrap_or_else(|| author_urn(&ctx.account.remote_id));
        let posts = match self.client.posts_by_author(ctx.access_token(), &author, self.cfg().reconcile_count).await {
            Ok(p) => p,
            Err(Error::Rejected { message, .. }) => {
                return Ok(Reconciliation::Unknowable {
                    reason: format!(
                        "LinkedIn may have published this post (the answer to its create was lost) and refused \
                             to list the author's posts ({message}); look at the LinkedIn profile"
                    ),
                });
            }
            Err(e) => return Err(e),
        };
        let skew = chrono::Duration::from_std(self.cfg().reconcile_skew).unwrap_or_default();
        let since = state.create_sent.sent_at().map(|t| t - skew);
        let wanted = unescape(&commentary);
        let found = posts.into_iter().find(|p| {
            let text_matches =
                p.commentary.as_deref().is_some_and(|c| c == commentary || unescape(c) == wanted || c == wanted);
            let recent = match (since, p.created_at.and_then(|ms| Utc.timestamp_millis_opt(ms).single())) {
                (Some(since), Some(created)) => created >= since,
                _ => true,
            };
            let published = p.lifecycle_state.as_deref() != Some("DRAFT");
            text_matches && recent && published && !p.id.is_empty()
        });
        match found {
            Some(p) => {
                state.urn = Some(p.id.clone());
                state.create_sent.clear();
                ctx.save_state(&state).await?;
                Ok(Reconciliation::Published(Self::remote(&p.id)))
            }
            None => Ok(Reconciliation::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_and_urls() {
        assert_eq!(author_urn("abc"), "urn:li:person:abc");
        assert_eq!(author_urn("urn:li:organization:5"), "urn:li:organization:5");
        assert_eq!(
            post_url("urn:li:share:7").unwrap().as_str(),
            "https://www.linkedin.com/feed/update/urn:li:share:7/"
        );
    }
}
