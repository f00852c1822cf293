//! [`ViolationCode`]: the stable codes of [`Violation`](crate::Violation)s, typed.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! violation_codes {
    ($($(#[$doc:meta])* $variant:ident => $code:literal,)*) => {
        /// What rule a [`Violation`](crate::Violation) breaks: a stable code, written (in JSON, in
        /// the program's output, in a target's stored failure) as the same `snake_case` string
        /// it has always been (`text_too_long`, `too_many_media`…).
        ///
        /// A code this build does not name — read back from a store written by another version,
        /// or an adapter outside this workspace with rules of its own — is [`ViolationCode::Other`]
        /// with its string: reading a violation back never fails on its code. Build codes with
        /// the variants, or with [`ViolationCode::from`] a string (which picks the variant when
        /// there is one, so that `Other` never holds a known code).
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ViolationCode {
            $($(#[$doc])* $variant,)*
            /// A code this build does not name (see above).
            Other(String),
        }

        impl ViolationCode {
            /// The code as written: `text_too_long`…
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $code,)*
                    Self::Other(code) => code,
                }
            }

            /// The variant named `code`, if this build names it.
            fn known(code: &str) -> Option<Self> {
                Some(match code {
                    $($code => Self::$variant,)*
                    _ => return None,
                })
            }

            /// Every code this build names (not [`ViolationCode::Other`]).
            pub const ALL: &[ViolationCode] = &[$(Self::$variant,)*];
        }
    };
}

