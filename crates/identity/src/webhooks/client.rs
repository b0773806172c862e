//! The HTTP client deliveries go out through.
