//! Recovery: restore a share to a snapshot (clone-and-swap by default, undoable; rollback when
//! asked), undo it, finalize it. [`plan`] decides the steps (pure), [`resume`] decides what to do
//! with an interrupted plan (pure), [`journal`] records every step before and after it runs, and
//! [`executor`] runs steps against zfs and the share's file service.

pub mod executor;
pub mod journal;
pub mod plan;
pub mod resume;

pub use executor::{Outcome, Progress, Recovery, Request};
pub use plan::{Mode, Operation, RecoveryPlan, Step, Target};
