//! JSON Patch (RFC 6902) applied to a resource's patchable view, shared by every resource.
//!
//! The document is the view (a struct of the writable fields), never the stored row, so a
//! patch cannot reach a column the API does not expose. The `json-patch` crate applies the
//! operations atomically; this module decides which paths a caller may write and re-validates
//! the result with the same rules as a create.

use json_patch::{Patch, PatchOperation};
use serde::{Serialize, de::DeserializeOwned};
use validator::Validate;

use super::{Error, Result};
use crate::model::{FieldError, field_errors};

/// Most operations accepted in one patch document.
pub const MAX_OPERATIONS: usize = 100;

/// What a caller may do with one top-level member of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The caller may write it.
    Writable,
    /// The caller's role may never write it (403).
    Forbidden,
    /// Nobody writes it, or it does not exist (422).
    ReadOnly,
}

/// `If-Match` of a write: which versions it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `If-Match: *`: any current version.
    Any,
    /// A list of strong entity tags; weak tags never match (RFC 9110 strong comparison).
    Versions(Vec<i64>),
}

impl Precondition {
    /// Whether the current version satisfies the precondition.
    pub fn matches(&self, version: i64) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::Versions(v) => v.contains(&version),
        }
    }

    /// Checks an optional precondition against the current version (412 when it fails).
    pub fn check(precondition: Option<&Precondition>, version: i64) -> Result<()> {
        match precondition {
            Some(p) if !p.matches(version) => Err(Error::PreconditionFailed { current: version }),
            _ => Ok(()),
        }
    }
}

/// Refuses what the document's schema for a patch refuses, whatever the resource: more
/// than [`MAX_OPERATIONS`] operations, or a `path` or `from` that is not a JSON Pointer to a
/// member (`""`, the whole document, included) (422). Checked as the request is read, before
/// any precondition, and again by [`apply`].
pub fn check_document(patch: &Patch) -> Result<()> {
    if patch.0.len() > MAX_OPERATIONS {
        return Err(Error::Unprocessable(format!(
            "a patch may hold at most {MAX_OPERATIONS} operations, this one has {}",
            patch.0.len()
        )));
    }
    for (index, op) in patch.0.iter().enumerate() {
        let (path, from) = match op {
            PatchOperation::Add(o) => (o.path.as_str(), None),
            PatchOperation::Remove(o) => (o.path.as_str(), None),
            PatchOperation::Replace(o) => (o.path.as_str(), None),
            PatchOperation::Move(o) => (o.path.as_str(), Some(o.from.as_str())),
            PatchOperation::Copy(o) => (o.path.as_str(), Some(o.from.as_str())),
            PatchOperation::Test(o) => (o.path.as_str(), None),
        };
        for pointer in std::iter::once(path).chain(from) {
            if !is_member_pointer(pointer) {
                return Err(Error::Unprocessable(format!(
                    "operation {index}: `{pointer}` is not a JSON Pointer to a member such as \
                     /title; the whole resource cannot be replaced"
                )));
            }
        }
    }
    Ok(())
}

