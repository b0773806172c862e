//! Request tracing that is safe to ship: it records the matched route, never the raw URI, whose
//! query string may carry a redirect target, a reset code or a token.

use axum::extract::MatchedPath;
use http::Request;
use tower_http::trace::{DefaultOnResponse, MakeSpan, TraceLayer};
use tracing::{Level, Span};

/// Adds a span per request with `http.method` and `http.route`, and one INFO line per
/// response with the status and latency.
pub fn with_tracing<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router.layer(
        TraceLayer::new_for_http()
            .make_span_with(RouteSpan)
            .on_request(())
            .on_response(DefaultOnResponse::new().level(Level::INFO)),
    )
}

#[derive(Debug, Clone, Copy)]
pub struct RouteSpan;

impl<B> MakeSpan<B> for RouteSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or("(unmatched)", MatchedPath::as_str);
        tracing::info_span!("request", http.method = %request.method(), http.route = route)
    }
}
