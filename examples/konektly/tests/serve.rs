//! `konektly serve` as its users meet it (issue 16): the real binary on SQLite and on
//! PostgreSQL, against a sandbox in this test's process, API keys made with `konektly keys`, the
//! API driven over HTTP — keys and owners, the OAuth redirect, uploads, posts, events, the event
//! stream — and webhooks to a receiver in this test that fails, hangs, is down, while the server
//! is killed and started again. Every wait polls with a deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Timelike;
use futures_util::StreamExt;
use konektly_testkit::{Sandbox, SandboxConfig};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_konektly");
/// The token key of every run (PostgreSQL has no key file beside it).
const KEYS: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Quick webhook retries: a 300 ms attempt timeout, 100 ms first backoff, at most 400 ms.
const QUICK_WEBHOOKS: [&str; 6] =
    ["--webhook-timeout-ms", "300", "--webhook-first-backoff-ms", "100", "--webhook-max-backoff-ms", "400"];

/// Polls `$check` (an `Option`) every 50 ms until it is `Some`, or panics after `$within`.
macro_rules! poll {
    ($what:expr, $within:expr, $check:expr) => {{
        let within: Duration = $within;
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = $check {
                break v;
            }
            assert!(Instant::now() < deadline, "waited {within:?} for {}", $what);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[derive(Clone, Copy, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

/// A sandbox, a directory and a database (a PostgreSQL schema of its own) for one test.
struct Setup {
    dir: tempfile::TempDir,
    sandbox: Sandbox,
    /// `postgres://…?options[search_path]=<schema>`, and the schema.
    postgres: Option<(String, String)>,
}

impl Setup {
    /// `None`: PostgreSQL was asked for and `KONEKTLY_TEST_POSTGRES_URL` is not set.
    async fn new(db: Db) -> Option<Setup> {
        let sandbox =
            Sandbox::start_with(SandboxConfig { processing_delay: Duration::from_millis(100), ..Default::default() })
                .await
                .unwrap();
        let postgres = match db {
            Db::Sqlite => None,
            Db::Postgres => {
                let Ok(base) = std::env::var("KONEKTLY_TEST_POSTGRES_URL") else {
                    eprintln!("KONEKTLY_TEST_POSTGRES_URL is not set: the PostgreSQL run is skipped (CI sets it)");
                    return None;
                };
                static N: AtomicUsize = AtomicUsize::new(0);
                let schema = format!(
                    "serve_{}_{}_{}",
                    chrono::Utc::now().format("%Y%m%d%H%M%S%f"),
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                );
                let pool = sqlx::PgPool::connect(&base).await.expect("PostgreSQL at KONEKTLY_TEST_POSTGRES_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\""))).execute(&pool).await.unwrap();
                pool.close().await;
                let mut url = url::Url::parse(&base).unwrap();
                url.query_pairs_mut().append_pair("options[search_path]", &schema);
                Some((url.to_string(), schema))
            }
        };
        Some(Setup { dir: tempfile::tempdir().unwrap(), sandbox, postgres })
    }

    /// `konektly <args>` on this test's database and sandbox, with a clean environment.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(BIN);
        c.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("KONEKTLY_KEYS", KEYS)
            .env("RUST_LOG", "warn,konektly::webhooks=info")
            .arg("--db")
            .arg(self.dir.path().join("k.db"))
            .arg("--sandbox-url")
            .arg(self.sandbox.base_url("media").as_str());
        if let Some((url, _)) = &self.postgres {
            c.arg("--database-url").arg(url);
        }
        c.args(args).kill_on_drop(true);
        c
    }

    /// Runs `konektly <args>` to a successful end; its standard output.
    async fn run(&self, args: &[&str]) -> String {
        let out = tokio::time::timeout(secs(60), self.command(args).output()).await.expect("konektly ended").unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "konektly {args:?}: {said}{}", String::from_utf8_lossy(&out.stderr));
        said
    }

    /// `konektly keys create` for `owner` (`None`: an admin key): its id and token.
    async fn key(&self, owner: Option<&str>) -> (String, String) {
        let mut args = vec!["--json", "keys", "create"];
        match owner {
            Some(o) => args.extend(["--owner", o]),
            None => args.push("--admin"),
        }
        let v: Value = serde_json::from_str(&self.run(&args).await).unwrap();
        (v["key"]["id"].as_str().unwrap().to_owned(), v["token"].as_str().unwrap().to_owned())
    }

    /// Starts `konektly serve` on a free port; returns once it said where it serves.
    async fn serve(&self, extra: &[&str]) -> Served {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend(extra);
        let mut child = self.command(&args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let l = log.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf).await
                && n > 0
            {
                l.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let found = tokio::time::timeout(secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push_str(&format!("{line}\n"));
                if let Some(rest) = line.split_once("serving at ").map(|(_, r)| r) {
                    return Some(rest.split_whitespace().next().unwrap_or_default().trim_end_matches('/').to_owned());
                }
            }
            None
        })
        .await;
        let Ok(Some(base)) = found else {
            let _ = child.start_kill();
            let _ = child.wait().await;
            panic!("konektly serve did not say where it serves: {}", log.lock().unwrap());
        };
        let l = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                l.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Served { child, base, log, http: client() }
    }

    /// Drops the PostgreSQL schema (a failed test keeps it for a look).
    async fn finish(self) {
        if let Some((url, schema)) = &self.postgres {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE"))).execute(&pool).await.unwrap();
        }
    }
}

