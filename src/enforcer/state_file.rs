//! A counter store in a file.
