//! Shared application state: the pool and the services built on it.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    config::Config,
    service::{
        attendees::AttendeeService,
        auth::{AuthService, LoginThrottle, Passwords, ThrottleLimits, Tokens},
        changes::ChangeFeed,
        events::EventService,
        health::HealthService,
        idempotency::Idempotency,
        imports::ImportService,
        invitations::InvitationService,
        live::ChangeHub,
        operations::Operations,
        reports::ReportService,
        sessions::Sessions,
        staff::StaffService,
        totals::EventCountCache,
        users::UserService,
        webhooks::WebhookService,
    },
};

/// Everything a request handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Configuration the process started with.
    pub config: Arc<Config>,
    /// Authentication and tokens.
    pub auth: AuthService,
    /// Users.
    pub users: UserService,
    /// Events.
    pub events: EventService,
    /// Registrations and check-in.
    pub attendees: AttendeeService,
    /// Event staff.
    pub staff: StaffService,
    /// Invitations.
    pub invitations: InvitationService,
    /// Readiness.
    pub health: HealthService,
    /// The change feed and live streams.
    pub changes: ChangeFeed,
    /// Stored answers of writes that carried an `Idempotency-Key` (swept by a worker).
    pub idempotency: Idempotency,
    /// Webhooks and their deliveries (delivered by a worker).
    pub webhooks: WebhookService,
    /// Attendance statistics and exports.
    pub reports: ReportService,
    /// Event import jobs (run by a worker).
    pub imports: ImportService,
    /// The metrics endpoint.
    pub operations: Operations,
}

impl AppState {
    /// Builds the services. Without `JWT_SECRET`, tokens are signed with a random
    /// per-process secret (and do not survive a restart).
    pub fn new(config: Config, db: DatabaseConnection) -> anyhow::Result<Self> {
        let secret = match &config.jwt_secret {
            Some(secret) => secret.as_bytes().to_vec(),
            None => {
                tracing::warn!(
                    "JWT_SECRET is not set: using a random secret; tokens will not survive a restart \
                     and will not be accepted by other instances"
                );
                let random: [u8; 64] = rand::random();
                random.to_vec()
            }
        };
        let tokens = Arc::new(Tokens::new(&secret, config.token_ttl_seconds));
        let passwords = Arc::new(Passwords::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
        )?);
        let event_totals = Arc::new(EventCountCache::default());
        let hub = Arc::new(ChangeHub::new(db.clone(), config.max_streams as usize));
        let operations = Operations::new(
            db.clone(),
            hub.clone(),
            config.metrics_enabled.then(crate::metric::install),
            config.metrics_token.clone(),
            config.db_max_connections,
        );
        let changes = ChangeFeed::new(db.clone(), hub, config.changes_retention_days);
        let idempotency = Idempotency::new(db.clone(), config.idempotency_ttl_seconds, &secret);
        let imports = ImportService::new(
            db.clone(),
            event_totals.clone(),
            idempotency.clone(),
            std::time::Duration::from_secs(config.import_lease_seconds),
        );
        let webhooks = WebhookService::new(db.clone(), &config, &secret, idempotency.clone())?;
        Ok(Self {
            auth: AuthService::new(
                db.clone(),
                passwords.clone(),
                tokens,
                Arc::new(LoginThrottle::new(ThrottleLimits {
                    per_email_and_client: config.login_failures_per_email_and_client,
                    per_email: config.login_failures_per_email,
                    per_client: config.login_failures_per_client,
                })),
                Arc::new(Sessions::new(config.refresh_token_ttl_seconds)),
                idempotency.clone(),
            ),
            users: UserService::new(
                db.clone(),
                passwords,
                event_totals.clone(),
                changes.clone(),
                idempotency.clone(),
            ),
            events: EventService::new(
                db.clone(),
                event_totals,
                changes.clone(),
                idempotency.clone(),
            ),
            attendees: AttendeeService::new(db.clone(), changes.clone(), idempotency.clone()),
            staff: StaffService::new(db.clone(), changes.clone(), idempotency.clone()),
            invitations: InvitationService::new(db.clone(), changes.clone(), idempotency.clone()),
            reports: ReportService::new(db.clone()),
            imports,
            operations,
            health: HealthService::new(db),
            changes,
            idempotency,
            webhooks,
            config: Arc::new(config),
        })
    }
}