fn client() -> reqwest::Client {
    konektly_core::http::install_crypto_provider();
    reqwest::Client::builder().timeout(secs(20)).build().unwrap()
}

/// A running `konektly serve`; killed when dropped.
struct Served {
    child: tokio::process::Child,
    base: String,
    log: Arc<Mutex<String>>,
    http: reqwest::Client,
}

/// An answer: status, headers, body as JSON (`Null` if it is not).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts an RFC 9457 problem of `status` and returns its `type`.
    #[track_caller]
    fn problem(&self, status: u16) -> String {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        assert_eq!(self.header("content-type"), "application/problem+json", "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()), "{self:?}");
        assert!(self.body["detail"].is_string(), "{self:?}");
        let kind = self.body["type"].as_str().unwrap_or_default().to_owned();
        assert!(kind.starts_with("https://konektly.dev/problems/"), "{self:?}");
        kind
    }

    #[track_caller]
    fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{self:?}");
        &self.body
    }
}

impl Served {
    /// A request to `path` with `key` (if any).
    fn req(&self, method: Method, path: &str, key: Option<&str>) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match key {
            Some(k) => r.bearer_auth(k),
            None => r,
        }
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> Answer {
        let resp = r.send().await.unwrap_or_else(|e| panic!("{e}: {}", self.log()));
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, headers, body, text }
    }

    async fn get(&self, path: &str, key: &str) -> Answer {
        self.send(self.req(Method::GET, path, Some(key))).await
    }

    async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.send(self.req(Method::POST, path, Some(key)).json(&body)).await
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGINT, as Ctrl-C would; waits for the end (at most `within`); the exit status.
    async fn interrupt(mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().unwrap().to_string();
        let sent = tokio::process::Command::new("kill").args(["-INT", &pid]).status().await.unwrap();
        assert!(sent.success());
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("still serving {within:?} after Ctrl-C: {}", self.log()),
        }
    }

    /// SIGKILL, as a crash or the OOM killer would.
    async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// A post that publishes now on `account`: its id.
    async fn post_now(&self, key: &str, account: &str, text: &str) -> String {
        let a =
            self.post("/v1/posts", key, json!({"content": {"text": text}, "targets": [{"account": account}]})).await;
        a.ok(201)["id"].as_str().unwrap().to_owned()
    }

    /// Waits until every target of `post` is published; the post.
    async fn published(&self, key: &str, post: &str) -> Value {
        poll!(format!("post {post} published: {}", self.log()), secs(30), {
            let a = self.get(&format!("/v1/posts/{post}"), key).await;
            let states: Vec<&str> =
                a.ok(200)["targets"].as_array().unwrap().iter().map(|t| t["state"].as_str().unwrap()).collect();
            assert!(!states.iter().any(|s| matches!(*s, "failed" | "cancelled" | "blocked")), "{a:?}");
            states.iter().all(|s| *s == "published").then_some(a.body)
        })
    }

    /// Connects the sandbox's X account as the owner of `key`, following the redirects as a
    /// browser does; its account id.
    async fn connect_x(&self, key: &str) -> String {
        let start = self.post("/v1/accounts/connect", key, json!({"platform": "x"})).await;
        let url = start.ok(200)["url"].as_str().unwrap().to_owned();
        assert!(start.body["state"].is_string() && start.body["expires_at"].is_string(), "{start:?}");
        let page = self.http.get(&url).send().await.unwrap();
        assert!(page.url().as_str().starts_with(&format!("{}/v1/oauth/callback?", self.base)), "{}", page.url());
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("Connected"));
        let accounts = self.get("/v1/accounts", key).await;
        let x: Vec<&Value> = accounts.ok(200).as_array().unwrap().iter().filter(|a| a["platform"] == "x").collect();
        assert_eq!(x.len(), 1, "{accounts:?}");
        assert_eq!(x[0]["status"], "active");
        x[0]["id"].as_str().unwrap().to_owned()
    }

    /// Every event of the owner of `key` after `after`, paged `per_page` at a time.
    async fn events(&self, key: &str, after: u64, per_page: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            let a = self.get(&format!("/v1/events?after={cursor}&limit={per_page}"), key).await;
            let page = a.ok(200)["events"].as_array().unwrap().clone();
            let next = a.body["next_cursor"].as_u64().unwrap();
            if page.is_empty() {
                assert_eq!(next, cursor, "an empty page keeps the cursor");
                return out;
            }
            assert!(page.len() <= per_page);
            assert_eq!(next, page.last().unwrap()["seq"].as_u64().unwrap());
            cursor = next;
            out.extend(page);
        }
    }
}

