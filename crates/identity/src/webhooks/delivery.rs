//! The delivery worker.

/// How deliveries are attempted.
#[derive(Debug, Clone)]
pub struct DeliverySettings;

/// The worker.
#[derive(Debug)]
pub struct Worker;
