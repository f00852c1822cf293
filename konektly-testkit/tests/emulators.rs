//! The emulators, driven with plain HTTP as a client of the real APIs would.

use std::collections::HashMap;
use std::time::Duration;

use konektly_core::{Media, MediaHost};
use konektly_testkit::{Faults, Sandbox, SandboxConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn http() -> reqwest::Client {
    konektly_core::HttpClient::new().unwrap().client().clone()
}

async fn sandbox() -> Sandbox {
    Sandbox::start_with(SandboxConfig { processing_delay: Duration::from_millis(300), ..SandboxConfig::default() })
        .await
        .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A JPEG header followed by filler: enough for every sniffer.
fn jpeg(len: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0];
    v.resize(len, 7);
    v
}

/// An MP4 `ftyp` box followed by filler.
fn mp4(len: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 0, 24];
    v.extend_from_slice(b"ftypisom\0\0\x02\0isomiso2");
    v.resize(len, 3);
    v
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

/// Follows an authorize URL; returns the redirect's query.
async fn approve(c: &reqwest::Client, url: String) -> HashMap<String, String> {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "the authorize page redirects");
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(loc.starts_with("http://127.0.0.1:1/cb"), "{loc}");
    query(&loc)
}

const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-long-0123456789";

async fn x_token(sb: &Sandbox, c: &reqwest::Client) -> Value {
    let base = sb.base_url("x");
    let creds = sb.credentials("x");
    let challenge = konektly_core::oauth::pkce_challenge(VERIFIER);
    let url = format!(
        "{base}i/oauth2/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&scope=tweet.read%20tweet.write%20users.read%20media.write%20offline.access&state=st1&code_challenge={challenge}&code_challenge_method=S256",
        creds.client_id
    );
    let q = approve(c, url).await;
    assert_eq!(q["state"], "st1");
    let r = c
        .post(format!("{base}2/oauth2/token"))
        .basic_auth(&creds.client_id, Some(&creds.client_secret))
        .form(&[
            ("code", q["code"].as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn x_oauth_checks_pkce_and_redirect_and_rotates_refresh_tokens() {
    let sb = sandbox().await;
    let c = http();
    let base = sb.base_url("x");
    let creds = sb.credentials("x");
    let challenge = konektly_core::oauth::pkce_challenge(VERIFIER);
    let auth = format!(
        "{base}i/oauth2/authorize?response_type=code&client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&scope=tweet.read&state=s&code_challenge={challenge}&code_challenge_method=S256",
        creds.client_id
    );
    // Wrong verifier, then wrong redirect URI: refused.
    let code = approve(&c, auth.clone()).await["code"].clone();
    let r = c
        .post(format!("{base}2/oauth2/token"))
        .form(&[
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
            ("code_verifier", "wrong"),
            ("client_id", &creds.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let code = approve(&c, auth.clone()).await["code"].clone();
    let r = c
        .post(format!("{base}2/oauth2/token"))
        .form(&[
            ("code", code.as_str()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "http://127.0.0.1:1/other"),
            ("code_verifier", VERIFIER),
            ("client_id", &creds.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // An unknown client never gets a code.
    let r = c.get(auth.replace(&creds.client_id, "someone-else")).send().await.unwrap();
    assert_eq!(r.status(), 400);

    let tok = x_token(&sb, &c).await;
    assert_eq!(tok["expires_in"], 7200);
    let rt1 = tok["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String| {
        let c = c.clone();
        let url = format!("{base}2/oauth2/token");
        let id = creds.client_id.clone();
        async move {
            c.post(url)
                .form(&[("refresh_token", rt.as_str()), ("grant_type", "refresh_token"), ("client_id", &id)])
                .send()
                .await
                .unwrap()
        }
    };
    let r = refresh(rt1.clone()).await;
    assert_eq!(r.status(), 200);
    let t2: Value = r.json().await.unwrap();
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2, "refresh tokens rotate");
    // Replaying the old one is refused and ends the family: the new one dies too.
    assert_eq!(refresh(rt1).await.status(), 400);
    assert_eq!(refresh(rt2).await.status(), 400);
    let r = c.get(format!("{base}2/users/me")).bearer_auth(t2["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn x_posts_with_chunked_video_refuses_duplicates_and_reports_rate_limits() {
    let sb = sandbox().await;
    let c = http();
    let base = sb.base_url("x");
    let tok = x_token(&sb, &c).await;
    let at = tok["access_token"].as_str().unwrap();

    let me: Value = c.get(format!("{base}2/users/me")).bearer_auth(at).send().await.unwrap().json().await.unwrap();
    let user_id = me["data"]["id"].as_str().unwrap().to_owned();

    let video = mp4(3 * 1024 * 1024 + 17);
    let init: Value = c
        .post(format!("{base}2/media/upload/initialize"))
        .bearer_auth(at)
        .json(&json!({"media_type": "video/mp4", "total_bytes": video.len(), "media_category": "tweet_video"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = init["data"]["id"].as_str().unwrap().to_owned();
    // A chunk over the limit is answered 413.
    let big = reqwest::multipart::Form::new()
        .text("segment_index", "0")
        .part("media", reqwest::multipart::Part::bytes(vec![0u8; 4 * 1024 * 1024 + 1]));
    let r = c.post(format!("{base}2/media/upload/{id}/append")).bearer_auth(at).multipart(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    for (i, chunk) in video.chunks(1024 * 1024).enumerate() {
        let form = reqwest::multipart::Form::new()
            .text("segment_index", i.to_string())
            .part("media", reqwest::multipart::Part::bytes(chunk.to_vec()));
        let r =
            c.post(format!("{base}2/media/upload/{id}/append")).bearer_auth(at).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
    let fin: Value = c
        .post(format!("{base}2/media/upload/{id}/finalize"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fin["data"]["processing_info"]["state"], "pending");
    // Not processed yet: a post with it is refused.
    let post = |body: Value| c.post(format!("{base}2/tweets")).bearer_auth(at).json(&body).send();
    let r = post(json!({"text": "too early", "media": {"media_ids": [id]}})).await.unwrap();
    assert_eq!(r.status(), 400);
    let mut state = String::new();
    for _ in 0..100 {
        let s: Value = c
            .get(format!("{base}2/media/upload?media_id={id}&command=STATUS"))
            .bearer_auth(at)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state = s["data"]["processing_info"]["state"].as_str().unwrap().to_owned();
        if state == "succeeded" {
            break;
        }
        assert!(state == "pending" || state == "in_progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "succeeded");
    let r = post(json!({"text": "hello with video", "media": {"media_ids": [id]}})).await.unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers().contains_key("x-rate-limit-remaining"));
    assert_eq!(r.headers()["x-rate-limit-limit"], "100");
    let created: Value = r.json().await.unwrap();
    let tweet_id = created["data"]["id"].as_str().unwrap().to_owned();
    // Same text again: duplicate content.
    let r = post(json!({"text": "hello with video"})).await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["detail"], "You are not allowed to create a Tweet with duplicate content.");
    // A reply makes a thread.
    let r = post(json!({"text": "second", "reply": {"in_reply_to_tweet_id": tweet_id}})).await.unwrap();
    assert_eq!(r.status(), 201);
    // Unknown fields are refused.
    assert_eq!(post(json!({"text": "x", "bogus": 1})).await.unwrap().status(), 400);

    let posts = sb.posts_of("x", &user_id);
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].media.len(), 1);
    assert_eq!(posts[0].media[0].size, video.len() as u64);
    assert_eq!(posts[0].media[0].sha256, hex(&video));
    assert_eq!(posts[0].media[0].mime, "video/mp4");
    assert_eq!(posts[1].reply_to.as_deref(), Some(tweet_id.as_str()));
    assert!(posts[0].url.as_deref().unwrap().ends_with(&format!("/status/{tweet_id}")));
}

#[tokio::test]
async fn faults_rate_limit_bursts_errors_and_dropped_answers() {
    let sb = sandbox().await;
    let c = http();
    let base = sb.base_url("x");
    let tok = x_token(&sb, &c).await;
    let at = tok["access_token"].as_str().unwrap();
    sb.set_faults("x", Faults { rate_limit_burst: 2, ..Faults::default() });
    for _ in 0..2 {
        let r = c.get(format!("{base}2/users/me")).bearer_auth(at).send().await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["x-rate-limit-remaining"], "0");
    }
    assert_eq!(c.get(format!("{base}2/users/me")).bearer_auth(at).send().await.unwrap().status(), 200);
    // The knobs are reachable over HTTP too.
    let control = sb.base_url("media");
    let r = c.put(format!("{control}_sandbox/faults/x")).json(&json!({"error_rate": 1.0})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sb.faults("x").error_rate, 1.0);
    let r = c.get(format!("{base}2/users/me")).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["title"], "Service Unavailable");
    sb.set_faults("x", Faults { latency: Duration::from_millis(300), ..Faults::default() });
    let t = std::time::Instant::now();
    assert_eq!(c.get(format!("{base}2/users/me")).bearer_auth(at).send().await.unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    sb.set_faults("x", Faults { drop_after_accept: 1, ..Faults::default() });
    let r = c.post(format!("{base}2/tweets")).bearer_auth(at).json(&json!({"text": "lost answer"})).send().await;
    assert!(r.is_err(), "the connection is dropped without an answer");
    // The post was accepted all the same, once; a retry is a duplicate.
    let r =
        c.post(format!("{base}2/tweets")).bearer_auth(at).json(&json!({"text": "lost answer"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let posts: Vec<_> = sb.posts().into_iter().filter(|p| p.text == "lost answer").collect();
    assert_eq!(posts.len(), 1);
    // The inspection API says the same over HTTP.
    let listed: Vec<Value> =
        c.get(format!("{}_sandbox/posts?platform=x", sb.base_url("media"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn tiktok_enforces_the_chunk_plan_and_reports_status() {
    let sb = sandbox().await;
    let c = http();
    let base = sb.base_url("tiktok");
    let creds = sb.credentials("tiktok");
    let url = format!(
        "{base}v2/auth/authorize/?client_key={}&scope=user.info.basic,video.publish,video.upload&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&state=t",
        creds.client_id
    );
    let q = approve(&c, url).await;
    assert_eq!(q["scopes"], "user.info.basic,video.publish,video.upload");
    let tok: Value = c
        .post(format!("{base}v2/oauth/token/"))
        .form(&[
            ("client_key", creds.client_id.as_str()),
            ("client_secret", &creds.client_secret),
            ("code", &q["code"]),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = tok["access_token"].as_str().unwrap();
    assert_eq!(tok["expires_in"], 86400);
    let open_id = tok["open_id"].as_str().unwrap().to_owned();

    let info: Value = c
        .post(format!("{base}v2/post/publish/creator_info/query/"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["error"]["code"], "ok");

    let video = mp4(6 * 1024 * 1024 + 100);
    let init = |chunk: usize, count: usize| {
        c.post(format!("{base}v2/post/publish/video/init/"))
            .bearer_auth(at)
            .json(&json!({"post_info": {"title": "tiktok video", "privacy_level": "PUBLIC_TO_EVERYONE"},
                "source_info": {"source": "FILE_UPLOAD", "video_size": video.len(), "chunk_size": chunk, "total_chunk_count": count}}))
            .send()
    };
    let r = init(1024 * 1024, 7).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_params");
    let r: Value = init(video.len(), 1).await.unwrap().json().await.unwrap();
    let publish_id = r["data"]["publish_id"].as_str().unwrap().to_owned();
    let upload_url = r["data"]["upload_url"].as_str().unwrap().to_owned();
    assert!(upload_url.starts_with(base.as_str()));
    let r = c
        .put(&upload_url)
        .header("content-type", "video/mp4")
        .header("content-range", format!("bytes 0-{}/{}", video.len() - 1, video.len()))
        .body(video.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut status = String::new();
    for _ in 0..100 {
        let s: Value = c
            .post(format!("{base}v2/post/publish/status/fetch/"))
            .bearer_auth(at)
            .json(&json!({"publish_id": publish_id}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = s["data"]["status"].as_str().unwrap().to_owned();
        if status == "PUBLISH_COMPLETE" {
            assert_eq!(s["data"]["publicaly_available_post_id"].as_array().unwrap().len(), 1);
            break;
        }
        assert_eq!(status, "PROCESSING_UPLOAD");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "PUBLISH_COMPLETE");
    let posts = sb.posts_of("tiktok", &open_id);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].media[0].sha256, hex(&video));
}

#[tokio::test]
async fn instagram_containers_finish_after_a_delay() {
    let sb = sandbox().await;
    let c = http();
    let base = sb.base_url("facebook");
    let creds = sb.credentials("facebook");
    let url = format!(
        "{base}v25.0/dialog/oauth?client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&state=f&scope=pages_show_list,pages_manage_posts,pages_read_engagement,instagram_basic,instagram_content_publish",
        creds.client_id
    );
    let q = approve(&c, url).await;
    let tok: Value = c
        .get(format!("{base}v25.0/oauth/access_token"))
        .query(&[
            ("client_id", creds.client_id.as_str()),
            ("client_secret", &creds.client_secret),
            ("code", &q["code"]),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let short = tok["access_token"].as_str().unwrap();
    let long: Value = c
        .get(format!("{base}v25.0/oauth/access_token"))
        .query(&[
            ("grant_type", "fb_exchange_token"),
            ("client_id", &creds.client_id),
            ("client_secret", &creds.client_secret),
            ("fb_exchange_token", short),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(long["expires_in"], 5_184_000);
    let user_token = long["access_token"].as_str().unwrap();
    let pages: Value = c
        .get(format!("{base}v25.0/me/accounts?fields=id,name,access_token,instagram_business_account"))
        .bearer_auth(user_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page = &pages["data"][0];
    let page_token = page["access_token"].as_str().unwrap();
    let ig = page["instagram_business_account"]["id"].as_str().unwrap();
    let page_id = page["id"].as_str().unwrap();

    // A Page post needs the Page token.
    let r = c
        .post(format!("{base}v25.0/{page_id}/feed"))
        .bearer_auth(user_token)
        .form(&[("message", "hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(format!("{base}v25.0/{page_id}/feed"))
        .bearer_auth(page_token)
        .form(&[("message", "hi")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-business-use-case-usage"));

    let image = jpeg(40_000);
    let host = sb.media_host();
    let image_url = host.url_for(&Media::from_bytes(image.clone())).await.unwrap();
    assert!(image_url.as_str().starts_with(host.base_url().as_str()));
    // The media host honours ranges.
    let r = c.get(image_url.clone()).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &image[10..20]);

    let r: Value = c
        .post(format!("{base}v25.0/{ig}/media"))
        .bearer_auth(page_token)
        .form(&[("image_url", image_url.as_str()), ("caption", "an image #sandbox")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let container = r["id"].as_str().unwrap().to_owned();
    let publish = || {
        c.post(format!("{base}v25.0/{ig}/media_publish"))
            .bearer_auth(page_token)
            .form(&[("creation_id", container.as_str())])
            .send()
    };
    let early = publish().await.unwrap();
    assert_eq!(early.status(), 400);
    let e: Value = early.json().await.unwrap();
    assert_eq!(e["error"]["code"], 9007);
    let mut code = String::new();
    for _ in 0..100 {
        let s: Value = c
            .get(format!("{base}v25.0/{container}?fields=status_code"))
            .bearer_auth(page_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        code = s["status_code"].as_str().unwrap().to_owned();
        if code == "FINISHED" {
            break;
        }
        assert_eq!(code, "IN_PROGRESS");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(code, "FINISHED");
    let r = publish().await.unwrap();
    assert_eq!(r.status(), 200);
    let media_id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let m: Value = c
        .get(format!("{base}v25.0/{media_id}?fields=permalink,media_product_type"))
        .bearer_auth(page_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(m["permalink"].as_str().unwrap().starts_with("https://www.instagram.com/p/"));
    // A standalone VIDEO is refused: it must be REELS.
    let r = c
        .post(format!("{base}v25.0/{ig}/media"))
        .bearer_auth(page_token)
        .form(&[("media_type", "VIDEO"), ("video_url", image_url.as_str())])
        .send()
        .await
        .unwrap();
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["error_subcode"], 2_207_089);

    let posts = sb.posts_of("instagram", ig);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].media[0].sha256, hex(&image));
    assert_eq!(sb.posts_of("facebook", page_id).len(), 1);
}

#[tokio::test]
async fn youtube_resumable_upload_answers_308_with_the_persisted_range() {
    let sb = sandbox().await;
    let c = http();
    let base = sb.base_url("youtube");
    let creds = sb.credentials("youtube");
    let challenge = konektly_core::oauth::pkce_challenge(VERIFIER);
    let url = format!(
        "{base}o/oauth2/v2/auth?client_id={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&response_type=code&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fyoutube.upload%20https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fyoutube.readonly&state=g&access_type=offline&prompt=consent&code_challenge={challenge}&code_challenge_method=S256",
        creds.client_id
    );
    let q = approve(&c, url).await;
    let tok: Value = c
        .post(format!("{base}token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("client_id", &creds.client_id),
            ("client_secret", &creds.client_secret),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = tok["access_token"].as_str().unwrap().to_owned();
    assert_eq!(tok["expires_in"], 3599);
    let ch: Value = c
        .get(format!("{base}youtube/v3/channels?part=snippet,contentDetails&mine=true"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let channel = ch["items"][0]["id"].as_str().unwrap().to_owned();

    let video = mp4(700 * 1024);
    let r = c
        .post(format!("{base}upload/youtube/v3/videos?uploadType=resumable&part=snippet%2Cstatus"))
        .bearer_auth(&at)
        .header("x-upload-content-length", video.len())
        .header("x-upload-content-type", "video/mp4")
        .json(&json!({"snippet": {"title": "a sandbox video", "categoryId": "22"}, "status": {"privacyStatus": "unlisted"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = r.headers()["location"].to_str().unwrap().to_owned();
    let total = video.len();
    // 300 KiB: only one whole 256 KiB block is persisted.
    let r = c
        .put(&session)
        .header("content-range", format!("bytes 0-{}/{total}", 300 * 1024 - 1))
        .body(video[..300 * 1024].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["range"], format!("bytes=0-{}", 256 * 1024 - 1));
    // Ask where we are, then send the rest from there.
    let r = c.put(&session).header("content-range", format!("bytes */{total}")).body(Vec::new()).send().await.unwrap();
    assert_eq!(r.status(), 308);
    let from = 256 * 1024;
    let r = c
        .put(&session)
        .header("content-range", format!("bytes {from}-{}/{total}", total - 1))
        .body(video[from..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let vid = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["status"]["uploadStatus"], "uploaded");
    let mut status = String::new();
    for _ in 0..100 {
        let l: Value = c
            .get(format!("{base}youtube/v3/videos?id={vid}&part=status,processingDetails"))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = l["items"][0]["status"]["uploadStatus"].as_str().unwrap().to_owned();
        if status == "processed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "processed");
    let posts = sb.posts_of("youtube", &channel);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].media[0].size, total as u64);
    assert_eq!(posts[0].media[0].sha256, hex(&video));
    assert_eq!(posts[0].status, "unlisted");
    // Revoke ends the grant.
    assert_eq!(c.post(format!("{base}revoke?token={at}")).send().await.unwrap().status(), 200);
    let r = c.get(format!("{base}youtube/v3/channels?part=snippet&mine=true")).bearer_auth(&at).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn tiktok_pulls_only_from_the_verified_media_host_and_a_remote_media_host_uploads_there() {
    let sb = sandbox().await;
    let c = http();
    let base = sb.base_url("tiktok");
    let creds = sb.credentials("tiktok");
    let url = format!(
        "{base}v2/auth/authorize/?client_key={}&scope=user.info.basic,video.publish&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcb&state=t",
        creds.client_id
    );
    let q = approve(&c, url).await;
    let tok: Value = c
        .post(format!("{base}v2/oauth/token/"))
        .form(&[
            ("client_key", creds.client_id.as_str()),
            ("client_secret", &creds.client_secret),
            ("code", &q["code"]),
            ("grant_type", "authorization_code"),
            ("redirect_uri", "http://127.0.0.1:1/cb"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = tok["access_token"].as_str().unwrap();
    // A host in another process reaches the sandbox through its control URL.
    let remote = konektly_testkit::SandboxMediaHost::remote(&sb.base_url("media")).unwrap();
    let video = mp4(200_000);
    let video_url = remote.url_for(&Media::from_bytes(video.clone())).await.unwrap();
    assert!(video_url.as_str().starts_with(sb.media_host().base_url().as_str()), "{video_url}");
    let init = |u: String| {
        c.post(format!("{base}v2/post/publish/video/init/"))
            .bearer_auth(at)
            .json(&json!({"post_info": {"title": "pulled", "privacy_level": "SELF_ONLY"},
                "source_info": {"source": "PULL_FROM_URL", "video_url": u}}))
            .send()
    };
    let r = init("https://elsewhere.example/v.mp4".into()).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "url_ownership_unverified");
    let r: Value = init(video_url.to_string()).await.unwrap().json().await.unwrap();
    let publish_id = r["data"]["publish_id"].as_str().unwrap().to_owned();
    let mut status = Value::Null;
    for _ in 0..100 {
        let s: Value = c
            .post(format!("{base}v2/post/publish/status/fetch/"))
            .bearer_auth(at)
            .json(&json!({"publish_id": publish_id}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status = s["data"].clone();
        if status["status"] == "PUBLISH_COMPLETE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["status"], "PUBLISH_COMPLETE");
    // SELF_ONLY posts never get a public id.
    assert_eq!(status["publicaly_available_post_id"], json!([]));
    let posted = sb.posts_of("tiktok", tok["open_id"].as_str().unwrap());
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].status, "private");
    assert_eq!(posted[0].media[0].sha256, hex(&video));
    assert_eq!(posted[0].media[0].size, 200_000);
}

/// Issue 14: Graph's `/me/accounts` pages like Graph (`limit`, `after`, `paging.next`), and a
/// user with several Pages is connected with every one of them by konektly-meta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_accounts_pages_through_every_page() {
    let sandbox = konektly_testkit::Sandbox::start().await.unwrap();
    let user = sandbox.users("facebook")[0].clone();
    for i in 0..4 {
        sandbox.add_page(&user.id, &format!("Extra Page {i}"));
    }
    // A user token, from the sandbox's own OAuth flow.
    let fb = sandbox.credentials("facebook");
    let base = sandbox.base_url("facebook");
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let auth = format!(
        "{base}v25.0/dialog/oauth?client_id={}&redirect_uri=https://app.example/cb&state=s&scope=pages_show_list",
        fb.client_id
    );
    let loc = http.get(&auth).send().await.unwrap().headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&loc).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let tok: serde_json::Value = http
        .get(format!("{base}v25.0/oauth/access_token"))
        .query(&[
            ("client_id", fb.client_id.as_str()),
            ("client_secret", fb.client_secret.as_str()),
            ("redirect_uri", "https://app.example/cb"),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tok["access_token"].as_str().unwrap().to_owned();
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = vec![("access_token", token.clone()), ("limit", "2".to_owned()), ("fields", "id,name".to_owned())];
        if let Some(a) = &after {
            q.push(("after", a.clone()));
        }
        let page: serde_json::Value =
            http.get(format!("{base}v25.0/me/accounts")).query(&q).send().await.unwrap().json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2, "limit is honoured: {page}");
        ids.extend(data.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        if page["paging"]["next"].is_null() {
            break;
        }
        after = page["paging"]["cursors"]["after"].as_str().map(str::to_owned);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "every Page once: {ids:?}");
}
