//! Output layouts that both tiers must choose alike.

use qtensor_runtime::{MemoryFormat, Tensor};

/// True where PyTorch's cat returns a channels-last tensor: on its
/// channels-last path, and where every input suggests channels-last (its
/// generic path concatenates in the inputs' common format).
pub fn channels_last_output(xs: &[Tensor], dim: usize) -> bool {
    channels_last_path(xs, dim)
        || (!xs.is_empty() && xs.iter().all(|x| x.memory_format() == MemoryFormat::ChannelsLast))
}

/// True where PyTorch's cat takes its channels-last path: 4-d inputs, all
/// channels-last, concatenated along channels.
pub fn channels_last_path(xs: &[Tensor], dim: usize) -> bool {
    dim == 1 && xs.iter().all(|x| x.ndim() == 4 && x.is_contiguous_in(MemoryFormat::ChannelsLast))
}
