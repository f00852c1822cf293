use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::Utc;

use super::*;
use crate::id::{AccountId, OwnerId, PlatformId, TargetId};
use crate::model::{Account, AccountStatus, Checkpoint, Content, TargetOptions, TokenSet};
use crate::platform::AttemptHooks;
use crate::secret::AccessToken;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct FakeState {
    #[serde(default)]
    upload: UploadProgress,
}

impl CheckpointState for FakeState {
    const VERSION: u32 = 1;
}

/// What the fake server does with a part or a question.
enum Act {
    /// Keeps the part (answers with what it holds).
    Keep,
    /// Keeps nothing and answers `Retry`.
    Fail,
    /// Keeps the part, then answers `Retry` (the answer was lost).
    KeepThenFail,
    /// Keeps the part and says the upload is done.
    Done,
    /// The session is gone.
    Gone,
    /// Keeps nothing and answers with what it holds.
    Forget,
}

/// A server that holds bytes and follows a script (`Keep` when it runs out).
struct Fake {
    state: FakeState,
    total: u64,
    part: u64,
    held: Vec<u8>,
    parts: Vec<(u64, u64, u64)>,
    script: VecDeque<Act>,
    asks: VecDeque<Act>,
    asked: u32,
    on_part: Option<Box<dyn FnMut() + Send>>,
}

impl Fake {
    fn new(total: u64, part: u64) -> Self {
        Self {
            state: FakeState::default(),
            total,
            part,
            held: Vec::new(),
            parts: Vec::new(),
            script: VecDeque::new(),
            asks: VecDeque::new(),
            asked: 0,
            on_part: None,
        }
    }

    fn script(mut self, acts: impl IntoIterator<Item = Act>) -> Self {
        self.script = acts.into_iter().collect();
        self
    }

    fn asks(mut self, acts: impl IntoIterator<Item = Act>) -> Self {
        self.asks = acts.into_iter().collect();
        self
    }
}

#[async_trait]
impl UploadSession for Fake {
    type State = FakeState;

    fn state(&self) -> &FakeState {
        &self.state
    }

    fn progress(&self) -> UploadProgress {
        self.state.upload
    }

    fn set_progress(&mut self, progress: UploadProgress) {
        self.state.upload = progress;
    }

    fn total(&self) -> u64 {
        self.total
    }

    fn part_len(&self, _index: u64, _offset: u64) -> u64 {
        self.part
    }

    async fn put_part(&mut self, _ctx: &mut PublishContext<'_>, part: Part) -> Result<PartAck> {
        let (index, offset, len) = (part.index, part.offset, part.len);
        let bytes = part.read_all().await?;
        assert_eq!(bytes.len() as u64, len);
        if let Some(f) = self.on_part.as_mut() {
            f();
        }
        self.parts.push((index, offset, len));
        let act = self.script.pop_front().unwrap_or(Act::Keep);
        if !matches!(act, Act::Fail | Act::Gone | Act::Forget) {
            self.held.truncate(offset as usize);
            self.held.extend_from_slice(&bytes);
        }
        Ok(match act {
            Act::Keep | Act::Forget => PartAck::Holds(self.held.len() as u64),
            Act::Fail | Act::KeepThenFail => PartAck::Retry(Error::transient("connection reset")),
            Act::Done => PartAck::Done,
            Act::Gone => PartAck::Gone,
        })
    }

    async fn resume(&mut self, _ctx: &mut PublishContext<'_>, _cause: Error) -> Result<PartAck> {
        self.asked += 1;
        Ok(match self.asks.pop_front().unwrap_or(Act::Keep) {
            Act::Fail => PartAck::Retry(Error::transient("still down")),
            Act::Gone => PartAck::Gone,
            Act::Done => PartAck::Done,
            Act::Keep | Act::KeepThenFail | Act::Forget => PartAck::Holds(self.held.len() as u64),
        })
    }
}

/// Keeps the checkpoints saved and the progress reported.
#[derive(Default)]
struct Hooks {
    saved: Mutex<Vec<Checkpoint>>,
    progress: Mutex<Vec<(u64, u64)>>,
}

