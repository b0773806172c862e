//! Outgoing webhooks: endpoints and their secrets, the delivery worker, replays, and the pull
//! feed. Deliveries are signed exactly as Svix signs them, so Clerk-compatible receivers
//! (latchkey's own included) verify them unchanged.

mod client;
pub mod delivery;
pub mod endpoints;
pub mod feed;
pub mod replay;

pub use delivery::DeliverySettings;
pub use endpoints::{Endpoint, EndpointError};
pub use feed::FeedPage;
