//! Load on `konektly serve` (issue 16): N concurrent API clients, each uploading a small image
//! and creating a post with it, against a server on PostgreSQL with the sandbox, API only
//! (`--no-workers`: the figure is the API's). Prints requests/s, latency percentiles and the
//! server's peak RSS.
//!
//! ```sh
//! KONEKTLY_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench -p konektly --bench server_load      # KONEKTLY_LOAD_CLIENTS=32 KONEKTLY_LOAD_SECS=20
//! ```

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_konektly");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A 1×1 GIF: made once, uploaded by every request (the upload path, not the disk, is measured).
fn png() -> Vec<u8> {
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec()
}

fn konektly(dir: &std::path::Path, db_url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("KONEKTLY_KEYS", "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .args(["--db", "k.db", "--database-url", db_url, "--sandbox"])
        .args(args);
    c
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let Ok(base) = std::env::var("KONEKTLY_TEST_POSTGRES_URL") else {
        eprintln!("set KONEKTLY_TEST_POSTGRES_URL (postgres://postgres@127.0.0.1:5432/test)");
        std::process::exit(2);
    };
    let clients: usize = env_or("KONEKTLY_LOAD_CLIENTS", 32);
    let secs: u64 = env_or("KONEKTLY_LOAD_SECS", 20);
    let dbname = format!("konektly_load_{}", std::process::id());
    let admin = sqlx::PgPool::connect(&base).await.expect("PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {dbname}")))
        .execute(&admin)
        .await
        .expect("create database");
    let mut url = url::Url::parse(&base).expect("a URL");
    url.set_path(&format!("/{dbname}"));
    let result = run(url.as_str(), clients, secs).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")))
        .execute(&admin)
        .await
        .ok();
    if let Err(e) = result {
        eprintln!("server load bench failed: {e}");
        std::process::exit(1);
    }
}

async fn run(db_url: &str, clients: usize, secs: u64) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = konektly(dir.path(), db_url, &["--json", "keys", "create"]).output().map_err(|e| e.to_string())?;
    let key: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("keys create: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    let token = key["token"].as_str().ok_or("no token")?.to_owned();
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| e.to_string())?.port();
    let listen = format!("127.0.0.1:{port}");
    let child = konektly(dir.path(), db_url, &["serve", "--listen", &listen, "--no-workers", "--rate-limit", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let server = Server(child);
    let base = format!("http://{listen}");
    konektly_core::http::install_crypto_provider();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .map_err(|e| e.to_string())?;
    let auth = format!("Bearer {token}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        if Instant::now() > deadline {
            return Err("the server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One X account through the sandbox's authorize page.
    let start: serde_json::Value = http
        .post(format!("{base}/v1/accounts/connect"))
        .header("authorization", &auth)
        .json(&serde_json::json!({"platform": "x"}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    http.get(start["url"].as_str().ok_or("no authorize URL")?).send().await.map_err(|e| e.to_string())?;
    let accounts: serde_json::Value = http
        .get(format!("{base}/v1/accounts"))
        .header("authorization", &auth)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let account = accounts[0]["id"].as_str().ok_or("no account")?.to_owned();

    let image = png();
    let stop = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, base, auth, account, image) =
            (http.clone(), base.clone(), auth.clone(), account.clone(), image.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0u64;
            let mut i = 0u64;
            while Instant::now() < stop {
                i += 1;
                let t = Instant::now();
                let media = http
                    .post(format!("{base}/v1/media"))
                    .header("authorization", &auth)
                    .body(image.clone())
                    .send()
                    .await;
                let Ok(media) = media else {
                    errors += 1;
                    continue;
                };
                lat.push(t.elapsed());
                let Ok(media) = media.json::<serde_json::Value>().await else {
                    errors += 1;
                    continue;
                };
                let body = serde_json::json!({
                    "content": {"text": format!("load {c}-{i}"), "media": [media["media"].clone()]},
                    "targets": [{"account": account}],
                    "publish_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
                });
                let t = Instant::now();
                match http.post(format!("{base}/v1/posts")).header("authorization", &auth).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 201 => lat.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.map_err(|e| e.to_string())?;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    let rss = peak_rss_kib(server.0.id()).unwrap_or(0);
    println!(
        "server load: {clients} clients, {secs} s, PostgreSQL, API only: {} requests ({} uploads + posts), {:.0} requests/s, \
         p50 {:.1} ms, p99 {:.1} ms, errors {errors}, server peak RSS {:.1} MiB",
        all.len(),
        all.len() / 2,
        all.len() as f64 / elapsed,
        pct(0.50).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0,
        rss as f64 / 1024.0
    );
    Ok(())
}
