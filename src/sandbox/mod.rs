//! Throwaway local services for the demo and the tests.

pub mod postgres;

pub use postgres::TempPostgres;