#[async_trait]
impl AttemptHooks for Hooks {
    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.saved.lock().unwrap().push(checkpoint.clone());
        Ok(())
    }

    fn report_progress(&self, _target: TargetId, sent: u64, total: u64) {
        self.progress.lock().unwrap().push((sent, total));
    }
}

fn account() -> Account {
    let now = Utc::now();
    Account {
        id: AccountId::new(),
        owner: OwnerId::new("o"),
        platform: PlatformId::new("p"),
        remote_id: "r".into(),
        handle: None,
        display_name: None,
        avatar_url: None,
        tokens: TokenSet::new(AccessToken::new("t")),
        status: AccountStatus::Active,
        parent: None,
        metadata: Default::default(),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

struct Run {
    end: Result<UploadEnd>,
    saved: Vec<FakeState>,
    progress: Vec<(u64, u64)>,
}

async fn run(media: &Media, session: &mut impl UploadSession<State = FakeState>, policy: UploadPolicy) -> Run {
    let account = account();
    let (content, options) = (Content::default(), TargetOptions::default());
    let hooks = Hooks::default();
    let http = crate::HttpClient::new().unwrap().client().clone();
    let mut ctx = PublishContext::builder(TargetId::new(), &account, &content, &options).hooks(&hooks).build();
    let end = drive_upload(&mut ctx, &http, media, session, &policy).await;
    let saved =
        hooks.saved.lock().unwrap().iter().map(|c| c.read::<FakeState>().unwrap().unwrap_or_default()).collect();
    let progress = hooks.progress.lock().unwrap().clone();
    Run { end, saved, progress }
}

fn policy() -> UploadPolicy {
    UploadPolicy::new(Backoff::new(3, Duration::from_secs(1), Duration::from_secs(4)))
}

#[tokio::test(start_paused = true)]
async fn sends_every_part_in_order_saving_and_reporting_after_each() {
    let bytes = data(10);
    let media = Media::from_bytes(bytes.clone());
    let mut s = Fake::new(10, 4);
    let r = run(&media, &mut s, policy()).await;
    assert_eq!(r.end.unwrap(), UploadEnd::Complete);
    assert_eq!(s.parts, vec![(0, 0, 4), (1, 4, 4), (2, 8, 2)]);
    assert_eq!(s.held, bytes);
    let sent: Vec<_> = r.saved.iter().map(|st| (st.upload.bytes_sent, st.upload.parts_sent)).collect();
    assert_eq!(sent, vec![(4, 1), (8, 2), (10, 3)]);
    assert_eq!(r.progress, vec![(4, 10), (8, 10), (10, 10)]);
}

#[tokio::test(start_paused = true)]
async fn continues_from_the_checkpoint() {
    let bytes = data(10);
    let media = Media::from_bytes(bytes.clone());
    let mut s = Fake::new(10, 4);
    s.held = bytes[..4].to_vec();
    s.state.upload = UploadProgress { bytes_sent: 4, parts_sent: 1 };
    let r = run(&media, &mut s, policy()).await;
    assert_eq!(r.end.unwrap(), UploadEnd::Complete);
    assert_eq!(s.parts, vec![(1, 4, 4), (2, 8, 2)]);
    assert_eq!(s.held, bytes);
}

#[tokio::test(start_paused = true)]
async fn a_failed_part_resumes_from_what_the_server_holds() {
    let bytes = data(12);
    let media = Media::from_bytes(bytes.clone());
    // Part 1 is lost, part 2 lands but its answer is lost.
    let mut s = Fake::new(12, 4).script([Act::Keep, Act::Fail, Act::Keep, Act::KeepThenFail]);
    let started = tokio::time::Instant::now();
    let r = run(&media, &mut s, policy()).await;
    assert_eq!(r.end.unwrap(), UploadEnd::Complete);
    // Part 1 is sent again from offset 4; part 2 is not sent again: the server holds it.
    assert_eq!(s.parts, vec![(0, 0, 4), (1, 4, 4), (1, 4, 4), (2, 8, 4)]);
    assert_eq!(s.asked, 2);
    assert_eq!(s.held, bytes);
    assert_eq!(r.progress.last(), Some(&(12, 12)));
    // One wait of `first` before each ask: an acknowledged part resets the count.
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded_and_back_off_exactly() {
    let media = Media::from_bytes(data(8));
    let mut s = Fake::new(8, 4).script([Act::Fail]).asks([Act::Fail, Act::Fail, Act::Fail, Act::Fail]);
    let started = tokio::time::Instant::now();
    let r = run(&media, &mut s, policy()).await;
    assert!(matches!(r.end, Err(Error::Transient { ref message, .. }) if message == "still down"), "{:?}", r.end);
    // Failures 1, 2, 3 wait 1 s, 2 s, 4 s; the fourth ends the upload.
    assert_eq!(started.elapsed(), Duration::from_secs(7));
    assert_eq!(s.asked, 3);
    assert!(r.saved.is_empty());
}

#[test]
fn the_backoff_doubles_up_to_its_ceiling() {
    let b = Backoff::new(10, Duration::from_millis(500), Duration::from_secs(3));
    let waits: Vec<_> = (1..=6).map(|f| b.delay(f).as_millis()).collect();
    assert_eq!(waits, vec![500, 1000, 2000, 3000, 3000, 3000]);
    assert_eq!(Backoff::immediate(3).delay(2), Duration::ZERO);
    assert_eq!(Backoff::new(1, Duration::from_secs(1), Duration::MAX).delay(u32::MAX), Duration::from_secs(65536));
}

#[tokio::test(start_paused = true)]
async fn a_part_the_server_keeps_none_of_is_a_failure() {
    let media = Media::from_bytes(data(8));
    let mut s = Fake::new(8, 4).script([Act::Forget, Act::Forget, Act::Forget, Act::Forget]);
    let started = tokio::time::Instant::now();
    let r = run(&media, &mut s, policy()).await;
    assert!(
        matches!(r.end, Err(Error::Transient { ref message, .. }) if message.contains("keeps none")),
        "{:?}",
        r.end
    );
    assert_eq!(s.parts.len(), 4);
    // The server answered: no wait.
    assert_eq!(started.elapsed(), Duration::ZERO);

    let mut s = Fake::new(8, 4).script([Act::Forget, Act::Forget, Act::Keep, Act::Forget]);
    let r = run(&media, &mut s, policy()).await;
    assert_eq!(r.end.unwrap(), UploadEnd::Complete);
}

#[tokio::test(start_paused = true)]
async fn more_parts_than_the_platform_takes_is_refused() {
    let media = Media::from_bytes(data(10));
    let mut s = Fake::new(10, 4);
    let r = run(&media, &mut s, policy().with_max_parts(2)).await;
    assert!(matches!(r.end, Err(Error::Config(ref m)) if m.contains("more than 2 parts")), "{:?}", r.end);
    assert_eq!(s.parts.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_source_of_another_size_is_refused() {
    let media = Media::from_bytes(data(9));
    let mut s = Fake::new(10, 4);
    let r = run(&media, &mut s, policy()).await;
    assert!(matches!(r.end, Err(Error::Config(ref m)) if m.contains("size changed")), "{:?}", r.end);
    assert!(s.parts.is_empty());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.bin");
    std::fs::write(&path, data(12)).unwrap();
    let media = Media { source: MediaSource::File(path), ..Media::from_bytes(Bytes::new()) };
    let r = run(&media, &mut Fake::new(10, 4), policy()).await;
    assert!(matches!(r.end, Err(Error::Config(ref m)) if m.contains("size changed")), "{:?}", r.end);
}

#[tokio::test(start_paused = true)]
async fn a_file_that_grows_or_shrinks_during_the_upload_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.bin");
    std::fs::write(&path, data(10)).unwrap();
    let media = Media { source: MediaSource::File(path.clone()), ..Media::from_bytes(Bytes::new()) };
    let mut s = Fake::new(10, 4);
    let p = path.clone();
    s.on_part = Some(Box::new(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"more").unwrap();
    }));
    let r = run(&media, &mut s, policy()).await;
    assert!(matches!(r.end, Err(Error::Config(ref m)) if m.contains("longer than its stated size")), "{:?}", r.end);

    std::fs::write(&path, data(10)).unwrap();
    let mut s = Fake::new(10, 4);
    let p = path.clone();
    s.on_part = Some(Box::new(move || {
        std::fs::write(&p, data(5)).unwrap();
    }));
    let r = run(&media, &mut s, policy()).await;
    assert!(matches!(r.end, Err(Error::Config(ref m)) if m.contains("shorter than its stated size")), "{:?}", r.end);
}

#[tokio::test(start_paused = true)]
async fn a_streamed_file_sends_the_same_parts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.bin");
    let bytes = data(700_000);
    std::fs::write(&path, &bytes).unwrap();
    let media = Media { source: MediaSource::File(path), ..Media::from_bytes(Bytes::new()) };
    let mut s = Fake::new(700_000, 300_000).script([Act::Keep, Act::Fail]);
    let r = run(&media, &mut s, policy().streamed()).await;
    assert_eq!(r.end.unwrap(), UploadEnd::Complete);
    assert_eq!(s.parts, vec![(0, 0, 300_000), (1, 300_000, 300_000), (1, 300_000, 300_000), (2, 600_000, 100_000)]);
    assert!(s.held == bytes);
}

#[tokio::test(start_paused = true)]
async fn asking_first_done_and_gone() {
    let bytes = data(8);
    let media = Media::from_bytes(bytes.clone());
    // The server holds more than the checkpoint says: nothing is sent twice.
    let mut s = Fake::new(8, 4);
    s.held = bytes[..4].to_vec();
    let r = run(&media, &mut s, policy().ask_first(true)).await;
    assert_eq!(r.end.unwrap(), UploadEnd::Complete);
    assert_eq!((s.asked, s.parts.clone()), (1, vec![(0, 4, 4)]));
    assert_eq!(r.saved[0].upload, UploadProgress { bytes_sent: 4, parts_sent: 0 });

    let mut s = Fake::new(8, 4).script([Act::Done]);
    let r = run(&media, &mut s, policy()).await;
    assert_eq!(r.end.unwrap(), UploadEnd::Complete);
    assert_eq!(r.saved.last().map(|st| st.upload.bytes_sent), Some(8));

    let mut s = Fake::new(8, 4).script([Act::Keep, Act::Gone]);
    let r = run(&media, &mut s, policy()).await;
    assert_eq!(r.end.unwrap(), UploadEnd::Gone);
    let mut s = Fake::new(8, 4).script([Act::Fail]).asks([Act::Gone]);
    assert_eq!(run(&media, &mut s, policy()).await.end.unwrap(), UploadEnd::Gone);
}

#[tokio::test(start_paused = true)]
async fn a_session_that_cannot_ask_ends_with_the_cause() {
    struct Blind(Fake);
    #[async_trait]
    impl UploadSession for Blind {
        type State = FakeState;
        fn state(&self) -> &FakeState {
            self.0.state()
        }
        fn progress(&self) -> UploadProgress {
            self.0.progress()
        }
        fn set_progress(&mut self, progress: UploadProgress) {
            self.0.set_progress(progress)
        }
        fn total(&self) -> u64 {
            self.0.total
        }
        fn part_len(&self, index: u64, offset: u64) -> u64 {
            self.0.part_len(index, offset)
        }
        async fn put_part(&mut self, ctx: &mut PublishContext<'_>, part: Part) -> Result<PartAck> {
            self.0.put_part(ctx, part).await
        }
    }
    let media = Media::from_bytes(data(8));
    let mut s = Blind(Fake::new(8, 4).script([Act::Fail]));
    let r = run(&media, &mut s, policy()).await;
    assert!(matches!(r.end, Err(Error::Transient { ref message, .. }) if message == "connection reset"), "{:?}", r.end);
    assert_eq!(s.0.asked, 0);
}
