//! Types shared by every resource: pages, field errors, validation helpers.

use poem_openapi::{
    Object,
    types::{ParseFromJSON, ToJSON},
};
use serde::Serialize;
use validator::ValidationError;

/// Default page size of every list.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size of every list.
pub const MAX_LIMIT: u32 = 100;
/// Largest `offset` of every list.
pub const MAX_OFFSET: u64 = 1_000_000_000;

/// One page of a list, as services return it; the API shows it as a named page type
/// (`EventPage`...), made by [`page_type!`](crate::page_type).
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items of this page, in the list's stable order.
    pub items: Vec<T>,
    /// Number of items matching the filters, over all pages.
    pub total: u64,
    /// Page size used.
    pub limit: u32,
    /// Number of items skipped.
    pub offset: u64,
}

/// Declares the API's page type of one item type: `{items, total, limit, offset}` with a
/// plain schema name (a generic `Page<T>` would be named `Page_EventRead` in the spec).
#[macro_export]
macro_rules! page_type {
    ($name:ident, $item:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, poem_openapi::Object)]
        pub struct $name {
            /// The items of this page, in the list's stable order.
            pub items: Vec<$item>,
            /// Number of items matching the filters, over all pages.
            pub total: u64,
            /// Page size used.
            pub limit: u32,
            /// Number of items skipped.
            pub offset: u64,
        }

        impl From<$crate::model::Page<$item>> for $name {
            fn from(page: $crate::model::Page<$item>) -> Self {
                Self {
                    items: page.items,
                    total: page.total,
                    limit: page.limit,
                    offset: page.offset,
                }
            }
        }
    };
}

/// The `limit` query parameter of every list: page size, 1 to [`MAX_LIMIT`], default
/// [`DEFAULT_LIMIT`]. One definition, so that every list documents and checks the same rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub u32);

impl Default for Limit {
    fn default() -> Self {
        Limit(DEFAULT_LIMIT)
    }
}

/// The `offset` query parameter of every list: items to skip, 0 to [`MAX_OFFSET`], default 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offset(pub u64);

/// An optional integer query parameter with a range and a default.
fn paging_schema(
    format: &'static str,
    description: &'static str,
    (min, max): (u64, u64),
    default: u64,
) -> poem_openapi::registry::MetaSchemaRef {
    poem_openapi::registry::MetaSchemaRef::Inline(Box::new(poem_openapi::registry::MetaSchema {
        description: Some(description),
        minimum: Some(min as f64),
        maximum: Some(max as f64),
        default: Some(default.into()),
        ..poem_openapi::registry::MetaSchema::new_with_format("integer", format)
    }))
}

/// Parses one paging parameter within `min..=max`; absent means `default`.
fn parse_paging<I: IntoIterator<Item = A>, A: AsRef<str>>(
    values: I,
    (min, max): (u64, u64),
    default: u64,
) -> Result<u64, String> {
    let Some(value) = values.into_iter().next() else {
        return Ok(default);
    };
    match value.as_ref().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be an integer from {min} to {max}")),
    }
}

macro_rules! paging_param {
    ($ty:ident, $inner:ty, $format:literal, $description:literal, $range:expr, $default:expr) => {
        impl poem_openapi::types::Type for $ty {
            const IS_REQUIRED: bool = false;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
                paging_schema($format, $description, $range, $default as u64)
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

        impl poem_openapi::types::ParseFromParameter for $ty {
            fn parse_from_parameter(value: &str) -> poem_openapi::types::ParseResult<Self> {
                Self::parse_from_parameters([value])
            }

            fn parse_from_parameters<I: IntoIterator<Item = A>, A: AsRef<str>>(
                values: I,
            ) -> poem_openapi::types::ParseResult<Self> {
                parse_paging(values, $range, $default as u64)
                    .map(|n| $ty(n as $inner))
                    .map_err(poem_openapi::types::ParseError::custom)
            }
        }
    };
}

paging_param!(
    Limit,
    u32,
    "int32",
    "Page size.",
    (1, MAX_LIMIT as u64),
    DEFAULT_LIMIT
);
paging_param!(
    Offset,
    u64,
    "int64",
    "Number of items to skip.",
    (0, MAX_OFFSET),
    0
);

/// A response field that is always sent and may be `null` (`required` and `nullable` in the
/// spec). poem-openapi makes every `Option` field optional, which generated clients read as
/// "may be missing".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nullable<T>(pub Option<T>);

impl<T> From<Option<T>> for Nullable<T> {
    fn from(value: Option<T>) -> Self {
        Nullable(value)
    }
}

impl<T: poem_openapi::types::Type> poem_openapi::types::Type for Nullable<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> std::borrow::Cow<'static, str> {
        format!("Nullable_{}", T::name()).into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        match T::schema_ref() {
            poem_openapi::registry::MetaSchemaRef::Inline(mut schema) => {
                schema.nullable = true;
                poem_openapi::registry::MetaSchemaRef::Inline(schema)
            }
            reference => poem_openapi::registry::MetaSchemaRef::Inline(Box::new(
                poem_openapi::registry::MetaSchema {
                    nullable: true,
                    all_of: vec![reference],
                    ..poem_openapi::registry::MetaSchema::ANY
                },
            )),
        }
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().and_then(T::as_raw_value)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Some(value) => value.raw_element_iter(),
            None => Box::new(std::iter::empty()),
        }
    }
}

