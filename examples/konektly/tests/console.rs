//! The web console (issue 16) in a real headless Chromium, driven through chromedriver: sign in
//! with an API key, connect X through the sandbox's authorize page and back, add a webhook
//! endpoint (a receiver this test runs), compose a post with a PNG (uploaded with progress,
//! checked live), schedule it a few seconds ahead, watch it turn published in the post list, and
//! see its webhook delivered in the log.
//!
//! Chromium must be installed (Debian's `chromium` and `chromium-driver` packages; `.ci/run`
//! installs them): without it this test fails, it never skips. Screenshots are taken on the way;
//! with `KONEKTLY_CONSOLE_SCREENSHOTS=1` they replace the README's in `docs/screenshots/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use konektly_testkit::{Sandbox, SandboxConfig};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long anything the test waits for may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The path of a program on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A small PNG (a gradient), encoded here: stored deflate blocks, CRC-32 and Adler-32.
fn png(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // no filter
        for x in 0..width {
            raw.extend_from_slice(&[(40 + x * 200 / width) as u8, (70 + y * 120 / height) as u8, 219]);
        }
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A webhook receiver: answers 204 to every request and keeps each one's head and body.
async fn receiver() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = conn.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { continue };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                    keep.lock().unwrap().push((head, body));
                    let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
                    return;
                }
            });
        }
    });
    (url, got)
}

/// Headless Chromium through chromedriver, in a fresh profile.
async fn browser(profile: &Path) -> (Client, Killed) {
    let (Some(chromium), Some(driver)) = (which("chromium"), which("chromedriver")) else {
        panic!(
            "the console's browser test needs headless Chromium and its WebDriver: install Debian's \
             `chromium` and `chromium-driver` packages (apt-get install -y chromium chromium-driver)"
        );
    };
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Killed(child);
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while !http.get(format!("{url}/status")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(started.elapsed() < DEADLINE, "chromedriver did not answer on port {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--lang=en-US",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), "chrome".into());
    caps.insert("goog:chromeOptions".into(), serde_json::json!({ "binary": chromium, "args": args }));
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&url)
        .await
        .expect("a Chromium session through chromedriver");
    (client, driver)
}

