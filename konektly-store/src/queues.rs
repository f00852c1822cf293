//! The `QueueStore` of both backends (issue 17): queues as rows with their plan in JSON, and a
//! slot as a row keyed by (queue, instant), so that two processes never take one slot.

use chrono::{DateTime, Utc};
use konektly_core::queue::{Queue, QueueId, QueueStore, QueuedPost, SlotPlan};
use konektly_core::{AccountId, Error, OwnerId, PostId, Result};
use serde::{Deserialize, Serialize};

use crate::codec::{from_ns, ns, parse_id, to_json};
use crate::common::{ReadRow, db_err};
use crate::sql::{Dialect, SqlStore, args};

#[derive(Serialize, Deserialize)]
struct Body {
    accounts: Vec<AccountId>,
    plan: SlotPlan,
}

const COLS: &str = "id, owner, name, body, paused, created_at_ns";

fn queue_of(r: &impl ReadRow) -> Result<Queue> {
    let read = |e| db_err("reading a queue")(e);
    let body: Body = serde_json::from_str(&r.text("body").map_err(read)?)
        .map_err(|e| Error::storage("a stored queue does not parse", e))?;
    Ok(Queue {
        id: parse_id(&r.text("id").map_err(read)?, "a queue id")?,
        owner: OwnerId::new(r.text("owner").map_err(read)?),
        name: r.text("name").map_err(read)?,
        accounts: body.accounts,
        plan: body.plan,
        paused: r.int("paused").map_err(read)? != 0,
        created_at: from_ns(r.int("created_at_ns").map_err(read)?),
    })
}

fn body_of(q: &Queue) -> Result<String> {
    to_json(&Body { accounts: q.accounts.clone(), plan: q.plan.clone() }, "a queue")
}

pub(crate) async fn create<S: SqlStore>(s: &S, q: &Queue) -> Result<()> {
    let sql =
        format!("INSERT INTO konektly_post_queues ({COLS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING");
    let a =
        args![q.id.to_string(), q.owner.as_str(), q.name.as_str(), body_of(q)?, i64::from(q.paused), ns(q.created_at)];
    if S::Db::execute(s.writer(), sql, a).await.map_err(db_err("storing a queue"))? == 0 {
        return Err(Error::Conflict(format!("a queue named `{}` exists", q.name)));
    }
    Ok(())
}

pub(crate) async fn find<S: SqlStore>(s: &S, owner: &OwnerId, id_or_name: &str) -> Result<Option<Queue>> {
    let sql = format!("SELECT {COLS} FROM konektly_post_queues WHERE owner = $1 AND (name = $2 OR id = $2)");
    let row = S::Db::fetch_optional(s.pool(), sql, args![owner.as_str(), id_or_name])
        .await
        .map_err(db_err("reading a queue"))?;
    row.map(|r| queue_of(&r)).transpose()
}

pub(crate) async fn list<S: SqlStore>(s: &S, owner: &OwnerId) -> Result<Vec<Queue>> {
    let sql = format!("SELECT {COLS} FROM konektly_post_queues WHERE owner = $1 ORDER BY created_at_ns, id");
    let rows = S::Db::fetch_all(s.pool(), sql, args![owner.as_str()]).await.map_err(db_err("listing queues"))?;
    rows.iter().map(queue_of).collect()
}

pub(crate) async fn update<S: SqlStore>(s: &S, q: &Queue) -> Result<()> {
    let sql = "UPDATE konektly_post_queues SET body = $1, paused = $2 WHERE id = $3";
    let n = S::Db::execute(s.writer(), sql.into(), args![body_of(q)?, i64::from(q.paused), q.id.to_string()])
        .await
        .map_err(db_err("updating a queue"))?;
    if n == 0 {
        return Err(Error::NotFound(format!("queue {}", q.id)));
    }
    Ok(())
}

pub(crate) async fn delete<S: SqlStore>(s: &S, id: QueueId) -> Result<bool> {
    let mut tx = s.write_tx("deleting a queue").await?;
    let sql = "DELETE FROM konektly_queue_slots WHERE queue_id = $1";
    S::Db::tx_execute(&mut tx, sql.into(), args![id.to_string()]).await.map_err(db_err("deleting a queue"))?;
    let sql = "DELETE FROM konektly_post_queues WHERE id = $1";
    let n = S::Db::tx_execute(&mut tx, sql.into(), args![id.to_string()]).await.map_err(db_err("deleting a queue"))?;
    tx.commit().await.map_err(db_err("deleting a queue"))?;
    Ok(n > 0)
}

