//! The `konektly` program as a newcomer uses it (issue 20): the built binary, run from a fresh
//! directory with no configuration, through the sequences the README walks through, checking
//! what it says and its exit status at each step. Each test stops the background sandbox it
//! started, also when it fails (`Workdir`'s Drop).

mod common;

use std::time::Duration;

use common::{Workdir, http_get, http_put_json, wait_for};
use serde_json::json;

/// The lines of the demo's "Next:" block, without their comments.
fn next_commands(stdout: &str) -> Vec<String> {
    let after = stdout.split_once("Next:\n").unwrap_or_else(|| panic!("no `Next:` in\n{stdout}")).1;
    after
        .lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split("  # ").next().unwrap().trim().to_owned())
        .collect()
}

/// Issue 20, item 1: `konektly status` and `accounts` after the demo said "Nothing yet". The
/// demo now keeps its accounts and posts under the owner `demo`, keeps its sandbox running, and
/// ends with commands that show them — which work as printed.
#[test]
fn the_demo_leaves_accounts_posts_and_a_sandbox_to_explore() {
    let dir = Workdir::new();
    let demo = dir.run(&["demo", "--schedule-in", "2"]).expect(0);
    assert!(demo.stdout.contains("Owner: demo"), "{}", demo.all());
    assert!(demo.stderr.contains("started a sandbox in the background"), "{}", demo.all());
    let next = next_commands(&demo.stdout);
    assert_eq!(
        next.iter().map(|c| c.split(' ').take(4).collect::<Vec<_>>().join(" ")).collect::<Vec<_>>(),
        [
            "konektly --owner demo accounts",
            "konektly --owner demo status",
            &format!("curl {}_sandbox/posts", dir.sandbox().unwrap().0),
            "konektly --sandbox --owner demo",
            "konektly sandbox --stop",
        ],
        "{}",
        demo.all()
    );

    // Its accounts.
    let accounts = dir.run_line(&next[0]).expect(0);
    for handle in ["konektly_sandbox", "Konektly Sandbox Page", "konektly_sandbox.ig", "@konektly_sandbox"] {
        assert!(accounts.stdout.contains(handle), "{handle}: {}", accounts.all());
    }
    for platform in ["x", "tiktok", "facebook", "instagram", "youtube"] {
        assert!(accounts.stdout.lines().any(|l| l.split_whitespace().nth(1) == Some(platform)), "{platform}");
    }
    // Its posts: two, on five platforms each.
    let status = dir.run_line(&next[1]).expect(0);
    assert!(status.stdout.contains("10 target(s): 10 published."), "{}", status.all());
    // What the sandbox received.
    let posted: serde_json::Value = serde_json::from_str(&dir.run_line(&next[2]).stdout).unwrap();
    assert_eq!(posted.as_array().unwrap().len(), 12, "two posts on five platforms, and X's two replies");
    // Posting with its accounts works: the sandbox still knows their tokens.
    let again = dir.run_line(&next[3]).expect(0);
    assert!(again.stdout.contains("is published on its target"), "{}", again.all());
    assert!(again.stderr.is_empty(), "the running sandbox is used, nothing to say: {}", again.all());

    // The default owner is another one: it says whose, not just "Nothing yet".
    let mine = dir.run(&["status"]).expect(0);
    assert!(mine.stdout.contains("Nothing yet for owner `local`"), "{}", mine.all());

    // Run again, the demo uses the same owner and sandbox: still everything published.
    let url = dir.sandbox().unwrap().0;
    let demo = dir.run(&["demo", "--schedule-in", "1"]).expect(0);
    assert!(demo.stderr.is_empty(), "the sandbox was running: {}", demo.all());
    assert_eq!(dir.sandbox().unwrap().0, url);
    assert!(demo.stdout.contains("The sandbox received 12 posts"), "{}", demo.all());
    let status = dir.run(&["--owner", "demo", "status"]).expect(0);
    assert!(status.stdout.contains("21 target(s): 21 published."), "{}", status.all());

    // Its last line stops the sandbox.
    let stop = dir.run_line(&next[4]).expect(0);
    assert!(stop.stdout.starts_with("✓ Stopped the background sandbox of konektly.db"), "{}", stop.all());
    assert!(dir.sandbox().is_none());
}