/// Waits until `css` matches an element whose text contains `text`, and returns its text.
async fn wait_for(c: &Client, css: &str, text: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(found) = c.find_all(Locator::Css(css)).await {
            for e in found {
                if let Ok(t) = e.text().await
                    && t.contains(text)
                {
                    return t;
                }
            }
        }
        if started.elapsed() > DEADLINE {
            let flash = match c.find(Locator::Id("flash")).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            panic!("no `{css}` with `{text}` within {DEADLINE:?} on {url} (flash: {flash:?})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the page's script has run (it marks `<body data-ready=page>`).
async fn ready(c: &Client, page: &str) {
    wait_for(c, &format!("body[data-ready={page}]"), "").await;
}

async fn screenshot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(format!("console-{name}.png")), png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_connects_composes_schedules_and_shows_the_webhook() {
    let sandbox =
        Sandbox::start_with(SandboxConfig { processing_delay: Duration::from_millis(200), ..SandboxConfig::default() })
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let konektly = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_konektly"));
        c.arg("--sandbox-url").arg(sandbox.base_url("media").as_str()).arg("--db").arg(&db);
        c.env_remove("KONEKTLY_KEYS").env_remove("KONEKTLY_DATABASE_URL");
        c
    };
    let shots = if std::env::var_os("KONEKTLY_CONSOLE_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
    } else {
        dir.path().join("screenshots")
    };
    std::fs::create_dir_all(&shots).unwrap();

    // An API key, then the server (on a port of its choosing: it prints its address).
    let out = konektly().args(["keys", "create"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let key = stdout.lines().last().unwrap().trim().to_owned();
    assert!(key.starts_with("kk_"), "{stdout}");
    let mut child = konektly()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _server = Killed(child);
    let first = lines.next().expect("serve says where it serves").unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .trim_end_matches('/')
        .to_owned();
    std::thread::spawn(move || lines.for_each(drop));

    // The console's pages forbid inline and foreign scripts.
    let page = reqwest::get(format!("{base}/console/compose")).await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("default-src 'none'"), "{csp}");

    let profile = dir.path().join("chromium-profile");
    let (c, _driver) = browser(&profile).await;
    let (hook_url, received) = receiver().await;

    // Sign in.
    c.goto(&format!("{base}/")).await.unwrap();
    wait_for(&c, "#page-signin h1", "Sign in").await;
    screenshot(&c, &shots, "signin").await;
    c.find(Locator::Id("signin-key")).await.unwrap().send_keys(&key).await.unwrap();
    c.find(Locator::Id("signin-submit")).await.unwrap().click().await.unwrap();
    ready(&c, "accounts").await;
    assert!(!c.current_url().await.unwrap().as_str().contains("kk_"), "the key never goes into a URL");

    // Connect X: to the sandbox's authorize page, which approves and redirects to the server's
    // callback, which sends the browser back to the console.
    wait_for(&c, "#connect-buttons button", "Connect X").await;
    c.find(Locator::Css("button[data-platform=x]")).await.unwrap().click().await.unwrap();
    wait_for(&c, "#flash", "Connected").await;
    ready(&c, "accounts").await;
    let row = wait_for(&c, "#accounts-table tr[data-platform=x]", "konektly_sandbox").await;
    assert!(row.contains("active"), "{row}");
    screenshot(&c, &shots, "accounts").await;

    // A webhook endpoint: its secret shown once.
    c.goto(&format!("{base}/console/webhooks")).await.unwrap();
    ready(&c, "webhooks").await;
    c.find(Locator::Id("webhook-url")).await.unwrap().send_keys(&hook_url).await.unwrap();
    c.find(Locator::Id("webhook-submit")).await.unwrap().click().await.unwrap();
    wait_for(&c, "#webhook-secret-value", "whsec_").await;
    wait_for(&c, "#webhooks-table td", &hook_url).await;

    // Compose: live validation refuses a text too long for X (the preview marks the cut)…
    c.goto(&format!("{base}/console/compose")).await.unwrap();
    ready(&c, "compose").await;
    let checked = c.execute("return document.querySelector('#compose-accounts input').checked", vec![]).await.unwrap();
    assert_eq!(checked, serde_json::Value::Bool(true), "the one account is chosen");
    let text = c.find(Locator::Id("compose-text")).await.unwrap();
    text.send_keys(&"So much <b>to</b> say. ".repeat(14)).await.unwrap();
    wait_for(&c, "#violations li[data-code=text_too_long]", "280").await;
    // What the user wrote is shown as text, never as markup.
    wait_for(&c, ".preview[data-platform=x] .text", "So much <b>to</b> say.").await;
    wait_for(&c, ".preview[data-platform=x] .count.over", "/ 280").await;
    wait_for(&c, ".preview[data-platform=x] mark.cut", "").await;
    screenshot(&c, &shots, "checks").await;

    // …then a short text and a PNG, uploaded with progress: valid.
    text.clear().await.unwrap();
    text.send_keys("Hello from the konektly console").await.unwrap();
    let image = png(96, 64);
    let file = dir.path().join("hello.png");
    std::fs::write(&file, &image).unwrap();
    c.find(Locator::Id("compose-file")).await.unwrap().send_keys(file.to_str().unwrap()).await.unwrap();
    wait_for(&c, "#uploads li.done", "uploaded").await;
    wait_for(&c, "#validation-status.ok", "Ready").await;
    wait_for(&c, ".preview[data-platform=x] .count", "31 / 280").await;

    // Scheduled 6 seconds ahead (the input takes the browser's local time).
    c.execute(
        "const d = new Date(Date.now() + 6000), p = (n) => String(n).padStart(2, '0');\
         const i = document.getElementById('compose-at');\
         i.value = d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());\
         i.dispatchEvent(new Event('input', { bubbles: true }));",
        vec![],
    )
    .await
    .unwrap();
    wait_for(&c, "#validation-status.ok", "Ready").await;
    screenshot(&c, &shots, "compose").await;
    c.find(Locator::Id("compose-submit")).await.unwrap().click().await.unwrap();
    let said = wait_for(&c, "#compose-result", "Scheduled for").await;
    let post = c.find(Locator::Id("compose-result")).await.unwrap().attr("data-post").await.unwrap().unwrap();
    assert!(said.contains(&post), "{said}");

    // The post list: scheduled, then published, refreshed by the page itself.
    c.goto(&format!("{base}/console/posts")).await.unwrap();
    ready(&c, "posts").await;
    let chip = format!(".post[data-post='{post}'] .target");
    wait_for(&c, &format!(".post[data-post='{post}'] .target[data-state=scheduled]"), "scheduled").await;
    wait_for(&c, &format!(".post[data-post='{post}'] .target[data-state=published]"), "published").await;
    let shown = wait_for(&c, &chip, "view").await;
    assert!(shown.contains("X @konektly_sandbox"), "{shown}");
    screenshot(&c, &shots, "posts").await;
    let at_x: Vec<_> = sandbox.posts().into_iter().filter(|p| p.platform == "x").collect();
    assert_eq!(at_x.len(), 1, "published once");
    let sha: String = Sha256::digest(&image).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(at_x[0].media[0].sha256, sha, "with the PNG's bytes");

    // The webhook log: target.published delivered to the receiver, signed.
    c.goto(&format!("{base}/console/webhooks")).await.unwrap();
    ready(&c, "webhooks").await;
    wait_for(&c, "#deliveries-table tr[data-state=delivered]", "target.published").await;
    screenshot(&c, &shots, "webhooks").await;
    let got = received.lock().unwrap().clone();
    let published = got.iter().find(|(_, body)| body.contains("target.published")).expect("the receiver got it");
    assert!(published.0.contains("webhook-signature: v1,"), "{}", published.0);
    assert!(published.1.contains(&post), "{}", published.1);

    c.close().await.unwrap();
}