pub(crate) async fn take<S: SqlStore>(
    s: &S,
    queue: QueueId,
    post: PostId,
    candidates: &[DateTime<Utc>],
) -> Result<Option<DateTime<Utc>>> {
    let held = "SELECT slot_at_ns FROM konektly_queue_slots WHERE queue_id = $1 AND post_id = $2";
    if S::Db::fetch_optional(s.writer(), held.into(), args![queue.to_string(), post.to_string()])
        .await
        .map_err(db_err("taking a slot"))?
        .is_some()
    {
        return Err(Error::Conflict(format!("post {post} holds a slot of this queue already")));
    }
    // The primary key decides: of two processes inserting one slot, one inserts nothing.
    let sql =
        "INSERT INTO konektly_queue_slots (queue_id, slot_at_ns, post_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    for at in candidates {
        let a = args![queue.to_string(), ns(*at), post.to_string()];
        if S::Db::execute(s.writer(), sql.into(), a).await.map_err(db_err("taking a slot"))? == 1 {
            return Ok(Some(*at));
        }
    }
    Ok(None)
}

pub(crate) async fn release<S: SqlStore>(s: &S, queue: QueueId, post: PostId) -> Result<bool> {
    let sql = "DELETE FROM konektly_queue_slots WHERE queue_id = $1 AND post_id = $2";
    let n = S::Db::execute(s.writer(), sql.into(), args![queue.to_string(), post.to_string()])
        .await
        .map_err(db_err("freeing a slot"))?;
    Ok(n > 0)
}

pub(crate) async fn queued<S: SqlStore>(s: &S, queue: QueueId, from: DateTime<Utc>) -> Result<Vec<QueuedPost>> {
    let sql = "SELECT slot_at_ns, post_id FROM konektly_queue_slots WHERE queue_id = $1 AND slot_at_ns >= $2 ORDER BY slot_at_ns";
    let rows = S::Db::fetch_all(s.pool(), sql.into(), args![queue.to_string(), ns(from)])
        .await
        .map_err(db_err("reading a queue's slots"))?;
    rows.iter()
        .map(|r| {
            let read = |e| db_err("reading a slot")(e);
            Ok(QueuedPost {
                slot_at: from_ns(r.int("slot_at_ns").map_err(read)?),
                post: parse_id(&r.text("post_id").map_err(read)?, "a post id")?,
            })
        })
        .collect()
}

pub(crate) async fn reassign<S: SqlStore>(s: &S, queue: QueueId, moves: &[QueuedPost]) -> Result<()> {
    let mut tx = s.write_tx("moving posts between slots").await?;
    let del = "DELETE FROM konektly_queue_slots WHERE queue_id = $1 AND post_id = $2";
    for m in moves {
        S::Db::tx_execute(&mut tx, del.into(), args![queue.to_string(), m.post.to_string()])
            .await
            .map_err(db_err("moving posts between slots"))?;
    }
    let ins =
        "INSERT INTO konektly_queue_slots (queue_id, slot_at_ns, post_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    for m in moves {
        let n = S::Db::tx_execute(&mut tx, ins.into(), args![queue.to_string(), ns(m.slot_at), m.post.to_string()])
            .await
            .map_err(db_err("moving posts between slots"))?;
        if n == 0 {
            // Another process took that slot meanwhile: nothing moves (the transaction is dropped).
            return Err(Error::Conflict(format!("the slot {} was taken meanwhile; try again", m.slot_at)));
        }
    }
    tx.commit().await.map_err(db_err("moving posts between slots"))
}

macro_rules! impl_queue_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl QueueStore for $store {
            async fn create_queue(&self, queue: &Queue) -> Result<()> {
                create(self, queue).await
            }
            async fn find_queue(&self, owner: &OwnerId, id_or_name: &str) -> Result<Option<Queue>> {
                find(self, owner, id_or_name).await
            }
            async fn list_queues(&self, owner: &OwnerId) -> Result<Vec<Queue>> {
                list(self, owner).await
            }
            async fn update_queue(&self, queue: &Queue) -> Result<()> {
                update(self, queue).await
            }
            async fn delete_queue(&self, queue: QueueId) -> Result<bool> {
                delete(self, queue).await
            }
            async fn take_slot(
                &self,
                queue: QueueId,
                post: PostId,
                candidates: &[DateTime<Utc>],
            ) -> Result<Option<DateTime<Utc>>> {
                take(self, queue, post, candidates).await
            }
            async fn release_slot(&self, queue: QueueId, post: PostId) -> Result<bool> {
                release(self, queue, post).await
            }
            async fn queued(&self, queue: QueueId, from: DateTime<Utc>) -> Result<Vec<QueuedPost>> {
                queued(self, queue, from).await
            }
            async fn reassign(&self, queue: QueueId, moves: &[QueuedPost]) -> Result<()> {
                reassign(self, queue, moves).await
            }
        }
    };
}

