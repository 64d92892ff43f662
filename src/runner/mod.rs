//! Runs suite containers: one attempt per container, reruns of failed specs, timeouts.
