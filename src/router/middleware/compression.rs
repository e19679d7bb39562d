//! Response compression (gzip, br) negotiated with `Accept-Encoding`.
//!
//! poem's own `Compression` middleware compresses every answer whatever its size or type and
//! reads q-values loosely (`gzip;q=0` selects gzip), so the decision is made here and
//! async-compression's encoders (the ones poem uses) do the work.

use std::{pin::Pin, sync::Arc};

use async_compression::{
    Level,
    tokio::bufread::{BrotliEncoder, GzipEncoder},
};
use poem::{
    Body, Endpoint, IntoResponse, Request, Response,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
};
use tokio::io::{AsyncRead, BufReader};

/// Bodies at most this long are sent as they are: compressing them saves less than it costs.
pub const MIN_COMPRESSED_BYTES: u64 = 1024;

/// A content coding this server produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// Brotli (`br`).
    Brotli,
    /// gzip.
    Gzip,
}

impl Coding {
    fn token(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Gzip => "gzip",
        }
    }
}

/// The coding to use for an `Accept-Encoding` request header (all its values), by q-value:
/// `q=0` refuses a coding, `*` stands for codings not named, ties prefer br. `None`: send
/// the body as it is.
pub fn negotiate(headers: &HeaderMap) -> Option<Coding> {
    let mut br = None;
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let mut q = Some(1.0_f32);
            for param in parts {
                if let Some((name, v)) = param.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = v
                        .trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q));
                }
            }
            let Some(q) = q else { continue };
            let slot = if coding.eq_ignore_ascii_case("br") {
                &mut br
            } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                &mut gzip
            } else if coding == "*" {
                &mut any
            } else {
                continue;
            };
            *slot = Some(q);
        }
    }
    let br = br.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    if br <= 0.0 && gzip <= 0.0 {
        None
    } else if br >= gzip {
        Some(Coding::Brotli)
    } else {
        Some(Coding::Gzip)
    }
}

/// Whether an answer may be compressed: a body longer than `MIN_COMPRESSED_BYTES` (or of
/// unknown length), not yet encoded, and not an event stream (its events must reach the
/// client as they happen, not when an encoder's buffer fills).
pub fn is_compressible(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
    body_len: Option<u64>,
) -> bool {
    let event_stream = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
        });
    *method != Method::HEAD
        && !matches!(
            status,
            StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
        )
        && !status.is_informational()
        && !headers.contains_key(header::CONTENT_ENCODING)
        && !headers.contains_key(header::CONTENT_RANGE)
        && !event_stream
        && body_len.is_none_or(|len| len > MIN_COMPRESSED_BYTES)
}

/// Compresses answers the client accepts compressed (see `negotiate`, `is_compressible`).
pub async fn compress<E: Endpoint>(ep: Arc<E>, req: Request) -> poem::Result<Response> {
    let method = req.method().clone();
    let coding = negotiate(req.headers());
    let mut response = ep.call(req).await?.into_response();
    let (body, len) = body_len(response.take_body());
    if !is_compressible(&method, response.status(), response.headers(), len) {
        response.set_body(body);
        return Ok(response);
    }
    // The representation depends on `Accept-Encoding` whether or not this client got it
    // compressed: caches must know.
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let Some(coding) = coding else {
        response.set_body(body);
        return Ok(response);
    };
    let reader = BufReader::new(body.into_async_read());
    // Fast levels: answers are built per request, and br's default (11) costs ~100x gzip's.
    let encoded: Pin<Box<dyn AsyncRead + Send>> = match coding {
        Coding::Brotli => Box::pin(BrotliEncoder::with_quality(reader, Level::Precise(4))),
        Coding::Gzip => Box::pin(GzipEncoder::with_quality(reader, Level::Default)),
    };
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    headers.insert(
        header::CONTENT_ENCODING,
        HeaderValue::from_static(coding.token()),
    );
    response.set_body(Body::from_async_read(encoded));
    Ok(response)
}

/// The exact length of a body, when known without reading it (streams have none).
fn body_len(body: Body) -> (Body, Option<u64>) {
    let boxed: http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error> = body.into();
    let len = http_body::Body::size_hint(&boxed).exact();
    (Body::from(boxed), len)
}

#[cfg(test)]
mod tests {
    use poem::http::{HeaderMap, HeaderValue, Method, StatusCode, header};

    use super::{Coding, MIN_COMPRESSED_BYTES, is_compressible, negotiate};

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn accept_encoding_is_negotiated_by_q_value() {
        let cases: &[(&[&str], Option<Coding>)] = &[
            (&[], None),
            (&["identity"], None),
            (&["gzip"], Some(Coding::Gzip)),
            (&["br"], Some(Coding::Brotli)),
            (&["gzip, deflate, br"], Some(Coding::Brotli)),
            (&["gzip;q=1.0, br;q=0.5"], Some(Coding::Gzip)),
            (&["gzip; q=0.8", "br ; Q=0.9"], Some(Coding::Brotli)),
            (&["gzip;q=0"], None),
            (&["br;q=0, gzip;q=0.1"], Some(Coding::Gzip)),
            (&["*"], Some(Coding::Brotli)),
            (&["*;q=0.5, br;q=0"], Some(Coding::Gzip)),
            (&["*;q=0"], None),
            (&["zstd, deflate"], None),
            (&["gzip;q=2"], None),
            (&["GZIP"], Some(Coding::Gzip)),
        ];
        for (values, expected) in cases {
            assert_eq!(negotiate(&accept(values)), *expected, "{values:?}");
        }
    }

    #[test]
    fn small_event_stream_empty_and_encoded_answers_are_not_compressed() {
        let json = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            h
        };
        let big = Some(MIN_COMPRESSED_BYTES + 1);
        let get = Method::GET;
        let ok = StatusCode::OK;
        assert!(is_compressible(&get, ok, &json("application/json"), big));
        assert!(is_compressible(&get, ok, &json("text/html"), None));
        assert!(!is_compressible(
            &get,
            ok,
            &json("application/json"),
            Some(MIN_COMPRESSED_BYTES)
        ));
        assert!(!is_compressible(&get, ok, &json("text/event-stream"), None));
        assert!(!is_compressible(
            &get,
            ok,
            &json("Text/Event-Stream; charset=utf-8"),
            None
        ));
        assert!(!is_compressible(
            &get,
            StatusCode::NOT_MODIFIED,
            &json("application/json"),
            big
        ));
        assert!(!is_compressible(
            &get,
            StatusCode::NO_CONTENT,
            &HeaderMap::new(),
            big
        ));
        assert!(!is_compressible(
            &Method::HEAD,
            ok,
            &json("application/json"),
            big
        ));
        let mut encoded = json("application/json");
        encoded.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(!is_compressible(&get, ok, &encoded, big));
    }
}
