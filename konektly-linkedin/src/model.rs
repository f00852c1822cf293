//! LinkedIn's request and response bodies, the per-target options ([`LinkedInOptions`]) and the
//! checkpoint an attempt saves while it works.

use konektly_core::PlatformOptions;
use serde::{Deserialize, Serialize};

/// Who sees a post (`visibility`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Visibility {
    /// Anyone, on or off LinkedIn.
    #[default]
    Public,
    /// The member's connections (member posts only).
    Connections,
    /// Signed-in LinkedIn members.
    LoggedIn,
}

impl Visibility {
    /// LinkedIn's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "PUBLIC",
            Visibility::Connections => "CONNECTIONS",
            Visibility::LoggedIn => "LOGGED_IN",
        }
    }
}

/// LinkedIn options of a target. Every field has a default, so `{}` is valid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkedInOptions {
    /// Who sees the post (default `PUBLIC`).
    pub visibility: Visibility,
    /// Keep the post out of the main feed (`feedDistribution: NONE`).
    pub hide_from_feed: bool,
    /// Forbid reshares (`isReshareDisabledByAuthor`).
    pub disable_reshare: bool,
}

impl PlatformOptions for LinkedInOptions {
    const PLATFORM: &'static str = "linkedin";
}

// ---- API bodies --------------------------------------------------------------------------------

/// LinkedIn's error body: `{"status", "serviceErrorCode", "code", "message"}`, and for
/// validation errors `errorDetails.inputErrors[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub service_error_code: Option<i64>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_details: Option<ErrorDetails>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorDetails {
    #[serde(default)]
    pub input_errors: Vec<InputError>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct InputError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// The token endpoint's answer.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenBody {
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<i64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub refresh_token_expires_in: Option<i64>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// `/v2/userinfo` (OpenID Connect).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct UserInfo {
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub picture: Option<String>,
}

/// `POST /rest/images?action=initializeUpload` → `value`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageUpload {
    #[serde(default)]
    pub upload_url: String,
    #[serde(default)]
    pub image: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Value<T> {
    pub value: T,
}

/// One post of `GET /rest/posts?q=author`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostElement {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub commentary: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub lifecycle_state: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Elements<T> {
    #[serde(default = "Vec::new")]
    pub elements: Vec<T>,
}

// ---- checkpoint --------------------------------------------------------------------------------

/// The adapter's checkpoint: the uploaded images, the commentary as sent, the "create sent"
/// mark, and the post's URN once LinkedIn names it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct State {
    /// Marked just before `POST /rest/posts` is sent.
    pub create_sent: konektly_core::CreateSent,
    /// The author URN (`urn:li:person:…`).
    pub author: Option<String>,
    /// Image URNs uploaded, in the content's order.
    pub images: Vec<String>,
    /// The commentary as sent (little text), which reconcile looks for.
    pub commentary: Option<String>,
    /// The post's URN (`x-restli-id`).
    pub urn: Option<String>,
}

impl konektly_core::CheckpointState for State {
    const VERSION: u32 = 1;
}
