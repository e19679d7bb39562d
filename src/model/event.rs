//! Events.

use poem_openapi::{Enum, Object};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;
use validator::{Validate, ValidationError};

use super::common::{FIELD_PARAM, Nullable, Timestamp, check_no_control_chars, check_single_line};
use crate::entity::event;

/// Largest capacity an event may have.
pub const MAX_CAPACITY: i64 = 1_000_000;

/// Lifecycle of an event: draft -> published | cancelled; published -> cancelled | completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Visible to its organizer and admins only.
    Draft,
    /// Public; accepts registrations until it ends.
    Published,
    /// Called off (final).
    Cancelled,
    /// Took place (final).
    Completed,
}

impl From<event::EventStatus> for EventStatus {
    fn from(s: event::EventStatus) -> Self {
        match s {
            event::EventStatus::Draft => EventStatus::Draft,
            event::EventStatus::Published => EventStatus::Published,
            event::EventStatus::Cancelled => EventStatus::Cancelled,
            event::EventStatus::Completed => EventStatus::Completed,
        }
    }
}

impl From<EventStatus> for event::EventStatus {
    fn from(s: EventStatus) -> Self {
        match s {
            EventStatus::Draft => event::EventStatus::Draft,
            EventStatus::Published => event::EventStatus::Published,
            EventStatus::Cancelled => event::EventStatus::Cancelled,
            EventStatus::Completed => event::EventStatus::Completed,
        }
    }
}

/// Who may see an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum, Serialize, Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum EventVisibility {
    /// Listed and readable by everyone (drafts excepted).
    #[default]
    Public,
    /// Seen only by its organizer, its staff, administrators and users holding an active
    /// registration; 404 to everyone else.
    Private,
}

impl From<event::Visibility> for EventVisibility {
    fn from(v: event::Visibility) -> Self {
        match v {
            event::Visibility::Public => EventVisibility::Public,
            event::Visibility::Private => EventVisibility::Private,
        }
    }
}

impl From<EventVisibility> for event::Visibility {
    fn from(v: EventVisibility) -> Self {
        match v {
            EventVisibility::Public => event::Visibility::Public,
            EventVisibility::Private => event::Visibility::Private,
        }
    }
}

/// Treats JSON `null` as the empty string for optional text fields.
fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// Validates a title: trimmed length 1..=200, no control characters.
pub fn check_title(value: &str) -> Result<(), ValidationError> {
    check_single_line(value, 1, 200)
}

/// Validates a description: at most 5000 characters; newlines and tabs allowed.
pub fn check_description(value: &str) -> Result<(), ValidationError> {
    check_no_control_chars(value, true)?;
    check_max_chars(value, 5000)
}

/// Validates a location: at most 300 characters on one line.
pub fn check_location(value: &str) -> Result<(), ValidationError> {
    check_no_control_chars(value, false)?;
    check_max_chars(value, 300)
}

fn check_max_chars(value: &str, max: usize) -> Result<(), ValidationError> {
    if value.chars().count() > max {
        let mut e = ValidationError::new("length");
        e.message = Some(format!("must be at most {max} characters").into());
        return Err(e);
    }
    Ok(())
}

/// Validates a capacity: 1..=1000000 or null (unlimited).
pub fn check_capacity(value: i64) -> Result<(), ValidationError> {
    if !(1..=MAX_CAPACITY).contains(&value) {
        let mut e = ValidationError::new("range");
        e.message =
            Some(format!("must be between 1 and {MAX_CAPACITY}, or null for unlimited").into());
        return Err(e);
    }
    Ok(())
}

/// `ends_at` must come after `starts_at`; reported on `ends_at`.
fn check_times(starts_at: &Timestamp, ends_at: &Timestamp) -> Result<(), ValidationError> {
    if ends_at <= starts_at {
        let mut e = ValidationError::new("order");
        e.message = Some("must be after starts_at".into());
        e.add_param(FIELD_PARAM.into(), &"ends_at");
        return Err(e);
    }
    Ok(())
}

