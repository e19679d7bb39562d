//! `/api/v1/webhooks`: webhooks, their delivery log, and redelivery.

use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Header, Path, Query},
    types::ToJSON,
};
use uuid::Uuid;

use super::{
    auth::BearerAuth,
    common::{
        Answer, ApiTags, BODY, Created, Current, Deleted, E400, E401, E404, E412, E422, E500, E503,
        IDEMPOTENT, Resource, Tagged, parse_if_match, render_created, render_no_content,
        render_tagged,
    },
    idempotency::{IdempotencyKey, Idempotent, render},
    payload::{JsonBody, JsonPatch, WebhookPatch},
};
use crate::{
    model::{
        DeliveryPage, DeliveryRead, Limit, Offset, WebhookCreate, WebhookCreated, WebhookPage,
        WebhookRead,
    },
    service::idempotency::Rendered,
    state::AppState,
};

impl Resource for WebhookRead {
    fn location(&self) -> String {
        format!("/api/v1/webhooks/{}", self.id)
    }
    fn version(&self) -> i64 {
        self.version
    }
}

impl Resource for WebhookCreated {
    fn location(&self) -> String {
        format!("/api/v1/webhooks/{}", self.id)
    }
    fn version(&self) -> i64 {
        self.version
    }
}

/// 202: the work is queued; the body shows it as queued.
#[derive(ApiResponse)]
pub enum Accepted<T: ToJSON + Send + Sync> {
    /// Accepted.
    #[oai(status = 202)]
    Accepted(JsonBody<T>),
}

impl<T: ToJSON + Send + Sync> From<T> for Accepted<T> {
    fn from(value: T) -> Self {
        Accepted::Accepted(JsonBody(value))
    }
}

fn render_accepted<T: ToJSON + Clone + Send + Sync>(value: &T) -> Rendered {
    render(Accepted::from(value.clone()))
}

/// Webhooks.
pub struct WebhooksApi {
    /// Services.
    pub state: AppState,
}

