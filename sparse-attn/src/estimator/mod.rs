//! Estimators that build a [`SparseMask`](crate::SparseMask) from an attention call.

pub mod sea;
