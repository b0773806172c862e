//! Request tracing that is safe to ship: it records the matched route, never the raw URI, whose
//! query string may carry a redirect target, a reset code or a token.
//!
//! The route is axum's `MatchedPath`, a template (`/users/{id}`), so labels stay few. A router
//! served inside another with `nest_service` matches its routes only once the outer router's
//! layers have run, and axum gives those layers no `MatchedPath` for it: such a router reports
//! its own template back ([`with_nested_routes`]), on the request's span and on the response,
//! where the outer layers read it ([`matched_route`]).

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::trace::{DefaultOnResponse, MakeSpan, TraceLayer};
use tracing::{Level, Span};

/// The route of a request no router matched.
const UNMATCHED: &str = "(unmatched)";

/// Adds a span per request with `http.method` and `http.route`, and one INFO line per
/// response with the status and latency.
pub fn with_tracing<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router
        .layer(axum::middleware::from_fn(record_unmatched))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(RouteSpan)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

/// For a router that another serves with `nest_service`: each request its routes match
/// carries their template (prefix included) on its span and, for the outer router's layers,
/// on its response. What its fallback answers stays unmatched.
pub fn with_nested_routes<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
) -> axum::Router<S> {
    router.layer(axum::middleware::from_fn(report_nested_route))
}

/// The route template a request matched, from its `MatchedPath` (taken before the request was
/// handed on) or else from what a nested router reported on the response.
#[must_use]
pub fn matched_route<'a>(
    matched: Option<&'a MatchedPath>,
    response: &'a Response,
) -> Option<&'a str> {
    matched
        .or_else(|| response.extensions().get::<NestedRoute>().map(|r| &r.0))
        .map(MatchedPath::as_str)
}

/// The template a nested router matched, on its response.
#[derive(Debug, Clone)]
struct NestedRoute(MatchedPath);

#[derive(Debug, Clone, Copy)]
pub struct RouteSpan;

impl<B> MakeSpan<B> for RouteSpan {
    fn make_span(&mut self, request: &http::Request<B>) -> Span {
        let span = tracing::info_span!(
            "request",
            http.method = %request.method(),
            http.route = tracing::field::Empty,
        );
        if let Some(route) = request.extensions().get::<MatchedPath>() {
            span.record("http.route", route.as_str());
        }
        span
    }
}

/// Names the request unmatched once answered if neither this router nor a nested one matched
/// it (the route is recorded once: a span's field recorded twice is logged twice).
async fn record_unmatched(request: Request, next: Next) -> Response {
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    if matched_route(matched.as_ref(), &response).is_none() {
        Span::current().record("http.route", UNMATCHED);
    }
    response
}

async fn report_nested_route(request: Request, next: Next) -> Response {
    let Some(route) = request.extensions().get::<MatchedPath>().cloned() else {
        return next.run(request).await;
    };
    // The request's span, which the outer router's `TraceLayer` has entered.
    Span::current().record("http.route", route.as_str());
    let mut response = next.run(request).await;
    response.extensions_mut().insert(NestedRoute(route));
    response
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex, PoisonError};

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    /// The log lines written while `uri` is answered by `app`.
    async fn logged(app: Router, uri: &str) -> String {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(lines.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let request = http::Request::get(uri).body(Body::empty()).unwrap();
        app.oneshot(request).await.unwrap();
        let bytes = lines
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        String::from_utf8(bytes).unwrap()
    }

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Lines {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    fn app() -> Router {
        let nested = with_nested_routes(
            Router::new()
                .route("/items/{id}", get(|| async { "item" }))
                .fallback(|| async { http::StatusCode::NOT_FOUND }),
        );
        with_tracing(
            Router::new()
                .route("/plain/{id}", get(|| async { "plain" }))
                .nest_service("/nested", nested),
        )
    }

    /// The `http.route` of the response line (the only line), which names it once (quoted,
    /// as a string field is).
    fn route(log: &str) -> &str {
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 1, "{log}");
        assert_eq!(lines[0].matches("http.route=").count(), 1, "{log}");
        let (_, fields) = lines[0].split_once("http.route=").unwrap();
        let quoted = fields.split_once("}: ").unwrap().0;
        quoted.strip_prefix('"').unwrap().strip_suffix('"').unwrap()
    }

    #[tokio::test]
    async fn requests_are_traced_by_route_template_once_nested_or_not() {
        let log = logged(app(), "/plain/42").await;
        assert_eq!(route(&log), "/plain/{id}");
        let log = logged(app(), "/nested/items/42").await;
        assert_eq!(route(&log), "/nested/items/{id}");
        let log = logged(app(), "/nested/nothing").await;
        assert_eq!(route(&log), UNMATCHED);
        let log = logged(app(), "/nothing").await;
        assert_eq!(route(&log), UNMATCHED);
    }
}
