//! Masks as pure functions: magnitude, random, structured, N:M, transposable N:M and Wanda.

mod amount;
mod host_tensor;
mod keep_mask;
mod nm;
mod nm_tensor;
mod select;
mod structured;
mod transposable;
mod unstructured;
mod wanda;

pub use amount::Amount;
pub use host_tensor::HostTensor;
pub use keep_mask::Mask;
pub use nm::{NmPattern, Remainder, check_nm_shape, nm_mask, satisfies_nm};
pub use nm_tensor::nm_mask_tensor;
pub use structured::{Norm, ln_structured, random_structured};
pub use transposable::transposable_nm_mask;
pub use unstructured::{
    global_magnitude, global_unstructured, magnitude, random_unstructured, unstructured,
    unstructured_along,
};
pub use wanda::WandaCalibration;

pub(crate) use select::keep_top_k;
