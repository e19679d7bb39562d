//! Queries on `users`.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use uuid::Uuid;

use super::Result;
use crate::entity::user::{self, Entity as Users};

/// A user to insert.
pub struct NewUser {
    /// Id (UUIDv7).
    pub id: Uuid,
    /// Email as given.
    pub email: String,
    /// Lower-cased email.
    pub email_normalized: String,
    /// Trimmed display name.
    pub full_name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: user::Role,
    /// Creation time.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Inserts a user with version 1.
pub async fn insert(db: &impl ConnectionTrait, new: NewUser) -> Result<user::Model> {
    let model = user::ActiveModel {
        id: Set(new.id),
        email: Set(new.email),
        email_normalized: Set(new.email_normalized),
        full_name: Set(new.full_name),
        password_hash: Set(new.password_hash),
        role: Set(new.role),
        created_at: Set(new.now),
        updated_at: Set(new.now),
        version: Set(1),
    };
    Ok(model.insert(db).await?)
}

/// The user with this id.
pub async fn find_by_id(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<user::Model>> {
    Ok(Users::find_by_id(id).one(db).await?)
}

/// The user with this normalised email.
pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email_normalized: &str,
) -> Result<Option<user::Model>> {
    Ok(Users::find()
        .filter(user::Column::EmailNormalized.eq(email_normalized))
        .one(db)
        .await?)
}

/// A page of users whose email or name contains `q` (case-insensitive), oldest first, and
/// the number of matches.
pub async fn list(
    db: &impl ConnectionTrait,
    q: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<(Vec<user::Model>, u64)> {
    if q.is_some_and(|q| q.contains('\0')) {
        // Stored text never holds NUL (and PostgreSQL cannot even compare it): no match.
        return Ok((Vec::new(), 0));
    }
    let mut query = Users::find();
    if let Some(q) = q.filter(|q| !q.is_empty()) {
        let pattern = contains_pattern(&q.to_lowercase());
        query = query.filter(
            Expr::col(user::Column::EmailNormalized)
                .like(LikeExpr::new(pattern.clone()).escape('\\'))
                .or(Expr::expr(Func::lower(Expr::col(user::Column::FullName)))
                    .like(LikeExpr::new(pattern).escape('\\'))),
        );
    }
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_asc(user::Column::CreatedAt)
        .order_by_asc(user::Column::Id)
        .limit(limit)
        .offset(offset)
        .all(db)
        .await?;
    Ok((items, total))
}

/// `%q%` with LIKE's wildcards in `q` escaped, so a search for `50%` means the text `50%`.
pub fn contains_pattern(q: &str) -> String {
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// Changes to a user's writable fields.
pub struct UserChanges {
    /// New email and its normalised form.
    pub email: Option<(String, String)>,
    /// New display name.
    pub full_name: Option<String>,
    /// New password hash.
    pub password_hash: Option<String>,
    /// New role.
    pub role: Option<user::Role>,
    /// Time of the change.
    pub now: chrono::DateTime<chrono::Utc>,
}

/// Applies `changes` if the row is still at `expected_version`, bumping the version.
/// `None` when the row changed or vanished meanwhile (optimistic concurrency).
pub async fn update_if_version(
    db: &impl ConnectionTrait,
    id: Uuid,
    expected_version: i64,
    changes: UserChanges,
) -> Result<Option<user::Model>> {
    let mut update = Users::update_many()
        .col_expr(
            user::Column::Version,
            Expr::col(user::Column::Version).add(1),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(changes.now))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::Version.eq(expected_version));
    if let Some((email, normalized)) = changes.email {
        update = update
            .col_expr(user::Column::Email, Expr::value(email))
            .col_expr(user::Column::EmailNormalized, Expr::value(normalized));
    }
    if let Some(name) = changes.full_name {
        update = update.col_expr(user::Column::FullName, Expr::value(name));
    }
    if let Some(hash) = changes.password_hash {
        update = update.col_expr(user::Column::PasswordHash, Expr::value(hash));
    }
    if let Some(role) = changes.role {
        update = update.col_expr(user::Column::Role, Expr::value(role));
    }
    let result = update.exec(db).await?;
    if result.rows_affected == 0 {
        return Ok(None);
    }
    find_by_id(db, id).await
}

/// Sets the role of the user with this normalised email; the updated user, if any.
pub async fn promote_to_admin(
    db: &impl ConnectionTrait,
    email_normalized: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<user::Model>> {
    let Some(found) = find_by_email(db, email_normalized).await? else {
        return Ok(None);
    };
    if found.role == user::Role::Admin {
        return Ok(Some(found));
    }
    let changes = UserChanges {
        email: None,
        full_name: None,
        password_hash: None,
        role: Some(user::Role::Admin),
        now,
    };
    update_if_version(db, found.id, found.version, changes).await
}

/// Deletes the user; whether a row went.
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool> {
    Ok(Users::delete_by_id(id).exec(db).await?.rows_affected > 0)
}
