//! Key rotation and the data-rights operations of both backends: export, erasure, retention.

use konektly_core::{AccountId, Checkpoint, Error, Result, Scheduler, StateName, TargetFilter};

use crate::codec::{from_ns, ns, parse_id, states_sql};
use crate::common::{ReadRow, db_err};
use crate::crypto::{account_aad, crypto_error, pending_aad};
use crate::sql::{Dialect, SqlStore, args};
use crate::{ErasePolicy, Erasure};

/// Re-encrypts every stored secret not sealed with the newest key; returns the rows rewritten.
pub(crate) async fn rotate_keys<S: SqlStore>(s: &S) -> Result<u64> {
    Ok(rotate_accounts(s).await? + rotate_pending(s).await?)
}

async fn rotate_accounts<S: SqlStore>(s: &S) -> Result<u64> {
    let keys = s.keys();
    let newest = keys.newest_id().to_owned();
    let mut n = 0u64;
    loop {
        let sql = "SELECT id, key_id, access_token, refresh_token FROM konektly_accounts WHERE key_id <> $1 LIMIT 200";
        let rows = S::Db::fetch_all(s.pool(), sql.into(), args![newest.as_str()])
            .await
            .map_err(db_err("reading accounts to rotate"))?;
        if rows.is_empty() {
            return Ok(n);
        }
        for r in rows {
            let read = || -> std::result::Result<_, sqlx::Error> {
                Ok((r.text("id")?, r.text("key_id")?, r.bytes("access_token")?, r.opt_bytes("refresh_token")?))
            };
            let (id, old, access, refresh) = read().map_err(db_err("rotating"))?;
            let aid: AccountId = parse_id(&id, "account")?;
            let reseal = |b: &[u8], kind: &str| -> Result<Vec<u8>> {
                let aad = account_aad(&aid, kind);
                let plain = keys.open(b, &aad, &format!("{kind} token of account {aid}")).map_err(crypto_error)?;
                Ok(keys.seal(&plain, &aad))
            };
            let access = reseal(&access, "access")?;
            let refresh = refresh.map(|b| reseal(&b, "refresh")).transpose()?;
            let sql = "UPDATE konektly_accounts SET key_id = $1, access_token = $2, refresh_token = $3 \
                       WHERE id = $4 AND key_id = $5";
            n += S::Db::execute(s.writer(), sql.into(), args![newest.as_str(), access, refresh, id, old])
                .await
                .map_err(db_err("rotating an account's key"))?;
        }
    }
}

async fn rotate_pending<S: SqlStore>(s: &S) -> Result<u64> {
    let keys = s.keys();
    let newest = keys.newest_id().to_owned();
    let mut n = 0u64;
    loop {
        let sql = "SELECT state, key_id, pkce_verifier FROM konektly_pending WHERE key_id <> $1 LIMIT 200";
        let rows = S::Db::fetch_all(s.pool(), sql.into(), args![newest.as_str()])
            .await
            .map_err(db_err("reading pending authorizations to rotate"))?;
        if rows.is_empty() {
            return Ok(n);
        }
        for r in rows {
            let read = || -> std::result::Result<_, sqlx::Error> {
                Ok((r.text("state")?, r.text("key_id")?, r.opt_bytes("pkce_verifier")?))
            };
            let (state, old, v) = read().map_err(db_err("rotating"))?;
            let aad = pending_aad(&state);
            let v = match v {
                Some(b) => Some(keys.seal(&keys.open(&b, &aad, "PKCE verifier").map_err(crypto_error)?, &aad)),
                None => None,
            };
            let sql = "UPDATE konektly_pending SET key_id = $1, pkce_verifier = $2 WHERE state = $3 AND key_id = $4";
            n += S::Db::execute(s.writer(), sql.into(), args![newest.as_str(), v, state, old])
                .await
                .map_err(db_err("rotating a pending authorization's key"))?;
        }
    }
}

