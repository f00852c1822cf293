//! Group commit: concurrent writes of the same kind go to the store together.
//!
//! The first task to submit a write starts a writer task; writes submitted while it writes wait
//! for its next round and go to the store in one call. There is no timer: a lone write is
//! written at once, and a busy worker's writes share statements. The writer runs in its own
//! task, so a caller dropped mid-write (an attempt abandoned when its lease ran out) never
//! strands the writes of the others.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Writes one round: one result per item, in order; the outer error fails every item.
pub(crate) type WriteRound<I, O> = Arc<dyn Fn(Vec<I>) -> BoxFuture<'static, Result<Vec<Result<O>>>> + Send + Sync>;

/// A group-commit queue for writes of one kind.
pub(crate) struct GroupCommit<I, O> {
    state: Arc<Mutex<Waiting<I, O>>>,
    write: WriteRound<I, O>,
    max: usize,
    what: &'static str,
}

type Reply<O> = oneshot::Sender<Result<O>>;

struct Waiting<I, O> {
    items: VecDeque<(I, Reply<O>)>,
    writing: bool,
}

impl<I: Send + 'static, O: Send + 'static> GroupCommit<I, O> {
    /// Rounds of at most `max` items, written by `write`; `what` names them in errors ("lease
    /// writes"). With `max` 1 (or 0) each write is sent on its own, in its caller's task.
    pub(crate) fn new(max: usize, what: &'static str, write: WriteRound<I, O>) -> Self {
        Self {
            state: Arc::new(Mutex::new(Waiting { items: VecDeque::new(), writing: false })),
            write,
            max: max.max(1),
            what,
        }
    }

    /// Writes `item` with whatever else is waiting, and returns its own result.
    pub(crate) async fn submit(&self, item: I) -> Result<O> {
        if self.max == 1 {
            // Rounds of one would queue every write behind the others: each goes on its own.
            let mut results = (self.write)(vec![item]).await?;
            return match results.pop() {
                Some(r) if results.is_empty() => r,
                _ => Err(Error::Storage {
                    message: format!("the store answered a batch of {} {}", results.len() + 1, self.what),
                    source: None,
                }),
            };
        }
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut w = self.state.lock().unwrap_or_else(|e| e.into_inner());
            w.items.push_back((item, tx));
            !std::mem::replace(&mut w.writing, true)
        };
        if start {
            tokio::spawn(drain(self.state.clone(), self.write.clone(), self.max, self.what));
        }
        match rx.await {
            Ok(r) => r,
            Err(_) => Err(Error::Storage {
                message: format!("the {} writer stopped before this write", self.what),
                source: None,
            }),
        }
    }
}

/// Resets the queue if the writer dies (a panic in the store): the waiting writes fail (their
/// senders are dropped) instead of waiting forever, and the next submit starts a new writer.
struct Reset<I, O>(Arc<Mutex<Waiting<I, O>>>);

impl<I, O> Drop for Reset<I, O> {
    fn drop(&mut self) {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        w.writing = false;
        w.items.clear();
    }
}

async fn drain<I, O>(state: Arc<Mutex<Waiting<I, O>>>, write: WriteRound<I, O>, max: usize, what: &'static str) {
    let reset = Reset(state.clone());
    loop {
        let round: Vec<(I, Reply<O>)> = {
            let mut w = state.lock().unwrap_or_else(|e| e.into_inner());
            if w.items.is_empty() {
                w.writing = false;
                break;
            }
            let n = w.items.len().min(max);
            w.items.drain(..n).collect()
        };
        let (items, replies): (Vec<I>, Vec<Reply<O>>) = round.into_iter().unzip();
        let n = items.len();
        match write(items).await {
            Ok(results) if results.len() == n => {
                for (r, reply) in results.into_iter().zip(replies) {
                    let _ = reply.send(r);
                }
            }
            Ok(results) => {
                let message = format!("the store answered {} {what} for {n}", results.len());
                for reply in replies {
                    let _ = reply.send(Err(Error::Storage { message: message.clone(), source: None }));
                }
            }
            Err(e) => {
                let message = format!("a batch of {n} {what} was not written: {e}");
                for reply in replies {
                    let _ = reply.send(Err(Error::Storage { message: message.clone(), source: None }));
                }
            }
        }
    }
    std::mem::forget(reset);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn doubling(rounds: Arc<AtomicUsize>) -> GroupCommit<u32, u32> {
        GroupCommit::new(
            4,
            "doublings",
            Arc::new(move |items: Vec<u32>| {
                let rounds = rounds.clone();
                Box::pin(async move {
                    rounds.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    Ok(items
                        .into_iter()
                        .map(|i| if i == 13 { Err(Error::transient("thirteen")) } else { Ok(i * 2) })
                        .collect())
                })
            }),
        )
    }

    #[tokio::test]
    async fn concurrent_writes_share_rounds_and_keep_their_own_results() {
        let rounds = Arc::new(AtomicUsize::new(0));
        let g = Arc::new(doubling(rounds.clone()));
        let tasks: Vec<_> = (0..20u32)
            .map(|i| {
                let g = g.clone();
                tokio::spawn(async move { (i, g.submit(i).await) })
            })
            .collect();
        for t in tasks {
            let (i, r) = t.await.unwrap();
            match r {
                Ok(v) => assert_eq!(v, i * 2),
                Err(e) => {
                    assert_eq!(i, 13);
                    assert!(e.to_string().contains("thirteen"), "{e}");
                }
            }
        }
        let n = rounds.load(Ordering::SeqCst);
        assert!(n < 20, "20 concurrent writes took {n} rounds");
        assert!(n >= 5, "rounds are at most 4 items: {n}");
    }

    /// A queue whose first round ends as `first` says (an error, or a panic) and whose later
    /// rounds write every item.
    fn failing_once(first: fn() -> Result<Vec<Result<u32>>>) -> GroupCommit<u32, u32> {
        let calls = Arc::new(AtomicUsize::new(0));
        GroupCommit::new(
            8,
            "things",
            Arc::new(move |items: Vec<u32>| {
                let calls = calls.clone();
                Box::pin(async move {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        return first();
                    }
                    Ok(items.into_iter().map(Ok).collect())
                })
            }),
        )
    }

    #[tokio::test]
    async fn a_lone_write_goes_at_once_and_a_failed_round_fails_its_items_only() {
        let g = failing_once(|| Err(Error::transient("database restarting")));
        let e = g.submit(1).await.unwrap_err();
        assert!(e.to_string().contains("database restarting"), "{e}");
        assert_eq!(g.submit(2).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_dying_writer_fails_the_waiting_writes_and_the_next_one_works() {
        let g = failing_once(|| panic!("store bug"));
        assert!(g.submit(1).await.is_err());
        assert_eq!(g.submit(2).await.unwrap(), 2);
    }
}
