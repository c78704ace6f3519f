//! The domain: what agents track — tasks, handoffs, decisions, sprints and
//! epics — and the invariants of the work graph (`validate`). Each module owns
//! one kind's properties, its state machine and its one-transaction writes; the
//! queries over them live in [`crate::queries`]' modules.
//!
//! The modules are reachable from the crate root as before (`got::tasks`, …).

pub mod decisions;
pub mod handoffs;
pub mod plans;
pub mod tasks;
pub mod validate;
