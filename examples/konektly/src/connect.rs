//! Connecting an account through the OAuth redirect: a one-shot listener on localhost receives
//! the platform's redirect with `code` and `state`, and the engine completes the connection.

use std::collections::HashMap;
use std::time::Duration;

use konektly_core::{Account, Konektly, OwnerId, PlatformId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

use crate::{CliError, Result, fail};

/// Who opens the authorize URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Browser {
    /// Nobody: the URL is printed and a person opens it.
    None,
    /// The system's browser (`xdg-open` / `open`), and the URL is printed too.
    System,
    /// This program follows the URL itself, as a browser would (the sandbox approves at once).
    Follow,
}

/// A listener for the redirect, bound before the authorization starts.
#[derive(Debug)]
pub struct RedirectListener {
    listener: TcpListener,
    /// The redirect URI to register and send.
    pub redirect_uri: Url,
}

impl RedirectListener {
    /// Binds `127.0.0.1:port` (0 picks a free port); the redirect URI is
    /// `http://127.0.0.1:<port>/callback`.
    pub async fn bind(port: u16) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| CliError::Message(format!("cannot listen on 127.0.0.1:{port} for the redirect: {e}")))?;
        let port = listener.local_addr()?.port();
        let redirect_uri = Url::parse(&format!("http://127.0.0.1:{port}/callback")).expect("a valid URL");
        Ok(Self { listener, redirect_uri })
    }

    /// Waits for the redirect; returns its query parameters. Other requests (a favicon) are
    /// answered 404 and ignored.
    pub async fn wait(self, timeout: Duration) -> Result<HashMap<String, String>> {
        let run = async {
            loop {
                let (mut sock, _) = self.listener.accept().await?;
                let mut buf = Vec::with_capacity(2048);
                let mut chunk = [0u8; 2048];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
                    let n = sock.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf);
                let target = head.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("/").to_owned();
                let url =
                    Url::parse(&format!("http://127.0.0.1{target}")).map_err(|e| CliError::Message(e.to_string()))?;
                if url.path() != "/callback" {
                    let _ = sock
                        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    continue;
                }
                let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
                let body = if q.contains_key("error") {
                    "<h1>konektly: the authorization was refused.</h1><p>You can close this window.</p>"
                } else {
                    "<h1>konektly: connected.</h1><p>You can close this window and go back to the terminal.</p>"
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
                return Ok::<_, CliError>(q);
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => fail(format!("no redirect arrived within {} s; start again", timeout.as_secs())),
        }
    }
}

/// Acts as the user's browser: opens the authorize URL and follows its redirects to the
/// listener (the sandbox approves at once; a real platform would show its login page).
pub async fn follow(url: &Url) -> Result<()> {
    let http = konektly_core::HttpClient::new()?.client().clone();
    let mut next = url.clone();
    for _ in 0..5 {
        let r = http
            .get(next.clone())
            .send()
            .await
            .map_err(|e| CliError::Message(format!("cannot open the authorize page: {}", e.without_url())))?;
        if !r.status().is_redirection() {
            if next.path() == "/callback" {
                return Ok(());
            }
            return fail(format!("the authorize page answered {} instead of redirecting", r.status()));
        }
        let loc = r
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| CliError::Message("a redirect without a location".into()))?;
        next = next.join(loc).map_err(|e| CliError::Message(e.to_string()))?;
        if next.path() == "/callback" {
            http.get(next)
                .send()
                .await
                .map_err(|e| CliError::Message(format!("the redirect listener did not answer: {}", e.without_url())))?;
            return Ok(());
        }
    }
    fail("too many redirects on the authorize page")
}

fn open_in_system_browser(url: &Url) {
    let cmd = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let _ = std::process::Command::new(cmd)
        .arg(url.as_str())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Connects an account of `owner` on `platform`: prints (via `show_url`) or opens the
/// authorize URL, waits for the redirect, completes the connection and returns every account the
/// grant reaches.
pub async fn connect(
    engine: &Konektly,
    owner: &OwnerId,
    platform: &str,
    port: u16,
    browser: Browser,
    timeout: Duration,
    show_url: impl FnOnce(&Url),
) -> Result<Vec<Account>> {
    let listener = RedirectListener::bind(port).await?;
    let start = engine.connect(owner, &PlatformId::from(platform), &listener.redirect_uri).await?;
    show_url(&start.url);
    let follower = match browser {
        Browser::None => None,
        Browser::System => {
            open_in_system_browser(&start.url);
            None
        }
        Browser::Follow => {
            let url = start.url.clone();
            Some(tokio::spawn(async move { follow(&url).await }))
        }
    };
    let q = listener.wait(timeout).await?;
    if let Some(f) = follower {
        f.await.map_err(|e| CliError::Message(e.to_string()))??;
    }
    if let Some(err) = q.get("error") {
        let why = q.get("error_description").or(q.get("error_reason")).cloned().unwrap_or_default();
        return fail(format!("{platform} refused the authorization: {err} {why}"));
    }
    let (Some(state), Some(code)) = (q.get("state"), q.get("code")) else {
        return fail("the redirect carried no code and state");
    };
    if state != &start.state {
        return fail("the redirect's state does not match: start again");
    }
    Ok(engine.complete_connect(state, code).await?)
}