/// Everything stored about an account, as JSON: its profile, status, scopes and token expiry
/// (the tokens themselves are credentials of the application and are not exported), its
/// pending reconnections and every target it publishes.
pub(crate) async fn export_account<S: SqlStore + Scheduler>(s: &S, id: AccountId) -> Result<serde_json::Value> {
    let account = crate::accounts::get_account(s, id).await?.ok_or_else(|| Error::NotFound(format!("account {id}")))?;
    let sql = "SELECT state, platform, body, expires_at_ns FROM konektly_pending WHERE reconnect = $1";
    let pending = S::Db::fetch_all(s.pool(), sql.into(), args![id.to_string()])
        .await
        .map_err(db_err("reading pending authorizations"))?;
    let mut pend = Vec::new();
    for r in pending {
        let read = || -> std::result::Result<_, sqlx::Error> {
            Ok((r.text("body")?, r.text("platform")?, r.int("expires_at_ns")?))
        };
        let (body, platform, exp) = read().map_err(db_err("export"))?;
        pend.push(serde_json::json!({
            "platform": platform,
            "details": serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default(),
            "expires_at": from_ns(exp),
        }));
    }
    let mut targets = s.list(&TargetFilter::account(id)).await?;
    // Secrets inside checkpoints (upload URLs, session URIs) are never exported.
    for t in &mut targets {
        t.checkpoint = Checkpoint::from_json(t.checkpoint.redacted());
    }
    let t = &account.tokens;
    Ok(serde_json::json!({
        "format": "konektly-account-export/1",
        "exported_at": chrono::Utc::now(),
        "account": {
            "id": account.id,
            "owner": account.owner,
            "platform": account.platform,
            "remote_id": account.remote_id,
            "handle": account.handle,
            "display_name": account.display_name,
            "avatar_url": account.avatar_url,
            "status": account.status,
            "parent": account.parent,
            "metadata": account.metadata,
            "created_at": account.created_at,
            "updated_at": account.updated_at,
            "tokens": {
                "access_token": "stored encrypted; not exported",
                "refresh_token": if t.refresh_token.is_some() { "stored encrypted; not exported" } else { "none" },
                "expires_at": t.expires_at,
                "refresh_expires_at": t.refresh_expires_at,
                "scopes": t.scopes,
            },
        },
        "pending_authorizations": pend,
        "targets": targets,
    }))
}

/// Erases an account: its tokens, its pending reconnections, its rate-limit budgets and its
/// targets (finished ones are kept as post history if `policy` says so), in one transaction.
pub(crate) async fn erase_account<S: SqlStore>(s: &S, id: AccountId, policy: ErasePolicy) -> Result<Erasure> {
    let mut tx = s.write_tx("an erasure").await?;
    let sid = id.to_string();
    let sql = "DELETE FROM konektly_queue WHERE id IN (SELECT id FROM konektly_targets WHERE account_id = $1)";
    S::Db::tx_execute(&mut tx, sql.into(), args![sid.as_str()]).await.map_err(db_err("erasing queued targets"))?;
    let sql = if policy.keep_post_history {
        let finished = states_sql(StateName::is_final);
        format!("DELETE FROM konektly_targets WHERE account_id = $1 AND state NOT IN ({finished})")
    } else {
        "DELETE FROM konektly_targets WHERE account_id = $1".to_owned()
    };
    let targets = S::Db::tx_execute(&mut tx, sql, args![sid.as_str()]).await.map_err(db_err("erasing targets"))?;
    let sql = "DELETE FROM konektly_pending WHERE reconnect = $1";
    let pending = S::Db::tx_execute(&mut tx, sql.into(), args![sid.as_str()])
        .await
        .map_err(db_err("erasing pending authorizations"))?;
    let sql = "DELETE FROM konektly_accounts WHERE id = $1 RETURNING owner";
    let owner = S::Db::tx_fetch_optional(&mut tx, sql.into(), args![sid.as_str()])
        .await
        .map_err(db_err("erasing an account"))?
        .map(|r| crate::common::ReadRow::text(&r, "owner"))
        .transpose()
        .map_err(db_err("erasing an account"))?;
    let account = owner.is_some();
    if let Some(owner) = owner {
        let gone = konektly_core::Event::AccountDisconnected { account: id };
        crate::outbox::insert_tx(&mut tx, &owner, &[gone]).await?;
    }
    // Budget keys name the account (`platform:account:<id>:name`).
    let sql = "DELETE FROM konektly_budgets WHERE key LIKE $1";
    let budgets = S::Db::tx_execute(&mut tx, sql.into(), args![format!("%:account:{sid}:%")])
        .await
        .map_err(db_err("erasing budgets"))?;
    tx.commit().await.map_err(db_err("committing an erasure"))?;
    Ok(Erasure { account, pending_authorizations: pending, targets, budgets })
}

/// Retention: deletes finished targets (published, failed, cancelled) last changed before
/// `before`, and pending authorizations that expired before it. Returns how many targets were
/// deleted.
pub(crate) async fn purge_published_before<S: SqlStore>(s: &S, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
    let t = ns(before);
    let finished = states_sql(StateName::is_final);
    let sql = format!("DELETE FROM konektly_targets WHERE state IN ({finished}) AND updated_at_ns < $1");
    let n = S::Db::execute(s.writer(), sql, args![t]).await.map_err(db_err("purging targets"))?;
    let sql = "DELETE FROM konektly_pending WHERE expires_at_ns < $1";
    S::Db::execute(s.writer(), sql.into(), args![t]).await.map_err(db_err("purging pending authorizations"))?;
    Ok(n)
}
