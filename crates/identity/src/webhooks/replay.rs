//! Sending events again: everything since a time, only what failed, or one message.
