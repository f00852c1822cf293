//! Model types round-trip through serde, media facts come from content, and no secret is ever
//! formatted.

use std::io::Cursor;
use std::time::Duration;

use chrono::Utc;
use konektly_core::oauth::{ClientAuth, OAuthConfig};
use konektly_core::{
    AccessToken, Account, AccountGrant, AccountId, AccountStatus, AuthorizationRequest, ClientSecret, Completion,
    Content, FailureRecord, Media, MediaKind, MediaSource, MemoryCheckpoints, OwnerId, PendingAuthorization,
    PkceVerifier, PlatformId, Post, Profile, PublishContext, PublishOutcome, Reconciliation, RefreshToken, RemotePost,
    Target, TargetOptions, TargetRecord, TargetState, ThreadItem, TokenSet, Violation, ViolationCode,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

const SECRETS: [&str; 5] = ["ACCESS-S3CRET", "REFRESH-S3CRET", "CLIENT-S3CRET", "VERIFIER-S3CRET", "CODE-S3CRET"];

fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, value, "round trip through {json}");
}

fn tokens() -> TokenSet {
    TokenSet {
        access_token: AccessToken::new(SECRETS[0]),
        refresh_token: Some(RefreshToken::new(SECRETS[1])),
        expires_at: Some(Utc::now()),
        refresh_expires_at: Some(Utc::now()),
        scopes: vec!["tweet.write".into()],
    }
}

fn account() -> Account {
    let now = Utc::now();
    Account {
        id: AccountId::new(),
        owner: OwnerId::new("o"),
        platform: PlatformId::new("x"),
        remote_id: "123".into(),
        handle: Some("@a".into()),
        display_name: None,
        avatar_url: Some("https://cdn.example/a.png".parse().unwrap()),
        tokens: tokens(),
        status: AccountStatus::ReauthRequired { reason: "revoked".into() },
        parent: Some(AccountId::new()),
        metadata: serde_json::json!({"ig_user_id": "9"}).as_object().unwrap().clone(),
        version: 3,
        created_at: now,
        updated_at: now,
    }
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    v.extend_from_slice(&width.to_be_bytes());
    v.extend_from_slice(&height.to_be_bytes());
    v.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    v
}

/// A real (tiny) MP4: one H.264 track of `secs` seconds, `mdat` before `moov`.
fn mp4(width: u16, height: u16, secs: u32) -> Vec<u8> {
    let config = mp4::Mp4Config {
        major_brand: "isom".parse().unwrap(),
        minor_version: 512,
        compatible_brands: vec!["isom".parse().unwrap(), "mp41".parse().unwrap()],
        timescale: 1000,
    };
    let mut writer = mp4::Mp4Writer::write_start(Cursor::new(Vec::new()), &config).unwrap();
    writer
        .add_track(&mp4::TrackConfig {
            track_type: mp4::TrackType::Video,
            timescale: 1000,
            language: "und".into(),
            media_conf: mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
                width,
                height,
                seq_param_set: vec![0x67, 0x42, 0x00, 0x0a],
                pic_param_set: vec![0x68, 0xce, 0x38, 0x80],
            }),
        })
        .unwrap();
    for i in 0..secs {
        writer
            .write_sample(
                1,
                &mp4::Mp4Sample {
                    start_time: u64::from(i) * 1000,
                    duration: 1000,
                    rendering_offset: 0,
                    is_sync: true,
                    bytes: bytes::Bytes::from_static(&[0, 0, 0, 1, 0x65, 0x88]),
                },
            )
            .unwrap();
    }
    writer.write_end().unwrap();
    writer.into_writer().into_inner()
}

