//! Response compression: gzip and br for bodies over 1 KiB, negotiated by `Accept-Encoding`.

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder};
use reqwest::{Method, header::HeaderMap};
use tokio::io::AsyncReadExt;

use crate::{backend_tests, helpers::TestApp};

/// An answer read whole, body as bytes.
struct Raw {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn varies_on(&self, name: &str) -> bool {
        self.headers
            .get_all("vary")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(name))
    }
}

/// GET with an optional `Accept-Encoding`; the client itself decodes nothing.
async fn get(app: &TestApp, path: &str, accept_encoding: Option<&str>) -> Raw {
    let mut rb = app.request(Method::GET, path, None);
    if let Some(value) = accept_encoding {
        rb = rb.header("accept-encoding", value);
    }
    let resp = rb.send().await.expect("request sent");
    Raw {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.bytes().await.expect("body").to_vec(),
    }
}

async fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => GzipDecoder::new(body).read_to_end(&mut out).await,
        "br" => BrotliDecoder::new(body).read_to_end(&mut out).await,
        other => panic!("unexpected coding {other}"),
    }
    .expect("a valid encoded body");
    out
}

backend_tests! {
    async fn docs_and_the_openapi_document_come_compressed_and_decode_to_the_same_bytes(app) {
        for path in ["/docs", "/openapi.json"] {
            let plain = get(&app, path, None).await;
            assert_eq!(plain.status, 200, "{path}");
            assert_eq!(plain.header("content-encoding"), None, "{path}");
            assert!(plain.body.len() > 1024, "{path} is over 1 KiB");
            assert!(plain.varies_on("accept-encoding"), "{path}");
            for coding in ["gzip", "br"] {
                let packed = get(&app, path, Some(coding)).await;
                assert_eq!(packed.status, 200, "{path}");
                assert_eq!(packed.header("content-encoding"), Some(coding), "{path}");
                assert!(packed.varies_on("accept-encoding"), "{path}");
                assert!(packed.body.len() < plain.body.len() / 2, "{path} {coding} shrinks");
                assert_eq!(decode(coding, &packed.body).await, plain.body, "{path} {coding}");
            }
        }
    }

    async fn the_coding_follows_the_q_values_of_accept_encoding(app) {
        let cases = [
            ("gzip;q=1.0, br;q=0.5", Some("gzip")),
            ("gzip, deflate, br", Some("br")),
            ("br;q=0, gzip", Some("gzip")),
            ("gzip;q=0", None),
            ("identity", None),
            ("*;q=0.1", Some("br")),
        ];
        for (accept, expected) in cases {
            let resp = get(&app, "/openapi.json", Some(accept)).await;
            assert_eq!(resp.status, 200);
            assert_eq!(resp.header("content-encoding"), expected, "Accept-Encoding: {accept}");
        }
    }

    async fn a_small_answer_is_sent_as_it_is(app) {
        let resp = get(&app, "/health/live", Some("gzip, br")).await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("content-encoding"), None);
        assert_eq!(resp.body, br#"{"status":"ok"}"#);
        let problem = get(&app, "/api/v1/users/me", Some("gzip, br")).await;
        assert_eq!(problem.status, 401);
        assert_eq!(problem.header("content-encoding"), None);
    }
}
