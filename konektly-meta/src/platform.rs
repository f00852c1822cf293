//! The two `Platform` impls of the crate, one module each with the same roles as every adapter's
//! `platform.rs`: `platform/facebook.rs` (`FacebookPagePlatform`: Facebook Login — user → Pages
//! → linked Instagram accounts — and publishing to a Page) and `platform/instagram.rs`
//! (`InstagramPlatform`: Instagram Login and content publishing through containers). Everything
//! else — configuration, builder, requests, uploads, errors, wire types, validation, tokens — is
//! shared by both, in the crate's top-level files.

mod facebook;
mod instagram;

pub use facebook::FacebookPagePlatform;
pub use instagram::InstagramPlatform;

/// `metadata["kind"]` of the Facebook user account a login yields (it cannot be published to).
pub const KIND_USER: &str = "user";
/// `metadata["kind"]` of a Facebook Page account.
pub const KIND_PAGE: &str = "page";
/// The metadata key saying which login reached an Instagram account (`facebook` / `instagram`).
pub const LOGIN_KEY: &str = "login";
/// The metadata key of the Page an Instagram account is linked to.
pub const PAGE_ID_KEY: &str = "page_id";

/// How many pages of a post's comments a lookup reads at most (100 each).
const COMMENT_PAGES: usize = 5;

/// Looks for a comment under `object` that `is_ours` (a comment whose create's answer was lost):
/// its id, or `None` when none of the first pages of comments is. Used by both platforms.
pub(crate) async fn find_comment(
    client: &crate::client::MetaClient,
    host: crate::client::Host,
    ctx: &konektly_core::PublishContext<'_>,
    object: &str,
    fields: &str,
    is_ours: impl Fn(&crate::model::GraphComment) -> bool,
) -> konektly_core::Result<Option<String>> {
    let url = client.versioned(host, &format!("{object}/comments"));
    let mut after: Option<String> = None;
    for _ in 0..COMMENT_PAGES {
        let mut q = vec![("fields", fields), ("limit", "100"), ("filter", "stream")];
        if let Some(a) = &after {
            q.push(("after", a.as_str()));
        }
        let page: crate::model::ListBody<crate::model::GraphComment> =
            client.get(url.clone(), Some(ctx.access_token()), &q, Some(ctx), "listing the post's comments").await?;
        if let Some(c) = page.data.iter().find(|c| is_ours(c)) {
            return Ok(Some(c.id.clone()));
        }
        let next = page.paging.as_ref().and_then(|p| p.next.as_ref()).is_some();
        after = page.paging.and_then(|p| p.cursors).and_then(|c| c.after);
        if page.data.is_empty() || !next || after.is_none() {
            return Ok(None);
        }
    }
    Err(konektly_core::Error::UnknownOutcome {
        message: format!("the post has more than {} comments: whether this one landed is unknown", COMMENT_PAGES * 100),
        source: None,
    })
}
