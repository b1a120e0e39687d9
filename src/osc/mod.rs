//! osc
