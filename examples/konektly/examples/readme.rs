//! The README's example, compiled by `cargo test` so that it stays true.
//!
//! Run it with X credentials (`KONEKTLY_X_CLIENT_ID`, …) and `KONEKTLY_KEYS=id:base64key`.

use std::sync::Arc;

use konektly_core::{Content, Konektly, Media, OwnerId, Post, Target};
use konektly_store::{KeyRing, SqliteStore};
use konektly_twitter::XBuilder;

#[tokio::main]
async fn main() -> konektly_core::Result<()> {
    // Tokens are encrypted with the newest key of KONEKTLY_KEYS=id:base64key,…
    let store = Arc::new(SqliteStore::open("konektly.db", KeyRing::from_env()?).await?);
    let engine = Konektly::builder()
        .platform(Arc::new(XBuilder::from_env().build()?)) // KONEKTLY_X_CLIENT_ID, …
        .token_store(store.clone())
        .scheduler(store)
        .build()?;

    // 1. Send the user to the platform…
    let owner = OwnerId::new("user-42");
    let callback = "https://app.example/callback".parse().expect("a valid URL");
    let start = engine.connect(&owner, &"x".into(), &callback).await?;
    println!("open {}", start.url);
    // 2. …and complete on the callback (on any node sharing the database).
    let accounts = engine.complete_connect(&start.state, "code-from-callback").await?;

    // Write once; validate, store and publish.
    let photo = Media::from_file("cat.jpg").await?.with_alt_text("a cat");
    let post = Post::new(owner, Content::text("Hello from konektly").with_media(photo)).to(Target::new(accounts[0].id));
    engine.schedule(&post).await?; // or engine.publish_now(&post)

    // Workers publish due posts: run as many as you like, on every machine sharing the database.
    engine
        .worker()
        .run(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