#[test]
fn every_model_type_round_trips_through_serde() {
    let media = Media::from_bytes(png(10, 20)).with_alt_text("a cat");
    let url_media =
        Media::from_url("https://cdn.example/v.mp4".parse().unwrap(), "video/mp4".parse().unwrap()).with_size(42);
    let file_media = Media { source: MediaSource::File("/tmp/x.jpg".into()), ..media.clone() };
    let content = Content::text("hi")
        .with_media(media.clone())
        .with_media(url_media)
        .with_media(file_media)
        .with_link("https://konektly.example".parse().unwrap())
        .with_thread_item(ThreadItem { text: "2".into(), media: vec![media] });
    roundtrip(&content);
    let target = Target::new(AccountId::new()).with_content(Content::text("short"));
    let target = Target { options: TargetOptions::from_json(serde_json::json!({"privacy": "private"})), ..target };
    let post = Post::new(OwnerId::new("o"), content).to(target).at(Utc::now()).with_idempotency_key("k");
    roundtrip(&post);
    roundtrip(&account());
    roundtrip(&tokens());
    let mut remote = RemotePost::new(PlatformId::new("x"), "1", Some("https://x.com/a/status/1".parse().unwrap()));
    remote.thread_ids = vec!["2".into()];
    remote.scheduled_for = Some(Utc::now());
    roundtrip(&remote);
    roundtrip(&PublishOutcome::Published(remote.clone()));
    roundtrip(&PublishOutcome::Processing { poll_after: Duration::from_millis(1500), detail: Some("x".into()) });
    roundtrip(&Reconciliation::Processing { poll_after: Duration::from_secs(3) });
    roundtrip(&Reconciliation::NotFound);
    let v = Violation::new(ViolationCode::TextTooLong, "text", "too long").with_values(280, 300);
    roundtrip(&v);
    let failure = FailureRecord::from(&konektly_core::Error::InvalidPost(vec![v]));
    roundtrip(&failure);
    let mut rec = TargetRecord::new(&post, &post.targets[0], PlatformId::new("x"), Utc::now());
    for state in [
        TargetState::Scheduled,
        TargetState::InFlight,
        TargetState::Processing,
        TargetState::Unknown,
        TargetState::Published { remote: remote.clone() },
        TargetState::Failed { failure: failure.clone() },
        TargetState::Blocked { reason: "r".into() },
        TargetState::Cancelled,
    ] {
        rec.state = state;
        roundtrip(&rec);
    }
    roundtrip(&Completion::Retry { at: Utc::now(), error: Some(failure), attempts: 2 });
    roundtrip(&AccountGrant {
        platform: PlatformId::new("instagram"),
        profile: Profile { remote_id: "1".into(), ..Profile::default() },
        tokens: tokens(),
        parent_remote_id: Some("p".into()),
        metadata: Default::default(),
    });
    roundtrip(&PendingAuthorization {
        state: "s".into(),
        platform: PlatformId::new("x"),
        owner: OwnerId::new("o"),
        redirect_uri: "https://app.example/cb".parse().unwrap(),
        pkce_verifier: Some(PkceVerifier::new(SECRETS[3])),
        expires_at: Utc::now(),
        reconnect: Some(AccountId::new()),
    });
}

#[test]
fn no_secret_is_ever_formatted() {
    let pending = PendingAuthorization {
        state: "s".into(),
        platform: PlatformId::new("x"),
        owner: OwnerId::new("o"),
        redirect_uri: "https://app.example/cb".parse().unwrap(),
        pkce_verifier: Some(PkceVerifier::new(SECRETS[3])),
        expires_at: Utc::now(),
        reconnect: None,
    };
    let oauth = OAuthConfig {
        client_id: "id".into(),
        client_secret: Some(ClientSecret::new(SECRETS[2])),
        auth_url: "https://a.example/auth".parse().unwrap(),
        token_url: "https://a.example/token".parse().unwrap(),
        revoke_url: None,
        client_auth: ClientAuth::Basic,
    };
    let auth = AuthorizationRequest {
        url: "https://a.example/auth?state=s".parse().unwrap(),
        state: "s".into(),
        pkce_verifier: Some(PkceVerifier::new(SECRETS[3])),
    };
    let acc = account();
    let content = Content::text("t");
    let options = TargetOptions::none();
    let saver = MemoryCheckpoints::new();
    let ctx = PublishContext::builder(konektly_core::TargetId::new(), &acc, &content, &options).hooks(&*saver).build();
    let err = konektly_core::Error::reauth("the grant was revoked");
    let formatted = [
        format!("{:?}", tokens()),
        format!("{:?}", acc),
        format!("{:?}", pending),
        format!("{:?}", oauth),
        format!("{:?}", auth),
        format!("{:?}", ctx),
        format!("{:?} {}", AccessToken::new(SECRETS[0]), AccessToken::new(SECRETS[0])),
        format!("{:?} {}", RefreshToken::new(SECRETS[1]), RefreshToken::new(SECRETS[1])),
        format!("{:?} {}", ClientSecret::new(SECRETS[2]), ClientSecret::new(SECRETS[2])),
        format!("{:?} {}", PkceVerifier::new(SECRETS[3]), PkceVerifier::new(SECRETS[3])),
        format!("{:?} {}", err, err),
        format!("{:?}", konektly_core::oauth::bearer(&AccessToken::new(SECRETS[0]))),
        format!("{:?}", konektly_core::oauth::basic_auth("id", SECRETS[2])),
    ];
    for text in &formatted {
        for secret in SECRETS {
            assert!(!text.contains(secret), "a secret leaked into: {text}");
        }
    }
}