/// Request to create an event; the caller becomes its organizer.
#[derive(Debug, Clone, Object, Deserialize, Validate)]
#[validate(schema(function = "check_create_times", skip_on_field_errors = false))]
pub struct EventCreate {
    /// Title, 1 to 200 characters after trimming; no control characters.
    #[oai(validator(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    ))]
    #[validate(custom(function = "check_title"))]
    pub title: String,
    /// Description, at most 5000 characters; no control characters but tab, newline and
    /// carriage return. Absent or null means "" (the default).
    #[oai(
        validator(
            max_length = 5000,
            pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
        ),
        default,
        nullable
    )]
    #[serde(default, deserialize_with = "null_as_empty")]
    #[validate(custom(function = "check_description"))]
    pub description: String,
    /// Location, at most 300 characters on one line (no control characters). Absent or null
    /// means "" (the default).
    #[oai(
        validator(max_length = 300, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"),
        default,
        nullable
    )]
    #[serde(default, deserialize_with = "null_as_empty")]
    #[validate(custom(function = "check_location"))]
    pub location: String,
    /// Start, RFC 3339. Past dates are allowed (imports); such events accept no registrations.
    pub starts_at: Timestamp,
    /// End, RFC 3339, after `starts_at`.
    pub ends_at: Timestamp,
    /// Seats, 1 to 1000000; absent or null for unlimited (the default).
    #[oai(validator(minimum(value = "1"), maximum(value = "1000000")), nullable)]
    #[serde(default)]
    #[validate(custom(function = "check_capacity"))]
    pub capacity: Option<i64>,
    /// Whether a full event queues registrations (default false).
    #[oai(default)]
    #[serde(default)]
    pub waitlist_enabled: bool,
    /// `draft` or `published`. Absent or null means `draft` (the default).
    #[oai(nullable)]
    #[serde(default)]
    #[validate(custom(function = "check_initial_status"))]
    pub status: Option<InitialStatus>,
    /// `public` (the default) or `private`.
    #[oai(default)]
    #[serde(default)]
    pub visibility: EventVisibility,
}

fn check_create_times(e: &EventCreate) -> Result<(), ValidationError> {
    check_times(&e.starts_at, &e.ends_at)
}

/// The statuses a new event may have: the spec offers only these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum EventCreateStatus {
    /// Visible to its organizer and admins only.
    Draft,
    /// Public; accepts registrations until it ends.
    Published,
}

/// `EventCreate.status`: documented as [`EventCreateStatus`], but parsed as any
/// [`EventStatus`] so that `cancelled` gets a field error (422) naming `status` rather than a
/// parse error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InitialStatus(pub EventStatus);

impl From<InitialStatus> for event::EventStatus {
    fn from(s: InitialStatus) -> Self {
        s.0.into()
    }
}

impl poem_openapi::types::Type for InitialStatus {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        EventCreateStatus::name()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        EventCreateStatus::schema_ref()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        EventCreateStatus::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl poem_openapi::types::ParseFromJSON for InitialStatus {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        EventStatus::parse_from_json(value)
            .map(InitialStatus)
            .map_err(poem_openapi::types::ParseError::propagate)
    }
}

impl poem_openapi::types::ToJSON for InitialStatus {
    fn to_json(&self) -> Option<serde_json::Value> {
        self.0.to_json()
    }
}

fn check_initial_status(status: &InitialStatus) -> Result<(), ValidationError> {
    match status.0 {
        EventStatus::Draft | EventStatus::Published => Ok(()),
        _ => {
            let mut e = ValidationError::new("status");
            e.message = Some("a new event is draft or published".into());
            Err(e)
        }
    }
}

/// An event as the API shows it.
#[derive(Debug, Clone, Object)]
pub struct EventRead {
    /// Identifier (UUIDv7).
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Description ("" when none).
    pub description: String,
    /// Location ("" when none).
    pub location: String,
    /// Start (UTC).
    pub starts_at: Timestamp,
    /// End (UTC).
    pub ends_at: Timestamp,
    /// Seats; null is unlimited.
    pub capacity: Nullable<i64>,
    /// Whether a full event queues registrations.
    pub waitlist_enabled: bool,
    /// Lifecycle status.
    pub status: EventStatus,
    /// The organizing user.
    pub organizer_id: Uuid,
    /// Confirmed plus checked-in attendees.
    pub confirmed_count: i64,
    /// Waitlisted attendees.
    pub waitlist_count: i64,
    /// Free seats; null when capacity is unlimited.
    pub available_seats: Nullable<i64>,
    /// Creation time (UTC).
    pub created_at: Timestamp,
    /// Last change of the event's own fields (UTC).
    pub updated_at: Timestamp,
    /// +1 on every change of the event's own fields (not on registrations); also the `ETag`.
    pub version: i64,
    /// `public` or `private`.
    pub visibility: EventVisibility,
}