/// A GIF of one pixel.
fn gif() -> Vec<u8> {
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x00\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec()
}

// ---------------------------------------------------------------------------------------------
// A webhook receiver.

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Hit {
    /// `webhook-id`.
    id: String,
    /// The JSON body.
    body: Value,
    /// Whether `webhook-signature` verified with the endpoint's secret.
    verified: bool,
    /// Whether it was answered 2xx in time (not failed, not held past the timeout).
    accepted: bool,
}

/// A webhook endpoint in this test: answers 500 to the first `fail` requests, holds the next
/// `hang` ones past the server's timeout, accepts the rest.
#[derive(Default)]
struct Receiver {
    secret: Mutex<String>,
    fail: AtomicUsize,
    hang: AtomicUsize,
    hits: Mutex<Vec<Hit>>,
}

fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1)).is_ok()
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> axum::http::StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let id = h("webhook-id");
    let secret = r.secret.lock().unwrap().clone();
    let verified = konektly_server::webhooks::verify(
        &secret,
        &id,
        &h("webhook-timestamp"),
        &h("webhook-signature"),
        &body,
        Duration::from_secs(300),
    );
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (accepted, status) = if take_one(&r.fail) {
        (false, 500)
    } else if take_one(&r.hang) {
        r.hits.lock().unwrap().push(Hit { id, body, verified, accepted: false });
        // Far past the server's 300 ms: it gives up on this attempt and tries again.
        tokio::time::sleep(secs(2)).await;
        return axum::http::StatusCode::OK;
    } else {
        (true, 204)
    };
    r.hits.lock().unwrap().push(Hit { id, body, verified, accepted });
    axum::http::StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// Listens on `port` (0: any); its address.
    async fn listen(self: &Arc<Self>, port: u16) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The events accepted, by id (at least once: duplicates folded).
    fn accepted(&self) -> BTreeMap<String, Value> {
        self.hits().into_iter().filter(|h| h.accepted).map(|h| (h.id, h.body)).collect()
    }

    /// Every request was signed with the endpoint's secret, and its `webhook-id` is its body's `id`.
    #[track_caller]
    fn all_signed(&self) {
        for h in self.hits() {
            assert!(h.verified, "a delivery's signature does not verify: {h:?}");
            assert_eq!(h.body["id"], h.id.as_str(), "webhook-id is the event id: {h:?}");
        }
    }
}

/// A port nothing listens on (for now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Registers `url` for the owner of `key`; the secret.
async fn register(server: &Served, key: &str, url: &str) -> String {
    let a = server.post("/v1/webhooks", key, json!({"url": url})).await;
    let secret = a.ok(201)["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{a:?}");
    assert_eq!(a.body["webhook"]["url"], url);
    secret
}