violation_codes! {
    /// A media item's alt text is longer than the platform takes.
    AltTextTooLong => "alt_text_too_long",
    /// A picture's or video's aspect ratio is outside the platform's range.
    AspectRatioOutOfRange => "aspect_ratio_out_of_range",
    /// The video's audio codec is not one the platform accepts.
    AudioCodecNotSupported => "audio_codec_not_supported",
    /// A Reel's audio name is given but empty.
    AudioNameRequired => "audio_name_required",
    /// The video's bit rate is above the platform's limit.
    BitRateTooHigh => "bit_rate_too_high",
    /// Branded content cannot be private (TikTok's `SELF_ONLY`).
    BrandedContentPrivate => "branded_content_private",
    /// A first comment or follow-up is empty.
    CommentEmpty => "comment_empty",
    /// A first comment or follow-up breaks one of the platform's rules for comments (hashtags,
    /// links, characters).
    CommentInvalid => "comment_invalid",
    /// A first comment or follow-up is longer than the platform takes.
    CommentTooLong => "comment_too_long",
    /// The platform publishes no comments under a post (TikTok), or not for this kind of post.
    CommentsNotSupported => "comments_not_supported",
    /// This kind of post (a Story) takes no collaborators.
    CollaboratorsNotSupported => "collaborators_not_supported",
    /// The photo chosen as cover does not exist.
    CoverIndexOutOfRange => "cover_index_out_of_range",
    /// A cover or thumbnail offset is given for a post that is not a Reel.
    CoverOnlyForReels => "cover_only_for_reels",
    /// The description holds characters the platform refuses (`<`, `>`).
    DescriptionInvalidCharacters => "description_invalid_characters",
    /// A picture's or video's width or height is above the platform's limit.
    DimensionsTooLarge => "dimensions_too_large",
    /// A picture's or video's width or height is below the platform's minimum.
    DimensionsTooSmall => "dimensions_too_small",
    /// The post has neither text nor media.
    EmptyPost => "empty_post",
    /// Excluding reply users needs the post to be a reply.
    ExcludeNeedsReply => "exclude_needs_reply",
    /// The video's frame rate is outside the platform's range.
    FrameRateOutOfRange => "frame_rate_out_of_range",
    /// A category id is not one (YouTube's are numbers).
    InvalidCategoryId => "invalid_category_id",
    /// The text holds characters the platform refuses.
    InvalidCharacters => "invalid_characters",
    /// An id in the options is not one of the platform's.
    InvalidId => "invalid_id",
    /// The target's options do not parse as the platform's options.
    InvalidOptions => "invalid_options",
    /// A place id is empty.
    InvalidPlaceId => "invalid_place_id",
    /// The post carries a link and media, which the platform does not combine.
    LinkWithMedia => "link_with_media",
    /// The platform takes no link attachment.
    LinksNotSupported => "links_not_supported",
    /// This kind of post (a Story) takes no location.
    LocationNotSupported => "location_not_supported",
    /// A media file is empty.
    MediaEmpty => "media_empty",
    /// The platform fetches media by URL and no media host is configured.
    MediaHostRequired => "media_host_required",
    /// A media kind (image, GIF, video) the platform does not accept.
    MediaKindNotSupported => "media_kind_not_supported",
    /// The platform needs an image or a video.
    MediaRequired => "media_required",
    /// A media item's size is unknown and the upload needs it.
    MediaSizeUnknown => "media_size_unknown",
    /// A media file is larger than the platform takes.
    MediaTooLarge => "media_too_large",
    /// A media file is smaller than the platform's minimum.
    MediaTooSmall => "media_too_small",
    /// A media type (MIME) the platform does not accept.
    MediaTypeNotSupported => "media_type_not_supported",
    /// A media file is malformed: its facts cannot be read.
    MediaUnreadable => "media_unreadable",
    /// Images, GIFs and videos are mixed in one post, which the platform refuses.
    MixedMedia => "mixed_media",
    /// Options that cannot go together (X: media, a poll, a quote).
    MutuallyExclusive => "mutually_exclusive",
    /// The post has no target account.
    NoTargets => "no_targets",
    /// The platform publishes exactly one video per post.
    OneVideoRequired => "one_video_required",
    /// The post belongs to another owner than the engine's handle.
    OwnerMismatch => "owner_mismatch",
    /// A poll's duration is outside the platform's range.
    PollDuration => "poll_duration",
    /// A poll choice is empty or too long.
    PollOptionLength => "poll_option_length",
    /// A poll has too few or too many choices.
    PollOptionsCount => "poll_options_count",
    /// The privacy level is not one the creator may use now.
    PrivacyLevelNotAllowed => "privacy_level_not_allowed",
    /// The post names no privacy level and the platform needs one.
    PrivacyLevelRequired => "privacy_level_required",
    /// The scheduled publication time has passed.
    PublishAtInPast => "publish_at_in_past",
    /// A scheduled video must be private until its time.
    PublishAtRequiresPrivate => "publish_at_requires_private",
    /// A Reel is one video, and this post has more media.
    ReelNeedsOneVideo => "reel_needs_one_video",
    /// A Reel is a video, and this post has none.
    ReelNeedsVideo => "reel_needs_video",
    /// An option that only Reels take is given for another post.
    ReelsOnlyOption => "reels_only_option",
    /// The publication time is outside the platform's scheduling window.
    ScheduleOutOfWindow => "schedule_out_of_window",
    /// Sharing with followers is for a Community post, and none is named.
    ShareNeedsCommunity => "share_needs_community",
    /// A brand sponsor is not named by its user id.
    SponsorIdRequired => "sponsor_id_required",
    /// Users are tagged in a post without media.
    TaggingNeedsMedia => "tagging_needs_media",
    /// The tags hold characters the platform refuses (`<`, `>`).
    TagsInvalidCharacters => "tags_invalid_characters",
    /// The tags are longer, together, than the platform takes.
    TagsTooLong => "tags_too_long",
    /// The post needs text.
    TextRequired => "text_required",
    /// The text is longer than the platform takes.
    TextTooLong => "text_too_long",
    /// The platform publishes no threads.
    ThreadsNotSupported => "threads_not_supported",
    /// The thumbnail frame lies past the video's end.
    ThumbOffsetOutOfRange => "thumb_offset_out_of_range",
    /// The thumbnail file is larger than the platform takes.
    ThumbnailTooLarge => "thumbnail_too_large",
    /// The thumbnail is not an image type the platform takes.
    ThumbnailTypeNotSupported => "thumbnail_type_not_supported",
    /// The title holds characters the platform refuses (`<`, `>`).
    TitleInvalidCharacters => "title_invalid_characters",
    /// A title is given for a post that takes none.
    TitleNotSupported => "title_not_supported",
    /// The post needs a title.
    TitleRequired => "title_required",
    /// The title is longer than the platform takes.
    TitleTooLong => "title_too_long",
    /// More collaborators than the platform takes.
    TooManyCollaborators => "too_many_collaborators",
    /// More hashtags than the platform takes.
    TooManyHashtags => "too_many_hashtags",
    /// More first comments and follow-ups than the platform's adapter publishes for a post.
    TooManyComments => "too_many_comments",
    /// More media items than the platform takes in one post.
    TooManyMedia => "too_many_media",
    /// More media items of one kind (images, videos…) than the platform takes.
    TooManyMediaOfKind => "too_many_media_of_kind",
    /// More @mentions than the platform takes.
    TooManyMentions => "too_many_mentions",
    /// More brand sponsors than the platform takes.
    TooManySponsors => "too_many_sponsors",
    /// More tagged users than the platform takes.
    TooManyTaggedUsers => "too_many_tagged_users",
    /// More people tagged on one media item than the platform takes.
    TooManyUserTags => "too_many_user_tags",
    /// A target names an account that does not exist (or is another owner's).
    UnknownAccount => "unknown_account",
    /// A target's account is on a platform no adapter is registered for.
    UnknownPlatform => "unknown_platform",
    /// A user tag names a media item the post does not have.
    UserTagMediaOutOfRange => "user_tag_media_out_of_range",
    /// A user tag's position lies outside the image.
    UserTagPositionOutOfRange => "user_tag_position_out_of_range",
    /// A user tag on an image has no position.
    UserTagPositionRequired => "user_tag_position_required",
    /// A user tag names no username.
    UserTagUsernameRequired => "user_tag_username_required",
    /// User tags on a media item that takes none (a video in a carousel).
    UserTagsNotSupported => "user_tags_not_supported",
    /// The video's codec is not one the platform accepts.
    VideoCodecNotSupported => "video_codec_not_supported",
    /// A single video on this platform is published as a Reel.
    VideoMustBeReel => "video_must_be_reel",
    /// The video is longer than the platform takes.
    VideoTooLong => "video_too_long",
    /// The video is shorter than the platform's minimum.
    VideoTooShort => "video_too_short",
}

