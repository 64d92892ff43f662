//! Writers: the combined JUnit file.

pub mod junit;
