//! The arguments of the built-in ops, read and validated: the types and
//! checks that the reference kernels and the faster tiers share, so that
//! both reject a bad input with the same error and neither tier imports
//! the other's code.

pub mod activation;
pub mod average;
pub mod binary;
pub mod conv;
pub mod layout;
pub mod linear;
pub mod quantized;
pub mod window;