impl From<&str> for ViolationCode {
    /// The variant named `code`, else [`ViolationCode::Other`].
    fn from(code: &str) -> Self {
        Self::known(code).unwrap_or_else(|| Self::Other(code.to_owned()))
    }
}

impl From<String> for ViolationCode {
    /// The variant named `code`, else [`ViolationCode::Other`].
    fn from(code: String) -> Self {
        Self::known(&code).unwrap_or(Self::Other(code))
    }
}

impl fmt::Display for ViolationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for ViolationCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for ViolationCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ViolationCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for ViolationCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ViolationCode {
    /// Any string: a code this build does not name is [`ViolationCode::Other`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_written_as_the_same_strings() {
        assert_eq!(ViolationCode::TextTooLong.as_str(), "text_too_long");
        assert_eq!(ViolationCode::TooManyMediaOfKind.to_string(), "too_many_media_of_kind");
        assert_eq!(serde_json::to_value(ViolationCode::MediaRequired).unwrap(), serde_json::json!("media_required"));
        for code in ViolationCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(&serde_json::from_str::<ViolationCode>(&json).unwrap(), code, "{code} reads back");
            assert_eq!(&ViolationCode::from(code.as_str()), code);
            assert!(code.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
        }
        let distinct: std::collections::HashSet<_> = ViolationCode::ALL.iter().map(ViolationCode::as_str).collect();
        assert_eq!(distinct.len(), ViolationCode::ALL.len(), "no two variants share a code");
    }

    #[test]
    fn an_unknown_code_reads_back_as_other() {
        let code: ViolationCode = serde_json::from_str("\"made_up_by_a_newer_version\"").unwrap();
        assert_eq!(code, ViolationCode::Other("made_up_by_a_newer_version".into()));
        assert_eq!(serde_json::to_string(&code).unwrap(), "\"made_up_by_a_newer_version\"");
        assert_eq!(ViolationCode::from("text_too_long"), ViolationCode::TextTooLong, "never Other for a known code");
        assert!(serde_json::from_str::<ViolationCode>("3").is_err(), "a code is a string");
    }

    #[test]
    fn a_code_compares_with_its_string() {
        assert!(ViolationCode::EmptyPost == "empty_post");
        assert!(ViolationCode::EmptyPost != "media_required");
    }
}
