//! Throwaway local services for the demo and the tests.
