//! The `konektly` program as a user runs it, against a sandbox in this test's process:
//! `connect` through the real redirect (this test plays the browser), then `accounts`,
//! `validate`, `post` with a file, and `status`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use konektly_testkit::{Sandbox, SandboxConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn konektly(sandbox: &Sandbox, db: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_konektly"));
    c.arg("--sandbox-url").arg(sandbox.base_url("media").as_str()).arg("--db").arg(db).env_remove("KONEKTLY_KEYS");
    c
}

fn json_of(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_follows_the_redirect_then_the_account_posts() {
    let sandbox =
        Sandbox::start_with(SandboxConfig { processing_delay: Duration::from_millis(200), ..SandboxConfig::default() })
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");

    // `connect` prints the authorize URL and waits on its localhost listener.
    let mut child = konektly(&sandbox, &db)
        .args(["connect", "x", "--no-browser", "--port", "0", "--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("connect prints the authorize URL").unwrap();
        if let Some(u) = line.trim().strip_prefix("http") {
            break format!("http{u}");
        }
    };
    assert!(url.starts_with(sandbox.base_url("x").as_str()), "{url}");
    assert!(url.contains("/i/oauth2/authorize?"), "{url}");
    assert!(url.contains("code_challenge_method=S256"));

    // The browser: the sandbox approves and redirects to the program's listener.
    let http = konektly_core::HttpClient::new().unwrap().client().clone();
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("http://127.0.0.1:") && location.contains("/callback?"), "{location}");
    let page = http.get(&location).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("connected"));
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("✓ connected x konektly_sandbox")), "{rest:?}");

    let out = konektly(&sandbox, &db).args(["accounts", "--json"]).output().unwrap();
    assert!(out.status.success());
    let accounts = json_of(&out);
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    assert_eq!(accounts[0]["platform"], "x");
    assert_eq!(accounts[0]["handle"], "konektly_sandbox");

    // A post that is too long: refused, the violation listed, exit 3 (needs attention).
    let long = "a".repeat(300);
    let out = konektly(&sandbox, &db).args(["validate", "--to", "x", "--text", &long]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("text_too_long") && said.contains("280"), "{said}");

    // Issue 13: a time too far ahead is refused in words, not with a panic (exit 101).
    for at in ["+99999999999h", "+9223372036854775808s", "+100000000d"] {
        let out = konektly(&sandbox, &db).args(["post", "--to", "x", "--text", "later", "--at", at]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{at}: {err}");
        assert!(err.contains(&format!("`{at}` is too far in the future")) && !err.contains("panicked"), "{err}");
    }
    assert!(sandbox.posts().is_empty(), "nothing was posted");

    // A post with a file: published once, with the file's bytes.
    let jpeg = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.jpg");
    let out = konektly(&sandbox, &db)
        .args(["post", "--json", "--to", "x", "--text", "from the command line", "--media"])
        .arg(&jpeg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let posted = json_of(&out);
    assert_eq!(posted["outcome"], "published");
    assert_eq!(posted["targets"][0]["state"], "published");
    let remote = posted["targets"][0]["remote_id"].as_str().unwrap().to_owned();
    let at_x: Vec<_> = sandbox.posts().into_iter().filter(|p| p.platform == "x").collect();
    assert_eq!(at_x.len(), 1);
    assert_eq!(at_x[0].id, remote);
    let sha: String = Sha256::digest(std::fs::read(&jpeg).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(at_x[0].media[0].sha256, sha);

    let post_id = posted["post"].as_str().unwrap();
    let out = konektly(&sandbox, &db).args(["status", post_id, "--json"]).output().unwrap();
    assert_eq!(json_of(&out)[0]["remote_id"], remote.as_str());

    // Issue 13: another owner neither sees nor cancels this owner's post.
    let out = konektly(&sandbox, &db)
        .args(["post", "--json", "--to", "x", "--text", "tomorrow", "--at", "+1d"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let later = json_of(&out)["post"].as_str().unwrap().to_owned();
    for cmd in [vec!["status", later.as_str()], vec!["cancel", later.as_str()]] {
        let out = konektly(&sandbox, &db).args(["--owner", "mallory"]).args(&cmd).output().unwrap();
        let (said, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "{cmd:?} as another owner must fail: {said}");
        assert!(err.contains("not found") && !said.contains("scheduled"), "{cmd:?}: {said} / {err}");
    }
    let out = konektly(&sandbox, &db).args(["status", &later, "--json"]).output().unwrap();
    assert_eq!(json_of(&out)[0]["state"], "scheduled", "another owner's cancel did nothing");
}

/// Issue 13: `--db /dev/null` created `/dev/null.key`. A database path that cannot be a SQLite
/// file is refused, in words, before a key file is created beside it.
#[test]
fn a_database_path_that_is_not_a_file_is_refused_before_a_key_file_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_file = dir.path().join("a-directory");
    std::fs::create_dir(&not_a_file).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_konektly"))
        .arg("--db")
        .arg(&not_a_file)
        .arg("accounts")
        .env_remove("KONEKTLY_KEYS")
        .env_remove("KONEKTLY_DATABASE_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is a directory, not a regular file"), "{err}");
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("a-directory")], "no key file beside it");
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Issue 20: `post` printed "published post" and exited 0 for a blocked target. A target that
/// fails (X refuses a duplicate) or is blocked (the grant was revoked) exits 3 and nothing says
/// "published"; the JSON says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_whose_target_fails_or_is_blocked_exits_3_and_never_says_published() {
    let sandbox =
        Sandbox::start_with(SandboxConfig { processing_delay: Duration::from_millis(200), ..SandboxConfig::default() })
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.db");
    let out = konektly(&sandbox, &db).args(["connect", "x", "--port", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = konektly(&sandbox, &db).args(["post", "--to", "x", "--text", "once only"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("is published on its target"), "{}", text(&out));

    // The same text again: X refuses a duplicate.
    let out = konektly(&sandbox, &db).args(["post", "--to", "x", "--text", "once only"]).output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    // (X's own reason says "a post the account published before": only that line may say it.)
    let headline = said.lines().next().unwrap();
    assert!(headline.contains("did not go out: 1 failed") && !headline.contains("published"), "{said}");
    let row = said.lines().find(|l| l.starts_with("x ")).unwrap();
    let cells: Vec<&str> = row.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells[2], "failed", "{said}");
    assert!(row.contains("duplicate"), "{said}");
    let out = konektly(&sandbox, &db).args(["post", "--json", "--to", "x", "--text", "once only"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let v = json_of(&out);
    assert_eq!(v["outcome"], "needs_attention");
    assert_eq!(v["targets"][0]["standing"], "failed");
    assert_eq!(v["tally"]["failed"], 1);

    // The user revokes the grant at the platform: the target waits, blocked.
    let user = sandbox.users("x")[0].id.clone();
    sandbox.revoke_user("x", &user);
    let out = konektly(&sandbox, &db).args(["post", "--to", "x", "--text", "after the revocation"]).output().unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(!said.contains("published"), "{said}");
    assert!(said.contains("1 blocked") && said.contains("reconnect x konektly_sandbox"), "{said}");
    let post_id = said.split_whitespace().nth(2).unwrap().trim_end_matches(':').to_owned();

    // `status` of that post says the same, with the same status.
    let out = konektly(&sandbox, &db).args(["status", &post_id]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("blocked"));
    let out = konektly(&sandbox, &db).arg("accounts").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("reconnect needed"));
    assert_eq!(sandbox.posts().len(), 1, "only the first post went out");
}
