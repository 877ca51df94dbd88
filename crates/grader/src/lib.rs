//! Answer grading: find the final answer in a response, decide whether it
//! equals the gold answer, and turn that into the rule reward.

pub mod extract;
