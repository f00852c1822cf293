//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{api, feeds, media, plans, problem};

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "konektly", description = "Publish to social networks on your users' behalf: accounts, media, posts, events and webhooks."),
    paths(
        api::connect, api::reconnect, api::callback, api::list_accounts, api::get_account, api::disconnect,
        api::export_account, api::erase_owner, api::validate, api::create_post, api::get_post, api::list_posts,
        api::cancel_post, api::reschedule_post, api::delete_post, media::upload, feeds::list_events,
        feeds::stream_events, feeds::create_webhook, feeds::list_webhooks, feeds::delete_webhook,
        feeds::list_deliveries, feeds::replay_delivery, plans::create_queue, plans::list_queues, plans::get_queue,
        plans::add_to_queue, plans::queue_action, plans::reorder_queue, plans::set_plan, plans::post_now,
        plans::remove_from_queue, plans::post_metrics, plans::account_metrics, plans::create_series, plans::list_series, plans::series_action, plans::delete_series,
    ),
    components(schemas(problem::Problem)),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "accounts", description = "Connected accounts and the OAuth flow"),
        (name = "posts", description = "Validate, create, read, cancel, reschedule and delete posts"),
        (name = "media", description = "Media uploads into the media store"),
        (name = "events", description = "The event log, paged or streamed"),
        (name = "webhooks", description = "Signed webhook endpoints and their delivery log"),
        (name = "queues", description = "Posting queues with weekly time slots"),
        (name = "series", description = "Recurring posts"),
    )
)]
pub struct ApiDoc;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("kk_…").build()),
        );
    }
}

/// The document as JSON.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
