//! The logic of the stages that more than one tool runs, so tools share
//! libraries rather than each other:
//!
//! - [`rollout`]: a checkpoint samples responses for every row of a
//!   prompts file (the rollout tool; evaluate's generation);
//! - [`verify`]: grade every row of a table of responses and add the
//!   grade columns (the verify tool; evaluate's grading uses its
//!   fallbacks).

pub mod rollout;
pub mod verify;
