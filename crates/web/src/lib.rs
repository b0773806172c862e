//! The HTTP boundary shared by latchkey's identity and app parts.
//!
//! It owns how failures look on the wire (one stable JSON envelope, never internal text) and
//! how requests are traced (method, route and status; never query strings, bodies, cookies or
//! headers, which carry tokens and personal data). Every response is marked unsniffable and,
//! unless its handler says otherwise, uncacheable. It knows nothing of either part's domain.

pub mod assets;
pub mod cookies;
pub mod csrf;
mod error;
mod headers;
pub mod metrics;
pub mod pages;
pub mod redirect;
pub mod time;
mod trace;

pub use error::{ApiError, ErrorBody, ErrorChain, ErrorDetail};
pub use headers::with_private_responses;
pub use trace::{matched_route, with_nested_routes, with_tracing};