impl<T: ToJSON> ToJSON for Nullable<T> {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(
            self.0
                .as_ref()
                .and_then(ToJSON::to_json)
                .unwrap_or(serde_json::Value::Null),
        )
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Nullable<T> {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        match value {
            None | Some(serde_json::Value::Null) => Ok(Nullable(None)),
            value => T::parse_from_json(value)
                .map(|v| Nullable(Some(v)))
                .map_err(poem_openapi::types::ParseError::propagate),
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Object, Serialize)]
pub struct FieldError {
    /// The field, as named in the request (`capacity`, `email`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Param of a struct-level `ValidationError` naming the field it is about.
pub const FIELD_PARAM: &str = "field";

/// Flattens `validator` errors into `{field, message}` pairs, sorted by field for stable output.
pub fn field_errors(errors: &validator::ValidationErrors) -> Vec<FieldError> {
    let mut out: Vec<FieldError> = errors
        .field_errors()
        .into_iter()
        .flat_map(|(field, errs)| {
            errs.iter().map(move |e| {
                let message = e
                    .message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| describe(e));
                // Struct-level checks land under `__all__`; they name their field in a param.
                let field = match e.params.get(FIELD_PARAM).and_then(|v| v.as_str()) {
                    Some(named) => named.to_owned(),
                    None => field.to_string(),
                };
                FieldError::new(field, message)
            })
        })
        .collect();
    out.sort_by(|a, b| a.field.cmp(&b.field));
    out
}

/// A readable message for a built-in validator failure.
fn describe(e: &ValidationError) -> String {
    let param = |name: &str| e.params.get(name).map(|v| v.to_string());
    match e.code.as_ref() {
        "email" => "must be a valid email address".into(),
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("length must be between {min} and {max} characters"),
            (None, Some(max)) => format!("length must be at most {max} characters"),
            (Some(min), None) => format!("length must be at least {min} characters"),
            _ => "has an invalid length".into(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            _ => "is out of range".into(),
        },
        code => format!("is invalid ({code})"),
    }
}

/// Counts characters (not bytes) of the trimmed value, as users count them.
fn trimmed_chars(value: &str) -> usize {
    value.trim().chars().count()
}

/// Refuses control characters (NUL and friends), which PostgreSQL cannot store and no
/// display wants. `multiline` allows tab, newline and carriage return.
pub fn check_no_control_chars(value: &str, multiline: bool) -> Result<(), ValidationError> {
    let bad = value
        .chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')));
    if bad {
        let mut e = ValidationError::new("control_characters");
        e.message = Some("must not contain control characters".into());
        return Err(e);
    }
    Ok(())
}

/// A single-line text whose trimmed length is within `min..=max` characters.
pub fn check_single_line(value: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    check_no_control_chars(value, false)?;
    let len = trimmed_chars(value);
    if len < min || len > max {
        let mut e = ValidationError::new("length");
        e.message = Some(if min == 1 {
            format!("must be 1 to {max} characters (surrounding spaces are removed)").into()
        } else {
            format!("must be {min} to {max} characters").into()
        });
        return Err(e);
    }
    Ok(())
}

/// An instant, written as RFC 3339 in UTC with a `Z` (`2027-03-01T18:00:00Z`); any offset is
/// accepted on input and converted to UTC. Precision: microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub chrono::DateTime<chrono::Utc>);

impl Timestamp {
    /// RFC 3339 text with `Z`.
    pub fn to_rfc3339(&self) -> String {
        self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    }

    /// Parses RFC 3339 text with any offset, truncating below microseconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Timestamp(crate::time::truncate_micros(t.with_timezone(&chrono::Utc))))
            .map_err(|e| {
                format!("`{text}` is not an RFC 3339 timestamp such as 2027-03-01T18:00:00Z ({e})")
            })
    }
}

impl From<chrono::DateTime<chrono::Utc>> for Timestamp {
    fn from(t: chrono::DateTime<chrono::Utc>) -> Self {
        Timestamp(t)
    }
}

impl poem_openapi::types::Type for Timestamp {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        "string_date-time".into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        poem_openapi::registry::MetaSchemaRef::Inline(Box::new(
            poem_openapi::registry::MetaSchema::new_with_format("string", "date-time"),
        ))
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

impl poem_openapi::types::ToJSON for Timestamp {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(serde_json::Value::String(self.to_rfc3339()))
    }
}

impl ParseFromJSON for Timestamp {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        match value {
            Some(serde_json::Value::String(s)) => {
                Timestamp::parse(&s).map_err(poem_openapi::types::ParseError::custom)
            }
            other => Err(poem_openapi::types::ParseError::expected_type(
                other.unwrap_or_default(),
            )),
        }
    }
}

impl poem_openapi::types::ParseFromParameter for Timestamp {
    fn parse_from_parameter(value: &str) -> poem_openapi::types::ParseResult<Self> {
        Timestamp::parse(value).map_err(poem_openapi::types::ParseError::custom)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}
