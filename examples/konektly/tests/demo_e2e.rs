//! The demo flow end to end against the sandbox: every post arrives exactly once, with the right
//! media, and everything is stored in the SQLite file.

use std::time::Duration;

use konektly_cli::app::SandboxInfo;
use konektly_cli::demo::{DEMO_JPEG, DEMO_MP4, DemoOptions, run};
use konektly_cli::ui::Ui;
use konektly_testkit::{PostedRecord, Sandbox, SandboxConfig};
use sha2::{Digest, Sha256};

fn sha(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn hashes(p: &PostedRecord) -> Vec<String> {
    p.media.iter().map(|m| m.sha256.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_publishes_each_post_exactly_once_with_the_right_media() {
    demo_flow(false).await;
}

/// Every platform accepts a post and then drops the connection without answering: konektly
/// must reconcile and still publish each post exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_lost_answers_the_demo_still_publishes_each_post_exactly_once() {
    demo_flow(true).await;
}

async fn demo_flow(chaos: bool) {
    let sandbox =
        Sandbox::start_with(SandboxConfig { processing_delay: Duration::from_millis(400), ..SandboxConfig::default() })
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoOptions {
        db_path: dir.path().join("konektly.db"),
        schedule_in: Duration::from_secs(2),
        timeout: Duration::from_secs(90),
        chaos,
        ..DemoOptions::default()
    };
    let report = run(&opts, &SandboxInfo::of(&sandbox), &Ui::new(false)).await.unwrap();
    assert_eq!(report.owner, "demo", "the same owner every run");
    assert!(report.all_published(), "{:#?}", report.rows);
    assert_eq!(report.rows.len(), 10);
    assert!(report.invalid_post_violations.iter().any(|v| v.code == "text_too_long"));
    assert!(dir.path().join("konektly.db").exists());
    if chaos {
        assert_eq!(report.chaos_dropped, ["x", "tiktok", "facebook", "instagram", "youtube"], "each dropped an answer");
        for p in ["x", "tiktok", "facebook", "instagram", "youtube"] {
            assert_eq!(sandbox.faults(p).drop_after_accept, 0, "{p}: the sandbox dropped an answer");
        }
    }

    let (jpeg, mp4) = (sha(DEMO_JPEG), sha(DEMO_MP4));
    let posts = sandbox.posts();
    // Two posts on each platform, plus X's thread replies: nothing more, nothing twice.
    assert_eq!(posts.len(), 12, "{posts:#?}");
    for platform in ["x", "tiktok", "facebook", "instagram", "youtube"] {
        let mine: Vec<&PostedRecord> =
            posts.iter().filter(|p| p.platform == platform && p.reply_to.is_none()).collect();
        assert_eq!(mine.len(), 2, "{platform}: {mine:#?}");
        assert!(mine[0].text.starts_with("Hello from the konektly demo"), "{platform}: {}", mine[0].text);
        assert!(mine[1].text.starts_with("Scheduled by the konektly demo"), "{platform}: {}", mine[1].text);
        for p in &mine {
            assert_eq!(p.status, "published", "{platform}");
            let expected = match platform {
                "x" | "facebook" => vec![jpeg.clone()],
                "tiktok" | "youtube" => vec![mp4.clone()],
                _ => vec![jpeg.clone(), mp4.clone()],
            };
            assert_eq!(hashes(p), expected, "{platform}: media");
            // The URL in the table is the one the platform gave.
            let row = report.rows.iter().find(|r| r.platform == platform && r.remote_id == p.id);
            assert!(row.is_some(), "{platform}: {} is in the report", p.id);
        }
    }
    // X: the video went out as the thread's reply to the first post.
    let x_first: Vec<&PostedRecord> = posts.iter().filter(|p| p.platform == "x" && p.reply_to.is_none()).collect();
    for first in x_first {
        let replies: Vec<&PostedRecord> =
            posts.iter().filter(|p| p.reply_to.as_deref() == Some(first.id.as_str())).collect();
        assert_eq!(replies.len(), 1);
        assert_eq!(hashes(replies[0]), vec![mp4.clone()]);
        assert_eq!(replies[0].media[0].size, DEMO_MP4.len() as u64);
    }
}
