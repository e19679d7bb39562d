//! Private events, event staff, invitations and check-in times.
//!
//! - `events.visibility`: `public` (listed for everyone) or `private` (seen only by the
//!   organizer, staff, administrators and users with an active registration).
//! - `event_staff`: one row per (event, user) with the role `co_organizer` or `checker`;
//!   deleting the event or the user deletes it.
//! - `invitations`: only the SHA-256 of a token is stored. A use is consumed by one
//!   conditional UPDATE (`uses < max_uses`), and the CHECK backs it: `uses` can never pass
//!   `max_uses`. `created_by` is kept without a foreign key: an invitation outlives its
//!   creator's account.
//! - `attendees.checked_in_at`: the time of the first scan (or of the status move).

use sea_orm_migration::prelude::*;

use crate::{
    m20261122_000001_create_users::Users,
    m20261122_000002_create_events_and_attendees::{Attendees, Events},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(
                        ColumnDef::new(EventsVisibility::Visibility)
                            .string_len(16)
                            .not_null()
                            .default("public")
                            .check(
                                Expr::col(EventsVisibility::Visibility)
                                    .is_in(["public", "private"]),
                            ),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Attendees::Table)
                    .add_column(
                        ColumnDef::new(AttendeesCheckIn::CheckedInAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Records checked in before the column existed: their last change was the check-in.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE attendees SET checked_in_at = updated_at WHERE status = 'checked_in'",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(EventStaff::Table)
                    .col(ColumnDef::new(EventStaff::EventId).uuid().not_null())
                    .col(ColumnDef::new(EventStaff::UserId).uuid().not_null())
                    .col(
                        ColumnDef::new(EventStaff::Role)
                            .string_len(16)
                            .not_null()
                            .check(Expr::col(EventStaff::Role).is_in(["co_organizer", "checker"])),
                    )
                    .col(
                        ColumnDef::new(EventStaff::AddedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .name("event_staff_pkey")
                            .col(EventStaff::EventId)
                            .col(EventStaff::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("event_staff_event_id_fkey")
                            .from(EventStaff::Table, EventStaff::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("event_staff_user_id_fkey")
                            .from(EventStaff::Table, EventStaff::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The event list finds the events a viewer staffs; account deletion finds their roles.
        manager
            .create_index(
                Index::create()
                    .name("event_staff_user_id_idx")
                    .table(EventStaff::Table)
                    .col(EventStaff::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invitations::Table)
                    .col(
                        ColumnDef::new(Invitations::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Invitations::EventId).uuid().not_null())
                    // Lower-case hex of the SHA-256 of the token.
                    .col(
                        ColumnDef::new(Invitations::TokenHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Invitations::MaxUses)
                            .integer()
                            .not_null()
                            .check(Expr::col(Invitations::MaxUses).between(1, 10_000)),
                    )
                    .col(
                        ColumnDef::new(Invitations::Uses)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Invitations::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Invitations::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(Invitations::CreatedBy).uuid().not_null())
                    .col(
                        ColumnDef::new(Invitations::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .check(
                        Expr::col(Invitations::Uses)
                            .gte(0)
                            .and(Expr::col(Invitations::Uses).lte(Expr::col(Invitations::MaxUses))),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("invitations_event_id_fkey")
                            .from(Invitations::Table, Invitations::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("invitations_token_hash_key")
                    .table(Invitations::Table)
                    .col(Invitations::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // The event's list, newest first.
        manager
            .create_index(
                Index::create()
                    .name("invitations_event_id_created_at_idx")
                    .table(Invitations::Table)
                    .col(Invitations::EventId)
                    .col(Invitations::CreatedAt)
                    .col(Invitations::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Invitations::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(EventStaff::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Attendees::Table)
                    .drop_column(AttendeesCheckIn::CheckedInAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(EventsVisibility::Visibility)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum EventsVisibility {
    Visibility,
}

#[derive(DeriveIden)]
enum AttendeesCheckIn {
    CheckedInAt,
}

#[derive(DeriveIden)]
pub enum EventStaff {
    Table,
    EventId,
    UserId,
    Role,
    AddedAt,
}

#[derive(DeriveIden)]
pub enum Invitations {
    Table,
    Id,
    EventId,
    TokenHash,
    MaxUses,
    Uses,
    ExpiresAt,
    RevokedAt,
    CreatedBy,
    CreatedAt,
}