#[OpenApi(prefix_path = "/api/v1")]
impl WebhooksApi {
    /// Create a webhook
    ///
    /// The caller owns it and receives the changes of the events they may manage (`event_id`:
    /// only that one). The answer carries the signing `secret`, shown only here. Targets on
    /// loopback, private or link-local addresses are 422.
    #[oai(
        path = "/webhooks",
        method = "post",
        tag = "ApiTags::Webhooks",
        operation_id = "createWebhook"
    )]
    async fn create_webhook(
        &self,
        auth: BearerAuth,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonBody<WebhookCreate>,
    ) -> Answer<
        Idempotent<Created<WebhookCreated>>,
        { BODY | E401 | super::common::E403 | E404 | E422 | IDEMPOTENT | E500 | E503 },
    > {
        // The answer carries the secret: stored sealed for replays.
        let key = idempotency_key.of_sealed(&auth.0, &render_created::<WebhookCreated>);
        let written = self.state.webhooks.create(&auth.0, body.0, key).await?;
        Ok(Idempotent::from_written(written))
    }

    /// List webhooks
    ///
    /// The caller's webhooks, oldest first (administrators: everyone's).
    #[oai(
        path = "/webhooks",
        method = "get",
        tag = "ApiTags::Webhooks",
        operation_id = "listWebhooks"
    )]
    async fn list_webhooks(
        &self,
        auth: BearerAuth,
        /// Page size.
        limit: Query<Limit>,
        /// Number of items to skip.
        offset: Query<Offset>,
    ) -> Answer<JsonBody<WebhookPage>, { E400 | E401 | E500 | E503 }> {
        let page = (self.state.webhooks)
            .list(&auth.0, limit.0.0, offset.0.0)
            .await?;
        Ok(JsonBody(page.into()))
    }

    /// Get a webhook
    ///
    /// Its owner or an administrator (404 for others). The secret is never shown again.
    #[oai(
        path = "/webhooks/:id",
        method = "get",
        tag = "ApiTags::Webhooks",
        operation_id = "getWebhook"
    )]
    async fn get_webhook(
        &self,
        auth: BearerAuth,
        /// The webhook's id.
        id: Path<Uuid>,
        /// Answer 304 without a body if the webhook is still at this version (`"3"`).
        #[oai(name = "If-None-Match")]
        _if_none_match: Header<Option<String>>,
    ) -> Answer<Current<WebhookRead>, { E401 | E404 | E500 | E503 }> {
        Ok(self.state.webhooks.get(&auth.0, id.0).await?.into())
    }

    /// Change a webhook
    ///
    /// A JSON Patch (owner or administrator) on `/url`, `/types`, `/active`, `/description`.
    /// Reactivating a webhook the server deactivated clears `disabled_reason`.
    #[oai(
        path = "/webhooks/:id",
        method = "patch",
        tag = "ApiTags::Webhooks",
        operation_id = "patchWebhook"
    )]
    async fn patch_webhook(
        &self,
        auth: BearerAuth,
        /// The webhook's id.
        id: Path<Uuid>,
        /// Apply only if the webhook is still at this version (`"3"`); 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
        body: JsonPatch<WebhookPatch>,
    ) -> Answer<
        Idempotent<Tagged<WebhookRead>>,
        { BODY | E401 | E404 | E412 | E422 | IDEMPOTENT | E500 | E503 },
    > {
        let precondition = parse_if_match(if_match.0);
        let key = idempotency_key.of(&auth.0, &render_tagged::<WebhookRead>);
        let written = (self.state.webhooks)
            .patch(&auth.0, id.0, &body.0, precondition.as_ref(), key)
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// Delete a webhook
    ///
    /// With its delivery log (owner or administrator).
    #[oai(
        path = "/webhooks/:id",
        method = "delete",
        tag = "ApiTags::Webhooks",
        operation_id = "deleteWebhook"
    )]
    async fn delete_webhook(
        &self,
        auth: BearerAuth,
        /// The webhook's id.
        id: Path<Uuid>,
        /// Delete only if the webhook is still at this version; 412 otherwise.
        #[oai(name = "If-Match")]
        if_match: Header<Option<String>>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
    ) -> Answer<Idempotent<Deleted>, { E401 | E404 | E412 | IDEMPOTENT | E500 | E503 }> {
        let precondition = parse_if_match(if_match.0);
        let key = idempotency_key.of(&auth.0, &render_no_content::<()>);
        let written = (self.state.webhooks)
            .delete(&auth.0, id.0, precondition.as_ref(), key)
            .await?;
        Ok(Idempotent::from_written(written))
    }

    /// List a webhook's deliveries
    ///
    /// Newest first (owner or administrator): each change sent or to be sent, its status,
    /// attempts and the last attempt's outcome.
    #[oai(
        path = "/webhooks/:id/deliveries",
        method = "get",
        tag = "ApiTags::Webhooks",
        operation_id = "listWebhookDeliveries"
    )]
    async fn list_deliveries(
        &self,
        auth: BearerAuth,
        /// The webhook's id.
        id: Path<Uuid>,
        /// Page size.
        limit: Query<Limit>,
        /// Number of items to skip.
        offset: Query<Offset>,
    ) -> Answer<JsonBody<DeliveryPage>, { E400 | E401 | E404 | E500 | E503 }> {
        let page = (self.state.webhooks)
            .deliveries(&auth.0, id.0, limit.0.0, offset.0.0)
            .await?;
        Ok(JsonBody(page.into()))
    }

    /// Redeliver
    ///
    /// Queues the delivery again with the same `webhook-id` and a fresh retry window (owner
    /// or administrator); 202 with the delivery as queued.
    #[oai(
        path = "/webhooks/:id/deliveries/:delivery_id/redeliver",
        method = "post",
        tag = "ApiTags::Webhooks",
        operation_id = "redeliverWebhookDelivery"
    )]
    async fn redeliver(
        &self,
        auth: BearerAuth,
        /// The webhook's id.
        id: Path<Uuid>,
        /// The delivery's id.
        delivery_id: Path<Uuid>,
        /// Makes the request safe to retry: a retry with the same key, method, path and body
        /// gets the first answer again (`Idempotent-Replayed: true`) and changes nothing.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: IdempotencyKey,
    ) -> Answer<Idempotent<Accepted<DeliveryRead>>, { E401 | E404 | IDEMPOTENT | E500 | E503 }>
    {
        let key = idempotency_key.of(&auth.0, &render_accepted::<DeliveryRead>);
        let written = (self.state.webhooks)
            .redeliver(&auth.0, id.0, delivery_id.0, key)
            .await?;
        Ok(Idempotent::from_written(written))
    }
}
