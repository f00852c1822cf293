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