/// Whether `pointer` is a JSON Pointer (RFC 6901) below the root: `/`-separated tokens in
/// which `~` only starts `~0` or `~1` (the schema's `^(/([^/~]|~[01])*)+$`).
fn is_member_pointer(pointer: &str) -> bool {
    let Some(rest) = pointer.strip_prefix('/') else {
        return false;
    };
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

/// Applies `patch` to `view` for a caller whose rights are `access`, and returns the new view,
/// validated. Nothing is written: the caller persists the result (or not, if unchanged).
pub fn apply<V>(view: &V, patch: &Patch, access: impl Fn(&str) -> Access) -> Result<V>
where
    V: Serialize + DeserializeOwned + Validate,
{
    check_document(patch)?;
    for op in &patch.0 {
        for path in written_paths(op) {
            check_path(path, &access)?;
        }
    }

    let mut doc = serde_json::to_value(view).map_err(anyhow::Error::from)?;
    let mut cleared = Vec::new();
    // One operation at a time, on a copy of the view: a failure discards the copy, so the
    // patch stays atomic, and each removed member can be put back as null before the next
    // operation reads the document.
    for (index, op) in patch.0.iter().enumerate() {
        json_patch::patch(&mut doc, std::slice::from_ref(op)).map_err(|mut e| {
            e.operation = index;
            Error::Unprocessable(e.to_string())
        })?;
        if let Some(member) = removed_member(op)
            && let Some(members) = doc.as_object_mut()
            && !members.contains_key(&member)
        {
            members.insert(member.clone(), serde_json::Value::Null);
            cleared.push(member);
        }
    }

    let patched: V = serde_path_to_error::deserialize(doc.clone()).map_err(|e| {
        let mut message = e.inner().to_string();
        let path = e.path().to_string();
        let field = match path.trim_start_matches('.') {
            // A missing required member is reported on the parent: name the member itself.
            "" | "?" => missing_field(&message).unwrap_or("body").to_owned(),
            field => field.to_owned(),
        };
        if cleared.contains(&field) && doc.get(&field).is_some_and(serde_json::Value::is_null) {
            message = "is required; it cannot be removed".to_owned();
        }
        Error::Validation(vec![FieldError::new(field, message)])
    })?;
    patched
        .validate()
        .map_err(|e| Error::Validation(field_errors(&e)))?;
    Ok(patched)
}

/// The top-level member an operation takes out of the document: the target of `remove`, the
/// source of `move`. The API reads a removed optional member as cleared (null, or "" for
/// text), exactly as if it had been replaced with null, so it is put back as null.
fn removed_member(op: &PatchOperation) -> Option<String> {
    let pointer = match op {
        PatchOperation::Remove(o) => &o.path,
        PatchOperation::Move(o) if o.from != o.path => &o.from,
        _ => return None,
    };
    let (member, rest) = pointer.split_front()?;
    rest.is_root().then(|| member.decoded().into_owned())
}

/// The member named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// The paths an operation changes: `test` reads only, `copy` writes its target, `move`
/// removes its source and writes its target.
fn written_paths(op: &PatchOperation) -> Vec<&str> {
    match op {
        PatchOperation::Add(o) => vec![o.path.as_str()],
        PatchOperation::Remove(o) => vec![o.path.as_str()],
        PatchOperation::Replace(o) => vec![o.path.as_str()],
        PatchOperation::Move(o) => vec![o.from.as_str(), o.path.as_str()],
        PatchOperation::Copy(o) => vec![o.path.as_str()],
        PatchOperation::Test(_) => vec![],
    }
}

/// Refuses writes to the whole document, to read-only members and to forbidden members.
fn check_path(path: &str, access: &impl Fn(&str) -> Access) -> Result<()> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(Error::Unprocessable(
            "the whole resource cannot be replaced; patch its fields".into(),
        ));
    };
    let raw = rest.split('/').next().unwrap_or_default();
    // JSON Pointer escapes (RFC 6901): ~1 is '/', ~0 is '~'.
    let member = raw.replace("~1", "/").replace("~0", "~");
    match access(&member) {
        Access::Writable => Ok(()),
        Access::Forbidden => Err(Error::Forbidden(format!(
            "your role may not change /{member}"
        ))),
        Access::ReadOnly => Err(Error::Unprocessable(format!(
            "/{member} is read-only or does not exist"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Validate)]
    #[serde(deny_unknown_fields)]
    struct View {
        #[validate(length(min = 1, max = 5))]
        name: String,
        count: Option<u32>,
        admin_only: bool,
    }

    fn view() -> View {
        View {
            name: "abc".into(),
            count: Some(2),
            admin_only: false,
        }
    }

    fn access(member: &str) -> Access {
        match member {
            "name" | "count" => Access::Writable,
            "admin_only" => Access::Forbidden,
            _ => Access::ReadOnly,
        }
    }

    fn patch(v: serde_json::Value) -> Patch {
        serde_json::from_value(v).expect("valid patch document")
    }

    #[test]
    fn replacing_a_writable_field_changes_only_that_field() {
        let out = apply(
            &view(),
            &patch(serde_json::json!([{"op": "replace", "path": "/name", "value": "xy"}])),
            access,
        )
        .unwrap();
        assert_eq!(
            out,
            View {
                name: "xy".into(),
                ..view()
            }
        );
    }

    #[test]
    fn a_failing_test_operation_rejects_the_whole_patch() {
        let p = patch(serde_json::json!([
            {"op": "replace", "path": "/name", "value": "xy"},
            {"op": "test", "path": "/count", "value": 3}
        ]));
        assert!(matches!(
            apply(&view(), &p, access),
            Err(Error::Unprocessable(_))
        ));
    }

    #[test]
    fn writing_a_forbidden_member_is_forbidden_even_through_move() {
        let p = patch(serde_json::json!([{"op": "move", "from": "/admin_only", "path": "/name"}]));
        assert!(matches!(
            apply(&view(), &p, access),
            Err(Error::Forbidden(_))
        ));
    }

    #[test]
    fn writing_an_unknown_or_root_path_is_unprocessable() {
        for p in [
            serde_json::json!([{"op": "add", "path": "/id", "value": 1}]),
            serde_json::json!([{"op": "replace", "path": "", "value": {}}]),
        ] {
            assert!(matches!(
                apply(&view(), &patch(p), access),
                Err(Error::Unprocessable(_))
            ));
        }
    }

    #[test]
    fn a_result_breaking_the_rules_names_the_field() {
        let p = patch(serde_json::json!([{"op": "replace", "path": "/count", "value": "many"}]));
        match apply(&view(), &p, access) {
            Err(Error::Validation(errors)) => assert_eq!(errors[0].field, "count"),
            other => panic!("expected a validation error, got {other:?}"),
        }
        let p = patch(serde_json::json!([{"op": "replace", "path": "/name", "value": "toolong"}]));
        match apply(&view(), &p, access) {
            Err(Error::Validation(errors)) => assert_eq!(errors[0].field, "name"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn removing_a_required_member_names_it() {
        let p = patch(serde_json::json!([{"op": "remove", "path": "/name"}]));
        match apply(&view(), &p, access) {
            Err(Error::Validation(errors)) => assert_eq!(errors[0].field, "name"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn removing_an_optional_member_clears_it_and_a_later_test_sees_null() {
        let p = patch(serde_json::json!([
            {"op": "remove", "path": "/count"},
            {"op": "test", "path": "/count", "value": null}
        ]));
        let out = apply(&view(), &p, access).unwrap();
        assert_eq!(out.count, None);
    }

    #[test]
    fn moving_out_of_an_optional_member_clears_the_source() {
        let p = patch(serde_json::json!([
            {"op": "replace", "path": "/count", "value": 4},
            {"op": "move", "from": "/count", "path": "/count"}
        ]));
        // A move onto itself changes nothing.
        assert_eq!(apply(&view(), &p, access).unwrap().count, Some(4));
        let p = patch(serde_json::json!([
            {"op": "move", "from": "/count", "path": "/name"},
            {"op": "test", "path": "/name", "value": 2},
            {"op": "test", "path": "/count", "value": null},
            {"op": "replace", "path": "/name", "value": "ok"}
        ]));
        let out = apply(&view(), &p, access).unwrap();
        assert_eq!((out.name.as_str(), out.count), ("ok", None));
    }

    #[test]
    fn a_failing_operation_is_reported_with_its_own_index() {
        let p = patch(serde_json::json!([
            {"op": "replace", "path": "/name", "value": "xy"},
            {"op": "test", "path": "/name", "value": "no"}
        ]));
        match apply(&view(), &p, access) {
            Err(Error::Unprocessable(message)) => assert!(message.contains("'/1'"), "{message}"),
            other => panic!("expected an unprocessable patch, got {other:?}"),
        }
    }

    #[test]
    fn more_than_the_maximum_number_of_operations_is_refused() {
        let ops: Vec<_> = (0..=MAX_OPERATIONS)
            .map(|_| serde_json::json!({"op": "test", "path": "/name", "value": "abc"}))
            .collect();
        let p = patch(serde_json::Value::Array(ops));
        assert!(matches!(
            apply(&view(), &p, access),
            Err(Error::Unprocessable(_))
        ));
    }

    #[test]
    fn preconditions_compare_versions() {
        assert!(Precondition::Any.matches(7));
        assert!(Precondition::Versions(vec![3, 7]).matches(7));
        assert!(matches!(
            Precondition::check(Some(&Precondition::Versions(vec![1])), 2),
            Err(Error::PreconditionFailed { current: 2 })
        ));
        assert!(Precondition::check(None, 2).is_ok());
    }
}
