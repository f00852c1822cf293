//! Issue 13: a post scheduled with `--media photo.jpg` (a path relative to where it was
//! written) is published by a worker started in another directory, with the exact bytes — its
//! media were copied into the media store beside the database — and the stored object is
//! removed once every post using it has ended, not before.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use konektly_testkit::{Sandbox, SandboxConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn konektly(sandbox: &Sandbox, db: &Path, cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_konektly"));
    c.current_dir(cwd)
        .arg("--sandbox-url")
        .arg(sandbox.base_url("media").as_str())
        .arg("--db")
        .arg(db)
        .env_remove("KONEKTLY_KEYS")
        .env_remove("KONEKTLY_DATABASE_URL")
        .env_remove("KONEKTLY_MEDIA_STORE");
    c
}

fn run(c: &mut Command) -> Value {
    let out = c.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    // One JSON document, or (`worker --json`) one line per event, then its report.
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|_| {
        let last = stdout.lines().rfind(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON: {text}"));
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {text}"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_media_reach_a_worker_in_another_directory_and_are_collected_after() {
    let sandbox =
        Sandbox::start_with(SandboxConfig { processing_delay: Duration::from_millis(200), ..SandboxConfig::default() })
            .await
            .unwrap();
    let root = tempfile::tempdir().unwrap();
    let (here, elsewhere) = (root.path().join("writer"), root.path().join("worker"));
    std::fs::create_dir_all(&here).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    let db = root.path().join("k.db");
    run(konektly(&sandbox, &db, &here).args(["connect", "x", "--port", "0", "--json"]));

    let jpeg = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.jpg")).unwrap();
    let sha: String = Sha256::digest(&jpeg).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(here.join("photo.jpg"), &jpeg).unwrap();

    // Two posts share the photo: one due in a second, one tomorrow.
    let post = |text: &str, at: &str| {
        run(konektly(&sandbox, &db, &here).args([
            "post",
            "--json",
            "--to",
            "x",
            "--text",
            text,
            "--media",
            "photo.jpg",
            "--at",
            at,
        ]))["post"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let soon = post("soon, with a photo", "+1s");
    let tomorrow = post("tomorrow, with the same photo", "+1d");
    // The file may go away: the store beside the database holds the bytes, once.
    std::fs::remove_file(here.join("photo.jpg")).unwrap();
    let object = root.path().join("k.db.media").join("media").join(format!("{sha}.jpg"));
    assert_eq!(std::fs::read(&object).unwrap(), jpeg, "stored by hash, beside the database");
    assert_eq!(std::fs::read_dir(root.path().join("k.db.media").join("media")).unwrap().count(), 1);

    // A worker started in another directory publishes the due post with the exact bytes.
    let report = run(konektly(&sandbox, &db, &elsewhere).args(["worker", "--until-idle", "--json"]));
    assert_eq!(report["published"], 1, "{report}");
    let at_x: Vec<_> = sandbox.posts().into_iter().filter(|p| p.platform == "x").collect();
    assert_eq!(at_x.len(), 1);
    assert_eq!(at_x[0].media[0].sha256, sha);
    let status = run(konektly(&sandbox, &db, &elsewhere).args(["status", &soon, "--json"]));
    assert_eq!(status[0]["state"], "published", "{status}");
    // Tomorrow's post still needs the photo: kept.
    assert_eq!(report["media_removed"], 0, "{report}");
    assert!(object.exists(), "kept while another post refers to it");

    // Once tomorrow's post is cancelled, nothing refers to the photo: the next worker — started
    // in yet another directory — removes it.
    let third = root.path().join("third");
    std::fs::create_dir_all(&third).unwrap();
    run(konektly(&sandbox, &db, &elsewhere).args(["cancel", &tomorrow, "--json"]));
    let report = run(konektly(&sandbox, &db, &third).args(["worker", "--until-idle", "--json"]));
    assert_eq!(report["media_removed"], 1, "{report}");
    assert!(!object.exists(), "collected once every target referring to it has ended");
}

/// `--media-store` chooses the store; a URL konektly cannot use is refused in plain words, and
/// a credential in the URL's query is never echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_media_store_is_chosen_by_url() {
    let sandbox = Sandbox::start().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let db = root.path().join("k.db");
    let chosen = root.path().join("elsewhere-media");
    run(konektly(&sandbox, &db, root.path()).args(["connect", "x", "--port", "0", "--json"]));
    let jpeg = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo.jpg");
    let url = format!("file://{}", chosen.display());
    run(konektly(&sandbox, &db, root.path())
        .args(["--media-store", &url, "post", "--json", "--to", "x", "--text", "t", "--at", "+1d", "--media"])
        .arg(&jpeg));
    assert_eq!(std::fs::read_dir(chosen.join("media")).unwrap().count(), 1);
    assert!(!root.path().join("k.db.media").join("media").exists());

    let secret = "s3cr3t-AKIA-never-shown";
    let out = konektly(&sandbox, &db, root.path())
        .args(["accounts", "--json"])
        .env("KONEKTLY_MEDIA_STORE", format!("nope://bucket/x?secret_access_key={secret}"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("media store"), "{text}");
    assert!(!text.contains(secret), "{text}");
}
