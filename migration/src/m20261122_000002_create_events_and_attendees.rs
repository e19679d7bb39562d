//! Events and their attendees. Counters live on the event row so that one conditional
//! UPDATE decides a seat, and CHECK constraints back the capacity rule on both backends.

use sea_orm_migration::prelude::*;

use crate::m20261122_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(ColumnDef::new(Events::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Events::Title).string_len(800).not_null())
                    .col(
                        ColumnDef::new(Events::Description)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(Events::Location)
                            .text()
                            .not_null()
                            .default(""),
                    )
                    .col(
                        ColumnDef::new(Events::StartsAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Events::EndsAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Events::Capacity).integer().null().check(
                            Expr::col(Events::Capacity)
                                .is_null()
                                .or(Expr::col(Events::Capacity).between(1, 1_000_000)),
                        ),
                    )
                    .col(
                        ColumnDef::new(Events::WaitlistEnabled)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Events::Status)
                            .string_len(16)
                            .not_null()
                            .check(Expr::col(Events::Status).is_in([
                                "draft",
                                "published",
                                "cancelled",
                                "completed",
                            ])),
                    )
                    .col(ColumnDef::new(Events::OrganizerId).uuid().not_null())
                    .col(
                        ColumnDef::new(Events::ConfirmedCount)
                            .integer()
                            .not_null()
                            .default(0)
                            .check(Expr::col(Events::ConfirmedCount).gte(0)),
                    )
                    .col(
                        ColumnDef::new(Events::WaitlistCount)
                            .integer()
                            .not_null()
                            .default(0)
                            .check(Expr::col(Events::WaitlistCount).gte(0)),
                    )
                    .col(
                        ColumnDef::new(Events::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Events::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Events::Version)
                            .big_integer()
                            .not_null()
                            .default(1),
                    )
                    // The rule no load may break: never more confirmed than seats.
                    .check(
                        Expr::col(Events::Capacity)
                            .is_null()
                            .or(Expr::col(Events::ConfirmedCount).lte(Expr::col(Events::Capacity))),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("events_organizer_id_fkey")
                            .from(Events::Table, Events::OrganizerId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "events_starts_at_id_idx",
                vec![Events::StartsAt, Events::Id],
            ),
            (
                "events_created_at_id_idx",
                vec![Events::CreatedAt, Events::Id],
            ),
            (
                "events_status_starts_at_idx",
                vec![Events::Status, Events::StartsAt, Events::Id],
            ),
            (
                "events_organizer_id_idx",
                vec![Events::OrganizerId, Events::StartsAt],
            ),
            ("events_title_id_idx", vec![Events::Title, Events::Id]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Events::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Attendees::Table)
                    .col(
                        ColumnDef::new(Attendees::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Attendees::EventId).uuid().not_null())
                    .col(ColumnDef::new(Attendees::UserId).uuid().not_null())
                    .col(
                        ColumnDef::new(Attendees::Status)
                            .string_len(16)
                            .not_null()
                            .check(Expr::col(Attendees::Status).is_in([
                                "confirmed",
                                "waitlisted",
                                "cancelled",
                                "checked_in",
                            ])),
                    )
                    .col(ColumnDef::new(Attendees::WaitlistPosition).integer().null())
                    .col(
                        ColumnDef::new(Attendees::RegisteredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Attendees::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Attendees::Version)
                            .big_integer()
                            .not_null()
                            .default(1),
                    )
                    // A position exactly while waitlisted.
                    .check(
                        Expr::col(Attendees::Status)
                            .eq("waitlisted")
                            .and(Expr::col(Attendees::WaitlistPosition).gte(1))
                            .or(Expr::col(Attendees::Status)
                                .ne("waitlisted")
                                .and(Expr::col(Attendees::WaitlistPosition).is_null())),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("attendees_event_id_fkey")
                            .from(Attendees::Table, Attendees::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("attendees_user_id_fkey")
                            .from(Attendees::Table, Attendees::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One record per user and event; re-registering reactivates it.
        manager
            .create_index(
                Index::create()
                    .name("attendees_event_id_user_id_key")
                    .table(Attendees::Table)
                    .col(Attendees::EventId)
                    .col(Attendees::UserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "attendees_event_id_registered_at_idx",
                vec![Attendees::EventId, Attendees::RegisteredAt, Attendees::Id],
            ),
            (
                "attendees_event_id_status_position_idx",
                vec![
                    Attendees::EventId,
                    Attendees::Status,
                    Attendees::WaitlistPosition,
                ],
            ),
            (
                "attendees_user_id_registered_at_idx",
                vec![Attendees::UserId, Attendees::RegisteredAt, Attendees::Id],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(Attendees::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Attendees::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
pub enum Events {
    Table,
    Id,
    Title,
    Description,
    Location,
    StartsAt,
    EndsAt,
    Capacity,
    WaitlistEnabled,
    Status,
    OrganizerId,
    ConfirmedCount,
    WaitlistCount,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum Attendees {
    Table,
    Id,
    EventId,
    UserId,
    Status,
    WaitlistPosition,
    RegisteredAt,
    UpdatedAt,
    Version,
}