/// Issue 20, item 2 and 3: a person's session against the sandbox — connect, post, status,
/// a scheduled post and a worker, cancels (before and during publishing), export, disconnect —
/// each command finding the sandbox the first one started.
#[test]
fn a_sandbox_session_from_connect_to_disconnect() {
    let dir = Workdir::new();
    let connect = dir.run(&["--sandbox", "connect", "x", "--port", "0"]).expect(0);
    assert!(connect.stdout.contains("✓ connected x konektly_sandbox"), "{}", connect.all());
    assert!(
        connect.stderr.contains("note: started a sandbox in the background at http://127.0.0.1:"),
        "{}",
        connect.all()
    );
    let (url, _) = dir.sandbox().expect("the sandbox is recorded beside the database");

    let post = dir.run(&["--sandbox", "post", "--to", "x", "--text", "hello"]).expect(0);
    assert!(post.stdout.contains("is published on its target."), "{}", post.all());
    assert!(post.stdout.contains("https://x.com/konektly_sandbox/status/"), "{}", post.all());
    assert!(post.stderr.is_empty(), "the same sandbox, nothing to say: {}", post.all());
    let status = dir.run(&["status"]).expect(0);
    assert!(status.stdout.contains("1 target(s): 1 published."), "{}", status.all());

    // Scheduled a few seconds ahead; the worker publishes it, then stops.
    let later = dir.run(&["--sandbox", "post", "--to", "x", "--text", "in two seconds", "--at", "+2s"]).expect(0);
    assert!(later.stdout.contains("is scheduled for"), "{}", later.all());
    let worker = dir.run(&["--sandbox", "worker", "--until-idle"]).expect(0);
    assert!(worker.stdout.contains(": published https://x.com/konektly_sandbox/status/"), "{}", worker.all());
    assert!(worker.stdout.contains("worker stopped: 1 published"), "{}", worker.all());
    let status = dir.run(&["status", "--json"]).expect(0);
    assert!(status.json().as_array().unwrap().iter().all(|t| t["state"] == "published"), "{}", status.all());

    // Cancelled before its time.
    let tomorrow =
        dir.run(&["--sandbox", "post", "--json", "--to", "x", "--text", "tomorrow", "--at", "+1d"]).expect(0);
    let id = tomorrow.json()["post"].as_str().unwrap().to_owned();
    let cancel = dir.run(&["cancel", &id]).expect(0);
    assert!(cancel.stdout.contains(&format!("✓ Cancelled 1 target(s) of post {id}")), "{}", cancel.all());
    let cancel = dir.run(&["cancel", &id]).expect(0);
    assert!(cancel.stdout.contains("Nothing to cancel"), "{}", cancel.all());

    // Cancelled while being published (issue 20, item 3): X answers slowly and loses the create,
    // the cancel comes meanwhile. The cancel says it could not stop it at once (3); the post
    // ends cancelled, exits 3, and never says published.
    http_put_json(&format!("{url}_sandbox/faults/x"), &json!({"latency": 4000, "lose_request": {"tweet": 1}}));
    let slow = dir.spawn(&["--sandbox", "post", "--to", "x", "--text", "being published"]);
    let busy = wait_for("the post to be in flight", Duration::from_secs(20), || {
        let s = dir.run(&["status", "--json"]);
        let v = s.json();
        v.as_array()
            .unwrap()
            .iter()
            .find(|t| matches!(t["state"].as_str(), Some("in_flight" | "unknown")))
            .map(|t| t["post"].as_str().unwrap().to_owned())
    });
    let cancel = dir.run(&["cancel", &busy]).expect(3);
    assert!(
        cancel.stdout.contains("1 target(s) could not be cancelled: they are being published (x)"),
        "{}",
        cancel.all()
    );
    let slow = slow.wait(Duration::from_secs(60)).expect(3);
    assert!(slow.stdout.contains("did not go out: 1 cancelled."), "{}", slow.all());
    assert!(!slow.stdout.contains("published") && !slow.stderr.contains("published"), "{}", slow.all());
    http_put_json(&format!("{url}_sandbox/faults/x"), &json!({}));
    let status = dir.run(&["status", &busy, "--json"]).expect(0);
    assert_eq!(status.json()[0]["state"], "cancelled");
    let at_x: serde_json::Value = serde_json::from_str(&http_get(&format!("{url}_sandbox/posts"))).unwrap();
    assert!(at_x.as_array().unwrap().iter().all(|p| p["text"] != "being published"), "nothing landed");

    // Everything stored about the account, without its tokens.
    let export = dir.run(&["export", "x"]).expect(0);
    let v = export.json();
    assert!(export.stdout.contains("konektly_sandbox"), "{}", export.all());
    assert!(!export.stdout.to_lowercase().contains("bearer"), "{v}");

    let gone = dir.run(&["--sandbox", "disconnect", "x"]).expect(0);
    assert!(gone.stdout.contains("✓ disconnected x konektly_sandbox"), "{}", gone.all());
    assert!(gone.stdout.contains("its grant was revoked at the platform"), "{}", gone.all());
    let export = dir.run(&["export", "x"]).expect(1);
    assert!(export.stderr.contains("no connected account matches `x`"), "{}", export.all());
    let accounts = dir.run(&["accounts"]).expect(0);
    assert!(accounts.stdout.contains("No accounts yet for owner `local`"), "{}", accounts.all());
}

