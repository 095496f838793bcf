//! STUB: the in-process fake GitHub REST server (feature `fake-github`).
