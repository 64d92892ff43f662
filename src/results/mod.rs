//! Results: one model for every ginkgo result shape, readers, the JUnit writer and the summary.

pub mod load;
pub(crate) mod merge;
pub mod model;
pub mod read;
pub mod summary;
pub mod write;

pub(crate) use model::*;