/// Issue 20, item 2: the sandbox that gave the tokens is gone. The next `--sandbox` command
/// starts another and says which accounts to connect again; a post to such an account waits,
/// blocked, exits 3 and never says published; connecting again and a worker send it.
#[test]
fn a_post_the_new_sandbox_cannot_send_exits_3_and_never_says_published() {
    let dir = Workdir::new();
    dir.run(&["--sandbox", "connect", "x", "--port", "0"]).expect(0);
    let stop = dir.run(&["sandbox", "--stop"]).expect(0);
    assert!(stop.stdout.starts_with("✓ Stopped the background sandbox"), "{}", stop.all());

    let post = dir.run(&["--sandbox", "post", "--to", "x", "--text", "hello"]).expect(3);
    assert!(post.stderr.contains("note: started a sandbox in the background"), "{}", post.all());
    assert!(post.stderr.contains("connect them again: `konektly --sandbox connect x`"), "{}", post.all());
    assert!(!post.stdout.contains("published") && !post.stderr.contains("published"), "{}", post.all());
    assert!(post.stdout.contains("did not go out: 1 blocked."), "{}", post.all());
    assert!(post.stdout.contains("→ reconnect x konektly_sandbox: `konektly --sandbox connect x`"), "{}", post.all());
    let json = dir.run(&["--sandbox", "post", "--json", "--to", "x", "--text", "hello again"]).expect(3);
    let v = json.json();
    assert_eq!(v["outcome"], "needs_attention");
    assert_eq!(v["tally"]["blocked"], 1);
    assert_eq!(v["targets"][0]["standing"], "blocked");
    assert_eq!(v["tally"]["published"], 0);
    dir.run(&["status"]).expect(3);
    let worker = dir.run(&["--sandbox", "worker", "--until-idle"]).expect(3);
    assert!(worker.stdout.contains("2 target(s) of owner `local` wait, blocked"), "{}", worker.all());

    let connect = dir.run(&["--sandbox", "connect", "x", "--port", "0"]).expect(0);
    assert!(connect.stdout.contains("2 target(s) that waited for this account are due again"), "{}", connect.all());
    let worker = dir.run(&["--sandbox", "worker", "--until-idle"]).expect(0);
    assert!(worker.stdout.contains("worker stopped: 2 published"), "{}", worker.all());
    dir.run(&["status"]).expect(0);

    // The sandbox dies without being told: the next command finds it gone and says so.
    let (old, pid) = dir.sandbox().unwrap();
    std::process::Command::new("kill").arg("-9").arg(pid.to_string()).status().unwrap();
    wait_for("the sandbox to be gone", Duration::from_secs(10), || {
        std::net::TcpStream::connect(old.trim_start_matches("http://").trim_end_matches('/')).is_err().then_some(())
    });
    let accounts = dir.run(&["--sandbox", "accounts"]).expect(0);
    assert!(
        accounts.stderr.contains(&format!("({old}) no longer answers; started a new one at")),
        "{}",
        accounts.all()
    );
    assert!(accounts.stderr.contains("connect them again"), "{}", accounts.all());
    assert_ne!(dir.sandbox().unwrap().0, old);
}

