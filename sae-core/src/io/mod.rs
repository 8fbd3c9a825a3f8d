//! Files: SAELens v6 folders (read and write), sparsify and dictionary_learning folders (read).
//!
//! The neutral form is [`SaeLensFolder`]: a checked [`SaeLensConfig`] plus named `f32`
//! [`HostTensor`]s in SAELens' names and orientations. Files become a folder
//! ([`SaeLensFolder::read`]), a folder becomes a module ([`SaeLensFolder::to_sae`]) and back
//! ([`SaeLensFolder::from_sae`], [`SaeLensFolder::write`]); [`load_saelens`] and
//! [`save_saelens`] do both steps. Every problem with a file is an [`Error`](crate::Error)
//! naming the file and what is wrong; writes are atomic (temporary sibling + rename).

mod atomic;
mod convert;
mod dictionary_learning;
mod json;
mod layout;
mod saelens;
mod saelens_config;
mod sparsify;
mod tensors;

pub use dictionary_learning::{
    DICTIONARY_LEARNING_WEIGHTS_FILENAME, DictionaryLearningSae, load_dictionary_learning,
};
pub use saelens::{
    CFG_FILENAME, LoadedSae, SPARSITY_FILENAME, SaeLensFolder, SaeLensSaveOptions, SaveMode,
    WEIGHTS_FILENAME, load_saelens, save_saelens,
};
pub use saelens_config::{
    NormalizeActivations, ReshapeActivations, SAELENS_FORMAT_VERSION, SaeLensConfig,
};
pub use sparsify::{SPARSIFY_WEIGHTS_FILENAME, SparsifySae, load_sparsify};
pub use tensors::{HostTensor, TensorSet};
