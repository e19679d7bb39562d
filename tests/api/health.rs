//! Liveness and readiness probes.

use serde_json::json;

use crate::backend_tests;

backend_tests! {
    async fn liveness_says_ok(app) {
        let resp = app.get("/health/live", None).await;
        resp.expect(200);
        assert_eq!(resp.body, json!({"status": "ok"}));
    }

    async fn readiness_reports_the_database_and_its_latency(app) {
        for path in ["/health/ready", "/health"] {
            let resp = app.get(path, None).await;
            resp.expect(200);
            assert_eq!(resp.body["status"], "ok");
            assert_eq!(resp.body["database"], "ok");
            assert!(resp.body["latency_ms"].as_u64().is_some(), "latency_ms: {}", resp.body);
        }
    }

    async fn readiness_is_503_when_the_database_is_gone_while_liveness_stays_200(app) {
        app.db.clone().close().await.expect("closing the pool");
        // The server shares the pool with the test: closing it makes every ping fail.
        let resp = app.get("/health/ready", None).await;
        resp.expect(503);
        assert_eq!(resp.body, json!({"status": "unavailable", "database": "unreachable"}));
        app.get("/health", None).await.expect(503);
        app.get("/health/live", None).await.expect(200);
    }
}
