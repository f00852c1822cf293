//! The token endpoints of Facebook Login (`/oauth/access_token`: the code exchange and
//! `fb_exchange_token`; `/debug_token`) and of Instagram Login (`api.instagram.com`'s code
//! exchange, `ig_exchange_token`, `ig_refresh_token`): what the adapter's `MetaTokens` reads.

use std::time::Duration;

use axum::response::Response;
use http::StatusCode;
use serde_json::json;

use super::{GraphReq, err_sub, unparseable_token};
use crate::oauth::{self, AuthorizeSpec};
use crate::server::{graph_error, json};
use crate::state::{State, credentials, now};

pub(super) const FB_SPEC: AuthorizeSpec = AuthorizeSpec {
    platform: "facebook",
    client_param: "client_id",
    scope_sep: ",",
    code_ttl: Duration::from_secs(600),
    echo_scopes_as: None,
    fragment: None,
};

pub(super) const IG_SPEC: AuthorizeSpec = AuthorizeSpec {
    platform: "instagram",
    client_param: "client_id",
    scope_sep: ",",
    code_ttl: Duration::from_secs(3600),
    echo_scopes_as: None,
    fragment: Some("#_"),
};

fn app_ok(platform: &str, g: &GraphReq) -> bool {
    oauth::client_ok(platform, g.p("client_id"), g.p("client_secret"), true)
}

pub(super) fn fb_token(state: &State, g: &GraphReq) -> Response {
    if !app_ok("facebook", g) {
        return err_sub(101, 0, "Error validating application. Invalid application ID or secret.");
    }
    if g.p("grant_type") == Some("fb_exchange_token") {
        let mut inner = state.lock();
        let short = g.p("fb_exchange_token");
        let (info, _) = match inner.check_access(short, &["facebook"]) {
            Ok(v) => v,
            Err(_) => {
                return graph_error(
                    StatusCode::BAD_REQUEST,
                    190,
                    Some(463),
                    "Error validating access token: Session has expired.",
                );
            }
        };
        let ttl = state.token_ttl(Duration::from_secs(5_184_000));
        let t = inner.issue_access("EAAL", info.grant, &info.subject, Some(ttl), true);
        return json(StatusCode::OK, json!({"access_token": t, "token_type": "bearer", "expires_in": ttl.as_secs()}));
    }
    let code = match oauth::take_code(
        state,
        "facebook",
        g.params.get("code"),
        g.params.get("redirect_uri"),
        g.params.get("code_verifier"),
    ) {
        Ok(c) => c,
        Err((_, d)) => {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                Some(36008),
                &format!("Error validating verification code: {d}"),
            );
        }
    };
    let mut inner = state.lock();
    let grant = inner.new_grant("facebook", &code.user, code.scopes.clone());
    let ttl = state.token_ttl(Duration::from_secs(3600));
    let t = inner.issue_access("EAAS", grant, &code.user, Some(ttl), false);
    json(StatusCode::OK, json!({"access_token": t, "token_type": "bearer", "expires_in": ttl.as_secs()}))
}

pub(super) fn debug_token(state: &State, g: &GraphReq) -> Response {
    let creds = credentials("facebook");
    if g.p("access_token") != Some(&format!("{}|{}", creds.client_id, creds.client_secret)) && g.token().is_none() {
        return graph_error(StatusCode::BAD_REQUEST, 190, None, "Invalid OAuth access token.");
    }
    let inner = state.lock();
    let input = g.p("input_token");
    let data = match inner.check_access(input, &["facebook", "instagram"]) {
        Ok((info, grant)) => {
            let is_page = info.subject != grant.user;
            json!({"app_id": creds.client_id, "type": if is_page { "PAGE" } else { "USER" }, "application": "konektly sandbox",
                "is_valid": true, "issued_at": info.issued_at.timestamp(),
                "expires_at": info.expires_at.map(|t| t.timestamp()).unwrap_or(0),
                "data_access_expires_at": (now() + chrono::Duration::days(90)).timestamp(),
                "scopes": grant.scopes, "user_id": grant.user, "profile_id": if is_page { Some(info.subject) } else { None }})
        }
        Err(_) => json!({"app_id": creds.client_id, "is_valid": false,
            "error": {"code": 190, "message": "The access token is invalid.", "subcode": 467}}),
    };
    json(StatusCode::OK, json!({ "data": data }))
}

fn ig_error(message: &str) -> Response {
    json(StatusCode::BAD_REQUEST, json!({"error_type": "OAuthException", "code": 400, "error_message": message}))
}

pub(super) fn ig_code_exchange(state: &State, g: &GraphReq) -> Response {
    if !app_ok("instagram", g) {
        return ig_error("Invalid client_id or client_secret");
    }
    if g.p("grant_type") != Some("authorization_code") {
        return ig_error("Invalid grant_type");
    }
    let code = match oauth::take_code(
        state,
        "instagram",
        g.params.get("code"),
        g.params.get("redirect_uri"),
        g.params.get("code_verifier"),
    ) {
        Ok(c) => c,
        Err((_, d)) => return ig_error(&format!("Error validating verification code: {d}")),
    };
    let mut inner = state.lock();
    let grant = inner.new_grant("instagram", &code.user, code.scopes.clone());
    let ttl = state.token_ttl(Duration::from_secs(3600));
    let t = inner.issue_access("IGQS", grant, &code.user, Some(ttl), false);
    let one = json!({"access_token": t, "user_id": code.user, "permissions": code.scopes.join(",")});
    if state.cfg.instagram_token_wrapped {
        json(StatusCode::OK, json!({"data": [one]}))
    } else {
        json(
            StatusCode::OK,
            json!({"access_token": t, "user_id": code.user.parse::<u64>().ok(), "permissions": code.scopes}),
        )
    }
}

pub(super) fn ig_long_lived(state: &State, g: &GraphReq) -> Response {
    if g.p("grant_type") != Some("ig_exchange_token")
        || g.p("client_secret") != Some(&credentials("instagram").client_secret)
    {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter: grant_type or client_secret");
    }
    let mut inner = state.lock();
    let Ok((info, _)) = inner.check_access(g.p("access_token"), &["instagram"]) else {
        return unparseable_token();
    };
    let ttl = state.token_ttl(Duration::from_secs(5_183_944));
    let t = inner.issue_access("IGQL", info.grant, &info.subject, Some(ttl), true);
    json(StatusCode::OK, json!({"access_token": t, "token_type": "bearer", "expires_in": ttl.as_secs()}))
}

pub(super) fn ig_refresh(state: &State, g: &GraphReq) -> Response {
    if g.p("grant_type") != Some("ig_refresh_token") {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Invalid parameter: grant_type");
    }
    let mut inner = state.lock();
    let Ok((info, _)) = inner.check_access(g.p("access_token"), &["instagram"]) else {
        return unparseable_token();
    };
    if !info.long_lived {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "Only long-lived tokens can be refreshed");
    }
    let ttl = state.token_ttl(Duration::from_secs(5_183_944));
    let t = inner.issue_access("IGQL", info.grant, &info.subject, Some(ttl), true);
    json(StatusCode::OK, json!({"access_token": t, "token_type": "bearer", "expires_in": ttl.as_secs()}))
}
