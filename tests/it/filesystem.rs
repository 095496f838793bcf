//! Integration tests: filesystem.
