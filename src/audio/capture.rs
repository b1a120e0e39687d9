//! Capture (cpal): placeholder.