/// Issue 20, item 4 and 5: `konektly` alone and `init` guide a first run; `doctor` checks and
/// exits 0 only when nothing is to fix; completions and man pages come from the same definitions.
#[test]
fn first_run_guide_doctor_completions_and_man() {
    let dir = Workdir::new();
    let guide = dir.run(&[]).expect(0);
    for needed in [
        "KONEKTLY_X_CLIENT_ID, KONEKTLY_X_CLIENT_SECRET",
        "KONEKTLY_TIKTOK_CLIENT_KEY",
        "KONEKTLY_META_APP_ID",
        "KONEKTLY_YOUTUBE_CLIENT_SECRET",
        "http://127.0.0.1:8976/callback",
        &format!("{}", std::fs::canonicalize(dir.path()).unwrap().join("konektly.db.key").display()),
        "konektly demo",
        "konektly doctor",
    ] {
        assert!(guide.stdout.contains(needed), "{needed}: {}", guide.all());
    }
    assert!(guide.stdout.lines().count() <= 24, "one screen: {}", guide.all());
    assert_eq!(dir.run(&["init"]).expect(0).stdout, guide.stdout);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the guide creates nothing");

    let doctor = dir.run(&["doctor", "--port", "0"]).expect(3);
    assert!(doctor.stdout.contains("✗ no platform is configured"), "{}", doctor.all());
    assert!(doctor.stdout.contains("1 problem(s) to fix"), "{}", doctor.all());
    // With X's credentials, nothing else to fix: notes are not problems.
    let ok = dir
        .command(&["doctor", "--port", "0", "--json"])
        .env("KONEKTLY_X_CLIENT_ID", "id")
        .env("KONEKTLY_X_CLIENT_SECRET", "secret")
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stdout));
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["checks"].as_array().unwrap().iter().any(|c| c["area"] == "key" && c["status"] == "note"));
    // Half a pair and a busy redirect port are problems.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let bad = dir.command(&["doctor", "--port", &port]).env("KONEKTLY_YOUTUBE_CLIENT_ID", "id").output().unwrap();
    let said = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(3), "{said}");
    assert!(
        said.contains("YouTube: KONEKTLY_YOUTUBE_CLIENT_ID is set but KONEKTLY_YOUTUBE_CLIENT_SECRET is not"),
        "{said}"
    );
    assert!(said.contains(&format!("127.0.0.1:{port} cannot be listened on")), "{said}");
    // A database and key made by a command are checked, not changed.
    dir.run(&["accounts"]).expect(0);
    let doctor = dir.run(&["doctor", "--port", "0"]);
    assert!(doctor.stdout.contains("✓ konektly.db (SQLite): schema version"), "{}", doctor.all());
    assert!(doctor.stdout.contains("✓ konektly.db.key is readable by you only"), "{}", doctor.all());

    let bash = dir.run(&["completions", "bash"]).expect(0);
    assert!(bash.stdout.contains("_konektly()") && bash.stdout.contains("doctor"), "{}", bash.all());
    assert!(dir.run(&["completions", "zsh"]).expect(0).stdout.starts_with("#compdef konektly"));
    assert!(dir.run(&["completions", "fish"]).expect(0).stdout.contains("complete -c konektly"));
    let man = dir.run(&["man"]).expect(0);
    assert!(man.stdout.contains(".TH konektly 1") && man.stdout.contains(".SH \"EXIT STATUS\""), "{}", man.all());
    let post = dir.run(&["man", "post"]).expect(0);
    assert!(post.stdout.contains(".TH konektly-post 1  \"konektly 0.1.0\""), "{}", post.all());
    dir.run(&["man", "nope"]).expect(1);

    // Usage errors are clap's 2; --help shows the exit statuses.
    dir.run(&["post", "--text", "no target"]).expect(2);
    dir.run(&["completions", "tcsh"]).expect(2);
    let help = dir.run(&["--help"]).expect(0);
    assert!(help.stdout.contains("Exit status:") && help.stdout.contains("3  needs attention"), "{}", help.all());
}
