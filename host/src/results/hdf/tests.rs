//! Unit tests for HDF parsing rules.
use super::*;