/// Waits until every event after `after` of the owner of `key` was accepted by `receiver`.
async fn all_arrive(server: &Served, key: &str, after: u64, receiver: &Receiver, want_published: usize) -> Vec<Value> {
    poll!(format!("every event delivered: got {:?}\n{}", receiver.hits(), server.log()), secs(30), {
        let events = server.events(key, after, 500).await;
        let got = receiver.accepted();
        let published = events.iter().filter(|e| e["type"] == "target.published").count();
        (published >= want_published && events.iter().all(|e| got.contains_key(e["id"].as_str().unwrap())))
            .then_some(events)
    })
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_as_a_user_drives_it_on_sqlite() {
    the_api_as_a_user_drives_it(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_as_a_user_drives_it_on_postgres() {
    the_api_as_a_user_drives_it(Db::Postgres).await;
}

async fn the_api_as_a_user_drives_it(db: Db) {
    let Some(setup) = Setup::new(db).await else { return };
    let (_, alice) = setup.key(Some("alice")).await;
    let (_, bob) = setup.key(Some("bob")).await;
    let (_, admin) = setup.key(None).await;
    let (spare_id, spare) = setup.key(Some("alice")).await;
    let mut args = vec!["--max-media-bytes", "65536"];
    args.extend(QUICK_WEBHOOKS);
    let server = setup.serve(&args).await;

    // --- Keys and owners.
    let none = server.send(server.req(Method::GET, "/v1/accounts", None)).await;
    let unauthorized = none.problem(401);
    let wrong = server.get("/v1/accounts", "kk_nope_nope").await;
    assert_eq!(wrong.problem(401), unauthorized);
    server.get("/v1/accounts", &spare).await.ok(200);
    let said = setup.run(&["keys", "revoke", &spare_id]).await;
    assert!(said.contains(&spare_id), "{said}");
    // A key id may begin with `-` (base64url): it is taken as the id, not as an option.
    let out = setup.command(&["keys", "revoke", "-Dnot-a-key"]).output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && err.contains("no active API key `-Dnot-a-key`"), "{err}");
    assert_eq!(server.get("/v1/accounts", &spare).await.problem(401), unauthorized, "a revoked key");
    // An admin key acts for an owner it names, and for none without.
    server.get("/v1/accounts", &admin).await.problem(400);
    let as_alice = |path: &str| server.req(Method::GET, path, Some(&admin)).header("Konektly-Owner", "alice");
    server.send(as_alice("/v1/accounts")).await.ok(200);
    // An owner's key cannot name another owner.
    let other = server.req(Method::GET, "/v1/accounts", Some(&alice)).header("Konektly-Owner", "bob");
    server.send(other).await.problem(403);

    // --- Webhooks first, so that everything below is delivered: a receiver that fails the
    // first three requests and holds the next one past the server's timeout.
    let receiver = Arc::new(Receiver { fail: AtomicUsize::new(3), hang: AtomicUsize::new(1), ..Default::default() });
    let hook = format!("http://{}/hook", receiver.listen(0).await);
    *receiver.secret.lock().unwrap() = register(&server, &alice, &hook).await;
    let ftp = server.post("/v1/webhooks", &alice, json!({"url": "ftp://127.0.0.1/hook"})).await;
    ftp.problem(400);
    let listed = server.get("/v1/webhooks", &alice).await;
    assert_eq!(listed.ok(200).as_array().unwrap().len(), 1);
    assert!(!listed.text.contains("whsec_"), "the secret is shown once: {}", listed.text);
    assert_eq!(server.get("/v1/webhooks", &bob).await.ok(200).as_array().unwrap().len(), 0);
    let hook_id = listed.body[0]["id"].as_str().unwrap().to_owned();
    let theirs = server.send(server.req(Method::DELETE, &format!("/v1/webhooks/{hook_id}"), Some(&bob))).await;
    theirs.problem(404);
    let start = server.events(&alice, 0, 500).await.last().map_or(0, |e| e["seq"].as_u64().unwrap());

    // --- Connect through the platform's authorize page and back to the server's callback.
    let account = server.connect_x(&alice).await;
    assert_eq!(server.get("/v1/accounts", &bob).await.ok(200), &json!([]), "bob has no account");

    // --- Media: an image in, a media object out; too large is 413.
    let up = server
        .send(server.req(Method::POST, "/v1/media", Some(&alice)).header("content-type", "image/gif").body(gif()))
        .await;
    let media = up.ok(201)["media"].clone();
    assert!(media.is_object() && up.body["id"].is_string(), "{up:?}");
    let big = vec![0u8; 200 * 1024];
    let too_big = server.send(server.req(Method::POST, "/v1/media", Some(&alice)).body(big)).await;
    assert!(too_big.problem(413).ends_with("/media_too_large"), "{too_big:?}");

    // --- Validate: an X text over 280 is refused with its one violation.
    let long = json!({"content": {"text": "a".repeat(300)}, "targets": [{"account": account}]});
    let v = server.post("/v1/posts/validate", &alice, long.clone()).await;
    assert_eq!(v.ok(200)["valid"], false, "{v:?}");
    let too_long: Vec<&Value> =
        v.body["violations"].as_array().unwrap().iter().filter(|x| x["code"] == "text_too_long").collect();
    assert_eq!(too_long.len(), 1, "listed once: {v:?}");
    // Creating it is refused with the same violation, as a problem.
    let refused = server.post("/v1/posts", &alice, long).await;
    refused.problem(422);
    assert!(refused.body["violations"].as_array().unwrap().iter().any(|x| x["code"] == "text_too_long"), "{refused:?}");
    let fine = json!({"content": {"text": "fine"}, "targets": [{"account": account}]});
    assert_eq!(server.post("/v1/posts/validate", &alice, fine).await.ok(200)["valid"], true);

    // --- Create with an Idempotency-Key: once; the same again is the same post; another body
    // with that key is refused.
    let first =
        json!({"content": {"text": "first, with a picture", "media": [media]}, "targets": [{"account": account}]});
    let create = |body: &Value, key: &str| {
        server.req(Method::POST, "/v1/posts", Some(&alice)).header("Idempotency-Key", key).json(body)
    };
    let made = server.send(create(&first, "order-1")).await;
    let post = made.ok(201)["id"].as_str().unwrap().to_owned();
    let again = server.send(create(&first, "order-1")).await;
    assert_eq!(again.ok(200)["id"], post.as_str(), "the same request, the same post");
    let other = json!({"content": {"text": "something else"}, "targets": [{"account": account}]});
    let reused = server.send(create(&other, "order-1")).await;
    assert!(reused.problem(422).ends_with("/idempotency_key_reused"), "{reused:?}");
    // A request refused for its content, retried as it was, is refused again (it used to be
    // 404: the key named a post that was never made).
    let bad = json!({"content": {"text": "b".repeat(300)}, "targets": [{"account": account}]});
    for _ in 0..2 {
        let refused = server.send(create(&bad, "order-2")).await;
        assert!(refused.problem(422).ends_with("/invalid_post"), "{refused:?}");
    }

    // Sent four times at once (a client retrying on a timeout): one post.
    let burst = json!({"content": {"text": "sent four times"}, "targets": [{"account": account}]});
    let sent = futures_util::future::join_all((0..4).map(|_| server.send(create(&burst, "burst-1")))).await;
    let ids: BTreeSet<&str> = sent
        .iter()
        .map(|a| {
            assert!(matches!(a.status.as_u16(), 200 | 201), "{a:?}");
            a.body["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{sent:?}");
    let burst_id = ids.into_iter().next().unwrap().to_owned();

    // --- It gets published, once, with its picture.
    let done = server.published(&alice, &post).await;
    let target = &done["targets"][0];
    let remote = target["remote_id"].as_str().unwrap().to_owned();
    assert!(target["url"].as_str().is_some_and(|u| u.starts_with("http")), "{done}");
    let at_x: Vec<_> = setup.sandbox.posts().into_iter().filter(|p| p.text == "first, with a picture").collect();
    assert_eq!(at_x.len(), 1, "published once");
    assert_eq!(at_x[0].id, remote);
    assert_eq!(at_x[0].media.len(), 1);

    server.published(&alice, &burst_id).await;
    assert_eq!(setup.sandbox.posts().iter().filter(|p| p.text == "sent four times").count(), 1);

    // --- Another owner's post or account is not found, like one that does not exist; an admin
    // key naming the owner reads it.
    let nowhere = konektly_core::PostId::new().to_string();
    let missing = server.get(&format!("/v1/posts/{nowhere}"), &alice).await.problem(404);
    assert_eq!(server.get(&format!("/v1/posts/{post}"), &bob).await.problem(404), missing);
    let missing_account =
        server.get(&format!("/v1/accounts/{}", konektly_core::AccountId::new()), &alice).await.problem(404);
    assert_eq!(server.get(&format!("/v1/accounts/{account}"), &bob).await.problem(404), missing_account);
    server.send(server.req(Method::POST, &format!("/v1/posts/{post}/cancel"), Some(&bob))).await.problem(404);
    let seen = server.send(as_alice(&format!("/v1/posts/{post}"))).await;
    assert_eq!(seen.ok(200)["id"], post.as_str());
    // A malformed id or body is a problem too, not a bare text.
    server.get("/v1/posts/not-an-id", &alice).await.problem(400);
    let bad = server.req(Method::POST, "/v1/posts", Some(&alice)).header("content-type", "application/json").body("{");
    server.send(bad).await.problem(400);
    let bad = server
        .req(Method::POST, "/v1/posts/validate", Some(&alice))
        .header("content-type", "application/json")
        .body("{");
    server.send(bad).await.problem(400);

    // --- More posts: two now, two later.
    let second = server.post_now(&alice, &account, "second").await;
    let third = server.post_now(&alice, &account, "third").await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let later =
        |text: &str| json!({"content": {"text": text}, "targets": [{"account": account}], "publish_at": tomorrow});
    let to_cancel =
        server.post("/v1/posts", &alice, later("to cancel")).await.ok(201)["id"].as_str().unwrap().to_owned();
    let to_move = server.post("/v1/posts", &alice, later("to move")).await;
    assert_eq!(to_move.ok(201)["targets"][0]["state"], "scheduled");
    let to_move = to_move.body["id"].as_str().unwrap().to_owned();
    server.published(&alice, &second).await;
    server.published(&alice, &third).await;

    // Cancel one; move the other.
    let c = server.send(server.req(Method::POST, &format!("/v1/posts/{to_cancel}/cancel"), Some(&alice))).await;
    assert_eq!(c.ok(200)["cancelled"], 1, "{c:?}");
    assert_eq!(server.get(&format!("/v1/posts/{to_cancel}"), &alice).await.ok(200)["targets"][0]["state"], "cancelled");
    let when = (chrono::Utc::now() + chrono::Duration::days(3)).with_nanosecond(0).unwrap();
    let moved =
        server.post(&format!("/v1/posts/{to_move}/reschedule"), &alice, json!({"publish_at": when.to_rfc3339()})).await;
    let due: chrono::DateTime<chrono::Utc> = moved.ok(200)["targets"][0]["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(due, when, "{moved:?}");
    assert_eq!(moved.body["targets"][0]["state"], "scheduled");

    // --- The list, one post per page: every post once, newest first.
    let all = server.get("/v1/posts?limit=200", &alice).await;
    let all: Vec<String> =
        all.ok(200)["posts"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(all.len(), 6, "{all:?}");
    for p in [&post, &burst_id, &second, &third, &to_cancel, &to_move] {
        assert!(all.contains(p), "{p} listed");
    }
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/posts?limit=1&cursor={c}"),
            None => "/v1/posts?limit=1".to_owned(),
        };
        let page = server.get(&path, &alice).await;
        let posts = page.ok(200)["posts"].as_array().unwrap();
        assert!(posts.len() <= 1);
        paged.extend(posts.iter().map(|p| p["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(paged.len() <= all.len(), "paging does not end: {paged:?}");
    }
    assert_eq!(paged, all, "one by one, the same posts in the same order");
    let scheduled = server.get("/v1/posts?state=scheduled", &alice).await;
    let ids: Vec<&str> =
        scheduled.ok(200)["posts"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![to_move.as_str()]);
    assert_eq!(server.get("/v1/posts", &bob).await.ok(200)["posts"], json!([]));

    // --- Delete a published post: gone at the platform.
    let deleted = server.send(server.req(Method::DELETE, &format!("/v1/posts/{second}"), Some(&alice))).await;
    assert_eq!(deleted.ok(200)[0]["result"], "deleted", "{deleted:?}");
    let at_x: Vec<_> = setup.sandbox.posts().into_iter().filter(|p| p.text == "second").collect();
    assert_eq!(at_x.len(), 1);
    assert_eq!(at_x[0].status, "deleted");

    // --- Events: paged one at a time, the same as in one page, in order (numbered a moment
    // after they are committed).
    let events = poll!("the events numbered", secs(10), {
        let events = server.events(&alice, 0, 500).await;
        let of = |kind: &str, post: &str| events.iter().any(|e| e["type"] == kind && e["data"]["post"] == post);
        (of("target.cancelled", &to_cancel) && [&post, &second, &third].iter().all(|p| of("target.published", p)))
            .then_some(events)
    });
    let one_by_one = server.events(&alice, 0, 1).await;
    assert_eq!(one_by_one, events);
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let published: BTreeSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "target.published")
        .map(|e| e["data"]["post"].as_str().unwrap_or_default())
        .collect();
    assert!(events.iter().any(|e| e["type"] == "account.connected"), "{events:?}");
    assert!(events.iter().any(|e| e["type"] == "target.cancelled"), "{events:?}");
    for p in [&post, &second, &third] {
        assert!(published.contains(p.as_str()), "{p} published in {events:#?}");
    }
    assert!(server.events(&bob, 0, 500).await.is_empty(), "bob sees none of alice's events");
    server.get("/v1/events?limit=0", &alice).await.problem(400);
    server.get("/v1/events?after=-1", &alice).await.problem(400);

    // --- The event stream tells of a new post's publication.
    let last = *seqs.last().unwrap();
    let stream =
        server.req(Method::GET, &format!("/v1/events/stream?after={last}"), Some(&alice)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let fourth = server.post_now(&alice, &account, "fourth").await;
    let mut body = stream.bytes_stream();
    let mut text = String::new();
    let found = tokio::time::timeout(secs(30), async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            for frame in text.split("\n\n") {
                if frame.lines().any(|l| l == "event: target.published") && frame.contains(&fourth) {
                    return Some(frame.to_owned());
                }
            }
        }
        None
    })
    .await;
    let frame =
        found.ok().flatten().unwrap_or_else(|| panic!("no target.published for {fourth} in the stream:\n{text}"));
    let data: Value = serde_json::from_str(frame.lines().find_map(|l| l.strip_prefix("data: ")).unwrap()).unwrap();
    assert_eq!(frame.lines().find_map(|l| l.strip_prefix("id: ")), Some(data["seq"].to_string().as_str()), "{frame}");
    assert!(data["seq"].as_u64().unwrap() > last);
    drop(body);

    // --- Webhooks: every event after the endpoint was added arrives, signed, despite the
    // failures and the hang; the log shows the retries.
    let events = all_arrive(&server, &alice, start, &receiver, 4).await;
    receiver.all_signed();
    let hits = receiver.hits();
    assert!(hits.iter().filter(|h| h.body["type"] == "account.connected").count() >= 1, "{hits:?}");
    let hung = hits.iter().find(|h| !h.accepted && hits.iter().filter(|o| o.id == h.id).count() == 1);
    assert!(hung.is_none(), "each failed or held request was retried: {hits:?}");
    let failed = hits.iter().filter(|h| !h.accepted).count();
    assert_eq!(failed, 4, "3 failures and a hang: {hits:?}");
    let log = poll!("every delivery marked delivered", secs(10), {
        let d = server.get("/v1/webhooks/deliveries", &alice).await;
        let all = d.ok(200).as_array().unwrap().clone();
        (all.len() >= events.len() && all.iter().all(|d| d["state"] == "delivered")).then_some(all)
    });
    assert!(log.iter().any(|d| d["attempts"].as_u64().unwrap() > 1), "{log:#?}");
    assert!(log.iter().all(|d| d["owner"] == "alice"));
    assert_eq!(server.get("/v1/webhooks/deliveries", &bob).await.ok(200), &json!([]));
    // A replay sends one again, with the same id.
    let replayed = log[0]["id"].as_str().unwrap();
    let event_id = log[0]["event_id"].as_str().unwrap().to_owned();
    let before = hits.iter().filter(|h| h.id == event_id).count();
    let r = server
        .send(server.req(Method::POST, &format!("/v1/webhooks/deliveries/{replayed}/replay"), Some(&alice)))
        .await;
    assert_eq!(r.status, 202, "{r:?}");
    poll!("the replay", secs(10), (receiver.hits().iter().filter(|h| h.id == event_id).count() > before).then_some(()));
    receiver.all_signed();

    server.kill().await;
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_outlast_a_receiver_down_and_a_killed_server_on_sqlite() {
    webhooks_outlast_a_receiver_down_and_a_killed_server(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_outlast_a_receiver_down_and_a_killed_server_on_postgres() {
    webhooks_outlast_a_receiver_down_and_a_killed_server(Db::Postgres).await;
}

/// The receiver is down while posts are published; the server is killed with deliveries
/// pending, started again on the same database; the receiver comes up: every event arrives.
async fn webhooks_outlast_a_receiver_down_and_a_killed_server(db: Db) {
    let Some(setup) = Setup::new(db).await else { return };
    let (_, key) = setup.key(Some("carol")).await;
    let server = setup.serve(&QUICK_WEBHOOKS).await;
    let port = free_port();
    let receiver = Arc::new(Receiver::default());
    *receiver.secret.lock().unwrap() = register(&server, &key, &format!("http://127.0.0.1:{port}/hook")).await;
    let account = server.connect_x(&key).await;
    let posts = [server.post_now(&key, &account, "one").await, server.post_now(&key, &account, "two").await];
    for p in &posts {
        server.published(&key, p).await;
    }
    // Each delivery tried and failed at least once, still pending (events are numbered, and
    // their deliveries queued, a moment after they are committed).
    let events = poll!("the events numbered", secs(10), {
        let events = server.events(&key, 0, 500).await;
        (events.iter().filter(|e| e["type"] == "target.published").count() == 2).then_some(events)
    });
    poll!("every delivery failed once", secs(20), {
        let d = server.get("/v1/webhooks/deliveries", &key).await;
        let all = d.ok(200).as_array().unwrap().clone();
        (all.len() == events.len()
            && all.iter().all(|d| {
                d["state"] == "pending" && d["attempts"].as_u64().unwrap() >= 1 && d["last_error"].is_string()
            }))
        .then_some(())
    });
    server.kill().await;

    let server = setup.serve(&QUICK_WEBHOOKS).await;
    assert!(receiver.hits().is_empty());
    receiver.listen(port).await;
    all_arrive(&server, &key, 0, &receiver, 2).await;
    receiver.all_signed();
    let log = poll!("every delivery marked delivered", secs(10), {
        let d = server.get("/v1/webhooks/deliveries", &key).await;
        let all = d.ok(200).as_array().unwrap().clone();
        all.iter().all(|d| d["state"] == "delivered").then_some(all)
    });
    assert_eq!(log.len(), events.len());
    assert!(log.iter().all(|d| d["attempts"].as_u64().unwrap() >= 2), "{log:#?}");
    server.kill().await;
    setup.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_has_its_rate_limit() {
    let setup = Setup::new(Db::Sqlite).await.unwrap();
    let (_, a) = setup.key(Some("dave")).await;
    let (_, b) = setup.key(Some("erin")).await;
    let server = setup.serve(&["--rate-limit", "5", "--no-workers"]).await;
    for i in 0..5 {
        let r = server.get("/v1/accounts", &a).await;
        assert_eq!(r.status, 200, "request {i}: {r:?}");
    }
    let limited = server.get("/v1/accounts", &a).await;
    assert!(limited.problem(429).ends_with("/too_many_requests"));
    let wait: u64 = limited.header("retry-after").parse().expect("a Retry-After in seconds");
    assert!((1..=60).contains(&wait), "{wait}");
    server.get("/v1/accounts", &b).await.ok(200);
    server.kill().await;
}

/// Every route the router serves under `/v1`, read from the router's source: (method, path).
fn served_routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../../../konektly-server/src/lib.rs");
    let mut out = BTreeSet::new();
    for part in src.split(".route(\"").skip(1) {
        let (path, rest) = part.split_once('"').unwrap();
        let call = &rest[..rest.find("))\n").unwrap_or(rest.len())];
        for m in ["get", "post", "put", "delete", "patch"] {
            let n = call.matches(&format!("{m}(")).count();
            if n > 0 {
                out.insert((m.to_owned(), path.to_owned()));
            }
        }
    }
    // Under /v1, but not part of the API it describes.
    out.into_iter()
        .filter(|(_, p)| !matches!(p.as_str(), "/openapi.json" | "/docs" | "/healthz" | "/metrics"))
        .filter(|(_, p)| !p.starts_with("/console") && p != "/")
        .map(|(m, p)| (m, format!("/v1{p}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let setup = Setup::new(Db::Sqlite).await.unwrap();
    let server = setup.serve(&["--no-workers"]).await;
    let doc = server.send(server.req(Method::GET, "/v1/openapi.json", None)).await;
    let doc = doc.ok(200).clone();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            documented.insert((method.clone(), path.clone()));
            let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{method} {path}: no responses"));
            assert!(!responses.is_empty(), "{method} {path}: no responses");
            assert!(op["operationId"].is_string(), "{method} {path}");
            // Every path parameter is declared.
            for name in path.split('{').skip(1).filter_map(|s| s.split_once('}')).map(|(n, _)| n) {
                let params = op["parameters"].as_array().map(Vec::as_slice).unwrap_or_default();
                assert!(
                    params.iter().any(|p| p["name"] == name && p["in"] == "path"),
                    "{method} {path}: {name} undeclared"
                );
            }
        }
    }
    // Every $ref resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("an external $ref {r}"));
        assert!(doc.pointer(pointer).is_some(), "$ref {r} does not resolve");
    }
    assert!(doc["components"]["securitySchemes"]["api_key"]["scheme"] == "bearer");
    let served = served_routes();
    assert!(served.len() > 20, "{served:?}");
    let undocumented: Vec<_> = served.difference(&documented).collect();
    assert!(undocumented.is_empty(), "served but not in the document: {undocumented:?}");
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(unserved.is_empty(), "documented but not served: {unserved:?}");
    // The reference page and the health check.
    let page = server.send(server.req(Method::GET, "/v1/docs", None)).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert_eq!(server.send(server.req(Method::GET, "/healthz", None)).await.status, 200);
    server.kill().await;
}

/// Ctrl-C stops the server, its worker and its background tasks, even with an event stream
/// open (it used to wait for the stream to end, which it never does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_the_server_with_an_event_stream_open() {
    let setup = Setup::new(Db::Sqlite).await.unwrap();
    let (_, key) = setup.key(Some("frank")).await;
    let server = setup.serve(&[]).await;
    let stream = server.req(Method::GET, "/v1/events/stream", Some(&key)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    // Unknown routes and methods of the API answer problems too.
    server.get("/v1/nothing-here", &key).await.problem(404);
    let wrong = server.send(server.req(Method::PUT, "/v1/posts", Some(&key))).await;
    wrong.problem(405);
    assert!(wrong.header("allow").contains("GET"), "{wrong:?}");
    let status = server.interrupt(secs(10)).await;
    assert!(status.success(), "{status:?}");
    drop(stream);
}
