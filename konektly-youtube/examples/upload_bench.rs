//! Memory and speed of the resumable upload: uploads a file (1 GiB by default) through
//! `YouTubePlatform::publish` to a local resumable-upload endpoint, then sends the same file to
//! the same endpoint with `curl -T`, and prints peak RSS and MB/s of both.
//!
//! ```text
//! cargo run --release -p konektly-youtube --example upload_bench
//! BENCH_MIB=256 BENCH_CHUNK_MIB=16 cargo run --release -p konektly-youtube --example upload_bench
//! ```
//!
//! The endpoint runs in a child process (this program with the argument `serve`), so the peak
//! RSS measured (`VmHWM` of /proc/self/status) is the uploader's alone. It streams request
//! bodies and keeps nothing but a byte count.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use futures_util::StreamExt;
use konektly_core::{
    AccessToken, Account, AccountId, AccountStatus, Content, HttpConfig, Media, MemoryCheckpoints, OwnerId, Platform,
    PlatformId, PublishContext, PublishOutcome, TargetId, TargetOptions, TokenSet,
};
use konektly_youtube::{YouTubeBuilder, YouTubeOptions};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if std::env::args().nth(1).as_deref() == Some("serve") {
        return rt.block_on(serve());
    }
    rt.block_on(bench())
}

// ---------------------------------------------------------------------------------------------
// The endpoint.

async fn serve() -> Result<(), Error> {
    let received = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = Router::new()
        .route("/upload/youtube/v3/videos", post(start).put(put))
        .layer(DefaultBodyLimit::disable())
        .with_state((received, port));
    println!("PORT {port}");
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}

type Shared = (Arc<AtomicU64>, u16);

async fn start(State((_, port)): State<Shared>) -> Response {
    let location = format!("http://127.0.0.1:{port}/upload/youtube/v3/videos?uploadType=resumable&upload_id=bench");
    (StatusCode::OK, [("location", location)]).into_response()
}

async fn put(State((received, _)): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                received.fetch_add(c.len() as u64, Ordering::Relaxed);
            }
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        }
    }
    let done = || (StatusCode::CREATED, [("content-type", "application/json")], r#"{"id":"bench-video"}"#);
    let Some(range) = headers.get("content-range").and_then(|v| v.to_str().ok()) else {
        // A single PUT of the whole file (curl -T).
        return done().into_response();
    };
    // `bytes FIRST-LAST/TOTAL`
    let parsed = range.strip_prefix("bytes ").and_then(|r| {
        let (span, total) = r.split_once('/')?;
        let (_, last) = span.split_once('-')?;
        Some((last.parse::<u64>().ok()?, total.parse::<u64>().ok()?))
    });
    match parsed {
        Some((last, total)) if last + 1 == total => done().into_response(),
        Some((last, _)) => (StatusCode::PERMANENT_REDIRECT, [("range", format!("bytes=0-{last}"))]).into_response(),
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// The measurements.

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn make_file(path: &std::path::Path, bytes: u64) -> Result<(), Error> {
    if std::fs::metadata(path).map(|m| m.len() == bytes).unwrap_or(false) {
        return Ok(());
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let block: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

fn account() -> Account {
    let now = Utc::now();
    let mut tokens = TokenSet::new(AccessToken::new("bench-token"));
    tokens.expires_at = Some(now + chrono::Duration::hours(1));
    Account {
        id: AccountId::new(),
        owner: OwnerId::new("bench"),
        platform: PlatformId::new("youtube"),
        remote_id: "UCbench".into(),
        handle: None,
        display_name: None,
        avatar_url: None,
        tokens,
        status: AccountStatus::Active,
        parent: None,
        metadata: Default::default(),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

async fn upload_once(base: &str, media: &Media, chunk: usize) -> Result<Duration, Error> {
    let platform = YouTubeBuilder::new()
        .with_client_id("bench")
        .with_base_url(base)
        .with_chunk_size(chunk)
        .with_http_config(HttpConfig { timeout: Duration::from_secs(300), ..HttpConfig::default() })
        .build()?;
    let account = account();
    let content = Content::text("benchmark").with_media(media.clone());
    let options = TargetOptions::new(&YouTubeOptions { title: Some("bench".into()), ..YouTubeOptions::default() })?;
    let saver = MemoryCheckpoints::new();
    let mut ctx = PublishContext::builder(TargetId::new(), &account, &content, &options).hooks(&*saver).build();
    let t0 = Instant::now();
    let out = platform.publish(&mut ctx).await?;
    let took = t0.elapsed();
    if !matches!(out, PublishOutcome::Processing { .. }) {
        return Err(format!("unexpected outcome {out:?}").into());
    }
    Ok(took)
}

fn curl_once(base: &str, path: &std::path::Path) -> Result<(Duration, u64), Error> {
    let t0 = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "MAXRSS %M"])
        .arg("curl")
        .args(["-sS", "--fail", "-o", "/dev/null", "-T"])
        .arg(path)
        .arg(format!("{base}/upload/youtube/v3/videos?upload_id=curl"))
        .output()?;
    let took = t0.elapsed();
    if !out.status.success() {
        return Err(format!("curl failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let rss = stderr.lines().find_map(|l| l.strip_prefix("MAXRSS ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    Ok((took, rss))
}

async fn bench() -> Result<(), Error> {
    let mib = env_u64("BENCH_MIB", 1024);
    let chunk_mib = env_u64("BENCH_CHUNK_MIB", 8);
    let runs = env_u64("BENCH_RUNS", 2).max(1);
    let bytes = mib << 20;
    let path = std::env::temp_dir().join(format!("konektly-youtube-bench-{mib}MiB.bin"));
    make_file(&path, bytes)?;
    let mut media = Media::from_file(&path).await?;
    media.mime = "video/mp4".parse()?;

    let mut server = Command::new(std::env::current_exe()?).arg("serve").stdout(Stdio::piped()).spawn()?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().ok_or("no server stdout")?).read_line(&mut line)?;
    let port: u16 = line.trim().strip_prefix("PORT ").ok_or("the server did not start")?.parse()?;
    let base = format!("http://127.0.0.1:{port}");

    let baseline = peak_rss_kib();
    let result = async {
        let mut ours = Duration::MAX;
        let mut theirs = Duration::MAX;
        let mut curl_rss = 0;
        for _ in 0..runs {
            ours = ours.min(upload_once(&base, &media, (chunk_mib << 20) as usize).await?);
            let (t, rss) = curl_once(&base, &path)?;
            theirs = theirs.min(t);
            curl_rss = curl_rss.max(rss);
        }
        Ok::<_, Error>((ours, theirs, curl_rss))
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    let (ours, theirs, curl_rss) = result?;
    let peak = peak_rss_kib();
    let mbps = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!("file: {mib} MiB, chunk: {chunk_mib} MiB, best of {runs} runs, endpoint: local child process");
    println!("| uploader | peak RSS | time | throughput |");
    println!("|---|---|---|---|");
    println!(
        "| konektly-youtube publish | {:.1} MiB (before the upload: {:.1} MiB) | {:.2} s | {:.0} MB/s |",
        peak as f64 / 1024.0,
        baseline as f64 / 1024.0,
        ours.as_secs_f64(),
        mbps(ours)
    );
    println!(
        "| curl -T | {:.1} MiB | {:.2} s | {:.0} MB/s |",
        curl_rss as f64 / 1024.0,
        theirs.as_secs_f64(),
        mbps(theirs)
    );
    println!("throughput ratio konektly/curl: {:.2}", mbps(ours) / mbps(theirs));
    Ok(())
}
