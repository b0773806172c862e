//! Outgoing webhooks: endpoints and their secrets, the delivery worker, replays, and the pull
//! feed. Deliveries are signed exactly as Svix signs them, so Clerk-compatible receivers
//! (latchkey's own included) verify them unchanged.

mod client;
pub mod delivery;
pub mod endpoints;
pub mod feed;
pub mod health;
pub mod replay;

pub use delivery::DeliverySettings;

/// Where one delivery (an event to an endpoint) stands, stored as the TEXT in the `status`
/// column of `identity_webhook_deliveries`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Due at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Succeeded,
    /// Retries exhausted; a replay makes it pending again.
    Failed,
}

impl DeliveryStatus {
    /// The stored value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}
pub use endpoints::{Endpoint, EndpointError};
pub use feed::FeedPage;