impl From<event::Model> for EventRead {
    fn from(m: event::Model) -> Self {
        let capacity = m.capacity.map(i64::from);
        Self {
            id: m.id,
            title: m.title,
            description: m.description,
            location: m.location,
            starts_at: m.starts_at.into(),
            ends_at: m.ends_at.into(),
            capacity: capacity.into(),
            waitlist_enabled: m.waitlist_enabled,
            status: m.status.into(),
            organizer_id: m.organizer_id,
            confirmed_count: m.confirmed_count.into(),
            waitlist_count: m.waitlist_count.into(),
            available_seats: capacity
                .map(|c| (c - i64::from(m.confirmed_count)).max(0))
                .into(),
            created_at: m.created_at.into(),
            updated_at: m.updated_at.into(),
            version: m.version,
            visibility: m.visibility.into(),
        }
    }
}

/// The writable fields of an event, as JSON Patch sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
#[serde(deny_unknown_fields)]
#[validate(schema(function = "check_view_times"))]
pub struct EventPatchView {
    /// Title.
    #[validate(custom(function = "check_title"))]
    pub title: String,
    /// Description; a `remove` leaves it out, which clears it like `null`.
    #[serde(default, deserialize_with = "null_as_empty")]
    #[validate(custom(function = "check_description"))]
    pub description: String,
    /// Location; a `remove` clears it like `null`.
    #[serde(default, deserialize_with = "null_as_empty")]
    #[validate(custom(function = "check_location"))]
    pub location: String,
    /// Start.
    pub starts_at: Timestamp,
    /// End.
    pub ends_at: Timestamp,
    /// Seats; null is unlimited.
    #[serde(default)]
    #[validate(custom(function = "check_capacity"))]
    pub capacity: Option<i64>,
    /// Waitlist switch.
    pub waitlist_enabled: bool,
    /// Status.
    pub status: EventStatus,
    /// Visibility.
    pub visibility: EventVisibility,
}

fn check_view_times(v: &EventPatchView) -> Result<(), ValidationError> {
    check_times(&v.starts_at, &v.ends_at)
}

impl From<&event::Model> for EventPatchView {
    fn from(m: &event::Model) -> Self {
        Self {
            title: m.title.clone(),
            description: m.description.clone(),
            location: m.location.clone(),
            starts_at: m.starts_at.into(),
            ends_at: m.ends_at.into(),
            capacity: m.capacity.map(i64::from),
            waitlist_enabled: m.waitlist_enabled,
            status: m.status.into(),
            visibility: m.visibility.into(),
        }
    }
}

/// Sort orders of the event list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, Default)]
pub enum EventSort {
    /// Earliest start first (default).
    #[default]
    #[oai(rename = "starts_at")]
    StartsAt,
    /// Latest start first.
    #[oai(rename = "-starts_at")]
    StartsAtDesc,
    /// Oldest first.
    #[oai(rename = "created_at")]
    CreatedAt,
    /// Newest first.
    #[oai(rename = "-created_at")]
    CreatedAtDesc,
    /// Alphabetical by title.
    #[oai(rename = "title")]
    Title,
}

/// Filters of the event list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this status.
    pub status: Option<EventStatus>,
    /// Only this organizer.
    pub organizer_id: Option<Uuid>,
    /// Starting at or after.
    pub starts_after: Option<Timestamp>,
    /// Starting before.
    pub starts_before: Option<Timestamp>,
    /// Text in title or description (case-insensitive).
    pub q: Option<String>,
    /// Order.
    pub sort: EventSort,
}

/// A short view of an event, inside a registration.
#[derive(Debug, Clone, Object)]
pub struct EventSummary {
    /// Identifier.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Start (UTC).
    pub starts_at: Timestamp,
    /// Lifecycle status.
    pub status: EventStatus,
}

impl From<&event::Model> for EventSummary {
    fn from(m: &event::Model) -> Self {
        Self {
            id: m.id,
            title: m.title.clone(),
            starts_at: m.starts_at.into(),
            status: m.status.into(),
        }
    }
}

crate::page_type!(EventPage, EventRead, "One page of events.");
