//! The `TokenStore` of both backends: accounts (compare-and-swap on `version`, tokens sealed)
//! and pending authorizations (taken once).

use konektly_core::{Account, AccountId, Error, Event, OwnerId, PendingAuthorization, PlatformId, Result};

use crate::codec::{ACCOUNT_COLS, AccountRow, PENDING_COLS, PendingRow};
use crate::common::{ReadRow, account_row, db_err, pending_row};
use crate::sql::{Arg, Dialect, SqlStore, args};

/// Runs one write; when it changes a row, also writes `events` of `owner` to the outbox in the
/// same transaction. Returns the rows changed.
async fn write_raising<S: SqlStore>(
    s: &S,
    sql: String,
    args: Vec<Arg>,
    owner: &str,
    events: &[Event],
    what: &'static str,
) -> Result<u64> {
    if !events.iter().any(Event::is_durable) {
        return S::Db::execute(s.writer(), sql, args).await.map_err(db_err(what));
    }
    let mut tx = s.write_tx(what).await?;
    let done = S::Db::tx_execute(&mut tx, sql, args).await.map_err(db_err(what))?;
    if done > 0 {
        crate::outbox::insert_tx(&mut tx, owner, events).await?;
        tx.commit().await.map_err(db_err(what))?;
    }
    Ok(done)
}

pub(crate) async fn insert_account<S: SqlStore>(s: &S, account: &Account, events: &[Event]) -> Result<()> {
    let row = AccountRow::encode(s.keys(), account)?;
    let sql = format!(
        "INSERT INTO konektly_accounts ({ACCOUNT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT DO NOTHING"
    );
    let args = args![
        row.id,
        row.owner,
        row.platform,
        row.remote_id,
        row.version,
        row.key_id,
        row.access_token,
        row.refresh_token,
        row.profile,
        row.created_at_ns,
        row.updated_at_ns,
    ];
    let done = write_raising(s, sql, args, account.owner.as_str(), events, "inserting an account").await?;
    if done == 0 {
        // The same id, or the same (owner, platform, remote id): one account each.
        return Err(Error::Conflict(format!(
            "account {} exists, or {} account {} of this owner is connected already",
            account.id, account.platform, account.remote_id
        )));
    }
    Ok(())
}

pub(crate) async fn get_account<S: SqlStore>(s: &S, id: AccountId) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM konektly_accounts WHERE id = $1");
    let row =
        S::Db::fetch_optional(s.pool(), sql, args![id.to_string()]).await.map_err(db_err("reading an account"))?;
    row.map(|r| account_row(&r)?.decode(s.keys())).transpose()
}

pub(crate) async fn find_account<S: SqlStore>(
    s: &S,
    owner: &OwnerId,
    platform: &PlatformId,
    remote_id: &str,
) -> Result<Option<Account>> {
    let sql = format!(
        "SELECT {ACCOUNT_COLS} FROM konektly_accounts WHERE owner = $1 AND platform = $2 AND remote_id = $3 \
         ORDER BY created_at_ns, id LIMIT 1"
    );
    let row = S::Db::fetch_optional(s.pool(), sql, args![owner.as_str(), platform.as_str(), remote_id])
        .await
        .map_err(db_err("finding an account"))?;
    row.map(|r| account_row(&r)?.decode(s.keys())).transpose()
}

pub(crate) async fn update_account<S: SqlStore>(s: &S, account: &Account, events: &[Event]) -> Result<Account> {
    let mut next = account.clone();
    next.version += 1;
    next.updated_at = chrono::Utc::now();
    let row = AccountRow::encode(s.keys(), &next)?;
    let sql = "UPDATE konektly_accounts SET owner = $1, platform = $2, remote_id = $3, version = $4, key_id = $5, \
               access_token = $6, refresh_token = $7, profile = $8, updated_at_ns = $9 WHERE id = $10 AND version = $11";
    let args = args![
        row.owner,
        row.platform,
        row.remote_id,
        row.version,
        row.key_id,
        row.access_token,
        row.refresh_token,
        row.profile,
        row.updated_at_ns,
        row.id.clone(),
        account.version as i64,
    ];
    let done = write_raising(s, sql.into(), args, account.owner.as_str(), events, "updating an account").await?;
    if done == 1 {
        return Ok(next);
    }
    let stored =
        S::Db::fetch_optional(s.writer(), "SELECT version FROM konektly_accounts WHERE id = $1".into(), args![row.id])
            .await
            .map_err(db_err("reading an account version"))?;
    Err(match stored {
        Some(r) => {
            let v = crate::common::ReadRow::int(&r, "version").map_err(db_err("reading an account version"))?;
            Error::Conflict(format!("account {} is at version {v}, not {}", account.id, account.version))
        }
        None => Error::NotFound(format!("account {}", account.id)),
    })
}

pub(crate) async fn list_accounts<S: SqlStore>(s: &S, owner: &OwnerId) -> Result<Vec<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM konektly_accounts WHERE owner = $1 ORDER BY created_at_ns, id");
    let rows = S::Db::fetch_all(s.pool(), sql, args![owner.as_str()]).await.map_err(db_err("listing accounts"))?;
    rows.iter().map(|r| account_row(r)?.decode(s.keys())).collect()
}

pub(crate) async fn delete_account<S: SqlStore>(s: &S, id: AccountId, events: &[Event]) -> Result<bool> {
    let sql = "DELETE FROM konektly_accounts WHERE id = $1 RETURNING owner".to_owned();
    if !events.iter().any(Event::is_durable) {
        let done =
            S::Db::execute(s.writer(), sql, args![id.to_string()]).await.map_err(db_err("deleting an account"))?;
        return Ok(done > 0);
    }
    let mut tx = s.write_tx("deleting an account").await?;
    let row =
        S::Db::tx_fetch_optional(&mut tx, sql, args![id.to_string()]).await.map_err(db_err("deleting an account"))?;
    let Some(row) = row else { return Ok(false) };
    let owner = row.text("owner").map_err(db_err("deleting an account"))?;
    crate::outbox::insert_tx(&mut tx, &owner, events).await?;
    tx.commit().await.map_err(db_err("deleting an account"))?;
    Ok(true)
}

pub(crate) async fn put_pending<S: SqlStore>(s: &S, pending: &PendingAuthorization) -> Result<()> {
    let row = PendingRow::encode(s.keys(), pending)?;
    let sql = format!(
        "INSERT INTO konektly_pending ({PENDING_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (state) DO UPDATE SET owner = excluded.owner, platform = excluded.platform, \
         reconnect = excluded.reconnect, key_id = excluded.key_id, pkce_verifier = excluded.pkce_verifier, \
         body = excluded.body, expires_at_ns = excluded.expires_at_ns"
    );
    let args = args![
        row.state,
        row.owner,
        row.platform,
        row.reconnect,
        row.key_id,
        row.pkce_verifier,
        row.body,
        row.expires_at_ns
    ];
    S::Db::execute(s.writer(), sql, args).await.map_err(db_err("storing a pending authorization"))?;
    Ok(())
}

pub(crate) async fn take_pending<S: SqlStore>(s: &S, state: &str) -> Result<Option<PendingAuthorization>> {
    let sql = format!("DELETE FROM konektly_pending WHERE state = $1 RETURNING {PENDING_COLS}");
    let row =
        S::Db::fetch_optional(s.writer(), sql, args![state]).await.map_err(db_err("taking a pending authorization"))?;
    row.map(|r| pending_row(&r)?.decode(s.keys())).transpose()
}
