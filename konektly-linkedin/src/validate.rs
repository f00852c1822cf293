//! Offline validation: LinkedIn's rules as data — commentary of at most 3,000 characters
//! (counted as Unicode scalars, before little-text escaping: LinkedIn's unit is unconfirmed),
//! one image or 2–20 images (`multiImage`), JPEG, PNG or GIF, no threads, no link cards (put the
//! URL in the text), no video yet. Every violation at once.

use konektly_core::ratelimit::DeclaredBudget;
use konektly_core::{
    Capabilities, Content, Dimensions, EditSupport, MediaKind, MediaLimits, ReconcileSupport, TargetOptions,
    TextCounting, Violation, ViolationCode, validate_against_capabilities,
};

use crate::model::LinkedInOptions;

/// Longest commentary, in characters.
pub const MAX_COMMENTARY: usize = 3000;
/// Most images in one post (`multiImage`).
pub const MAX_IMAGES: usize = 20;
/// Largest image by default (sources say 5 MB or 8 MB: unconfirmed, so configurable).
pub const DEFAULT_MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;
/// Most pixels in an image.
pub const MAX_IMAGE_PIXELS: u64 = 36_152_320;
/// The image types LinkedIn takes.
pub const IMAGE_TYPES: [&str; 3] = ["image/jpeg", "image/png", "image/gif"];

pub(crate) fn chars(s: &str) -> usize {
    s.chars().count()
}

/// LinkedIn's capabilities with this image size limit and these budgets.
pub(crate) fn capabilities(max_image_bytes: u64, budgets: Vec<DeclaredBudget>) -> Capabilities {
    let image = MediaLimits {
        kind: MediaKind::Image,
        mime_types: IMAGE_TYPES.iter().map(|s| (*s).to_owned()).collect(),
        max_count: MAX_IMAGES,
        max_bytes: max_image_bytes,
        dimensions: Dimensions { max_pixels: Some(MAX_IMAGE_PIXELS), ..Dimensions::default() },
        ..MediaLimits::default()
    };
    let gif = MediaLimits { kind: MediaKind::Gif, mime_types: vec!["image/gif".into()], max_count: 1, ..image.clone() };
    Capabilities {
        text_counting: TextCounting::Chars,
        max_text_len: MAX_COMMENTARY,
        media: vec![image, gif],
        max_media_per_post: MAX_IMAGES,
        mixed_media: false,
        media_required: false,
        threads: false,
        polls: false,
        links: false,
        native_scheduling: false,
        asynchronous_processing: false,
        // Refresh tokens (approved apps only) are not said to rotate.
        rotating_refresh_tokens: false,
        reconcile: ReconcileSupport::Search,
        needs_media_host: false,
        budgets,
        comments: None,
        delete: true,
        edit: EditSupport::none("konektly does not edit LinkedIn posts yet"),
    }
}

/// Every violation of `content` with `options`.
pub(crate) fn validate(caps: &Capabilities, content: &Content, options: &TargetOptions) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Err(v) = options.get::<LinkedInOptions>() {
        out.push(v);
    }
    out.extend(validate_against_capabilities(caps, content, chars));
    if content.text.trim().is_empty() && content.media.is_empty() {
        out.push(Violation::new(ViolationCode::EmptyPost, "text", "a LinkedIn post needs text or images"));
    }
    out
}
