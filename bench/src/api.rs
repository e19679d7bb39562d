//! The few API calls seeding needs.

use anyhow::{Context, bail};
use reqwest::Client;
use serde_json::{Value, json};

/// A seeded user and a token for it.
#[derive(Debug, Clone)]
pub struct User {
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// `Bearer <token>`.
    pub bearer: String,
}

async fn call(req: reqwest::RequestBuilder, expect: u16) -> anyhow::Result<Value> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    if status != expect {
        bail!(
            "expected {expect}, got {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    Ok(serde_json::from_slice(&body)?)
}

fn json_post(client: &Client, url: String, body: &Value) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
}

/// Signs a user up and logs in.
pub async fn user(client: &Client, base: &str, email: String) -> anyhow::Result<User> {
    let password = format!("pw-{email}");
    let created = call(
        json_post(
            client,
            format!("{base}/api/v1/users"),
            &json!({"email": email, "password": password, "full_name": "Bench user"}),
        ),
        201,
    )
    .await
    .context("signing up")?;
    anyhow::ensure!(created["id"].is_string(), "user without id");
    let token = login(client, base, &email, &password).await?;
    Ok(User {
        email,
        password,
        bearer: format!("Bearer {token}"),
    })
}

/// Exchanges credentials for an access token.
pub async fn login(
    client: &Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let token = call(
        json_post(
            client,
            format!("{base}/api/v1/auth/token"),
            &login_body(email, password),
        ),
        200,
    )
    .await
    .context("logging in")?;
    Ok(token["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned())
}

/// Body of `POST /auth/token`.
pub fn login_body(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password})
}

/// Body of an event `n`: published, starting within a year, two hours long.
pub fn event_body(title: &str, n: usize, capacity: Option<i64>, waitlist: bool) -> Value {
    let start = chrono::Utc::now()
        + chrono::Duration::days(1 + (n % 365) as i64)
        + chrono::Duration::minutes((n * 7 % 1440) as i64);
    let start = start.format("%Y-%m-%dT%H:%M:00Z").to_string();
    let end = (chrono::DateTime::parse_from_rfc3339(&start).expect("formatted above")
        + chrono::Duration::hours(2))
    .format("%Y-%m-%dT%H:%M:00Z")
    .to_string();
    json!({
        "title": format!("{title} {n}"),
        "description": "An event seeded by em-bench, with a description of ordinary length.",
        "location": format!("Hall {}", n % 50),
        "starts_at": start,
        "ends_at": end,
        "capacity": capacity,
        "waitlist_enabled": waitlist,
        "status": "published",
    })
}

/// Creates an event as the holder of `bearer`; returns its id.
pub async fn create_event(
    client: &Client,
    base: &str,
    bearer: &str,
    body: &Value,
) -> anyhow::Result<String> {
    let created = call(
        json_post(client, format!("{base}/api/v1/events"), body).header("authorization", bearer),
        201,
    )
    .await
    .context("creating an event")?;
    Ok(created["id"]
        .as_str()
        .context("event without id")?
        .to_owned())
}

/// Registers the holder of `bearer` for an event; returns the attendee status.
pub async fn register(
    client: &Client,
    base: &str,
    bearer: &str,
    event: &str,
) -> anyhow::Result<String> {
    let created = call(
        json_post(
            client,
            format!("{base}/api/v1/events/{event}/attendees"),
            &json!({}),
        )
        .header("authorization", bearer),
        201,
    )
    .await
    .context("registering")?;
    Ok(created["status"].as_str().unwrap_or_default().to_owned())
}

/// Creates a webhook posting `event`'s changes to `url`; returns its id.
pub async fn create_webhook(
    client: &Client,
    base: &str,
    bearer: &str,
    url: &str,
    event: &str,
) -> anyhow::Result<String> {
    let created = call(
        json_post(
            client,
            format!("{base}/api/v1/webhooks"),
            &json!({"url": url, "event_id": event}),
        )
        .header("authorization", bearer),
        201,
    )
    .await
    .context("creating a webhook")?;
    Ok(created["id"]
        .as_str()
        .context("webhook without id")?
        .to_owned())
}

/// Deletes a webhook (and its deliveries).
pub async fn delete_webhook(
    client: &Client,
    base: &str,
    bearer: &str,
    id: &str,
) -> anyhow::Result<()> {
    let resp = client
        .delete(format!("{base}/api/v1/webhooks/{id}"))
        .header("authorization", bearer)
        .send()
        .await
        .context("deleting a webhook")?;
    anyhow::ensure!(
        resp.status() == 204,
        "deleting a webhook: {}",
        resp.status()
    );
    Ok(())
}

/// Registers the holder of `bearer` for an event with `body`; returns the attendee id.
pub async fn register_with(
    client: &Client,
    base: &str,
    bearer: &str,
    event: &str,
    body: &Value,
) -> anyhow::Result<String> {
    let created = call(
        json_post(
            client,
            format!("{base}/api/v1/events/{event}/attendees"),
            body,
        )
        .header("authorization", bearer),
        201,
    )
    .await
    .context("registering")?;
    Ok(created["id"].as_str().unwrap_or_default().to_owned())
}

/// Creates an invitation to `event` admitting `max_uses`; returns its token.
pub async fn invite(
    client: &Client,
    base: &str,
    bearer: &str,
    event: &str,
    max_uses: usize,
) -> anyhow::Result<String> {
    let created = call(
        json_post(
            client,
            format!("{base}/api/v1/events/{event}/invitations"),
            &json!({ "max_uses": max_uses }),
        )
        .header("authorization", bearer),
        201,
    )
    .await
    .context("inviting")?;
    Ok(created["token"]
        .as_str()
        .context("invitation without token")?
        .to_owned())
}

/// Posts a batch of check-in scans; returns how many scans checked a record in.
pub async fn check_in(
    client: &Client,
    base: &str,
    bearer: &str,
    event: &str,
    attendees: &[String],
) -> anyhow::Result<usize> {
    let scans: Vec<Value> = attendees
        .iter()
        .map(|id| json!({ "attendee_id": id }))
        .collect();
    let answered = call(
        json_post(
            client,
            format!("{base}/api/v1/events/{event}/check-ins"),
            &json!({ "scans": scans }),
        )
        .header("authorization", bearer),
        200,
    )
    .await
    .context("checking in")?;
    Ok(answered["results"]
        .as_array()
        .context("no results")?
        .iter()
        .filter(|r| r["result"] == "checked_in")
        .count())
}
