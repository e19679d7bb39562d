//! The change feed: per event, global, and live (Server-Sent Events).

use std::{task::Poll, time::Duration};

use bytes::Bytes;
use futures_util::{StreamExt, stream::BoxStream};
use poem::{Body, IntoResponse, Response, web::sse::Event};
use poem_openapi::{
    ApiResponse, OpenApi, Union,
    param::{Header, Path, Query},
    payload::Payload,
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use uuid::Uuid;

use super::{
    auth::{BearerAuth, MaybeAuth},
    common::{Answer, ApiTags, E400, E401, E403, E404, E410, E500, E503},
    payload::JsonBody,
};
use crate::{
    model::{Change, ChangePage, GlobalChangePage},
    service::changes::{DEFAULT_FEED_LIMIT, StreamSnapshot},
    state::AppState,
};

/// A comment line at least this often keeps proxies from closing an idle stream.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The change feed.
pub struct ChangesApi {
    /// Services.
    pub state: AppState,
}

/// A message of an event stream: the snapshot first, then changes.
#[derive(Debug, Clone, Union)]
pub enum StreamMessage {
    /// `event: snapshot`: the event's counts and the `seq` they include.
    Snapshot(StreamSnapshot),
    /// `event: <type>`, `id: <seq>`: one change.
    Change(Change),
}

/// An open stream.
#[derive(ApiResponse)]
pub enum StreamResponse {
    /// `text/event-stream`: `event: snapshot`, then every change as `id: <seq>`,
    /// `event: <type>`, `data: <Change>`; a comment line at least every 15 s.
    #[oai(status = 200)]
    Ok(LiveEvents),
}

/// A stream's messages as `text/event-stream`, written straight into the response body.
///
/// Documented like poem-openapi's `EventStream`; poem's SSE response would instead wrap the
/// messages in a reader and read them back through a 4 KiB buffer held by every open stream.
pub struct LiveEvents(BoxStream<'static, StreamMessage>);

impl Payload for LiveEvents {
    const CONTENT_TYPE: &'static str = "text/event-stream";

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            items: Some(Box::new(StreamMessage::schema_ref())),
            ..MetaSchema::new_with_format("array", "event-stream")
        }))
    }

    fn register(registry: &mut Registry) {
        StreamMessage::register(registry);
    }
}

impl IntoResponse for LiveEvents {
    fn into_response(self) -> Response {
        let mut messages = self.0;
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        let body = futures_util::stream::poll_fn(move |cx| {
            if let Poll::Ready(message) = messages.poll_next_unpin(cx) {
                return Poll::Ready(message.map(|m| Ok(Bytes::from(to_sse(m).to_string()))));
            }
            heartbeat
                .poll_tick(cx)
                .map(|_| Some(Ok::<_, std::io::Error>(Bytes::from_static(b":\n\n"))))
        });
        Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .header("X-Accel-Buffering", "no")
            .header("Cache-Control", "no-cache")
            .body(Body::from_bytes_stream(body))
    }
}

fn feed_limit() -> u32 {
    DEFAULT_FEED_LIMIT
}

fn to_sse(message: StreamMessage) -> Event {
    let data = message.to_json_string();
    match message {
        StreamMessage::Snapshot(s) => Event::message(data)
            .event_type("snapshot")
            .id(s.seq.to_string()),
        StreamMessage::Change(c) => Event::message(data)
            .event_type(c.kind.as_str())
            .id(c.seq.to_string()),
    }
}

#[OpenApi(prefix_path = "/api/v1")]
impl ChangesApi {
    /// An event's changes
    ///
    /// The changes with `seq` greater than `after`, oldest first, for anyone who can see the
    /// event. Viewers who are not its organizer, staff or an administrator get `data` and
    /// `actor_id` as null on `attendee.*`, `staff.*` and `invitation.*` changes. Pass
    /// `next_after` back as `after` to read on; an `after` older than the retention period is
    /// 410 `changes-expired`.
    #[oai(
        path = "/events/:id/changes",
        method = "get",
        tag = "ApiTags::Changes",
        operation_id = "listEventChanges"
    )]
    async fn event_changes(
        &self,
        auth: MaybeAuth,
        /// The event.
        id: Path<Uuid>,
        /// Return the changes after this `seq` (0: from the first).
        #[oai(default, validator(minimum(value = "0")))]
        after: Query<i64>,
        /// Page size, 1 to 1000.
        #[oai(
            default = "feed_limit",
            validator(minimum(value = "1"), maximum(value = "1000"))
        )]
        limit: Query<u32>,
    ) -> Answer<JsonBody<ChangePage>, { E400 | E401 | E404 | E410 | E500 | E503 }> {
        Ok(JsonBody(
            self.state
                .changes
                .for_event(auth.0.as_ref(), id.0, after.0, limit.0)
                .await?,
        ))
    }

    /// Every change, for delta sync
    ///
    /// Every event's changes after the cursor (administrators only). Paging from any cursor
    /// never skips a committed change and never returns one twice, even while writes commit
    /// out of order on several instances. Start without `after`; pass `next_cursor` back.
    #[oai(
        path = "/changes",
        method = "get",
        tag = "ApiTags::Changes",
        operation_id = "listChanges"
    )]
    async fn changes(
        &self,
        auth: BearerAuth,
        /// The opaque cursor of a previous page (`next_cursor`).
        #[oai(validator(max_length = 200))]
        after: Query<Option<String>>,
        /// Page size, 1 to 1000.
        #[oai(
            default = "feed_limit",
            validator(minimum(value = "1"), maximum(value = "1000"))
        )]
        limit: Query<u32>,
    ) -> Answer<JsonBody<GlobalChangePage>, { E400 | E401 | E403 | E410 | E500 | E503 }> {
        Ok(JsonBody(
            self.state
                .changes
                .global(&auth.0, after.0.as_deref(), limit.0)
                .await?,
        ))
    }

    /// Follow an event live
    ///
    /// Server-Sent Events: first `event: snapshot` with the event's counts and current `seq`,
    /// then every change. Reconnecting with `Last-Event-ID` (or `?after=`) resumes after
    /// that `seq` with nothing lost. At most `MAX_STREAMS` streams per server (503 beyond).
    #[oai(
        path = "/events/:id/stream",
        method = "get",
        tag = "ApiTags::Changes",
        operation_id = "streamEvent"
    )]
    async fn stream(
        &self,
        auth: MaybeAuth,
        /// The event.
        id: Path<Uuid>,
        /// Resume after this `seq` (used when `Last-Event-ID` is absent).
        #[oai(validator(minimum(value = "0")))]
        after: Query<Option<i64>>,
        /// Resume after this `seq` (sent by browsers when they reconnect).
        #[oai(name = "Last-Event-ID", validator(minimum(value = "0")))]
        last_event_id: Header<Option<i64>>,
    ) -> Answer<StreamResponse, { E400 | E401 | E404 | E410 | E500 | E503 }> {
        let resume = last_event_id.0.or(after.0);
        let (snapshot, changes) = self
            .state
            .changes
            .open_stream(auth.0.as_ref(), id.0, resume)
            .await?;
        let messages = futures_util::stream::once(async move { StreamMessage::Snapshot(snapshot) })
            .chain(changes.map(StreamMessage::Change))
            .boxed();
        Ok(StreamResponse::Ok(LiveEvents(messages)))
    }
}
