//! The engine's own cost per target: schedule → claim → publish → record, with the memory
//! stores and a StubPlatform that answers at once. Run with `cargo bench -p konektly-core`.

use std::sync::Arc;

use divan::counter::ItemsCount;
use konektly_core::testing::StubPlatform;
use konektly_core::{
    Content, EngineConfig, Konektly, MemoryScheduler, MemoryTokenStore, OwnerId, Post, Target, TargetFilter,
};

fn main() {
    divan::main();
}

const TARGETS: usize = 1_000;

struct Setup {
    rt: tokio::runtime::Runtime,
    engine: Konektly,
    posts: Vec<Post>,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let engine = Konektly::builder()
        .platform(Arc::new(StubPlatform::new("stub")))
        .token_store(Arc::new(MemoryTokenStore::new()))
        .scheduler(Arc::new(MemoryScheduler::new()))
        .config(EngineConfig {
            claim_batch: 250,
            per_account_concurrency: 250,
            per_platform_concurrency: 250,
            ..EngineConfig::default()
        })
        .build()
        .unwrap();
    let owner = OwnerId::new("bench");
    let account = rt.block_on(async {
        let start = engine.connect(&owner, &"stub".into(), &"https://app.example/cb".parse().unwrap()).await.unwrap();
        engine.complete_connect(&start.state, "bench").await.unwrap().remove(0)
    });
    let posts = (0..TARGETS)
        .map(|i| Post::new(owner.clone(), Content::text(format!("post {i}"))).to(Target::new(account.id)))
        .collect();
    Setup { rt, engine, posts }
}

/// Schedule 1,000 targets, then claim, publish and record them all in batches of 250.
#[divan::bench(sample_count = 20)]
fn schedule_claim_publish_record(bencher: divan::Bencher<'_, '_>) {
    bencher.counter(ItemsCount::new(TARGETS)).with_inputs(setup).bench_local_values(|s| {
        s.rt.block_on(async {
            for p in &s.posts {
                s.engine.schedule(p).await.unwrap();
            }
            let worker = s.engine.worker();
            while worker.run_once().await.unwrap() > 0 {}
        });
        s
    });
    // Outside the timing: every target was published.
    let s = setup();
    s.rt.block_on(async {
        for p in &s.posts {
            s.engine.schedule(p).await.unwrap();
        }
        while s.engine.worker().run_once().await.unwrap() > 0 {}
    });
    let published =
        s.rt.block_on(s.engine.scheduler().list(&TargetFilter::default().in_states(&["published"]))).unwrap().len();
    assert_eq!(published, TARGETS);
}