impl_queue_store!(crate::SqliteStore);
impl_queue_store!(crate::PostgresStore);

mod series {
    //! The `SeriesStore` of both backends: a series as one JSON row, updated by compare-and-swap.

    use konektly_core::series::{Series, SeriesId, SeriesStore};
    use konektly_core::{Error, OwnerId, Result};

    use crate::codec::{ns, to_json};
    use crate::common::{ReadRow, db_err};
    use crate::sql::{Dialect, SqlStore, args};

    fn series_of(r: &impl ReadRow) -> Result<Series> {
        let body = r.text("body").map_err(db_err("reading a series"))?;
        let mut s: Series =
            serde_json::from_str(&body).map_err(|e| Error::storage("a stored series does not parse", e))?;
        s.version = r.int("version").map_err(db_err("reading a series"))? as u64;
        Ok(s)
    }

    pub(crate) async fn create<S: SqlStore>(s: &S, series: &Series) -> Result<()> {
        let sql = "INSERT INTO konektly_series (id, owner, body, version, created_at_ns) VALUES ($1, $2, $3, $4, $5)";
        let a = args![
            series.id.to_string(),
            series.owner.as_str(),
            to_json(series, "a series")?,
            series.version as i64,
            ns(chrono::Utc::now())
        ];
        S::Db::execute(s.writer(), sql.into(), a).await.map_err(db_err("storing a series"))?;
        Ok(())
    }

    pub(crate) async fn get<S: SqlStore>(s: &S, owner: &OwnerId, id: SeriesId) -> Result<Option<Series>> {
        let sql = "SELECT body, version FROM konektly_series WHERE id = $1 AND owner = $2";
        let row = S::Db::fetch_optional(s.pool(), sql.into(), args![id.to_string(), owner.as_str()])
            .await
            .map_err(db_err("reading a series"))?;
        row.map(|r| series_of(&r)).transpose()
    }

    pub(crate) async fn list<S: SqlStore>(s: &S, owner: Option<&OwnerId>) -> Result<Vec<Series>> {
        let (sql, a) = match owner {
            Some(o) => (
                "SELECT body, version FROM konektly_series WHERE owner = $1 ORDER BY created_at_ns, id",
                args![o.as_str()],
            ),
            None => ("SELECT body, version FROM konektly_series ORDER BY created_at_ns, id", args![]),
        };
        let rows = S::Db::fetch_all(s.pool(), sql.into(), a).await.map_err(db_err("listing series"))?;
        rows.iter().map(series_of).collect()
    }

    pub(crate) async fn update<S: SqlStore>(s: &S, series: &Series) -> Result<Series> {
        let mut next = series.clone();
        next.version += 1;
        let sql = "UPDATE konektly_series SET body = $1, version = $2 WHERE id = $3 AND version = $4";
        let a = args![to_json(&next, "a series")?, next.version as i64, series.id.to_string(), series.version as i64];
        match S::Db::execute(s.writer(), sql.into(), a).await.map_err(db_err("updating a series"))? {
            0 => Err(Error::Conflict(format!("series {} changed meanwhile", series.id))),
            _ => Ok(next),
        }
    }

    pub(crate) async fn delete<S: SqlStore>(s: &S, id: SeriesId) -> Result<bool> {
        let n = S::Db::execute(s.writer(), "DELETE FROM konektly_series WHERE id = $1".into(), args![id.to_string()])
            .await
            .map_err(db_err("deleting a series"))?;
        Ok(n > 0)
    }

    macro_rules! impl_series_store {
        ($store:ty) => {
            #[async_trait::async_trait]
            impl SeriesStore for $store {
                async fn create_series(&self, series: &Series) -> Result<()> {
                    create(self, series).await
                }
                async fn get_series(&self, owner: &OwnerId, id: SeriesId) -> Result<Option<Series>> {
                    get(self, owner, id).await
                }
                async fn list_series(&self, owner: Option<&OwnerId>) -> Result<Vec<Series>> {
                    list(self, owner).await
                }
                async fn update_series(&self, series: &Series) -> Result<Series> {
                    update(self, series).await
                }
                async fn delete_series(&self, id: SeriesId) -> Result<bool> {
                    delete(self, id).await
                }
            }
        };
    }

    impl_series_store!(crate::SqliteStore);
    impl_series_store!(crate::PostgresStore);
}