#[tokio::test]
async fn media_facts_come_from_the_content_not_the_name() {
    let dir = tempfile::tempdir().unwrap();
    // A PNG named like a video is a PNG.
    let path = dir.path().join("holiday.mp4");
    std::fs::write(&path, png(1080, 1350)).unwrap();
    let m = Media::from_file(&path).await.unwrap();
    assert_eq!(m.mime.essence_str(), "image/png");
    assert_eq!(m.kind(), MediaKind::Image);
    assert_eq!((m.width, m.height), (Some(1080), Some(1350)));
    assert_eq!(m.size, Some(std::fs::metadata(&path).unwrap().len()));
    assert!((m.aspect_ratio().unwrap() - 0.8).abs() < 1e-9);

    // An MP4 named like a picture: duration and size from its moov box, mdat seeked over.
    let path = dir.path().join("clip.jpg");
    std::fs::write(&path, mp4(640, 360, 7)).unwrap();
    let m = Media::from_file(&path).await.unwrap();
    assert_eq!(m.mime.essence_str(), "video/mp4");
    assert_eq!(m.kind(), MediaKind::Video);
    assert_eq!(m.duration, Some(Duration::from_secs(7)));
    assert_eq!((m.width, m.height), (Some(640), Some(360)));

    // The same from bytes.
    let m = Media::from_bytes(mp4(320, 240, 3));
    assert_eq!(m.duration, Some(Duration::from_secs(3)));
    assert_eq!((m.width, m.height), (Some(320), Some(240)));

    // Unknown bytes are not guessed.
    let m = Media::from_bytes(&b"hello, plain text"[..]);
    assert_eq!(m.mime, mime::APPLICATION_OCTET_STREAM);
    assert_eq!(m.kind(), MediaKind::Other);
}

#[tokio::test]
async fn media_is_read_in_chunks_from_any_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let http = konektly_core::HttpClient::new().unwrap().client().clone();
    for media in [Media::from_file(&path).await.unwrap(), Media::from_bytes(data.clone())] {
        let mut chunks = media.open_at(&http, 1000).await.unwrap().chunks(4096);
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        while let Some(c) = chunks.next_chunk().await.unwrap() {
            sizes.push(c.len());
            all.extend_from_slice(&c);
        }
        assert_eq!(sizes, [4096, 4096, 808], "full chunks but the last");
        assert_eq!(all, data[1000..]);
    }
}

#[tokio::test]
async fn a_ranged_url_read_must_really_be_ranged() {
    use wiremock::matchers::{header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("range", "bytes=4-"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"0123456789".to_vec()))
        .mount(&server)
        .await;
    let media = Media::from_url(format!("{}/v.mp4", server.uri()).parse().unwrap(), "video/mp4".parse().unwrap());
    let err = media.open_at(konektly_core::HttpClient::new().unwrap().client(), 4).await.unwrap_err();
    assert!(err.to_string().contains("ranged"), "a server ignoring Range is caught: {err}");
}

#[tokio::test]
async fn the_directory_media_host_serves_content_addressed_copies() {
    use konektly_core::MediaHost;
    let dir = tempfile::tempdir().unwrap();
    let host = konektly_core::DirectoryMediaHost::new(dir.path(), "https://media.example/k".parse().unwrap()).unwrap();
    let bytes = png(4, 4);
    let url = host.url_for(&Media::from_bytes(bytes.clone())).await.unwrap();
    assert!(url.as_str().starts_with("https://media.example/k/"), "{url}");
    assert!(url.as_str().ends_with(".png"));
    let name = url.path_segments().unwrap().next_back().unwrap().to_owned();
    assert_eq!(std::fs::read(dir.path().join(&name)).unwrap(), bytes);
    let again = host.url_for(&Media::from_bytes(bytes)).await.unwrap();
    assert_eq!(again, url, "the same content gets the same URL");
}

/// Issue 14: URL media are given their facts with builder setters, and validation uses them.
#[test]
fn url_media_take_their_facts_from_builder_setters() {
    let m = konektly_core::Media::from_url("https://cdn.example/v.mp4".parse().unwrap(), "video/mp4".parse().unwrap())
        .with_size(1_000)
        .with_dimensions(1080, 1920)
        .with_duration(std::time::Duration::from_secs(30));
    assert_eq!((m.size, m.width, m.height), (Some(1_000), Some(1080), Some(1920)));
    assert_eq!(m.duration, Some(std::time::Duration::from_secs(30)));
}
